//! `dreamgate bench`: measure the local engine end to end, or its codec path alone.
//!
//! Default mode, in two runs of `--streams` streams each publishing the moving test pattern
//! over real WebRTC (WHIP, the native client) for `--seconds`, every output pulled over WHEP
//! by a viewer:
//! 1. the engine as a child process (`dreamgate engine --listen 127.0.0.1:0`), so that its
//!    figures are its own: resident memory per stream (the child's VmRSS before and after
//!    starting the streams) and the CPU it used, reported apart from the bench's own CPU
//!    (publishers and viewers); plus, per stream, the time from the WHIP POST to the first
//!    output frame received over WHEP and the sustained output frame rate at the viewer;
//! 2. the engine in-process, for what only its pipeline knows: per-frame decode + transform
//!    + encode time (p50/p95), when it produced its first output frame, its frame counters.
//!
//! `--codec-only`: push the pre-encoded test pattern through the media pipeline as fast as
//! possible (no network, no pacing), reusing [`dreamgate_media::bench`].
//!
//! ```text
//! dreamgate bench [--seconds 10] [--streams 1] [--size 512x512]
//! dreamgate bench --codec-only [--frames 300] [--size 512x512] [--input 640x480]
//!                 [--processor stylizer|passthrough] [--params params.json] [--similar-filter]
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_engine::media::{MediaStats, WebRtcMedia};
use dreamgate_engine::{start, EngineConfig, RtcConfig};
use dreamgate_media::bench::{run as run_bench, BenchConfig};
use dreamgate_media::{FrameProcessor, H264Decoder, Passthrough, Stylizer};
use dreamgate_rtc::{Peer, Viewer};
use dreamgate_whip::{ClientOptions, EncodingSource, WhipClient};
use reqwest::StatusCode;

/// Frame rate the publishers send at (the Dream page captures at 30 fps).
const PUBLISH_FPS: u32 = 30;
/// How often a WHEP POST answered 404 (no output yet) is retried.
const WHEP_RETRY: Duration = Duration::from_millis(10);
/// Give up on a stream that shows no output after this long.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the child engine gets to stop after SIGINT before it is killed.
const ENGINE_STOP_GRACE: Duration = Duration::from_secs(5);
/// The Linux `USER_HZ` almost everywhere; used only when `getconf CLK_TCK` cannot tell.
const DEFAULT_CLK_TCK: u64 = 100;

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
    /// Measure only the codec path (decode, transform, encode) on pre-encoded frames.
    #[arg(long)]
    codec_only: bool,
    /// Engine mode: how long to publish, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Engine mode: streams published at once (memory is reported per stream).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    streams: u32,
    /// Output (stream) size, WIDTHxHEIGHT (engine mode: 384..1024, multiples of 64).
    #[arg(long, value_name = "WxH", default_value = "512x512", value_parser = parse_size)]
    size: (u32, u32),
    /// Codec-only: frames to push through the pipeline.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    frames: u64,
    /// Codec-only: input size, WIDTHxHEIGHT (default: the output size); other sizes are cover-scaled.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    input: Option<(u32, u32)>,
    /// Codec-only: nominal frame rate for the encoders.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// Codec-only: the transform to measure.
    #[arg(long, value_enum, default_value_t = ProcessorKind::Stylizer)]
    processor: ProcessorKind,
    /// Codec-only: StreamDiffusion params as a JSON file (default: the Dream page's defaults).
    #[arg(long, value_name = "FILE")]
    params: Option<std::path::PathBuf>,
    /// Codec-only: keep the similar-image filter as the params say (off by default so that
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
    if args.codec_only {
        codec_only(args).await
    } else {
        engine_bench(args).await
    }
}

