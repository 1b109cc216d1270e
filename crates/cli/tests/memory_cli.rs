//! Memory is handed back after a connection flood (issue 11, item 6): `dreamgate engine`
//! (the same `dreamgate-serve` as `dreamgate serve`) holds a few thousand connections
//! that each sent a request, its RSS grows by megabytes; once they all closed, the RSS
//! comes back down near where it started instead of staying at its peak (glibc keeps
//! freed memory in its arenas unless it is trimmed: `dreamgate_serve::trim`).
#![cfg(target_os = "linux")]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Raises this process's soft open-file limit to its hard limit; returns the soft limit.
fn raise_own_file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur as u64
}

async fn one_request(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /v1/streams/str_none HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.ok()?;
    (n > 0).then_some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_comes_back_down_after_a_connection_flood() {
    let files = raise_own_file_limit();
    let flood = (files.saturating_sub(200) as usize).min(4000);
    if flood < 1000 {
        eprintln!("skipped: this test needs an open-file hard limit of at least 1,200 (have {files})");
        return;
    }
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_dreamgate"))
            .args(["engine", "--listen", "127.0.0.1:0", "--max-connections-per-ip", "100000"])
            .args(["--max-connections", "100000"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dreamgate"),
    );
    let pid = child.0.id();
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap();
    let addr: SocketAddr = base.trim().trim_start_matches("http://").parse().unwrap();
    std::thread::spawn(move || for _ in lines {});

    // warm up the runtime, then the baseline
    for _ in 0..50 {
        one_request(addr).await.unwrap();
    }
    let idle = rss_kib(pid);

    let mut held = Vec::with_capacity(flood);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..flood {
        tasks.spawn(one_request(addr));
        if tasks.len() >= 200 {
            if let Some(Ok(Some(s))) = tasks.join_next().await {
                held.push(s);
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some(s)) = r {
            held.push(s);
        }
    }
    let peak = rss_kib(pid);
    let grew = peak.saturating_sub(idle);
    assert!(held.len() >= flood * 9 / 10, "held {} of {flood}", held.len());
    assert!(grew >= 4 * 1024, "the flood must cost megabytes to mean anything: {idle} -> {peak} KiB");

    drop(held);
    let start = Instant::now();
    let mut now = peak;
    while start.elapsed() < Duration::from_secs(20) {
        now = rss_kib(pid);
        if now <= idle + grew / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        now <= idle + grew / 3,
        "RSS idle {idle} KiB, {peak} KiB with {flood} connections, still {now} KiB 20 s after they closed"
    );
}
