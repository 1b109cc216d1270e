//! An upstream that echoes what it received (as a misconfigured proxy or a
//! hostile server would) never makes the gateway disclose the key: not in a
//! relayed error (`details`, `error`, `message`), not in a relayed success
//! body, not in a WHIP/WHEP error, not in a log line.
//!
//! This file installs a global tracing subscriber at TRACE level writing to a
//! buffer, so it holds a single test.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
struct Echo {
    base: Arc<Mutex<String>>,
    creates: Arc<AtomicUsize>,
    statuses: Arc<AtomicUsize>,
    /// The last Authorization the API side received (a proxy that remembers).
    seen_auth: Arc<Mutex<String>>,
}

fn dump(headers: &HeaderMap) -> Value {
    headers.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_str().unwrap_or("").to_string()))).collect()
}

fn text_dump(headers: &HeaderMap) -> String {
    headers.iter().map(|(k, v)| format!("{k}: {}\r\n", v.to_str().unwrap_or(""))).collect()
}

fn auth(headers: &HeaderMap) -> String {
    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

async fn create(State(e): State<Echo>, headers: HeaderMap) -> Response {
    *e.seen_auth.lock().unwrap() = auth(&headers);
    let base = e.base.lock().unwrap().clone();
    match e.creates.fetch_add(1, Ordering::SeqCst) {
        // JSON error naming the key in every field a client might show
        0 => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "success": false,
                "error": format!("rejected {}", auth(&headers)),
                "code": "ECHO",
                "status": 400,
                "headers": dump(&headers),
                "details": { "received": dump(&headers), "note": auth(&headers) },
            })),
        )
            .into_response(),
        // a plain-text 500 echoing the request head
        1 => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("upstream exploded\r\n{}", text_dump(&headers))).into_response()
        }
        // a 502 whose JSON error text is the key alone
        2 => (StatusCode::BAD_GATEWAY, Json(json!({"error": auth(&headers).trim_start_matches("Bearer ")})))
            .into_response(),
        // success, with the request echoed in the stream object
        n => (
            StatusCode::CREATED,
            Json(json!({
                "id": format!("str_echo{n}"),
                "whip_url": format!("{base}/whip"),
                "echo": dump(&headers),
                "note": auth(&headers),
            })),
        )
            .into_response(),
    }
}

async fn stream_any(State(e): State<Echo>, headers: HeaderMap) -> Response {
    *e.seen_auth.lock().unwrap() = auth(&headers);
    if e.statuses.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
        (StatusCode::OK, Json(json!({"success": true, "data": {"echo": dump(&headers)}}))).into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": auth(&headers), "details": dump(&headers)})))
            .into_response()
    }
}

async fn delete_streams(headers: HeaderMap) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot delete; you sent {}", auth(&headers))).into_response()
}

async fn whip(State(e): State<Echo>, headers: HeaderMap) -> Response {
    let remembered = e.seen_auth.lock().unwrap().clone();
    (StatusCode::BAD_REQUEST, format!("bad offer\r\n{}authorization: {remembered}\r\n", text_dump(&headers)))
        .into_response()
}

async fn start_echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let echo = Echo::default();
    *echo.base.lock().unwrap() = base.clone();
    let app = Router::new()
        .route("/v1/streams", post(create).delete(delete_streams))
        .route("/v1/streams/{*rest}", any(stream_any))
        .route("/whip", any(whip))
        .with_state(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn an_echoing_upstream_never_gets_the_key_into_a_response_or_a_log_line() {
    let logs = Logs::capture();

    let echo = start_echo().await;
    let gw = gateway(&echo, |_| {}).await;
    let b = Browser::new(&gw.base_url());
    let mut responses = Vec::new();

    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    let v = r.json();
    assert_eq!(r.status, 400, "{v}");
    assert_eq!(v["details"]["code"], "ECHO", "known fields are kept: {v}");
    assert!(v["details"].get("headers").is_none(), "unknown fields are dropped: {v}");
    responses.push(r);
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["details"].as_str().is_some_and(|d| d.contains("upstream exploded")), "{}", r.text());
    responses.push(r);
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 502, "{}", r.text());
    responses.push(r);
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    responses.push(r);
    let path = |tail: &str| format!("/api/daydream/streams/{id}{tail}");
    let r = b.get(&path("/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    responses.push(r);
    let r = b.get(&path("/status")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    responses.push(r);
    let r = b.patch_json(&path("/parameters"), &json!({"prompt": "x"})).await;
    responses.push(r);
    // the event stream relays the same statuses (both the echoing 200 and the echoing 500)
    let mut events = reqwest::Client::new()
        .get(format!("{}{}", b.base, path("/events")))
        .header("cookie", b.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut pushed = String::new();
    while pushed.matches("event: status").count() < 3 {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), events.chunk()).await;
        pushed.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap().unwrap()));
    }
    drop(events);
    assert!(pushed.contains(r#""phase":"error""#), "the failed status is pushed as an error: {pushed}");
    assert!(pushed.contains(r#""echo":"#), "the echoed status is pushed: {pushed}");
    assert!(!pushed.contains("TESTKEY"), "event stream contains the key: {pushed}");
    assert!(!pushed.to_ascii_lowercase().contains("bearer daydream"), "{pushed}");
    let r = b.sdp("POST", &path("/whip"), "v=0\r\n").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["details"].as_str().is_some_and(|d| d.contains("bad offer")), "{}", r.text());
    responses.push(r);
    let r = b.delete(&path("")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    responses.push(r);

    for (i, r) in responses.iter().enumerate() {
        assert!(!r.text().contains("TESTKEY"), "response {i} body contains the key: {}", r.text());
        assert!(!r.text().to_ascii_lowercase().contains("bearer daydream"), "response {i}: {}", r.text());
        for (name, value) in &r.headers {
            assert!(!String::from_utf8_lossy(value.as_bytes()).contains("TESTKEY"), "response {i} header {name}");
        }
    }
    gw.shutdown().await;
    let text = logs.text();
    assert!(text.contains("stream create failed upstream"), "the failures were logged: {text}");
    assert!(text.contains("stream delete failed"), "{text}");
    for line in text.lines() {
        assert!(!line.contains("TESTKEY"), "log line contains the key: {line}");
    }
}
