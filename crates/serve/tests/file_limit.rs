//! The open-file limit: `accept()` failing with EMFILE does not end the
//! server, and the soft limit can be raised to the hard one. Alone in its
//! own test binary (one process, one test) because it changes the
//! process-wide `RLIMIT_NOFILE`.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use dreamgate_serve::{nofile_limit, raise_nofile_limit, serve, ServeLimits};

fn rlimit_now() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_soft(soft: libc::rlim_t) {
    let mut lim = rlimit_now();
    lim.rlim_cur = soft;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0, "{}", std::io::Error::last_os_error());
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

// A current-thread runtime: the server task runs only while the test awaits,
// so the test can fill the descriptor table before the server tries to accept.
#[tokio::test(flavor = "current_thread")]
async fn accept_failing_with_emfile_is_survived_and_the_limit_can_be_raised() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let limits = ServeLimits { header_timeout: Duration::from_secs(60), ..ServeLimits::default() };
    let server = tokio::spawn(serve(listener, app, limits, std::future::pending()));
    tokio::task::yield_now().await; // the server reads the limit and starts accepting

    // no descriptor left: connections wait in the backlog, accept() fails with EMFILE
    let original = rlimit_now().rlim_cur;
    set_soft(open_fds() + 4);
    let mut waiting = Vec::new();
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => waiting.push(s),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
    }
    assert!(!waiting.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await; // the server meets EMFILE, a few times
    assert!(!server.is_finished(), "the server ended on EMFILE");

    // descriptors again: the server goes on accepting and serving
    set_soft(original);
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut got).await.unwrap();
        String::from_utf8_lossy(&got).to_string()
    })
    .await
    .expect("served after EMFILE");
    assert!(answered.starts_with("HTTP/1.1 200") && answered.ends_with("ok"), "{answered}");
    // the connections that waited in the backlog were accepted too (silent: still open)
    let mut first = waiting.remove(0);
    first.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = String::new();
    let reader = std::thread::spawn(move || {
        first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = first.read_to_string(&mut got);
        got
    });
    // let the server run while the blocking reader waits
    let got = loop {
        if reader.is_finished() {
            break reader.join().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // raising the soft limit to the hard one
    let low = rlimit_now().rlim_max.min(256);
    set_soft(low);
    let raised = raise_nofile_limit().unwrap();
    assert_eq!(raised.before, low);
    assert_eq!(raised.after, raised.hard);
    assert_eq!(nofile_limit().map_or(u64::MAX, |n| n), raised.hard);
    server.abort();
}
