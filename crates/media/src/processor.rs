//! The per-frame transform interface.

use dreamgate_model::StreamParams;

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
    /// Applies a stream's StreamDiffusion params: the whole current params (as created,
    /// with every PATCH merged in); a field not given means the model's default. Must
    /// accept any values (out of range too) without panicking.
    fn set_params(&mut self, params: &StreamParams);

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
    fn set_params(&mut self, _params: &StreamParams) {}

    fn process(&mut self, input: &Frame) -> Processed {
        Processed::Frame(input.clone())
    }
}
