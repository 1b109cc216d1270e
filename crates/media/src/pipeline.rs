//! Decode -> transform -> encode for one stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::{Encoded, EncoderSettings, Frame, FrameProcessor, H264Decoder, H264Encoder, MediaError, Processed, Scaler};

/// How many recent frames [`Pipeline::stats`] summarises.
pub const TIMING_WINDOW: usize = 1024;

/// Time spent on one output frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTiming {
    /// H.264 decode plus scaling to the stream size.
    pub decode: Duration,
    /// The [`FrameProcessor`].
    pub transform: Duration,
    /// H.264 encode.
    pub encode: Duration,
    /// The processor skipped the frame (previous output re-encoded).
    pub skipped: bool,
}

impl FrameTiming {
    /// decode + transform + encode.
    pub fn total(&self) -> Duration {
        self.decode + self.transform + self.encode
    }
}

/// Percentiles over the recent timing window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimingSummary {
    /// Frames in the window.
    pub samples: usize,
    /// Median decode time.
    pub decode_p50: Duration,
    /// Median transform time.
    pub transform_p50: Duration,
    /// Median encode time.
    pub encode_p50: Duration,
    /// Median total per-frame time.
    pub total_p50: Duration,
    /// 95th percentile total per-frame time.
    pub total_p95: Duration,
    /// Worst total per-frame time.
    pub total_max: Duration,
}

impl TimingSummary {
    /// Summarises a set of per-frame timings.
    pub fn from_timings<'a>(timings: impl IntoIterator<Item = &'a FrameTiming>) -> TimingSummary {
        let all: Vec<FrameTiming> = timings.into_iter().copied().collect();
        let pick = |f: fn(&FrameTiming) -> Duration, q: f64| percentile(all.iter().map(f).collect(), q);
        TimingSummary {
            samples: all.len(),
            decode_p50: pick(|t| t.decode, 0.5),
            transform_p50: pick(|t| t.transform, 0.5),
            encode_p50: pick(|t| t.encode, 0.5),
            total_p50: pick(FrameTiming::total, 0.5),
            total_p95: pick(FrameTiming::total, 0.95),
            total_max: pick(FrameTiming::total, 1.0),
        }
    }
}

