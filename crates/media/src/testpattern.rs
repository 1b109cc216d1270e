//! A moving, colourful synthetic source.

use crate::color::rgb_to_yuv;
use crate::Frame;

/// Colour bars (75 % SMPTE-like order).
const BARS: [(u8, u8, u8); 8] = [
    (235, 235, 235),
    (235, 235, 20),
    (20, 235, 235),
    (20, 235, 20),
    (235, 20, 235),
    (235, 20, 20),
    (20, 20, 235),
    (60, 60, 60),
];

/// Generates frames with structure a transform can show and an encoder must
/// work on: horizontally scrolling colour bars shaded top to bottom, an
/// orbiting ringed disc, a sliding square, and a binary frame counter strip
/// along the top (so every frame differs from the previous one).
///
/// ```
/// use dreamgate_media::TestPattern;
/// let p = TestPattern::new(64, 48);
/// let (a, b) = (p.frame(0), p.frame(1));
/// assert_eq!((a.width, a.height), (64, 48));
/// assert_ne!(a, b);
/// assert_eq!(a, p.frame(0));
/// ```
#[derive(Clone, Debug)]
pub struct TestPattern {
    width: u32,
    height: u32,
}

struct Scene {
    w: i64,
    h: i64,
    shift: i64,
    disc: (i64, i64, i64),
    square: (i64, i64, i64),
    counter: u64,
    strip: i64,
}

impl Scene {
    fn new(w: i64, h: i64, index: u64) -> Scene {
        let t = index as f64;
        let r = (w.min(h) / 7).max(2);
        let cx = w as f64 / 2.0 + w as f64 * 0.28 * (t * 0.07).cos();
        let cy = h as f64 / 2.0 + h as f64 * 0.25 * (t * 0.11).sin();
        let side = (w.min(h) / 6).max(2);
        let travel = (w - side).max(1);
        let pos = (index as i64 * 3) % (2 * travel);
        let sx = if pos < travel { pos } else { 2 * travel - pos };
        Scene {
            w,
            h,
            shift: (index as i64 * 4) % w.max(1),
            disc: (cx as i64, cy as i64, r),
            square: (sx, h * 5 / 8, side),
            counter: index,
            strip: (h / 16).max(1),
        }
    }

    fn rgb(&self, x: i64, y: i64) -> (u8, u8, u8) {
        // Counter strip: 16 cells, bit k of the frame index, MSB on the left.
        if y < self.strip {
            let cell = (x * 16 / self.w).clamp(0, 15);
            let bit = (self.counter >> (15 - cell)) & 1;
            return if bit == 1 { (250, 250, 250) } else { (5, 5, 5) };
        }
        let (cx, cy, r) = self.disc;
        let d2 = (x - cx).pow(2) + (y - cy).pow(2);
        if d2 <= r * r {
            let inner = (r * 3 / 4).pow(2);
            return if d2 >= inner { (255, 200, 0) } else { (245, 245, 255) };
        }
        let (sx, sy, side) = self.square;
        if x >= sx && x < sx + side && y >= sy && y < sy + side {
            let border = side / 8;
            let edge = x < sx + border || x >= sx + side - border || y < sy + border || y >= sy + side - border;
            return if edge { (0, 0, 0) } else { (200, 30, 140) };
        }
        let bar = (((x + self.shift) % self.w) * 8 / self.w) as usize;
        let (r, g, b) = BARS[bar.min(7)];
        // Shade from full at the top to about a quarter at the bottom.
        let shade = 255 - (y * 190 / self.h.max(1));
        let s = |c: u8| (c as i64 * shade / 255) as u8;
        (s(r), s(g), s(b))
    }
}

impl TestPattern {
    /// A pattern of the given size (any size; odd sizes round chroma up).
    pub fn new(width: u32, height: u32) -> TestPattern {
        TestPattern { width: width.max(1), height: height.max(1) }
    }

    /// Frame number `index` (deterministic).
    pub fn frame(&self, index: u64) -> Frame {
        let mut frame = Frame::new(self.width, self.height);
        let (w, h) = (self.width as i64, self.height as i64);
        let scene = Scene::new(w, h, index);
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = scene.rgb(x, y);
                frame.y[(y * w + x) as usize] = rgb_to_yuv(r, g, b).0;
            }
        }
        let cw = frame.chroma_width();
        for cy in 0..frame.chroma_height() {
            for cx in 0..cw {
                let (r, g, b) = scene.rgb(2 * cx as i64, 2 * cy as i64);
                let (_, u, v) = rgb_to_yuv(r, g, b);
                frame.u[cy * cw + cx] = u;
                frame.v[cy * cw + cx] = v;
            }
        }
        frame
    }
}
