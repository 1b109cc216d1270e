//! Writing frames as PNG.

use std::path::Path;

use crate::color::yuv_to_rgb;
use crate::{Frame, MediaError};

/// Converts an I420 frame (BT.601 limited range) to packed 8-bit RGB.
pub fn frame_to_rgb(frame: &Frame) -> Result<Vec<u8>, MediaError> {
    frame.validate()?;
    let (w, h, cw) = (frame.width as usize, frame.height as usize, frame.chroma_width());
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let c = (y / 2) * cw + x / 2;
            let (r, g, b) = yuv_to_rgb(frame.y[y * w + x], frame.u[c], frame.v[c]);
            rgb.extend_from_slice(&[r, g, b]);
        }
    }
    Ok(rgb)
}

/// Writes `frame` as an 8-bit RGB PNG file.
pub fn write_png(frame: &Frame, path: impl AsRef<Path>) -> Result<(), MediaError> {
    let path = path.as_ref();
    let rgb = frame_to_rgb(frame)?;
    let io = |source| MediaError::Io { path: path.to_owned(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), frame.width, frame.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| MediaError::Png(e.to_string()))?;
    writer.write_image_data(&rgb).map_err(|e| MediaError::Png(e.to_string()))?;
    writer.finish().map_err(|e| MediaError::Png(e.to_string()))?;
    Ok(())
}
