//! `dreamgate serve` as a process: the real binary on a free loopback port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A recognisable fake key: it must never appear in any output.
const FAKE_KEY: &str = "daydream_live_SERVECLI_FAKE_KEY_5f3a9c";

/// `dreamgate serve` with a clean `DAYDREAM_*` environment plus `vars`.
fn serve(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamgate"));
    cmd.arg("serve").args(args);
    for var in ["DAYDREAM_API_KEY", "DAYDREAM_API_GATEWAY", "DAYDREAM_WHIP_ALLOWED_HOSTS", "DAYDREAM_WHIP_ALLOW_DEV"] {
        cmd.env_remove(var);
    }
    cmd.env("DREAMGATE_LOG", "info").env("NO_COLOR", "1").envs(vars.iter().copied());
    cmd
}

/// Kills the child when the test ends, passes or panics (by its own handle).
struct Running(Child);

impl Running {
    /// Waits (at most `limit`) for the child to exit on its own.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes ANSI colour sequences (in case the log writer colours anyway).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_serves_the_page_config_and_logs_its_setup() {
    let mut child = serve(&["--listen", "127.0.0.1:0"], &[("DAYDREAM_WHIP_ALLOWED_HOSTS", "extra-cdn.example")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dreamgate serve");
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let mut running = Running(child);

    // Read stderr on a thread (it keeps draining the pipe for the whole test).
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(plain(&line)).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no address logged; stderr so far:\n{}", log.join("\n")));
        log.push(line.clone());
        if let Some(rest) = line.split("open ").nth(1).filter(|_| line.starts_with("dreamgate: ")) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let log = log.join("\n");
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");

    // the start-up log names the mode and the WHIP allowlist (defaults + additions + dev loopback)
    let listening = log.lines().find(|l| l.contains("gateway listening")).unwrap_or_else(|| panic!("{log}"));
    assert!(listening.contains("mode=\"local\"") || listening.contains("mode=local"), "{listening}");
    for host in ["daydream.live", "livepeer.com", "extra-cdn.example", "loopback"] {
        assert!(listening.contains(host), "allowlist lacks {host}: {listening}");
    }
    assert!(listening.contains(&base), "{listening}");
    assert!(log.contains("no DAYDREAM_API_KEY: local mode"), "{log}");

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in ["default-src 'self'", "script-src 'self'", "frame-src https://lvpr.tv", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<script") && html.contains("type=\"module\""), "{html}");

    let config = http.get(format!("{base}/api/daydream/config")).send().await.unwrap();
    assert_eq!(config.status(), 200);
    let config: serde_json::Value = config.json().await.unwrap();
    assert_eq!(config["mode"], "local", "{config}");
    assert_eq!(config["configured"], true, "{config}");
    assert_eq!(config["playback"]["iframeBase"], "https://lvpr.tv/", "{config}");

    // a stream is running when SIGTERM arrives: it is deleted before the process exits
    let created = http
        .post(format!("{base}/api/daydream/streams"))
        .header("origin", &base)
        .json(&serde_json::to_value(dreamgate_model::default_create_payload()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
    assert!(kill.success());
    let status = tokio::task::block_in_place(|| running.wait_exit(Duration::from_secs(30)))
        .expect("dreamgate serve did not exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = rx.iter().collect(); // the pipe is closed: everything that was logged
    let rest = rest.join("\n");
    assert!(rest.contains("SIGTERM: stopping"), "{rest}");
    let deleted = rest.lines().find(|l| l.contains("streams deleted upstream on shutdown")).unwrap_or_else(|| {
        panic!("no deletion logged:\n{rest}");
    });
    assert!(deleted.contains(&id), "{deleted}");
}

#[test]
fn invalid_gateway_url_refuses_to_start_without_printing_the_key() {
    let out =
        serve(&["--listen", "127.0.0.1:0"], &[("DAYDREAM_API_KEY", FAKE_KEY), ("DAYDREAM_API_GATEWAY", "ftp://x")])
            .stdin(Stdio::null())
            .output()
            .expect("run dreamgate serve");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with ftp://x; stderr: {stderr}");
    assert!(stderr.contains("DAYDREAM_API_GATEWAY") && stderr.contains("ftp"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains(FAKE_KEY), "the key is in {name}: {text}");
        assert!(!text.contains("SERVECLI_FAKE_KEY"), "part of the key is in {name}: {text}");
    }
}