/// Nearest-rank percentile (`q` in 0..=1); zero for no samples.
pub fn percentile(mut values: Vec<Duration>, q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((q.clamp(0.0, 1.0) * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Counters and recent timings of a [`Pipeline`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Access units pushed.
    pub units_in: u64,
    /// Pictures the decoder produced.
    pub frames_decoded: u64,
    /// Access units the decoder rejected.
    pub decode_errors: u64,
    /// Access units produced (including re-encoded skips).
    pub frames_out: u64,
    /// Frames the similar-image filter skipped.
    pub frames_skipped: u64,
    /// Output keyframes.
    pub keyframes_out: u64,
    /// The last frame's timing.
    pub last: Option<FrameTiming>,
    /// Percentiles over the last [`TIMING_WINDOW`] frames.
    pub recent: TimingSummary,
}

/// One stream's media path: H.264 in -> [`FrameProcessor`] -> H.264 out, at
/// a fixed output size (input of any size is cover-scaled to it).
///
/// Output is one Annex-B access unit per decoded input picture; when the
/// processor skips a frame the previous output is encoded again, so viewers
/// keep a steady frame rate.
pub struct Pipeline {
    width: u32,
    height: u32,
    decoder: H264Decoder,
    encoder: H264Encoder,
    processor: Box<dyn FrameProcessor>,
    scaler: Scaler,
    decoded: Frame,
    scaled: Frame,
    last_output: Option<Frame>,
    keyframe_requested: bool,
    stats: PipelineStats,
    timings: VecDeque<FrameTiming>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline producing `width` x `height` at `fps` with default encoder
    /// settings. Fails on sizes H.264 cannot carry (odd, tiny, huge).
    pub fn new(width: u32, height: u32, fps: u32, processor: Box<dyn FrameProcessor>) -> Result<Pipeline, MediaError> {
        Pipeline::with_settings(EncoderSettings::new(width, height, fps), processor)
    }

    /// A pipeline with explicit output encoder settings.
    pub fn with_settings(
        settings: EncoderSettings,
        processor: Box<dyn FrameProcessor>,
    ) -> Result<Pipeline, MediaError> {
        let encoder = H264Encoder::with_settings(settings)?;
        Ok(Pipeline {
            width: settings.width,
            height: settings.height,
            decoder: H264Decoder::new()?,
            encoder,
            processor,
            scaler: Scaler::default(),
            decoded: Frame::new(2, 2),
            scaled: Frame::new(settings.width, settings.height),
            last_output: None,
            keyframe_requested: false,
            stats: PipelineStats::default(),
            timings: VecDeque::with_capacity(TIMING_WINDOW),
        })
    }

    /// Output size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Makes the next output an IDR (e.g. a viewer sent PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Passes live parameters to the processor.
    pub fn set_params(&mut self, params: &dreamgate_model::StreamParams) {
        self.processor.set_params(params);
    }

    /// Decodes one input access unit and, if it produced a picture, returns
    /// the transformed, re-encoded output. A decode error is returned (and
    /// counted); the caller should ask the publisher for a keyframe.
    pub fn push(&mut self, annexb: &[u8]) -> Result<Option<Encoded>, MediaError> {
        self.stats.units_in += 1;
        let t0 = Instant::now();
        match self.decoder.decode_into(annexb, &mut self.decoded) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                self.stats.decode_errors += 1;
                return Err(e);
            }
        }
        self.stats.frames_decoded += 1;
        let input = if (self.decoded.width, self.decoded.height) == (self.width, self.height) {
            &self.decoded
        } else {
            self.scaled.reshape(self.width, self.height);
            self.scaler.scale_into(&self.decoded, &mut self.scaled);
            &self.scaled
        };
        let t1 = Instant::now();
        let processed = self.processor.process(input);
        let t2 = Instant::now();
        let (fresh, skipped) = match processed {
            Processed::Frame(mut frame) => {
                if (frame.width, frame.height) != (self.width, self.height) || frame.validate().is_err() {
                    // A processor returned another size: fit it rather than fail.
                    let mut fitted = Frame::new(self.width, self.height);
                    self.scaler.scale_into(&frame, &mut fitted);
                    frame = fitted;
                }
                (Some(frame), false)
            }
            Processed::Skipped => (None, true),
        };
        if skipped {
            self.stats.frames_skipped += 1;
        }
        let force = self.keyframe_requested;
        let encoded = match (&fresh, &self.last_output) {
            (Some(frame), _) | (None, Some(frame)) => self.encoder.encode(frame, force)?,
            (None, None) => return Ok(None),
        };
        let t3 = Instant::now();
        self.keyframe_requested = false;
        if let Some(frame) = fresh {
            if let Some(old) = self.last_output.replace(frame) {
                self.processor.recycle(old);
            }
        }
        self.stats.frames_out += 1;
        if encoded.keyframe {
            self.stats.keyframes_out += 1;
        }
        let timing = FrameTiming { decode: t1 - t0, transform: t2 - t1, encode: t3 - t2, skipped };
        self.stats.last = Some(timing);
        if self.timings.len() == TIMING_WINDOW {
            self.timings.pop_front();
        }
        self.timings.push_back(timing);
        Ok(Some(encoded))
    }

    /// Decodes one input access unit and, if it produced a picture, returns the warm-up
    /// frame of it ([`crate::render_warmup`] at `progress`), encoded: what the output shows
    /// while the pipeline loads. The processor is not run; decode errors as for [`push`](Self::push).
    pub fn push_warmup(&mut self, annexb: &[u8], progress: f64) -> Result<Option<Encoded>, MediaError> {
        self.stats.units_in += 1;
        match self.decoder.decode_into(annexb, &mut self.decoded) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                self.stats.decode_errors += 1;
                return Err(e);
            }
        }
        self.stats.frames_decoded += 1;
        let frame = if (self.decoded.width, self.decoded.height) == (self.width, self.height) {
            crate::render_warmup(&self.decoded, progress)
        } else {
            self.scaled.reshape(self.width, self.height);
            self.scaler.scale_into(&self.decoded, &mut self.scaled);
            crate::render_warmup(&self.scaled, progress)
        };
        let encoded = self.encoder.encode(&frame, self.keyframe_requested)?;
        self.keyframe_requested = false;
        self.stats.frames_out += 1;
        if encoded.keyframe {
            self.stats.keyframes_out += 1;
        }
        Ok(Some(encoded))
    }

    /// The most recent output picture (before encoding), if any.
    pub fn last_output(&self) -> Option<&Frame> {
        self.last_output.as_ref()
    }

    /// Per-frame timings of the last [`TIMING_WINDOW`] outputs, oldest first.
    pub fn timings(&self) -> impl Iterator<Item = &FrameTiming> {
        self.timings.iter()
    }

    /// The last output frame's timing (cheap; [`stats`](Self::stats) sorts the window).
    pub fn last_timing(&self) -> Option<FrameTiming> {
        self.stats.last
    }

    /// Counters plus a summary of recent timings.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats { recent: TimingSummary::from_timings(&self.timings), ..self.stats.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let ms = |v: &[u64]| v.iter().map(|&x| Duration::from_millis(x)).collect::<Vec<_>>();
        assert_eq!(percentile(ms(&[]), 0.5), Duration::ZERO);
        assert_eq!(percentile(ms(&[5, 1, 3, 2, 4]), 0.5), Duration::from_millis(3));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(ms(&hundred), 0.95), Duration::from_millis(95));
        assert_eq!(percentile(ms(&hundred), 1.0), Duration::from_millis(100));
    }
}
