//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `dreamgate-media`.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Frame dimensions that H.264 / I420 cannot carry (zero, odd, or too large).
    #[error("invalid frame size {width}x{height}: {reason}")]
    InvalidSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A frame whose planes do not match its declared size.
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// The H.264 encoder failed.
    #[error("H.264 encode failed: {0}")]
    Encode(String),
    /// The H.264 decoder rejected the bitstream (corrupt or missing reference).
    #[error("H.264 decode failed: {0}")]
    Decode(String),
    /// A Y4M stream that this reader cannot handle.
    #[error("Y4M: {0}")]
    Y4m(String),
    /// PNG encoding failed.
    #[error("PNG: {0}")]
    Png(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
