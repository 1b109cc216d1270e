//! One peer holding more connections than the process may open files must not keep
//! everyone else out (issue 11, item 1): `dreamgate serve` and `dreamgate engine` run
//! with a lowered open-file limit (soft = hard = 160, so that raising the soft limit
//! to the hard one at start changes nothing), 127.0.0.1 opens 300 connections and
//! keeps them, and a client from 127.0.0.2 is still served. Connections past the
//! per-peer cap are closed at once instead of exhausting the file table.
#![cfg(target_os = "linux")]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dreamgate_testkit::raw::try_connect_from;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FILE_LIMIT: u64 = 160;
const FLOOD: usize = 300;
const PER_IP: usize = 16;

/// Kills the child when the test ends (by its own handle).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dreamgate <args>` with soft and hard RLIMIT_NOFILE at `FILE_LIMIT`.
fn spawn_limited(args: &[&str]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamgate"));
    cmd.args(args)
        .env_remove("DAYDREAM_API_KEY")
        .env_remove("DAYDREAM_API_GATEWAY")
        .env_remove("DAYDREAM_WHIP_ALLOWED_HOSTS")
        .env_remove("DAYDREAM_WHIP_ALLOW_DEV")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: FILE_LIMIT as libc::rlim_t, rlim_max: FILE_LIMIT as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Running(cmd.spawn().expect("run dreamgate"))
}

/// The first line of stdout or stderr that `pick` finds an address in.
fn address(child: &mut Running, pick: fn(&str) -> Option<String>) -> SocketAddr {
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line); // keeps draining after the address is found
            }
        });
    }
    let mut seen = Vec::new();
    loop {
        let line =
            rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no address:\n{}", seen.join("\n")));
        if let Some(base) = pick(&line) {
            return base.trim_start_matches("http://").parse().unwrap_or_else(|e| panic!("{base}: {e}"));
        }
        seen.push(line);
    }
}

/// Floods from 127.0.0.1, then asks from 127.0.0.2: the answer's status line.
async fn flood_then_ask(addr: SocketAddr, path: &str) -> (String, usize) {
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        flood.push(try_connect_from("127.0.0.1", addr).await.expect("connect (the kernel backlog takes it)"));
    }
    let ask = async {
        let mut s = try_connect_from("127.0.0.2", addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_string()
    };
    let status = tokio::time::timeout(Duration::from_secs(20), ask)
        .await
        .expect("the other client was not served while one peer held the file table");
    // the flood's connections over the cap were closed by the server
    let mut closed = 0;
    for s in &mut flood {
        let mut b = [0u8; 1];
        if matches!(tokio::time::timeout(Duration::from_millis(50), s.read(&mut b)).await, Ok(Ok(0) | Err(_))) {
            closed += 1;
        }
    }
    (status, closed)
}

#[tokio::test]
async fn serve_keeps_serving_others_while_one_peer_holds_more_connections_than_its_file_limit() {
    let mut child = spawn_limited(&["serve", "--listen", "127.0.0.1:0", "--max-connections-per-ip", "16"]);
    let addr = address(&mut child, |line| {
        line.strip_prefix("dreamgate: open ").and_then(|rest| rest.split_whitespace().next()).map(str::to_string)
    });
    let (status, closed) = flood_then_ask(addr, "/api/daydream/config").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(closed >= FLOOD - PER_IP, "only {closed} of the flood's {FLOOD} connections were closed");
    assert!(child.0.try_wait().unwrap().is_none(), "the server died");
}

#[tokio::test]
async fn engine_keeps_serving_others_while_one_peer_holds_more_connections_than_its_file_limit() {
    let mut child = spawn_limited(&["engine", "--listen", "127.0.0.1:0", "--max-connections-per-ip", "16"]);
    let addr = address(&mut child, |line| line.starts_with("http://127.0.0.1:").then(|| line.trim().to_string()));
    let (status, closed) = flood_then_ask(addr, "/v1/streams/str_none").await;
    // any answer will do (401 without a bearer token): the point is that there is one
    assert!(status.starts_with("HTTP/1.1 "), "{status}");
    assert!(closed >= FLOOD - PER_IP, "only {closed} of the flood's {FLOOD} connections were closed");
    assert!(child.0.try_wait().unwrap().is_none(), "the engine died");
}
