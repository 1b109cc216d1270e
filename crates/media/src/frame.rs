//! I420 frames and cover-mode scaling.

use crate::MediaError;

/// One picture in I420 (planar Y'CbCr 4:2:0, BT.601 limited range).
///
/// `y` holds `width * height` bytes; `u` and `v` hold one sample per 2x2 block,
/// `chroma_width() * chroma_height()` bytes each (odd sizes round up). Rows are
/// tightly packed (stride = width).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma plane, row-major.
    pub y: Vec<u8>,
    /// Cb plane, row-major, half resolution.
    pub u: Vec<u8>,
    /// Cr plane, row-major, half resolution.
    pub v: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame").field("width", &self.width).field("height", &self.height).finish_non_exhaustive()
    }
}

impl Frame {
    /// A black frame of the given size.
    pub fn new(width: u32, height: u32) -> Frame {
        Frame::filled(width, height, 16, 128, 128)
    }

    /// A frame filled with one colour.
    pub fn filled(width: u32, height: u32, y: u8, u: u8, v: u8) -> Frame {
        let (cw, ch) = chroma_size(width, height);
        Frame { width, height, y: vec![y; width as usize * height as usize], u: vec![u; cw * ch], v: vec![v; cw * ch] }
    }

    /// Builds a frame from planes, checking that their lengths match the size.
    pub fn from_planes(width: u32, height: u32, y: Vec<u8>, u: Vec<u8>, v: Vec<u8>) -> Result<Frame, MediaError> {
        let frame = Frame { width, height, y, u, v };
        frame.validate()?;
        Ok(frame)
    }

    /// Width of the chroma planes (`ceil(width / 2)`).
    pub fn chroma_width(&self) -> usize {
        chroma_size(self.width, self.height).0
    }

    /// Height of the chroma planes (`ceil(height / 2)`).
    pub fn chroma_height(&self) -> usize {
        chroma_size(self.width, self.height).1
    }

    /// Checks that the plane lengths match the declared size.
    pub fn validate(&self) -> Result<(), MediaError> {
        let (cw, ch) = chroma_size(self.width, self.height);
        let luma = self.width as usize * self.height as usize;
        if self.width == 0 || self.height == 0 {
            return Err(MediaError::MalformedFrame(format!("empty frame {}x{}", self.width, self.height)));
        }
        if self.y.len() != luma || self.u.len() != cw * ch || self.v.len() != cw * ch {
            return Err(MediaError::MalformedFrame(format!(
                "{}x{} needs planes of {luma}/{}/{} bytes, got {}/{}/{}",
                self.width,
                self.height,
                cw * ch,
                cw * ch,
                self.y.len(),
                self.u.len(),
                self.v.len()
            )));
        }
        Ok(())
    }

    /// Resizes the planes for a new size (contents unspecified), reusing the
    /// allocations when possible.
    pub(crate) fn reshape(&mut self, width: u32, height: u32) {
        let (cw, ch) = chroma_size(width, height);
        self.width = width;
        self.height = height;
        self.y.resize(width as usize * height as usize, 16);
        self.u.resize(cw * ch, 128);
        self.v.resize(cw * ch, 128);
    }

    /// Copies `other` into `self`, reusing `self`'s allocations.
    pub(crate) fn copy_from(&mut self, other: &Frame) {
        self.width = other.width;
        self.height = other.height;
        self.y.clear();
        self.y.extend_from_slice(&other.y);
        self.u.clear();
        self.u.extend_from_slice(&other.u);
        self.v.clear();
        self.v.extend_from_slice(&other.v);
    }

    /// Peak signal-to-noise ratio (dB) over all three planes against a frame of
    /// the same size; `f64::INFINITY` for identical frames, `None` when sizes differ.
    pub fn psnr(&self, other: &Frame) -> Option<f64> {
        if (self.width, self.height) != (other.width, other.height) {
            return None;
        }
        let (mut sq, mut n) = (0u64, 0u64);
        for (a, b) in [(&self.y, &other.y), (&self.u, &other.u), (&self.v, &other.v)] {
            sq += a.iter().zip(b.iter()).map(|(&x, &y)| (x as i32 - y as i32).pow(2) as u64).sum::<u64>();
            n += a.len() as u64;
        }
        if sq == 0 {
            return Some(f64::INFINITY);
        }
        let mse = sq as f64 / n as f64;
        Some(10.0 * (255.0 * 255.0 / mse).log10())
    }

