//! `dreamgate conformance`, the binary: its output format (one `step: path: problem` line per
//! deviation, then `N deviations`), its exit code (0 only with none), and that the key it
//! is given never appears in what it prints.

use std::process::Output;

use dreamgate_engine::{start, EngineConfig};
use tokio::process::Command;

const KEY: &str = "daydream_live_conformance_cli_secret";

async fn conformance(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamgate"));
    cmd.env_remove("DAYDREAM_API_KEY").env_remove("DAYDREAM_API_GATEWAY").env("DREAMGATE_LOG", "warn");
    cmd.arg("conformance").args(args).kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .expect("dreamgate conformance finishes in time")
        .expect("run dreamgate conformance")
}

/// The deviation lines and the count the summary line gives; checks the format.
fn parse(out: &Output) -> (Vec<String>, usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let summary = lines.pop().expect("a summary line");
    let n: usize = summary
        .strip_suffix(" deviations")
        .or_else(|| summary.strip_suffix(" deviation"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary line {summary:?}"));
    assert_eq!(n, lines.len(), "{stdout}");
    for line in &lines {
        assert_eq!(line.splitn(3, ": ").count(), 3, "step: path: problem, got {line:?}");
    }
    (lines, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_engine_it_prints_its_deviations_and_exits_accordingly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let engine = start(listener, EngineConfig { api_key: Some(KEY.into()), ..Default::default() }).await;
    let out = conformance(&["--gateway", engine.base_url(), "--key", KEY, "--publish", "2"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (lines, n) = parse(&out);
    assert_eq!(out.status.code(), Some(if n == 0 { 0 } else { 1 }), "{lines:?}\n{stderr}");
    assert!(stderr.contains("whep pull: decoded a 512x512 frame"), "the media steps ran: {stderr}");
    assert!(!stderr.contains(KEY) && !lines.iter().any(|l| l.contains(KEY)), "the key is never printed");
    assert_eq!(engine.engine().streams().len(), 0, "the stream it created is deleted");
    engine.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_reported_step_by_step_with_exit_code_1() {
    // a port nothing listens on: bind one and drop it
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let out = conformance(&["--gateway", &base, "--key", KEY]).await;
    let (lines, n) = parse(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(n >= 5, "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("create: (request): request failed")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("create: (scenario): no usable stream")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("get unknown id: (request): ")), "{lines:?}");
}

#[tokio::test]
async fn help_names_its_options_and_hides_the_key_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["conformance", "--help"])
        .env("DAYDREAM_API_KEY", KEY)
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for option in ["--gateway", "--key", "--publish", "--warmup", "--bind-ip", "--origin"] {
        assert!(help.contains(option), "{option}: {help}");
    }
    assert!(!help.contains(KEY), "{help}");
}
