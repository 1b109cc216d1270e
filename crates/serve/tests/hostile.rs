//! Hostile clients against `dreamgate_serve::serve` over raw loopback sockets,
//! with short timeouts so that each case is closed quickly. Closure is
//! asserted by reading EOF within a generous bound, never by how fast.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use dreamgate_serve::{serve, ServeLimits};
use dreamgate_testkit::raw::{closed_within, connect_from, roundtrip, GENEROUS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn short() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    }
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .route(
            "/slow-started",
            get(|| async {
                SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .route(
            "/never",
            get(|| async {
                NEVER_STARTED.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<&'static str>().await
            }),
        )
}

static SLOW_STARTED: AtomicUsize = AtomicUsize::new(0);
static NEVER_STARTED: AtomicUsize = AtomicUsize::new(0);

/// Waits (at most `GENEROUS`) until a handler has started.
async fn started(counter: &AtomicUsize) {
    tokio::time::timeout(GENEROUS, async {
        while counter.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the handler started");
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ServeLimits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app(), limits, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task }
    }

    /// Signals shutdown and waits for `serve` to return (at most `GENEROUS`).
    async fn shutdown(mut self) -> bool {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(GENEROUS, &mut self.task).await.is_ok()
    }
}

const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let server = Server::start(short()).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "a silent connection stayed open");
}

#[tokio::test]
async fn half_a_request_line_is_closed() {
    let server = Server::start(short()).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    s.write_all(b"GET / HT").await.unwrap();
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "half a request line stayed open");
}

#[tokio::test]
async fn a_header_every_100_ms_slowloris_is_closed() {
    let server = Server::start(short()).await;
    let s = connect_from("127.0.0.1", server.addr).await;
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        wr.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(format!("X-Slow-{i}: {i}\r\n").as_bytes()).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(GENEROUS, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "a slowloris connection stayed open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_being_served() {
    let server = Server::start(short()).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    assert_eq!(roundtrip(&mut s, GET).await, (200, "hello".into()));
    // keep-alive works while within the idle timeout
    assert_eq!(roundtrip(&mut s, GET).await, (200, "hello".into()));
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "an idle keep-alive connection stayed open");
}

#[tokio::test]
async fn a_long_answer_is_not_cut_by_the_connection_timeouts() {
    // the handler takes 300 ms, as long as every timeout: only the handler decides
    let limits =
        ServeLimits { header_timeout: Duration::from_millis(100), idle_timeout: Duration::from_millis(100), ..short() };
    let server = Server::start(limits).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    assert_eq!(roundtrip(&mut s, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await, (200, "slow".into()));
}

#[tokio::test]
async fn a_trickling_body_is_answered_408_json_and_closed() {
    let server = Server::start(short()).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..90 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"x").await.is_err() {
                break;
            }
        }
        wr
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(GENEROUS, rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(closed.is_ok(), "the trickling body's connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: application/json"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(
        text.ends_with(r#"{"error":"Request timeout","message":"The request body was not received within 300 ms"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_sent_in_time_is_served() {
    let server = Server::start(ServeLimits::default()).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    let req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(roundtrip(&mut s, req).await, (200, "hello".into()));
}

#[tokio::test]
async fn one_peer_over_its_cap_does_not_keep_another_out() {
    let limits =
        ServeLimits { max_connections_per_ip: 4, header_timeout: Duration::from_secs(60), ..ServeLimits::default() };
    let server = Server::start(limits).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    // the six beyond the cap are closed at once; the four admitted stay (header timeout 60 s)
    let waits = held.iter_mut().map(|s| closed_within(s, Duration::from_secs(3)));
    let closed = futures_join_all(waits).await.into_iter().filter(Option::is_some).count();
    assert_eq!(closed, 6);
    // another address is served
    let mut other = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(roundtrip(&mut other, GET).await, (200, "hello".into()));
    // and the capped peer too, once it closes one
    held.truncate(3);
    let served = tokio::time::timeout(GENEROUS, async {
        loop {
            // the server may not have seen the close yet: retry until a slot is free
            let mut s = connect_from("127.0.0.1", server.addr).await;
            if s.write_all(GET.as_bytes()).await.is_ok() {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    if buf[..n].starts_with(b"HTTP/1.1 200") {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the capped peer was never let back in");
}

#[tokio::test]
async fn the_overall_cap_closes_new_connections_and_frees_slots() {
    let limits = ServeLimits { max_connections: 3, header_timeout: Duration::from_secs(60), ..ServeLimits::default() };
    let server = Server::start(limits).await;
    let mut held = Vec::new();
    for src in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let mut s = connect_from(src, server.addr).await;
        assert_eq!(roundtrip(&mut s, GET).await.0, 200);
        held.push(s);
    }
    let mut fourth = connect_from("127.0.0.4", server.addr).await;
    assert!(closed_within(&mut fourth, GENEROUS).await.is_some(), "a connection over the cap was kept");
    drop(held);
    let served = tokio::time::timeout(GENEROUS, async {
        loop {
            let mut s = connect_from("127.0.0.4", server.addr).await;
            if s.write_all(GET.as_bytes()).await.is_ok() {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    if buf[..n].starts_with(b"HTTP/1.1 200") {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "slots were not freed");
}

#[tokio::test]
async fn shutdown_closes_idle_and_half_sent_connections_at_once_and_lets_requests_finish() {
    // with a 60 s grace and 60 s timeouts, anything that held shutdown would hold it past GENEROUS
    let limits = ServeLimits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(60),
        ..ServeLimits::default()
    };
    let server = Server::start(limits).await;
    let addr = server.addr;
    let mut silent = connect_from("127.0.0.1", addr).await;
    let mut half_head = connect_from("127.0.0.1", addr).await;
    half_head.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half").await.unwrap();
    let mut half_body = connect_from("127.0.0.1", addr).await;
    half_body.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234").await.unwrap();
    let mut idle = connect_from("127.0.0.1", addr).await;
    assert_eq!(roundtrip(&mut idle, GET).await.0, 200);
    let mut slow = connect_from("127.0.0.1", addr).await;
    slow.write_all(b"GET /slow-started HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    started(&SLOW_STARTED).await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the server read the half-sent ones too

    let stopped = tokio::spawn(server.shutdown());
    for (name, s) in
        [("silent", &mut silent), ("half head", &mut half_head), ("half body", &mut half_body), ("idle", &mut idle)]
    {
        assert!(closed_within(s, GENEROUS).await.is_some(), "{name} connection held open by shutdown");
    }
    let mut answer = Vec::new();
    tokio::time::timeout(GENEROUS, slow.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow"), "{answer}");
    assert!(stopped.await.unwrap(), "serve did not return");
    // the listener is gone
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_grace_bounds_a_request_that_never_ends() {
    let limits = ServeLimits { shutdown_grace: Duration::from_millis(300), ..ServeLimits::default() };
    let server = Server::start(limits).await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    s.write_all(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    started(&NEVER_STARTED).await;
    assert!(server.shutdown().await, "a request that never ends held shutdown");
    assert!(closed_within(&mut s, GENEROUS).await.is_some());
}

async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = futs.into_iter().collect();
    // sequential awaits of concurrently-started reads would serialise the timeouts: poll them together
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(Option::unwrap));
    out
}
