//! Hostile connections against the engine over raw loopback sockets (issue 11, items 1 and 7):
//! silent, half-sent, slowloris and idle keep-alive connections are closed within the
//! configured timeouts; a trickling body is answered 408; one peer over its connection cap
//! does not keep another out; a half-sent request does not hold a graceful shutdown.
//!
//! Timeouts are configured short (300 ms); closure is asserted by reading EOF within a
//! generous bound, never by how fast it came.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dreamgate_engine::{start, EngineConfig, EngineHandle, NoMedia};
use dreamgate_serve::ServeLimits;
use dreamgate_testkit::raw::{closed_within, connect_from, roundtrip, GENEROUS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn short() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    }
}

async fn engine(limits: ServeLimits) -> EngineHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, EngineConfig { limits, media: Some(Arc::new(NoMedia)), ..EngineConfig::default() }).await
}

/// `GET /v1/streams/{id}` for a stream that does not exist: a quick, complete answer (404).
fn get_request(addr: SocketAddr) -> String {
    format!("GET /v1/streams/str_none HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer k\r\n\r\n")
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let eng = engine(short()).await;
    let mut s = connect_from("127.0.0.1", eng.local_addr()).await;
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "a silent connection stayed open");
}

#[tokio::test]
async fn half_a_request_line_is_closed() {
    let eng = engine(short()).await;
    let mut s = connect_from("127.0.0.1", eng.local_addr()).await;
    s.write_all(b"GET /v1/str").await.unwrap();
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "half a request line stayed open");
}

#[tokio::test]
async fn a_header_every_100_ms_slowloris_is_closed() {
    let eng = engine(short()).await;
    let s = connect_from("127.0.0.1", eng.local_addr()).await;
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        wr.write_all(b"GET /v1/streams/str_none HTTP/1.1\r\nHost: x\r\n").await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(format!("X-Slow-{i}: {i}\r\n").as_bytes()).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(GENEROUS, rd.read_to_end(&mut sink)).await;
    trickle.abort();
    assert!(closed.is_ok(), "a slowloris connection stayed open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let eng = engine(short()).await;
    let mut s = connect_from("127.0.0.1", eng.local_addr()).await;
    let (status, body) = roundtrip(&mut s, &get_request(eng.local_addr())).await;
    assert_eq!(status, 404, "{body}");
    assert!(closed_within(&mut s, GENEROUS).await.is_some(), "an idle keep-alive connection stayed open");
}

#[tokio::test]
async fn a_trickling_body_is_answered_408_and_closed() {
    let eng = engine(short()).await;
    let addr = eng.local_addr();
    let mut s = connect_from("127.0.0.1", addr).await;
    let head = format!(
        "POST /v1/streams HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer k\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pipeline\""
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() {
                break;
            }
        }
        wr
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(GENEROUS, rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(closed.is_ok(), "a trickling body's connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    let body: serde_json::Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"], "Request timeout");
    assert_eq!(body["message"], "The request body was not received within 300 ms");
}

#[tokio::test]
async fn another_address_is_served_while_one_peer_holds_more_than_its_cap() {
    let eng =
        engine(ServeLimits { max_connections_per_ip: 8, header_timeout: Duration::from_secs(60), ..short() }).await;
    let addr = eng.local_addr();
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(connect_from("127.0.0.1", addr).await);
    }
    let mut other = connect_from("127.0.0.2", addr).await;
    let (status, body) = roundtrip(&mut other, &get_request(addr)).await;
    assert_eq!(status, 404, "{body}");
    let mut closed = 0;
    for s in &mut held {
        if closed_within(s, Duration::from_millis(200)).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, 32, "the 32 connections over the cap are closed, the 8 under it kept");
}

#[tokio::test]
async fn a_half_sent_request_does_not_hold_shutdown() {
    let eng = engine(ServeLimits::default()).await;
    let addr = eng.local_addr();
    let mut half = connect_from("127.0.0.1", addr).await;
    half.write_all(format!("GET /v1/streams/str_none HTTP/1.1\r\nHost: {addr}\r\nX-Half").as_bytes()).await.unwrap();
    let mut idle = connect_from("127.0.0.1", addr).await;
    assert_eq!(roundtrip(&mut idle, &get_request(addr)).await.0, 404);

    assert!(tokio::time::timeout(GENEROUS, eng.shutdown()).await.is_ok(), "shutdown did not return");
    // the server closed them (the client still had them open), not left them to a dropped task
    assert!(closed_within(&mut half, GENEROUS).await.is_some(), "the half-sent request outlived shutdown");
    assert!(closed_within(&mut idle, GENEROUS).await.is_some(), "the idle connection outlived shutdown");
}
