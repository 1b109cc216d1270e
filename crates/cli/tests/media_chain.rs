//! The whole media chain with the real binaries, on loopback: an in-process engine (real
//! WebRTC media backend), `dreamgate ingest` publishing the test pattern over WHIP,
//! `dreamgate watch` pulling the transformed output over WHEP into PNG files, and a prompt
//! PATCH that visibly changes that output. Every wait is bounded; the child processes are
//! killed by their handles if the test fails half-way.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_engine::{start, EngineConfig, EngineHandle, WebRtcMedia};
use dreamgate_media::{frame_to_rgb, H264Decoder, H264Encoder, TestPattern};
use dreamgate_rtc::RtcConfig;
use dreamgate_testkit::status::wait_status;
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use tokio::time::timeout;

const KEY: &str = "daydream_live_media_chain_test";
const SIZE: u32 = 512;
const PROMPT: &str = "golden fire sunset red";

fn dreamgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamgate"));
    cmd.env_remove("DAYDREAM_API_KEY").env_remove("DAYDREAM_API_GATEWAY").env("DREAMGATE_LOG", "warn");
    cmd.kill_on_drop(true); // a failing test leaves no process behind
    cmd
}

fn fps(data: &Value, part: &str) -> f64 {
    data[part]["fps"].as_f64().unwrap_or(0.0)
}

/// Runs `dreamgate watch --frames 5` into `dir`; returns the decoded RGB pictures in order.
async fn watch(whep: &str, dir: &Path) -> Vec<Vec<u8>> {
    let out = timeout(
        Duration::from_secs(25),
        dreamgate()
            .args(["watch", "--whep", whep, "--frames", "5", "--timeout", "20", "--out"])
            .arg(dir)
            .stdout(Stdio::null())
            .output(),
    )
    .await
    .expect("dreamgate watch finishes in time")
    .expect("run dreamgate watch");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("wrote 5 frames"), "{err}");
    (1..=5).map(|n| read_png(&dir.join(format!("frame-{n:04}.png")))).collect()
}

/// Decodes an 8-bit RGB PNG of SIZE x SIZE.
fn read_png(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("PNG data decodes");
    assert_eq!((info.width, info.height), (SIZE, SIZE), "{}", path.display());
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    buf.truncate(info.buffer_size());
    buf
}

/// Mean absolute difference of two equally sized RGB buffers (every `step`-th byte).
fn mad(a: &[u8], b: &[u8], step: usize) -> f64 {
    assert_eq!(a.len(), b.len());
    let (sum, n) =
        a.iter().zip(b).step_by(step).fold((0u64, 0u64), |(s, n), (x, y)| (s + u64::from(x.abs_diff(*y)), n + 1));
    sum as f64 / n.max(1) as f64
}

/// L1 distance (0..=2) of two pictures' 4x4x4-bin RGB colour histograms: motion of the
/// same scene barely moves it; a new palette (prompt) does.
fn palette_distance(a: &[u8], b: &[u8]) -> f64 {
    fn hist(rgb: &[u8]) -> [f64; 64] {
        let mut h = [0f64; 64];
        for px in rgb.chunks_exact(3) {
            h[usize::from(px[0] >> 6) << 4 | usize::from(px[1] >> 6) << 2 | usize::from(px[2] >> 6)] += 1.0;
        }
        let n = (rgb.len() / 3).max(1) as f64;
        h.map(|c| c / n)
    }
    hist(a).iter().zip(hist(b)).map(|(p, q)| (p - q).abs()).sum()
}

/// Largest palette distance between consecutive pictures of a batch.
fn max_step(batch: &[Vec<u8>]) -> f64 {
    batch.windows(2).map(|w| palette_distance(&w[0], &w[1])).fold(0.0, f64::max)
}

/// Smallest palette distance between any picture of `a` and any of `b`.
fn min_between(a: &[Vec<u8>], b: &[Vec<u8>]) -> f64 {
    a.iter().flat_map(|x| b.iter().map(move |y| palette_distance(x, y))).fold(f64::MAX, f64::min)
}

/// Mean abs RGB difference the codec alone causes: the largest over `frames` pattern frames
/// sent through an H.264 encoder and decoder, each against its own input.
fn passthrough_score(pattern: &TestPattern, frames: u64) -> f64 {
    let mut encoder = H264Encoder::new(SIZE, SIZE, 30).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut worst: f64 = 0.0;
    for i in 0..frames {
        let input = pattern.frame(i);
        let encoded = encoder.encode(&input, i == 0).unwrap();
        let decoded = decoder.decode(&encoded.data).unwrap().expect("one picture per access unit");
        worst = worst.max(mad(&frame_to_rgb(&decoded).unwrap(), &frame_to_rgb(&input).unwrap(), 37));
    }
    worst
}

/// Collects a child's stderr in the background (so its pipe never fills up).
fn drain_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let mut pipe = child.stderr.take().expect("stderr is piped");
    tokio::spawn(async move {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text).await;
        text
    })
}

