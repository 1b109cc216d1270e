//! The warm-up frame: what a stream's output shows while its pipeline loads (as Daydream's
//! runner renders a loading overlay): the input, dimmed and desaturated, with a progress
//! bar near the bottom (a light fill on a dark track, in a frame). Pure pixel code.
//!
//! ```
//! use dreamgate_media::{render_warmup, Frame};
//!
//! let input = Frame::filled(64, 64, 200, 90, 160);
//! let out = render_warmup(&input, 0.5);
//! assert_eq!((out.width, out.height), (64, 64));
//! assert!(out.y[0] < 200, "dimmed");
//! ```

use crate::Frame;

/// Luma kept from the input (the rest is dimmed away).
const DIM: u32 = 40; // percent
/// Chroma kept from the input (pulled towards grey).
const SATURATION: i32 = 35; // percent
/// The bar's luma: track, fill, outline.
const TRACK_Y: u8 = 40;
const FILL_Y: u8 = 225;
const OUTLINE_Y: u8 = 150;

/// The progress bar's box `(x0, y0, x1, y1)` in a `width` x `height` frame (luma pixels,
/// end exclusive, even coordinates so that chroma lines up): 10 % from each side, a
/// twentieth of the height tall (at least 4 px), its bottom 10 % above the frame's.
pub fn bar_box(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let even = |v: u32| v & !1;
    let x0 = even(width / 10);
    let x1 = even(width - width / 10);
    let h = even((height / 20).max(4));
    let y1 = even(height - height / 10);
    let y0 = y1.saturating_sub(h);
    (x0, y0, x1, y1)
}

/// The warm-up frame for `input` at `progress` (0 to 1, clamped): same size as the input.
pub fn render_warmup(input: &Frame, progress: f64) -> Frame {
    let progress = if progress.is_finite() { progress.clamp(0.0, 1.0) } else { 0.0 };
    let mut out = input.clone();
    for y in &mut out.y {
        *y = (16 + (u32::from(*y).saturating_sub(16)) * DIM / 100) as u8;
    }
    for c in out.u.iter_mut().chain(out.v.iter_mut()) {
        *c = (128 + (i32::from(*c) - 128) * SATURATION / 100) as u8;
    }
    let (w, h) = (out.width, out.height);
    let (x0, y0, x1, y1) = bar_box(w, h);
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return out;
    }
    let fill_end = x0 + 1 + ((f64::from(x1 - x0 - 2) * progress).round() as u32);
    let cw = out.chroma_width();
    for y in y0..y1 {
        for x in x0..x1 {
            let edge = y == y0 || y == y1 - 1 || x == x0 || x == x1 - 1;
            let luma = if edge {
                OUTLINE_Y
            } else if x < fill_end {
                FILL_Y
            } else {
                TRACK_Y
            };
            out.y[(y * w + x) as usize] = luma;
            let c = (y / 2) as usize * cw + (x / 2) as usize;
            out.u[c] = 128;
            out.v[c] = 128;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(v: &[u8]) -> f64 {
        v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
    }

    /// Fill pixels on the bar's middle row.
    fn filled(f: &Frame) -> usize {
        let (x0, y0, x1, y1) = bar_box(f.width, f.height);
        let row = (y0 + y1) / 2;
        (x0 + 1..x1 - 1).filter(|&x| f.y[(row * f.width + x) as usize] == FILL_Y).count()
    }

    #[test]
    fn the_input_is_dimmed_and_desaturated_outside_the_bar() {
        let input = Frame::filled(128, 96, 200, 60, 200);
        let out = render_warmup(&input, 0.0);
        assert_eq!((out.width, out.height), (128, 96));
        assert!(out.validate().is_ok());
        assert_eq!(out.y[0], (16 + (200 - 16) * 40 / 100) as u8);
        assert!(out.u[0] > 60 && out.u[0] < 128, "chroma pulled to grey: {}", out.u[0]);
        assert!(out.v[0] < 200 && out.v[0] > 128, "{}", out.v[0]);
        assert!(mean(&out.y) < mean(&input.y) * 0.6);
    }

    #[test]
    fn the_bar_fills_in_proportion_to_the_progress() {
        let input = Frame::filled(320, 240, 120, 128, 128);
        let (x0, _, x1, _) = bar_box(320, 240);
        let inner = (x1 - x0 - 2) as usize;
        assert_eq!(filled(&render_warmup(&input, 0.0)), 0);
        assert_eq!(filled(&render_warmup(&input, 1.0)), inner);
        let half = filled(&render_warmup(&input, 0.5));
        assert!(half.abs_diff(inner / 2) <= 1, "{half} of {inner}");
        assert_eq!(filled(&render_warmup(&input, 7.0)), inner, "clamped");
        assert_eq!(filled(&render_warmup(&input, f64::NAN)), 0);
        assert!(filled(&render_warmup(&input, 0.3)) < filled(&render_warmup(&input, 0.6)));
    }

    #[test]
    fn tiny_frames_are_only_dimmed() {
        let out = render_warmup(&Frame::filled(4, 4, 100, 128, 128), 0.5);
        assert!(out.validate().is_ok());
    }
}