async fn codec_only(args: Args) -> anyhow::Result<ExitCode> {
    let mut params = match &args.params {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let json = serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            // a params object, or a body wrapping one (`{params}` / `{pipeline_params}`)
            let inner = ["params", "pipeline_params"].iter().find_map(|k| json.get(k).filter(|v| v.is_object()));
            dreamgate_model::StreamParams::from_json(inner.unwrap_or(&json)).map_err(|errors| {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{}: {}", path.display(), list.join("; "))
            })?
        }
        None => dreamgate_model::default_params(),
    };
    if !args.similar_filter {
        params.enable_similar_image_filter = Some(false);
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

/// What one published stream measured.
struct StreamRun {
    id: String,
    /// WHIP POST -> the first output frame received (and decoded) over WHEP.
    first_frame: Duration,
    /// Frames the viewer received after its first one, and over how long.
    received: u64,
    window: Duration,
    /// The engine's own figures, when it runs in-process.
    engine: Option<EngineFigures>,
}

/// What only an in-process engine can tell.
struct EngineFigures {
    /// WHIP POST -> the engine produced its first output frame.
    first_output: Duration,
    media: MediaStats,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `VmRSS` of process `pid` (`"self"` for this one), in KiB.
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The clock ticks per second `/proc/<pid>/stat` counts CPU time in, from `getconf CLK_TCK`;
/// `None` when that cannot be read.
fn clock_ticks() -> Option<u64> {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().ok()?;
    let hz = String::from_utf8(out.stdout).ok()?.trim().parse::<u64>().ok()?;
    (out.status.success() && hz > 0).then_some(hz)
}

/// User + system CPU time of process `pid` (`"self"` for this one), all threads (Linux
/// `/proc/<pid>/stat`, `hz` ticks per second).
fn cpu_time(pid: &str, hz: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// `dreamgate engine --listen 127.0.0.1:0` as a child process; [`ChildEngine::stop`] ends it
/// like Ctrl-C would, a drop kills it.
struct ChildEngine {
    child: tokio::process::Child,
    pid: String,
    base_url: String,
}

impl ChildEngine {
    /// Starts the child and reads the base URL it prints on its first stdout line.
    async fn start() -> anyhow::Result<ChildEngine> {
        use tokio::io::AsyncBufReadExt as _;
        let exe = std::env::current_exe().context("cannot find the dreamgate executable")?;
        let mut child = tokio::process::Command::new(exe)
            .args(["engine", "--listen", "127.0.0.1:0"])
            .env_remove("DAYDREAM_API_KEY")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the engine process")?;
        let pid = child.id().context("the engine process ended at once")?.to_string();
        let stdout = child.stdout.take().context("no stdout from the engine process")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the engine process printed no base URL within 20 s")??
            .context("the engine process ended before printing its base URL")?;
        let base_url = line.trim().to_owned();
        if !base_url.starts_with("http://") {
            bail!("unexpected first line from the engine process: {base_url:?}");
        }
        Ok(ChildEngine { child, pid, base_url })
    }

    /// SIGINT (the engine shuts down gracefully on Ctrl-C), then waits up to
    /// [`ENGINE_STOP_GRACE`]; kills it only if it is still running then. Says so when the
    /// engine did not end cleanly.
    async fn stop(mut self) {
        // no libc dependency for one signal: kill(1), by the pid of the child we started
        let interrupted = std::process::Command::new("kill")
            .args(["-INT", &self.pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let waited =
            if interrupted { tokio::time::timeout(ENGINE_STOP_GRACE, self.child.wait()).await.ok() } else { None };
        match waited {
            Some(Ok(status)) if status.success() => {}
            Some(Ok(status)) => println!("  engine process ended after SIGINT with {status}"),
            Some(Err(e)) => println!("  engine process: cannot wait for it: {e}"),
            None => {
                let why = if interrupted {
                    format!("still running {} s after SIGINT", ENGINE_STOP_GRACE.as_secs())
                } else {
                    "SIGINT could not be sent".to_owned()
                };
                println!("  engine process {why}: killed");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// Streams published by one run, with the publishers and viewers still up.
struct Published {
    results: Vec<anyhow::Result<(StreamRun, WhipClient, Viewer)>>,
}

impl Published {
    /// Prints each stream and ends its publisher and viewer; whether any stream failed.
    async fn report(self) -> bool {
        let mut failed = false;
        for (n, result) in self.results.into_iter().enumerate() {
            let (run, publisher, viewer) = match result {
                Ok(v) => v,
                Err(e) => {
                    println!("  stream {}: FAILED: {e:#}", n + 1);
                    failed = true;
                    continue;
                }
            };
            print_run(n + 1, &run);
            viewer.close();
            publisher.shutdown().await;
        }
        failed
    }
}

/// Creates `args.streams` streams on the engine at `base_url` and runs
/// [`publish_and_watch`] on each at once.
async fn publish_all(args: &Args, base_url: &str, media: Option<&Arc<WebRtcMedia>>) -> anyhow::Result<Published> {
    let (width, height) = args.size;
    let client = DaydreamClient::new(base_url.parse()?, ApiKey::new("bench"), Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut runs = Vec::new();
    for _ in 0..args.streams {
        let mut payload = serde_json::to_value(dreamgate_model::default_create_payload())?;
        payload["params"]["width"] = width.into();
        payload["params"]["height"] = height.into();
        let stream = client.create_stream(&payload).await.map_err(|e| anyhow::anyhow!("create stream: {e}"))?;
        let id = stream["id"].as_str().context("stream without id")?.to_owned();
        let whip = stream["whip_url"].as_str().context("stream without whip_url")?.to_owned();
        let whep = format!("{base_url}/live/video-to-video/{id}/whep");
        runs.push(tokio::spawn(publish_and_watch(
            id,
            whip,
            whep,
            (width, height),
            Duration::from_secs(args.seconds),
            media.cloned(),
        )));
    }
    let mut results = Vec::new();
    for run in runs {
        results.push(run.await.context("stream task failed")?);
    }
    Ok(Published { results })
}

async fn engine_bench(args: Args) -> anyhow::Result<ExitCode> {
    let (width, height) = args.size;
    println!(
        "dreamgate bench: {} stream(s) of {width}x{height}, test pattern at {PUBLISH_FPS} fps for {} s per run ({} build)",
        args.streams,
        args.seconds,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    let child_failed = child_run(&args).await?;
    let in_process_failed = in_process_run(&args).await?;
    Ok(if child_failed || in_process_failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Run 1: the engine as a child process; its memory and CPU, apart from the bench's.
async fn child_run(args: &Args) -> anyhow::Result<bool> {
    let engine = ChildEngine::start().await?;
    println!(
        "run 1: engine as a child process (pid {}, {}): memory and CPU are the engine's alone",
        engine.pid, engine.base_url
    );
    let hz = clock_ticks();
    let tick = hz.unwrap_or(DEFAULT_CLK_TCK);
    let rss_before = rss_kib(&engine.pid);
    let engine_cpu_before = cpu_time(&engine.pid, tick);
    let own_cpu_before = cpu_time("self", tick);
    let wall_start = Instant::now();
    let published = publish_all(args, &engine.base_url, None).await;
    // memory and CPU with every stream still up
    let rss_after = rss_kib(&engine.pid);
    let engine_cpu = cpu_time(&engine.pid, tick).zip(engine_cpu_before).map(|(a, b)| a.saturating_sub(b));
    let own_cpu = cpu_time("self", tick).zip(own_cpu_before).map(|(a, b)| a.saturating_sub(b));
    let wall = wall_start.elapsed();
    let failed = match published {
        Ok(published) => published.report().await,
        Err(e) => {
            engine.stop().await;
            return Err(e);
        }
    };

    match (rss_before, rss_after) {
        (Some(before), Some(after)) => println!(
            "  engine memory: VmRSS {:.1} MiB idle, {:.1} MiB with {} stream(s) up: {:+.1} MiB per stream",
            mib(before),
            mib(after),
            args.streams,
            mib(after.saturating_sub(before)) / f64::from(args.streams),
        ),
        _ => println!("  engine memory: VmRSS not available (no /proc/{}/status)", engine.pid),
    }
    let cores = |cpu: Duration| cpu.as_secs_f64() / wall.as_secs_f64();
    if let Some(cpu) = engine_cpu {
        println!("  engine cpu: {:.2} cores busy on average over {:.1} s", cores(cpu), wall.as_secs_f64());
        match hz {
            Some(hz) => println!("  (cpu from /proc/<pid>/stat at {hz} ticks/s, getconf CLK_TCK)"),
            None => println!(
                "  (cpu from /proc/<pid>/stat ASSUMING {DEFAULT_CLK_TCK} ticks/s: getconf CLK_TCK unavailable)"
            ),
        }
    }
    if let Some(cpu) = own_cpu {
        println!(
            "  bench cpu: {:.2} cores busy on average (its publishers: test pattern encode, and viewers)",
            cores(cpu)
        );
    }
    engine.stop().await;
    Ok(failed)
}

/// Run 2: the engine in-process, for its pipeline's per-frame timings and counters.
async fn in_process_run(args: &Args) -> anyhow::Result<bool> {
    let media = WebRtcMedia::new(RtcConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot bind 127.0.0.1")?;
    let cfg = EngineConfig { media: Some(media.clone()), ..Default::default() };
    let engine = start(listener, cfg).await;
    println!("run 2: engine in-process ({}): per-frame timings from its pipeline", engine.base_url());
    let published = publish_all(args, engine.base_url(), Some(&media)).await;
    let failed = match published {
        Ok(published) => published.report().await,
        Err(e) => {
            engine.shutdown().await;
            return Err(e);
        }
    };
    engine.shutdown().await;
    Ok(failed)
}

fn print_run(n: usize, run: &StreamRun) {
    println!("  stream {n} ({}):", run.id);
    let engine_first = match &run.engine {
        Some(e) => format!(" (engine produced it at {:.0} ms)", ms(e.first_output)),
        None => String::new(),
    };
    println!(
        "    first frame: {:.0} ms from the WHIP POST to the first output frame received over WHEP{engine_first}",
        ms(run.first_frame),
    );
    println!(
        "    output: {:.1} fps sustained at the WHEP viewer ({} frames in {:.1} s)",
        run.received as f64 / run.window.as_secs_f64().max(1e-9),
        run.received,
        run.window.as_secs_f64(),
    );
    let Some(engine) = &run.engine else {
        return;
    };
    let p = &engine.media.pipeline;
    let t = &p.recent;
    println!(
        "    engine per frame (decode+transform+encode, last {} frames): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms \
         [p50 decode {:.2} / transform {:.2} / encode {:.2} ms]",
        t.samples,
        ms(t.total_p50),
        ms(t.total_p95),
        ms(t.total_max),
        ms(t.decode_p50),
        ms(t.transform_p50),
        ms(t.encode_p50)
    );
    println!(
        "    engine frames: {} in, {} out, {} dropped before the transform, {} decode errors",
        engine.media.frames_received, p.frames_out, engine.media.frames_dropped, p.decode_errors
    );
}

/// Publishes the test pattern to `whip`, watches `whep` until `duration` after the first
/// output frame, and returns the figures (publisher and viewer still up, so memory can be read);
/// `media` is the engine's media backend when it runs in-process.
async fn publish_and_watch(
    id: String,
    whip: String,
    whep: String,
    (width, height): (u32, u32),
    duration: Duration,
    media: Option<Arc<WebRtcMedia>>,
) -> anyhow::Result<(StreamRun, WhipClient, Viewer)> {
    let publisher = WhipClient::new(ClientOptions::new(whip.parse()?))?;
    let source = EncodingSource::test_pattern(width, height, PUBLISH_FPS)?;
    // the viewer's offer is ready before publishing, so the clock measures the engine
    let (mut viewer, offer) = Viewer::new(&RtcConfig::default()).await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    let t0 = Instant::now();
    publisher.connect(Box::new(source)).await.map_err(|e| anyhow::anyhow!("WHIP: {e}"))?;
    // WHEP answers 404 until the stream has output: retry like a player would
    let answer = loop {
        let resp = http.post(&whep).header("content-type", "application/sdp").body(offer.clone()).send().await?;
        match resp.status() {
            StatusCode::CREATED => break resp.text().await?,
            StatusCode::NOT_FOUND if t0.elapsed() < FIRST_FRAME_TIMEOUT => tokio::time::sleep(WHEP_RETRY).await,
            status => bail!("WHEP answered {status}: {}", resp.text().await.unwrap_or_default()),
        }
    };
    viewer.set_answer(&answer)?;
    let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, viewer.frames.recv())
        .await
        .ok()
        .flatten()
        .context("no frame over WHEP")?;
    let first_frame = t0.elapsed();
    let picture = H264Decoder::new()?.decode(&first.data)?.context("the first output frame does not decode")?;
    if !first.keyframe || (picture.width, picture.height) != (width, height) {
        bail!("unexpected first frame: keyframe {}, {}x{}", first.keyframe, picture.width, picture.height);
    }

    let window_start = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let mut received = 0u64;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, viewer.frames.recv()).await {
        received += 1;
    }
    let window = window_start.elapsed();
    let engine = match media {
        Some(media) => {
            let media = media.stats(&id).context("the engine has no media for the stream")?;
            let first_output = media.first_output.map(|t| t.saturating_duration_since(t0)).unwrap_or_default();
            Some(EngineFigures { first_output, media })
        }
        None => None,
    };
    Ok((StreamRun { id, first_frame, received, window, engine }, publisher, viewer))
}
