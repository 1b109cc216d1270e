//! `dreamgate ingest` as a process, against an in-process engine on loopback.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_engine::{start, EngineConfig, NoMedia, WebRtcMedia};
use dreamgate_rtc::RtcConfig;
use dreamgate_testkit::status::wait_state;
use serde_json::Value;

const KEY: &str = "daydream_live_ingest_cli_test";

fn dreamgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(args)
        .env_remove("DAYDREAM_API_GATEWAY")
        .env("DAYDREAM_API_KEY", KEY)
        .env("DREAMGATE_LOG", "warn")
        .output()
        .expect("run dreamgate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_progress_then_the_spec_error_and_exit_1() {
    // Without a media side the engine answers every WHIP offer 503.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let no_media = EngineConfig { api_key: Some(KEY.into()), media: Some(Arc::new(NoMedia)), ..Default::default() };
    let h = start(listener, no_media).await;
    let gw = h.base_url().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let created = dreamgate(&["stream", "create", "--gateway", &gw]);
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let stream: Value = serde_json::from_slice(&created.stdout).unwrap();
        let whip = stream["whip_url"].as_str().unwrap().to_owned();
        dreamgate(&["ingest", "--whip", &whip, "--warmup", "1.2", "--width", "64", "--height", "64"])
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("warming up (retry 1, next in"), "{err}");
    assert!(err.contains(": WHIP offer failed: 503"), "{err}");
    assert!(err.trim_end().ends_with("failed: WHIP offer failed: 503; 0 frames sent"), "{err}");
    h.shutdown().await;
}

