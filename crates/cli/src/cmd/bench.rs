//! `dreamgate bench`: measure the engine's media path (H.264 decode, the
//! per-frame transform, H.264 encode) on the built-in test pattern and print
//! per-frame p50/p95 and sustained fps.
//!
//! ```text
//! dreamgate bench [--frames 300] [--size 512x512] [--input 640x480]
//!                 [--processor stylizer|passthrough] [--params params.json] [--similar-filter]
//! ```

use std::process::ExitCode;

use anyhow::Context as _;
use dreamgate_media::bench::{run as run_bench, BenchConfig};
use dreamgate_media::{FrameProcessor, Passthrough, Stylizer};

/// Which [`FrameProcessor`] to measure.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProcessorKind {
    /// The built-in stylisation transform (what the local engine runs).
    Stylizer,
    /// No transform: decode + encode only.
    Passthrough,
}

/// Arguments of `dreamgate bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Frames to push through the pipeline.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    frames: u64,
    /// Output (stream) size, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "512x512", value_parser = parse_size)]
    size: (u32, u32),
    /// Input size, WIDTHxHEIGHT (default: the output size); other sizes are cover-scaled.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    input: Option<(u32, u32)>,
    /// Nominal frame rate for the encoders.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// The transform to measure.
    #[arg(long, value_enum, default_value_t = ProcessorKind::Stylizer)]
    processor: ProcessorKind,
    /// StreamDiffusion params as a JSON file (default: the Dream page's defaults).
    #[arg(long, value_name = "FILE")]
    params: Option<std::path::PathBuf>,
    /// Keep the similar-image filter as the params say (off by default so that
    /// every frame is transformed and encoded).
    #[arg(long)]
    similar_filter: bool,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(|| format!("expected WIDTHxHEIGHT, got {text:?}"))?;
    let parse = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("bad number {v:?} in {text:?}"));
    Ok((parse(w)?, parse(h)?))
}

/// Runs `dreamgate bench`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut params = match &args.params {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<serde_json::Value>(&text).with_context(|| format!("{} is not JSON", path.display()))?
        }
        None => serde_json::to_value(dreamgate_model::default_params())?,
    };
    if !args.similar_filter {
        if let Some(obj) = params.as_object_mut() {
            obj.insert("enable_similar_image_filter".into(), false.into());
        }
    }
    let config = BenchConfig {
        input: args.input.unwrap_or(args.size),
        output: args.size,
        frames: args.frames,
        fps: args.fps,
        params,
    };
    let (label, processor): (&str, Box<dyn FrameProcessor>) = match args.processor {
        ProcessorKind::Stylizer => ("stylizer", Box::new(Stylizer::new())),
        ProcessorKind::Passthrough => ("passthrough", Box::new(Passthrough)),
    };
    let report = tokio::task::spawn_blocking(move || run_bench(label, config, processor))
        .await
        .context("benchmark thread failed")??;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