    /// Mean absolute difference per sample over all three planes (0..=255);
    /// `None` when sizes differ.
    pub fn mean_abs_diff(&self, other: &Frame) -> Option<f64> {
        if (self.width, self.height) != (other.width, other.height) {
            return None;
        }
        let (mut sum, mut n) = (0u64, 0u64);
        for (a, b) in [(&self.y, &other.y), (&self.u, &other.u), (&self.v, &other.v)] {
            sum += a.iter().zip(b.iter()).map(|(&x, &y)| x.abs_diff(y) as u64).sum::<u64>();
            n += a.len() as u64;
        }
        Some(sum as f64 / n as f64)
    }
}

pub(crate) fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// Scales `src` to exactly `width` x `height` in "cover" mode: the source is
/// centre-cropped to the target aspect ratio, then resampled bilinearly (the
/// same framing as the Dream page's webcam canvas).
///
/// Allocates a new frame and sampling tables; for a stream of frames keep a
/// [`Scaler`] instead.
pub fn scale_cover(src: &Frame, width: u32, height: u32) -> Frame {
    let mut out = Frame::new(width.max(1), height.max(1));
    Scaler::default().scale_into(src, &mut out);
    out
}

/// Reusable cover-mode scaler: caches its sampling tables between frames of
/// the same source and target size, and writes into a caller-owned frame.
#[derive(Debug, Default)]
pub struct Scaler {
    key: Option<(u32, u32, u32, u32)>,
    luma: PlaneMap,
    chroma: PlaneMap,
}

#[derive(Debug, Default)]
struct PlaneMap {
    x0: Vec<u32>,
    x1: Vec<u32>,
    fx: Vec<u32>,
    y0: Vec<u32>,
    y1: Vec<u32>,
    fy: Vec<u32>,
}

/// Sampling positions for one axis: destination sample i reads source samples
/// `p0[i]`, `p1[i]` with weight `f[i]/256` on `p1`.
fn axis(
    src_len: usize,
    crop_start: f64,
    crop_len: f64,
    dst_len: usize,
    p0: &mut Vec<u32>,
    p1: &mut Vec<u32>,
    f: &mut Vec<u32>,
) {
    p0.clear();
    p1.clear();
    f.clear();
    let last = src_len.saturating_sub(1) as f64;
    for i in 0..dst_len {
        let pos = (crop_start + (i as f64 + 0.5) * crop_len / dst_len as f64 - 0.5).clamp(0.0, last);
        let base = pos.floor();
        p0.push(base as u32);
        p1.push((base as u32 + 1).min(last as u32));
        f.push(((pos - base) * 256.0).round().min(256.0) as u32);
    }
}

impl PlaneMap {
    fn build(&mut self, sw: usize, sh: usize, crop: (f64, f64, f64, f64), dw: usize, dh: usize) {
        let (cx, cy, cw, ch) = crop;
        axis(sw, cx, cw, dw, &mut self.x0, &mut self.x1, &mut self.fx);
        axis(sh, cy, ch, dh, &mut self.y0, &mut self.y1, &mut self.fy);
    }

    fn apply(&self, src: &[u8], sw: usize, dst: &mut [u8], dw: usize) {
        for (row, out) in dst.chunks_exact_mut(dw).enumerate() {
            let top = &src[self.y0[row] as usize * sw..][..sw];
            let bottom = &src[self.y1[row] as usize * sw..][..sw];
            let fy = self.fy[row];
            for (i, o) in out.iter_mut().enumerate() {
                let (a, b, fx) = (self.x0[i] as usize, self.x1[i] as usize, self.fx[i]);
                let t = top[a] as u32 * (256 - fx) + top[b] as u32 * fx;
                let bt = bottom[a] as u32 * (256 - fx) + bottom[b] as u32 * fx;
                *o = ((t * (256 - fy) + bt * fy + 32768) >> 16) as u8;
            }
        }
    }
}