fn frames_sent(stderr: &str) -> u64 {
    let tail = stderr.trim_end().rsplit("; ").next().unwrap_or("");
    tail.strip_suffix(" frames sent").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stderr}"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("dreamgate-media-chain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn engine(media: std::sync::Arc<WebRtcMedia>) -> EngineHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, EngineConfig { api_key: Some(KEY.into()), media: Some(media), ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_watch_binaries_show_the_transformed_output_and_a_prompt_change() {
    let started = Instant::now();
    let tmp = TempDir::new();
    let media = WebRtcMedia::new(RtcConfig::default());
    let h = engine(media.clone()).await;
    let c = DaydreamClient::new(h.base_url().parse().unwrap(), ApiKey::new(KEY), Duration::from_secs(10)).unwrap();

    let mut create = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    create["params"]["width"] = json!(SIZE);
    create["params"]["height"] = json!(SIZE);
    let stream = c.create_stream(&create).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let whip = stream["whip_url"].as_str().unwrap().to_owned();
    let model_id = stream["params"]["model_id"].as_str().unwrap().to_owned();

    // `dreamgate ingest`: the test pattern, 512x512 at 30 fps; --duration is only a safety
    // cap, the test ends it with SIGINT (Ctrl-C) once it has seen what it needs.
    let size = SIZE.to_string();
    let mut ingest = dreamgate()
        .args(["ingest", "--whip", &whip, "--duration", "35", "--width", &size, "--height", &size, "--fps", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate ingest");
    let ingest_log = drain_stderr(&mut ingest);

    // ONLINE, with input and inference both at (nearly) the published 30 fps
    let live =
        |d: &Value| d["state"] == "ONLINE" && fps(d, "inference_status") >= 25.0 && fps(d, "input_status") >= 25.0;
    let data = wait_status(&c, &id, Duration::from_secs(15), live).await;
    assert_eq!(data["state"], "ONLINE", "{data}");
    assert!(fps(&data, "inference_status") >= 25.0, "{data}");
    assert!(fps(&data, "input_status") >= 25.0, "{data}");
    let online_after = started.elapsed();
    eprintln!(
        "ONLINE after {:.1} s: input {:.1} fps, inference {:.1} fps",
        online_after.as_secs_f64(),
        fps(&data, "input_status"),
        fps(&data, "inference_status")
    );
    let whep = data["gateway_status"]["whep_url"].as_str().expect("status names the WHEP URL").to_owned();
    assert_eq!(whep, h.engine().whep_url(&id));

    // two batches before the PATCH (their distance is what motion alone does over the
    // time one `watch` takes), one after it
    let a = watch(&whep, &tmp.0.join("a")).await;
    let b = watch(&whep, &tmp.0.join("b")).await;

    let mut patch = Map::new();
    patch.insert("prompt".into(), json!(PROMPT));
    c.update_stream(&id, &dreamgate_model::update_body(&model_id, patch)).await.expect("PATCH accepted");
    let data =
        wait_status(&c, &id, Duration::from_secs(5), |d| d["inference_status"]["last_params"]["prompt"] == PROMPT)
            .await;
    assert_eq!(data["inference_status"]["last_params"]["prompt"], PROMPT, "{data}");
    assert_eq!(data["inference_status"]["last_params"]["model_id"], model_id.as_str(), "{data}");
    assert!(data["inference_status"]["last_params_update_time"].is_u64(), "{data}");
    assert_eq!(data["state"], "ONLINE", "a prompt change keeps the stream online: {data}");
    let after = watch(&whep, &tmp.0.join("c")).await;

    // stop the publisher like Ctrl-C would: SIGINT to the child we started (by its pid)
    let pid = ingest.id().expect("ingest still running").to_string();
    let kill = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
    assert!(kill.success());
    let code = timeout(Duration::from_secs(10), ingest.wait()).await.expect("ingest stops in time").unwrap().code();
    let log = timeout(Duration::from_secs(5), ingest_log).await.expect("stderr closes").unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("interrupted;"), "{log}");
    let sent = frames_sent(&log);
    assert!(sent > 60, "{log}");
    assert_eq!(media.stats(&id).expect("stream media").session_id, None, "the WHIP session was DELETEd");

    // the output is not the input: compare every pulled picture with every pattern frame
    // the publisher sent (so no timing misalignment can decide it) and take the closest
    let pattern = TestPattern::new(SIZE, SIZE);
    let outputs: Vec<&Vec<u8>> = a.iter().chain(&b).chain(&after).collect();
    let mut closest = vec![f64::MAX; outputs.len()];
    for i in 0..sent {
        let input = frame_to_rgb(&pattern.frame(i)).unwrap();
        for (best, out) in closest.iter_mut().zip(&outputs) {
            *best = best.min(mad(out, &input, 37));
        }
    }
    let closest = closest.into_iter().fold(f64::MAX, f64::min);
    // the metric's control: what an untransformed chain would score (the pattern through
    // one H.264 encode + decode at the same size, against the same frame)
    let control = passthrough_score(&pattern, 30);
    eprintln!(
        "closest of {sent} input frames: mean abs RGB diff {closest:.1} (H.264 round trip of the input: {control:.1})"
    );
    assert!(closest > 20.0 && closest > 4.0 * control, "output too close to an input frame: {closest:.1}");

    // the output is live (it moves), and the prompt changed it by more than motion does
    let moving = mad(&a[0], &a[4], 1);
    let motion = [max_step(&a), max_step(&b), max_step(&after), min_between(&a, &b)].into_iter().fold(0.0, f64::max);
    let changed = min_between(&b, &after);
    eprintln!(
        "palette distance: prompt change {changed:.3} vs motion {motion:.3} (batch-to-batch {:.3}); \
         first-to-fifth output mean abs diff {moving:.1}; {sent} frames sent; total {:.1} s",
        min_between(&a, &b),
        started.elapsed().as_secs_f64()
    );
    assert!(moving > 0.5, "the output does not move: {moving:.2}");
    assert!(changed > 0.3 && changed > 3.0 * motion, "prompt change {changed:.3} vs motion {motion:.3}");
    h.shutdown().await;
}
