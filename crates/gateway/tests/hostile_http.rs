//! Hostile HTTP clients at the request edge, over loopback: DNS rebinding
//! (foreign `Host`), stream floods from one address (per-client limits,
//! forged `X-Forwarded-For`), and error messages that would disclose
//! internals (heap addresses, the internal API URL).

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use dreamgate_gateway::limits::LimitsConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw HTTP/1.1 request (`Connection: close`): status and body.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    origin: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn error_of(body: &str) -> Value {
    // the body may be chunked: take the JSON object inside
    let start = body.find('{').unwrap_or_else(|| panic!("no JSON in {body:?}"));
    let end = body.rfind('}').unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[tokio::test]
async fn dns_rebinding_host_gets_421_and_creates_nothing_upstream() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| cfg.public_url = Some("https://dream.example.com".parse().unwrap())).await;
    let addr = gw.local_addr();
    let port = addr.port();
    let payload = create_payload().to_string();
    let rebind = format!("rebind.example:{port}");
    let origin = format!("http://rebind.example:{port}");

    let (status, body) = raw(addr, "POST", "/api/daydream/streams", &rebind, Some(&origin), &payload).await;
    assert_eq!(status, 421, "{body}");
    let v = error_of(&body);
    assert_eq!(v["error"], "Misdirected request", "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(!body.contains("dreamgate_session"), "no session issued: {body}");
    let (status, _) = raw(addr, "GET", "/api/daydream/config", &rebind, None, "").await;
    assert_eq!(status, 421);
    assert!(!eng.hits.any("POST /v1/streams"), "nothing created upstream: {:?}", eng.hits.all());
    assert_eq!(eng.stream_count(), 0);

    // the page itself is static and served whatever the Host
    let (status, _) = raw(addr, "GET", "/", &rebind, None, "").await;
    assert_eq!(status, 200);
    // the listen address, loopback names and the public host are this gateway
    for host in [addr.to_string(), format!("localhost:{port}"), format!("[::1]:{port}"), "dream.example.com".into()] {
        let (status, body) = raw(addr, "GET", "/api/daydream/config", &host, None, "").await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    // the public origin may create (Host and Origin both the public URL's)
    let (status, body) =
        raw(addr, "POST", "/api/daydream/streams", "dream.example.com", Some("https://dream.example.com"), &payload)
            .await;
    assert_eq!(status, 201, "{body}");
    gw.shutdown().await;
}

/// A cookieless client (a fresh session per request) from `local`, with an optional `X-Forwarded-For`.
async fn cookieless_create(base: &str, local: IpAddr, forwarded_for: Option<&str>) -> Resp {
    let http = reqwest::Client::builder().local_address(local).build().unwrap();
    let mut req = http
        .post(format!("{base}/api/daydream/streams"))
        .header("origin", base)
        .header("content-type", "application/json")
        .body(create_payload().to_string());
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap().to_vec();
    Resp { status, headers, body }
}

fn assert_429(r: &Resp) {
    let v = r.assert_error(429, "Too many requests");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(v["retryAfter"], retry);
}

#[tokio::test]
async fn one_address_flooding_cookieless_creates_hits_the_live_stream_cap_and_forged_forwarded_for_is_ignored() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |_| {}).await;
    let base = gw.base_url();
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    let mut statuses = Vec::new();
    for i in 0..30 {
        // every request forges another client address: the peer is no trusted proxy
        let r = cookieless_create(&base, me, Some(&format!("198.51.100.{i}"))).await;
        if r.status == 429 {
            assert_429(&r);
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 27, "{statuses:?}");
    assert_eq!(eng.stream_count(), 3, "only three paid streams");
    // operators see them (a process-wide counter: other tests here add to it, never take away)
    let m = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let limited =
        m.lines().find_map(|l| l.strip_prefix("dreamgate_rate_limited_total ")).map(|v| v.parse::<f64>().unwrap());
    assert!(limited.is_some_and(|n| n >= 27.0), "{limited:?}");
    // another client address is not affected
    let other = cookieless_create(&base, "127.0.0.2".parse().unwrap(), None).await;
    assert_eq!(other.status, 201, "{}", other.text());
    gw.shutdown().await;
}

