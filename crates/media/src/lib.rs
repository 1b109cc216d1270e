//! Media for Dreamgate's local engine: I420 frames, H.264 encode/decode
//! (OpenH264, baseline profile, no B-frames), a per-frame stylisation
//! transform behind the [`FrameProcessor`] trait, StreamDiffusion's
//! similar-image filter, and small file helpers (test pattern, Y4M, PNG).
//!
//! The transform is **not diffusion**: [`Stylizer`] is a deterministic image
//! stylisation driven by the live StreamDiffusion parameters (prompt ->
//! palette, seed -> halftone pattern, ControlNet scales -> edges and contrast,
//! `delta` -> temporal blending). It lets the whole system run end to end on a
//! laptop; a GPU diffusion backend plugs in behind the same trait.
//!
//! ```no_run
//! use dreamgate_media::{Pipeline, Stylizer, TestPattern, H264Encoder};
//!
//! # fn main() -> Result<(), dreamgate_media::MediaError> {
//! let mut source = H264Encoder::new(512, 512, 30)?;
//! let mut pipeline = Pipeline::new(512, 512, 30, Box::new(Stylizer::new()))?;
//! let params = serde_json::json!({ "prompt": "neon city at night", "seed": 7 });
//! pipeline.set_params(&dreamgate_model::StreamParams::from_json(&params).unwrap());
//! let pattern = TestPattern::new(512, 512);
//! for i in 0..30 {
//!     let input = source.encode(&pattern.frame(i), i == 0)?;
//!     if let Some(output) = pipeline.push(&input.data)? {
//!         // send output.data (an Annex-B access unit) to viewers
//!         let _ = output.keyframe;
//!     }
//! }
//! println!("{:?}", pipeline.stats());
//! # Ok(()) }
//! ```

pub mod bench;
mod color;
mod error;
mod frame;
mod h264;
mod params;
mod pipeline;
mod png_out;
mod processor;
pub mod similar;
mod stylize;
mod testpattern;
mod warmup;
mod y4m;

pub use error::MediaError;
pub use frame::{scale_cover, Frame, Scaler};
pub use h264::{contains_idr, nal_types, Encoded, EncoderSettings, H264Decoder, H264Encoder};
pub use params::{output_size, StyleParams};
pub use pipeline::{percentile, FrameTiming, Pipeline, PipelineStats, TimingSummary, TIMING_WINDOW};
pub use png_out::{frame_to_rgb, write_png};
pub use processor::{FrameProcessor, Passthrough, Processed};
pub use similar::SimilarImageFilter;
pub use stylize::Stylizer;
pub use testpattern::TestPattern;
pub use warmup::{bar_box, render_warmup};
pub use y4m::{write_y4m, Y4mReader};
