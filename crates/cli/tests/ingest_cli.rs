//! `dreamgate ingest` as a process, against an in-process engine on loopback.

use std::process::{Command, Output};

use dreamgate_engine::{start, EngineConfig};
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
    let h = start(listener, EngineConfig { api_key: Some(KEY.into()), media: None, ..Default::default() }).await;
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
