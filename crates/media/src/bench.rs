//! A repeatable measurement of the media path, shared by
//! `cargo bench -p dreamgate-media` and `dreamgate bench`.
//!
//! The input is the [`TestPattern`] encoded beforehand (not timed); each
//! access unit is then pushed through a [`Pipeline`] as fast as possible and
//! every frame's decode, transform and encode time is recorded.

use std::fmt;
use std::time::{Duration, Instant};

use dreamgate_model::StreamParams;

use crate::pipeline::percentile;
use crate::{FrameProcessor, FrameTiming, H264Encoder, MediaError, Pipeline, TestPattern};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Input picture size (scaled to the output size when different).
    pub input: (u32, u32),
    /// Output (stream) size.
    pub output: (u32, u32),
    /// Frames to push.
    pub frames: u64,
    /// Nominal frame rate of both encoders.
    pub fps: u32,
    /// Parameters given to the processor before the run.
    pub params: StreamParams,
}

impl BenchConfig {
    /// 512x512 in and out, 300 frames at 30 fps, the given params.
    pub fn square_512(params: StreamParams) -> BenchConfig {
        BenchConfig { input: (512, 512), output: (512, 512), frames: 300, fps: 30, params }
    }
}

/// Figures from one run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// A label for the printout.
    pub label: String,
    /// The configuration measured.
    pub config: BenchConfig,
    /// Per-frame timings, in order.
    pub timings: Vec<FrameTiming>,
    /// Wall-clock time of the whole timed loop.
    pub wall: Duration,
    /// Output bytes produced.
    pub output_bytes: u64,
}

impl BenchReport {
    /// Nearest-rank percentile of a per-frame component.
    pub fn percentile(&self, part: fn(&FrameTiming) -> Duration, q: f64) -> Duration {
        percentile(self.timings.iter().map(part).collect(), q)
    }

    /// Frames per second sustained over the timed loop.
    pub fn fps(&self) -> f64 {
        self.timings.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Output bitrate at the nominal frame rate, in kbit/s.
    pub fn kbps(&self) -> f64 {
        let secs = self.timings.len() as f64 / self.config.fps.max(1) as f64;
        self.output_bytes as f64 * 8.0 / 1000.0 / secs.max(1e-9)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "{}: {}x{} -> {}x{}, {} frames",
            self.label,
            c.input.0,
            c.input.1,
            c.output.0,
            c.output.1,
            self.timings.len()
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, part: fn(&FrameTiming) -> Duration| {
            writeln!(
                f,
                "  {name:<10} p50 {:>6.2} ms   p95 {:>6.2} ms   max {:>6.2} ms",
                ms(self.percentile(part, 0.5)),
                ms(self.percentile(part, 0.95)),
                ms(self.percentile(part, 1.0))
            )
        };
        row(f, "decode", |t| t.decode)?;
        row(f, "transform", |t| t.transform)?;
        row(f, "encode", |t| t.encode)?;
        row(f, "total", FrameTiming::total)?;
        write!(f, "  sustained {:.1} fps (one core), output {:.0} kbit/s at {} fps", self.fps(), self.kbps(), c.fps)
    }
}

/// Runs one measurement with the given processor.
pub fn run(label: &str, config: BenchConfig, processor: Box<dyn FrameProcessor>) -> Result<BenchReport, MediaError> {
    let (iw, ih) = config.input;
    let pattern = TestPattern::new(iw, ih);
    let mut source = H264Encoder::new(iw, ih, config.fps)?;
    let units = (0..config.frames)
        .map(|i| source.encode(&pattern.frame(i), false).map(|e| e.data))
        .collect::<Result<Vec<_>, _>>()?;
    let (ow, oh) = config.output;
    let mut pipeline = Pipeline::new(ow, oh, config.fps, processor)?;
    pipeline.set_params(&config.params);
    let mut timings = Vec::with_capacity(units.len());
    let mut output_bytes = 0u64;
    let start = Instant::now();
    for unit in &units {
        if let Some(out) = pipeline.push(unit)? {
            output_bytes += out.data.len() as u64;
            if let Some(t) = pipeline.last_timing() {
                timings.push(t);
            }
        }
    }
    let wall = start.elapsed();
    Ok(BenchReport { label: label.to_owned(), config, timings, wall, output_bytes })
}
