//! `dreamgate engine` as a process: it prints its base URL first on stdout, honours
//! `--api-key` and `--faults`, never prints the key, and stops cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dreamgate_client::{ApiError, ApiKey, DaydreamClient};

const KEY: &str = "engine-cli-test-key-0f3a9c";

/// Kills the engine if a test fails half-way (by its own handle).
struct Engine(Child);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Engine, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["engine", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("DAYDREAM_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dreamgate engine");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).expect("read the base URL line");
    let base = first.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "first stdout line is the base URL: {first:?}");
    (Engine(child), base)
}

fn client(base: &str, key: &str) -> DaydreamClient {
    DaydreamClient::new(base.parse().unwrap(), ApiKey::new(key), Duration::from_secs(10)).unwrap()
}

fn body() -> serde_json::Value {
    serde_json::to_value(dreamgate_model::default_create_payload()).unwrap()
}

#[tokio::test]
async fn engine_process_serves_the_api_with_its_key_and_faults() {
    let (mut engine, base) = start(&["--api-key", KEY, "--faults", "patch=405"]);
    let api = client(&base, KEY);

    let stream = api.create_stream(&body()).await.expect("create with the right key");
    let id = stream["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("str_"));
    assert!(stream["whip_url"].as_str().unwrap().starts_with(&base), "{stream}");

    let wrong = client(&base, "not-the-key").stream_status(&id).await.unwrap_err();
    assert_eq!(wrong.status(), Some(401), "{wrong:?}");
    let missing = api.get_stream("str_doesnotexist").await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing:?}");

    let update = dreamgate_model::update_body("stabilityai/sd-turbo", serde_json::Map::new());
    match api.update_stream(&id, &update).await {
        Err(ApiError::Upstream { status: 405, .. }) => {}
        other => panic!("--faults patch=405 makes PATCH answer 405: {other:?}"),
    }
    api.delete_stream(&id).await.expect("delete");
    assert_eq!(api.get_stream(&id).await.unwrap_err().status(), Some(404));

    // Ctrl-C: a graceful stop, and the key was never printed.
    let pid = engine.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = engine.0.wait().unwrap();
    assert!(status.success(), "clean exit on SIGINT: {status:?}");
    let mut stderr = String::new();
    engine.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains(KEY), "the key is never logged: {stderr}");
    assert!(stderr.contains(&base), "the engine logs where it listens: {stderr}");
}

#[tokio::test]
async fn without_a_key_any_bearer_token_is_accepted() {
    let (_engine, base) = start(&[]);
    let stream = client(&base, "anything").create_stream(&body()).await.expect("any non-empty token");
    assert!(stream["id"].as_str().unwrap().starts_with("str_"));
}
