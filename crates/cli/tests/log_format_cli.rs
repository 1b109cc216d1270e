//! `--log-format json` (and `DREAMGATE_LOG_FORMAT=json`) on `dreamgate serve` and
//! `dreamgate engine`, as processes: every stderr line is one JSON object, and after a
//! whole create / WHIP / delete flow neither the logs nor `/metrics` name the key, the
//! session cookie or the stream's WHIP URL.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

const KEY: &str = "daydream_live_LOGFORMAT_SECRET_7c1e";

/// Kills the child if the test fails half-way (by its own handle).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Drains the child's stderr on a thread: each line goes to the channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

/// Waits (at most 20 s) for the process to exit, then returns every line it wrote.
fn finish(mut running: Running, lines: mpsc::Receiver<String>, mut seen: Vec<String>) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while running.0.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the process did not exit");
        thread::sleep(Duration::from_millis(50));
    }
    seen.extend(lines.iter());
    seen
}

/// Every line parses as a JSON object with a timestamp, a level and a message.
fn parse_all(lines: &[String], who: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{who}: not JSON ({e}): {l:?}"));
            assert!(v.is_object() && v["timestamp"].is_string() && v["level"].is_string(), "{who}: {l}");
            assert!(v["message"].is_string(), "{who}: no message: {l}");
            v
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_metrics_after_a_whole_flow_name_no_key_cookie_or_whip_url() {
    // the engine, JSON through the environment variable
    let mut engine = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["engine", "--listen", "127.0.0.1:0", "--api-key", KEY])
        .env_remove("DAYDREAM_API_KEY")
        .env("DREAMGATE_LOG_FORMAT", "json")
        .env("DREAMGATE_LOG", "debug,str0m=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate engine");
    let engine_lines = stderr_lines(&mut engine);
    let mut first = String::new();
    BufReader::new(engine.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let engine_base = first.trim().to_string();
    let engine = Running(engine);

    // the gateway in front of it, JSON through the flag, metrics on their own listener
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
        .env("DAYDREAM_API_KEY", KEY)
        .env("DAYDREAM_API_GATEWAY", &engine_base)
        .env("DAYDREAM_WHIP_ALLOW_DEV", "1")
        .env_remove("DAYDREAM_WHIP_ALLOWED_HOSTS")
        .env_remove("DREAMGATE_LOG_FORMAT")
        .env("DREAMGATE_LOG", "debug,str0m=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate serve");
    let serve_lines = stderr_lines(&mut serve);
    let serve = Running(serve);

    // the start-up events name both addresses as fields
    let mut seen = Vec::new();
    let (mut listen, mut metrics) = (None, None);
    while listen.is_none() || metrics.is_none() {
        let line = serve_lines.recv_timeout(Duration::from_secs(30)).expect("start-up log");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        if let Some(a) = v["listen"].as_str() {
            listen = Some(a.to_string());
        }
        if let Some(a) = v["metrics_listen"].as_str() {
            metrics = Some(a.to_string());
        }
        seen.push(line);
    }
    let base = format!("http://{}", listen.unwrap());
    let metrics_url = format!("http://{}/metrics", metrics.unwrap());

    // a whole flow: create, status, WHIP offer, delete
    let http = reqwest::Client::new();
    let payload = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    let r =
        http.post(format!("{base}/api/daydream/streams")).header("origin", &base).json(&payload).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    let stream: Value = r.json().await.unwrap();
    let id = stream["id"].as_str().unwrap().to_string();
    let whip_url = stream["whip_url"].as_str().unwrap().to_string();
    let path = |tail: &str| format!("{base}/api/daydream/streams/{id}{tail}");
    let r = http.get(path("/status")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_publisher, offer) = dreamgate_rtc::Publisher::new(&dreamgate_rtc::RtcConfig::default(), &[]).await.unwrap();
    let r = http
        .post(path("/whip"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = http.delete(path("")).header("cookie", &cookie).header("origin", &base).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let scrape = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    assert!(
        scrape.contains("dreamgate_upstream_request_duration_seconds_count{op=\"whip\",outcome=\"ok\"} 1"),
        "{scrape}"
    );

    signal(&serve.0, "-TERM");
    let serve_all = finish(serve, serve_lines, seen);
    signal(&engine.0, "-INT");
    let engine_all = finish(engine, engine_lines, Vec::new());

    let serve_events = parse_all(&serve_all, "serve");
    let engine_events = parse_all(&engine_all, "engine");
    // structured: the stream's events carry its id as a field
    assert!(
        serve_events.iter().any(|e| e["message"] == "stream created" && e["stream_id"] == id.as_str()),
        "{serve_all:#?}"
    );
    assert!(serve_events.iter().any(|e| e["message"] == "SIGTERM: stopping"), "{serve_all:#?}");
    assert!(!engine_events.is_empty());

    for (who, text) in [("serve", serve_all.join("\n")), ("engine", engine_all.join("\n")), ("metrics", scrape)] {
        for secret in [KEY, cookie_value.as_str(), whip_url.as_str()] {
            assert!(!text.contains(secret), "{who} names {secret:?}:\n{text}");
        }
    }
}