#[test]
fn bad_arguments_are_refused() {
    let out = dreamgate(&["ingest"]);
    assert_eq!(out.status.code(), Some(2), "a target is required");
    let out = dreamgate(&["ingest", "--whip", "http://127.0.0.1:9/whip", "--via", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "--whip and --via exclude each other");

    let out = dreamgate(&["ingest", "--whip", "not a url"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid WHIP URL"));

    let out = dreamgate(&["ingest", "--whip", "http://127.0.0.1:9/whip", "--input", "/nonexistent/clip.y4m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/clip.y4m"));

    let out = dreamgate(&["ingest", "--whip", "http://127.0.0.1:9/whip", "--duration", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration must be a positive number of seconds"));
}

// ---------------------------------------------------------------------------
// End to end with the engine's real media side (WHIP ingest, transform, status).

/// The media tests encode, decode and transform video: one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SIZE: &str = "384";

async fn media_engine() -> (dreamgate_engine::EngineHandle, Arc<WebRtcMedia>) {
    let media = WebRtcMedia::new(RtcConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = EngineConfig { api_key: Some(KEY.into()), media: Some(media.clone()), ..Default::default() };
    (start(listener, cfg).await, media)
}

fn api(h: &dreamgate_engine::EngineHandle) -> DaydreamClient {
    DaydreamClient::new(h.base_url().parse().unwrap(), ApiKey::new(KEY), Duration::from_secs(10)).unwrap()
}

fn create_body() -> Value {
    let mut body = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    body["params"]["width"] = 384.into();
    body["params"]["height"] = 384.into();
    body
}

fn spawn_ingest(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .arg("ingest")
        .args(args)
        .args(["--width", SIZE, "--height", SIZE])
        .env_remove("DAYDREAM_API_KEY")
        .env("DREAMGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate ingest")
}

/// Waits for the child to exit; returns its exit code and stderr.
async fn finish(mut child: Child) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (child.wait().unwrap().code(), err)
    })
    .await
    .unwrap()
}

fn frames_sent(stderr: &str) -> u64 {
    let tail = stderr.trim_end().rsplit("; ").next().unwrap_or("");
    tail.strip_suffix(" frames sent").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_test_pattern_makes_the_stream_online_then_deletes_its_session() {
    let _heavy = HEAVY.lock().await;
    let (h, media) = media_engine().await;
    let c = api(&h);
    let stream = c.create_stream(&create_body()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let whip = stream["whip_url"].as_str().unwrap().to_owned();

    let child = spawn_ingest(&["--whip", &whip, "--duration", "5"]);
    let data = wait_state(&c, &id, "ONLINE", Duration::from_secs(20)).await;
    assert_eq!(data["state"], "ONLINE", "{data}");
    assert!(media.stats(&id).unwrap().session_id.is_some(), "an ingest session is open");

    let (code, err) = finish(child).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("live "), "{err}");
    assert!(err.contains("stopping: closing the WHIP session"), "{err}");
    assert!(err.contains("published for 5 s;"), "{err}");
    assert!(frames_sent(&err) > 60, "{err}");
    // The WHIP DELETE reached the engine: the ingest session is gone.
    assert_eq!(media.stats(&id).unwrap().session_id, None);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_tears_down_the_whip_session() {
    let _heavy = HEAVY.lock().await;
    let (h, media) = media_engine().await;
    let c = api(&h);
    let stream = c.create_stream(&create_body()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let child = spawn_ingest(&["--whip", stream["whip_url"].as_str().unwrap()]);
    let data = wait_state(&c, &id, "ONLINE", Duration::from_secs(20)).await;
    assert_eq!(data["state"], "ONLINE", "{data}");

    // Ctrl-C is SIGINT to the process we started.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (code, err) = finish(child).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("interrupted;"), "{err}");
    assert_eq!(media.stats(&id).unwrap().session_id, None, "WHIP DELETE sent on Ctrl-C");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_gateway_creates_publishes_and_deletes_the_stream() {
    let _heavy = HEAVY.lock().await;
    let (h, _media) = media_engine().await;
    let policy = dreamgate_gateway::whip_policy::WhipPolicy::with_defaults(Vec::<String>::new(), true).unwrap();
    let cfg = dreamgate_gateway::GatewayConfig::new(
        dreamgate_gateway::Mode::Local,
        h.base_url().parse().unwrap(),
        ApiKey::new(KEY),
        policy,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = dreamgate_gateway::start(listener, cfg).await.unwrap();

    let child = spawn_ingest(&["--via", &gateway.base_url(), "--duration", "3"]);
    // The stream appears on the engine, created through the gateway, and goes online.
    let until = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let ids = h.engine().streams().ids();
        if let Some(id) = ids.first() {
            break id.clone();
        }
        assert!(Instant::now() < until, "no stream was created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let data = wait_state(&api(&h), &id, "ONLINE", Duration::from_secs(20)).await;
    assert_eq!(data["state"], "ONLINE", "{data}");

    let (code, err) = finish(child).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("stream {id} created")), "{err}");
    assert!(err.contains(&format!("stream {id} deleted")), "{err}");
    assert!(frames_sent(&err) > 30, "{err}");
    assert_eq!(h.engine().streams().len(), 0, "the stream was deleted upstream");
    gateway.shutdown().await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_y4m_file_is_sent_to_its_end() {
    let _heavy = HEAVY.lock().await;
    let pattern = dreamgate_media::TestPattern::new(384, 384);
    let frames: Vec<_> = (0..45).map(|i| pattern.frame(i)).collect();
    let path = std::env::temp_dir().join(format!("dreamgate-ingest-{}.y4m", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    dreamgate_media::write_y4m(&mut file, &frames, 30).unwrap();
    drop(file);

    let (h, media) = media_engine().await;
    let stream = api(&h).create_stream(&create_body()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let child = spawn_ingest(&["--whip", stream["whip_url"].as_str().unwrap(), "--input", path.to_str().unwrap()]);
    let (code, err) = finish(child).await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("end of input;"), "{err}");
    assert_eq!(frames_sent(&err), 45, "{err}");
    let stats = media.stats(&id).unwrap();
    assert_eq!(stats.session_id, None, "WHIP DELETE at the end of the file");
    assert!(stats.first_output.is_some(), "the engine transformed what it received: {stats:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn y4m_from_standard_input_is_sent_to_its_end() {
    let _heavy = HEAVY.lock().await;
    let pattern = dreamgate_media::TestPattern::new(384, 384);
    let frames: Vec<_> = (0..30).map(|i| pattern.frame(i)).collect();
    let mut y4m = Vec::new();
    dreamgate_media::write_y4m(&mut y4m, &frames, 30).unwrap();

    let (h, media) = media_engine().await;
    let stream = api(&h).create_stream(&create_body()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["ingest", "--whip", stream["whip_url"].as_str().unwrap(), "--input", "-"])
        .env_remove("DAYDREAM_API_KEY")
        .env("DREAMGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate ingest");
    // Write from a thread: the pipe's buffer is smaller than the clip, like a camera feed.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&y4m));
    let (code, err) = finish(child).await;
    writer.join().unwrap().unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("end of input;"), "{err}");
    assert_eq!(frames_sent(&err), 30, "{err}");
    let stats = media.stats(&id).unwrap();
    assert!(stats.first_output.is_some(), "the engine transformed what it received: {stats:?}");
    h.shutdown().await;
}

#[test]
fn an_unreachable_gateway_is_named_with_its_cause() {
    // Bind then drop a listener: nothing listens on that loopback port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let via = format!("http://127.0.0.1:{port}");
    let out = dreamgate(&["ingest", "--via", &via, "--duration", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot open a session on {via}: cannot reach the gateway:")), "{err}");
    assert!(err.contains("Connection refused"), "the root cause is shown: {err}");
}

/// With the engine's `ice_disconnect=1` knob the first WHIP session loses its path a few
/// seconds after its first frame and the engine ends it (as Livepeer does on "disconnected"):
/// `dreamgate ingest` says "Connection lost — reconnecting…", POSTs a new offer, and publishes
/// again on the new session until its duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reconnects_by_a_new_whip_post_when_the_engine_ends_its_session() {
    let _heavy = HEAVY.lock().await;
    let media = WebRtcMedia::new(RtcConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = EngineConfig {
        api_key: Some(KEY.into()),
        media: Some(media.clone()),
        faults: "ice_disconnect=1".parse().unwrap(),
        ..Default::default()
    };
    let h = start(listener, cfg).await;
    let c = api(&h);
    let stream = c.create_stream(&create_body()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let whip = stream["whip_url"].as_str().unwrap().to_owned();

    let child = spawn_ingest(&["--whip", &whip, "--duration", "25"]);
    let session = |media: &WebRtcMedia| media.stats(&id).and_then(|s| s.session_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(s) = session(&media) {
            break s;
        }
        assert!(Instant::now() < deadline, "no first session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // cut by the engine, then a second session from a new POST, carrying frames
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let now = media.stats(&id).unwrap();
        if now.session_id.as_ref().is_some_and(|s| *s != first) && now.frames_received > 30 {
            break;
        }
        if Instant::now() >= deadline {
            let mut child = child;
            let _ = child.kill();
            let (_, err) = finish(child).await;
            panic!("no second session with frames: {now:?}\n{err}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, err) = finish(child).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Connection lost — reconnecting…"), "{err}");
    assert!(err.contains("published for 25 s;"), "{err}");
    h.shutdown().await;
}