#[tokio::test]
async fn forwarded_for_is_used_only_from_a_trusted_proxy() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| {
        cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        cfg.client_limits.live_streams_per_address = 2;
    })
    .await;
    let base = gw.base_url();
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    // distinct clients behind the proxy: each counted on its own
    for i in 0..4 {
        let r = cookieless_create(&base, proxy, Some(&format!("6.6.6.6, 203.0.113.{i}"))).await;
        assert_eq!(r.status, 201, "client {i}: {}", r.text());
    }
    // one client behind the proxy: capped (the left-most, forged entry is not believed)
    let same = |n: u32| format!("192.0.2.{n}, 203.0.113.77");
    assert_eq!(cookieless_create(&base, proxy, Some(&same(1))).await.status, 201);
    assert_eq!(cookieless_create(&base, proxy, Some(&same(2))).await.status, 201);
    assert_429(&cookieless_create(&base, proxy, Some(&same(3))).await);
    // a peer that is not the proxy: its X-Forwarded-For is ignored
    let stranger: IpAddr = "127.0.0.3".parse().unwrap();
    assert_eq!(cookieless_create(&base, stranger, Some("203.0.113.50")).await.status, 201);
    assert_eq!(cookieless_create(&base, stranger, Some("203.0.113.51")).await.status, 201);
    assert_429(&cookieless_create(&base, stranger, Some("203.0.113.52")).await);
    gw.shutdown().await;
}

#[tokio::test]
async fn creates_per_minute_are_capped_per_session_and_per_address() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| {
        cfg.client_limits = LimitsConfig {
            live_streams_per_address: 0,
            creates_per_session: 3,
            creates_per_address: 5,
            ..cfg.client_limits
        };
    })
    .await;
    let b = Browser::new(&gw.base_url());
    for _ in 0..3 {
        let id = b.create().await["id"].as_str().unwrap().to_string();
        assert_eq!(b.delete(&format!("/api/daydream/streams/{id}")).await.status, 200);
    }
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_429(&r);
    assert!(r.json()["message"].as_str().unwrap().contains("session"), "{}", r.text());
    // the address has 3 creates counted (the one its session was refused is not):
    // two more fresh sessions pass, the next does not
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(cookieless_create(&gw.base_url(), me, None).await.status, 201);
    assert_eq!(cookieless_create(&gw.base_url(), me, None).await.status, 201);
    let r = cookieless_create(&gw.base_url(), me, None).await;
    assert_429(&r);
    assert!(r.json()["message"].as_str().unwrap().contains("address"), "{}", r.text());
    gw.shutdown().await;
}

/// Nothing that names an address, a URL or internals.
fn assert_plain(text: &str) {
    for bad in ["0x7", "PointerOffset", "http://", "https://", "127.0.0.1", "/v1/streams", "backtrace"] {
        assert!(!text.contains(bad), "{bad:?} disclosed in {text}");
    }
}

#[tokio::test]
async fn errors_disclose_no_heap_address_and_no_internal_url() {
    // an unparseable offer through the WHIP proxy: the engine's parse error is relayed plainly
    let (_eng, gw, b) = stack("").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let r = b.sdp("POST", &format!("/api/daydream/streams/{id}/whip"), "hello").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_plain(&r.text());
    gw.shutdown().await;

    // an API base nobody listens on: 502 without the internal URL
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = gateway(&dead, |_| {}).await;
    let b = Browser::new(&gw.base_url());
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    r.assert_error(502, "Upstream unreachable");
    assert_plain(&r.text());
    assert!(!r.text().contains(&dead[7..]), "{}", r.text());
}
