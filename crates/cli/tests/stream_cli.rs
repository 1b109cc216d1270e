//! `dreamgate stream ...` against an in-process engine on loopback.

use std::process::{Command, Output};

use dreamgate_engine::{start, EngineConfig};
use serde_json::Value;

const KEY: &str = "daydream_live_cli_test";

fn dreamgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(args)
        .env_remove("DAYDREAM_API_GATEWAY")
        .env("DAYDREAM_API_KEY", KEY)
        .output()
        .expect("run dreamgate")
}

fn json_out(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_against_the_engine() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = start(listener, EngineConfig { api_key: Some(KEY.into()), ..Default::default() }).await;
    let gw = h.base_url().to_owned();

    let result = tokio::task::spawn_blocking(move || {
        let created = json_out(&dreamgate(&["stream", "create", "--gateway", &gw, "--name", "cli"]));
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["name"], "cli");

        let status = json_out(&dreamgate(&["stream", "status", &id, "--gateway", &gw]));
        assert_eq!(status["data"]["state"], "LOADING");

        let updated = json_out(&dreamgate(&["stream", "update", &id, "--prompt", "neon fox", "--gateway", &gw]));
        assert_eq!(updated["params"]["prompt"], "neon fox");
        assert_eq!(json_out(&dreamgate(&["stream", "get", &id, "--gateway", &gw]))["params"]["prompt"], "neon fox");

        // upstream errors: status and field errors on stderr, exit 1
        let path = std::env::temp_dir().join(format!("dreamgate-bad-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"pipeline":"streamdiffusion","params":{"model_id":"stabilityai/sd-turbo","width":100}}"#,
        )
        .unwrap();
        let out = dreamgate(&["stream", "create", "--file", path.to_str().unwrap(), "--gateway", &gw]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("400") && err.contains("params.width"), "{err}");

        let out = dreamgate(&["stream", "get", &id, "--gateway", &gw, "--api-key", "daydream_live_wrong"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("401"), "{err}");
        assert!(!err.contains("daydream_live_wrong"), "key printed: {err}");

        assert_eq!(json_out(&dreamgate(&["stream", "delete", &id, "--gateway", &gw]))["deleted"], id.as_str());
        let out = dreamgate(&["stream", "get", &id, "--gateway", &gw]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("404"));

        // bad configuration: refused before any call, exit 2
        let out = dreamgate(&["stream", "get", &id, "--gateway", "http://example.com"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("https is required"));
    })
    .await;
    h.shutdown().await;
    result.unwrap();
}

/// `stream status` reads both documented status shapes: the runner's (engine default) and
/// Daydream's public reference (`status_shape=public`: no state, `inference_status.*_fps`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_status_reads_both_status_shapes() {
    for (faults, summary) in
        [("", "state LOADING, input 0.0 fps, output 0.0 fps"), ("status_shape=public", "input 0.0 fps, output 0.0 fps")]
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = EngineConfig { api_key: Some(KEY.into()), faults: faults.parse().unwrap(), ..Default::default() };
        let h = start(listener, cfg).await;
        let gw = h.base_url().to_owned();
        let stderr = tokio::task::spawn_blocking(move || {
            let created = json_out(&dreamgate(&["stream", "create", "--gateway", &gw]));
            let id = created["id"].as_str().unwrap().to_owned();
            let out = dreamgate(&["stream", "status", &id, "--gateway", &gw]);
            let body = json_out(&out);
            assert_eq!(body["data"].get("state").is_some(), faults.is_empty(), "{body}");
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .await
        .unwrap();
        assert_eq!(stderr.trim(), summary, "{faults:?}");
        h.shutdown().await;
    }
}
