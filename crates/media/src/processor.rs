//! The per-frame transform interface.

use crate::Frame;

/// What a [`FrameProcessor`] made of one input frame.
#[derive(Debug)]
pub enum Processed {
    /// A new output picture (same size as the input).
    Frame(Frame),
    /// The similar-image filter dropped this input: repeat the previous output.
    Skipped,
}

/// A per-frame video transform driven by live StreamDiffusion parameters.
///
/// [`Stylizer`](crate::Stylizer) is the built-in implementation; a GPU
/// diffusion backend implements the same trait and plugs into
/// [`Pipeline`](crate::Pipeline) without touching the WebRTC code.
pub trait FrameProcessor: Send {
    /// Applies a StreamDiffusion `params` object (as sent to
    /// `POST`/`PATCH /v1/streams`). Must accept any JSON without panicking.
    fn set_params(&mut self, params: &serde_json::Value);

    /// Transforms one input frame.
    fn process(&mut self, input: &Frame) -> Processed;

    /// Hands back an output frame the caller no longer needs so that its
    /// buffers can be reused for a later output. The default drops it.
    fn recycle(&mut self, frame: Frame) {
        drop(frame);
    }
}

/// A processor that returns its input unchanged (a baseline for benchmarks
/// and a way to test transport without a transform).
#[derive(Debug, Default)]
pub struct Passthrough;

impl FrameProcessor for Passthrough {
    fn set_params(&mut self, _params: &serde_json::Value) {}

    fn process(&mut self, input: &Frame) -> Processed {
        Processed::Frame(input.clone())
    }
}