impl Scaler {
    /// Scales `src` into `dst` (whose `width` x `height` is the target; its
    /// planes are resized if needed). Same-size input is copied.
    pub fn scale_into(&mut self, src: &Frame, dst: &mut Frame) {
        let (dw, dh) = (dst.width.max(1), dst.height.max(1));
        dst.reshape(dw, dh);
        if src.validate().is_err() {
            // Nothing sensible to sample: leave a black frame.
            dst.y.fill(16);
            dst.u.fill(128);
            dst.v.fill(128);
            return;
        }
        if (src.width, src.height) == (dw, dh) {
            dst.copy_from(src);
            return;
        }
        let key = (src.width, src.height, dw, dh);
        if self.key != Some(key) {
            let (sw, sh) = (src.width as f64, src.height as f64);
            let (tw, th) = (dw as f64, dh as f64);
            // Centre crop of the source with the target's aspect ratio.
            let (cw, ch) = if sw * th > sh * tw { (sh * tw / th, sh) } else { (sw, sw * th / tw) };
            let (cx, cy) = ((sw - cw) / 2.0, (sh - ch) / 2.0);
            self.luma.build(src.width as usize, src.height as usize, (cx, cy, cw, ch), dw as usize, dh as usize);
            self.chroma.build(
                src.chroma_width(),
                src.chroma_height(),
                (cx / 2.0, cy / 2.0, cw / 2.0, ch / 2.0),
                dst.chroma_width(),
                dst.chroma_height(),
            );
            self.key = Some(key);
        }
        let (scw, dcw) = (src.chroma_width(), dst.chroma_width());
        self.luma.apply(&src.y, src.width as usize, &mut dst.y, dw as usize);
        self.chroma.apply(&src.u, scw, &mut dst.u, dcw);
        self.chroma.apply(&src.v, scw, &mut dst.v, dcw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_planes_checks_lengths() {
        assert!(Frame::from_planes(4, 2, vec![0; 8], vec![0; 2], vec![0; 2]).is_ok());
        assert!(Frame::from_planes(3, 3, vec![0; 9], vec![0; 4], vec![0; 4]).is_ok());
        let err = Frame::from_planes(4, 2, vec![0; 8], vec![0; 1], vec![0; 2]).unwrap_err();
        assert!(err.to_string().contains("4x2"), "{err}");
        assert!(Frame::from_planes(0, 2, vec![], vec![], vec![]).is_err());
    }

    #[test]
    fn cover_crops_the_centre_of_a_wide_source() {
        // 8x4 source: left quarter dark, middle bright, right quarter dark.
        let mut src = Frame::new(8, 4);
        for row in 0..4 {
            for x in 0..8 {
                src.y[row * 8 + x] = if (2..6).contains(&x) { 200 } else { 20 };
            }
        }
        let out = scale_cover(&src, 4, 4);
        assert_eq!((out.width, out.height, out.y.len(), out.u.len()), (4, 4, 16, 4));
        // The 4x4 centre crop is all bright.
        assert!(out.y.iter().all(|&p| p == 200), "{:?}", out.y);
    }

    #[test]
    fn upscale_keeps_gradients_monotonic_and_identity_copies() {
        let mut src = Frame::new(4, 4);
        for (i, p) in src.y.iter_mut().enumerate() {
            *p = ((i % 4) * 60) as u8;
        }
        let out = scale_cover(&src, 8, 8);
        let row = &out.y[8 * 3..8 * 4];
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        assert_eq!((row[0], row[7]), (0, 180));
        assert_eq!(scale_cover(&src, 4, 4), src);
    }

    #[test]
    fn psnr_and_mad() {
        let a = Frame::filled(4, 4, 100, 128, 128);
        let b = Frame::filled(4, 4, 110, 128, 128);
        assert_eq!(a.psnr(&a), Some(f64::INFINITY));
        assert!((a.mean_abs_diff(&b).unwrap() - 10.0 * 16.0 / 24.0).abs() < 1e-9);
        assert!(a.psnr(&Frame::new(2, 2)).is_none());
    }
}
