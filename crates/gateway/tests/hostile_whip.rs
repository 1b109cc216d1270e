//! Hostile WHIP/WHEP URLs from upstream are never contacted.
//!
//! A tiny local "Daydream" hands out stream objects whose `whip_url` is
//! hostile; a trap listener records every TCP connection it receives. Most
//! hostile URLs point at the trap (loopback IP literals, userinfo, encodings,
//! plain http), so a policy hole would show up as a hit.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Accepts TCP connections and counts them; answers nothing useful.
struct Trap {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Trap {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        Self { port, hits }
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Default)]
struct Fake {
    whip_urls: Arc<Mutex<VecDeque<String>>>,
    deleted: Arc<Mutex<Vec<String>>>,
    next: Arc<AtomicUsize>,
    /// Headers the fake WHIP endpoint answers with.
    whip_headers: Arc<Mutex<Vec<(String, String)>>>,
    whip_status: Arc<Mutex<u16>>,
    status_whep: Arc<Mutex<String>>,
    whip_hits: Arc<Mutex<Vec<String>>>,
}

async fn fake_create(State(f): State<Fake>) -> Response {
    let n = f.next.fetch_add(1, Ordering::SeqCst);
    let whip = f.whip_urls.lock().unwrap().pop_front().unwrap_or_default();
    (
        StatusCode::CREATED,
        Json(json!({
            "id": format!("str_fake{n}"),
            "stream_key": format!("stk_fake{n}"),
            "whip_url": whip,
            "output_playback_id": "pb",
            "pipeline": "streamdiffusion",
            "params": {"model_id": "stabilityai/sd-turbo"},
        })),
    )
        .into_response()
}

async fn fake_delete(State(f): State<Fake>, Query(q): Query<Vec<(String, String)>>) -> Json<Value> {
    for (k, v) in q {
        if k == "id" {
            f.deleted.lock().unwrap().push(v);
        }
    }
    Json(json!({"success": true, "data": {}}))
}

async fn fake_status(State(f): State<Fake>) -> Json<Value> {
    let whep = f.status_whep.lock().unwrap().clone();
    Json(json!({"success": true, "error": null, "data": {"state": "ONLINE", "gateway_status": {"whep_url": whep}}}))
}

async fn fake_whip(State(f): State<Fake>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    f.whip_hits.lock().unwrap().push(format!("{method} {uri}"));
    let status = StatusCode::from_u16(*f.whip_status.lock().unwrap()).unwrap();
    let mut h = HeaderMap::new();
    for (k, v) in f.whip_headers.lock().unwrap().iter() {
        h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h.insert("content-type", "application/sdp".parse().unwrap());
    (status, h, "v=0\r\n").into_response()
}

async fn fake_upstream(f: Fake) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/streams", post(fake_create).delete(fake_delete))
        .route("/v1/streams/{id}/status", get(fake_status))
        .route("/whip", post(fake_whip).patch(fake_whip).delete(fake_whip))
        .route("/whip/{*rest}", post(fake_whip).patch(fake_whip).delete(fake_whip))
        .with_state(f);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn hostile_whip_urls_from_create_are_refused_without_contact() {
    let trap = Trap::start().await;
    let t = trap.port;
    let fake = Fake::default();
    let upstream = fake_upstream(fake.clone()).await;
    // prod: DAYDREAM_WHIP_ALLOW_DEV unset; dev: set (loopback http allowed)
    // (one browser tries dozens of creates: the per-client limits are off here)
    let dev = gateway(&upstream, |cfg| cfg.client_limits = dreamgate_gateway::limits::LimitsConfig::unlimited()).await;
    let prod = gateway(&upstream, |cfg| {
        cfg.whip_policy = cfg.whip_policy.clone().with_dev(false);
        cfg.client_limits = dreamgate_gateway::limits::LimitsConfig::unlimited();
    })
    .await;

    // (hostile URL, refused in dev mode too?)
    let table: Vec<(String, bool)> = vec![
        // plain http / other schemes at the trap
        (format!("http://127.0.0.1:{t}/whip"), false),
        (format!("ftp://127.0.0.1:{t}/whip"), true),
        (format!("ws://127.0.0.1:{t}/whip"), true),
        (format!("file://127.0.0.1:{t}/whip"), true),
        (format!("javascript://127.0.0.1:{t}/%0aalert(1)"), true),
        // userinfo
        (format!("http://user@127.0.0.1:{t}/whip"), true),
        (format!("http://ai.livepeer.com@127.0.0.1:{t}/whip"), true),
        (format!("https://ai.livepeer.com:pw@127.0.0.1:{t}/whip"), true),
        (format!("http://user:pass@localhost:{t}/whip"), true),
        // IP literals in other spellings
        (format!("https://127.0.0.1:{t}/whip"), false),
        (format!("http://2130706433:{t}/whip"), false),
        (format!("http://[::ffff:127.0.0.1]:{t}/whip"), true),
        (format!("http://0.0.0.0:{t}/whip"), true),
        (format!("http://10.255.255.1:{t}/whip"), true),
        ("https://169.254.169.254/latest/meta-data/".to_string(), true),
        // encodings and unicode
        (format!("http://127.0.0.1%3A{t}/whip"), true),
        (format!("http://%31%32%37.0.0.1:{t}/whip"), true),
        (format!("http://127\u{ff0e}0\u{ff0e}0\u{ff0e}1:{t}/whip"), true),
        (format!("http://local\u{0127}ost:{t}/whip"), true),
        (format!("http://127.0.0.1:{t}\\@ai.livepeer.com/whip"), true),
        (format!("http:/127.0.0.1:{t}/whip"), true),
        (format!("http:127.0.0.1:{t}/whip"), true),
        (format!(" http://127.0.0.1:{t}/whip"), true),
        (format!("http://127.0.0.1:{t}/wh\nip"), true),
        // look-alike domains, trailing dots, ports
        ("https://evildaydream.live/whip".to_string(), true),
        ("https://daydream.live.evil.com/whip".to_string(), true),
        ("https://livepeer.com.evil.com/whip".to_string(), true),
        ("https://ai.livepeer.com./whip".to_string(), true),
        ("https://daydream%2elive/whip".to_string(), true),
        ("https://xn--dydream-8nf.live/whip".to_string(), true),
        (format!("https://ai.livepeer.com:{t}/whip"), true),
        ("https://ai.livepeer.com/whip#frag".to_string(), true),
        ("not a url".to_string(), true),
        (String::new(), true),
    ];

    let mut created = 0;
    for (url, refused_in_dev) in &table {
        let mut gws = vec![&prod];
        if *refused_in_dev {
            gws.push(&dev);
        }
        for gw in gws {
            fake.whip_urls.lock().unwrap().push_back(url.clone());
            let b = Browser::new(&gw.base_url());
            let r = b.post_json("/api/daydream/streams", &create_payload()).await;
            created += 1;
            let v = r.assert_error(502, "WHIP URL not allowed");
            assert!(v["message"].as_str().unwrap().contains("DAYDREAM_WHIP_ALLOWED_HOSTS"), "{v}");
            // the refused (paid) stream was deleted upstream, and the session may retry
            let deleted = fake.deleted.lock().unwrap().clone();
            assert!(deleted.contains(&format!("str_fake{}", created - 1)), "{url:?}: not deleted: {deleted:?}");
            assert_eq!(gw.open_streams().await, 0);
            assert_eq!(trap.hits(), 0, "{url:?} reached the trap");
        }
    }
    assert!(fake.whip_hits.lock().unwrap().is_empty());

    // Positive control: the trap does record hits. In dev mode a loopback
    // http URL is allowed, the stream is kept, and the WHIP POST reaches it.
    fake.whip_urls.lock().unwrap().push_back(format!("http://127.0.0.1:{t}/whip"));
    let b = Browser::new(&dev.base_url());
    let stream = b.create().await;
    let (_p, offer) = whip_offer().await;
    let r = b.sdp("POST", &format!("/api/daydream/streams/{}/whip", stream["id"].as_str().unwrap()), &offer).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(trap.hits() >= 1, "the trap did not see an allowed request");
}

#[tokio::test]
async fn hostile_urls_in_whip_answers_and_status_are_never_used() {
    let trap = Trap::start().await;
    let t = trap.port;
    let fake = Fake::default();
    let upstream = fake_upstream(fake.clone()).await;
    let gw = gateway(&upstream, |_| {}).await; // dev mode: the fake upstream is loopback http

    *fake.whip_status.lock().unwrap() = 201;
    *fake.whip_headers.lock().unwrap() = vec![
        ("location".into(), format!("http://user@127.0.0.1:{t}/resource")),
        ("livepeer-playback-url".into(), "https://evildaydream.live/whep".into()),
        ("etag".into(), "\"e1\"".into()),
    ];
    *fake.status_whep.lock().unwrap() = format!("http://127.0.0.1:{t}@evil.com/whep");
    fake.whip_urls.lock().unwrap().push_back(format!("{upstream}/whip"));

    let b = Browser::new(&gw.base_url());
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    let (_p, offer) = whip_offer().await;
    let r = b.sdp("POST", &format!("/api/daydream/streams/{id}/whip"), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location").unwrap(), format!("{}/api/daydream/streams/{id}/whip", b.base));
    assert_eq!(r.header("etag").as_deref(), Some("\"e1\""));
    assert!(r.header("livepeer-playback-url").is_none(), "a refused WHEP URL was advertised");

    // the refused Location is not used: trickle goes to the WHIP URL itself,
    // teardown has no resource to delete
    let r = b
        .request(
            "PATCH",
            &format!("/api/daydream/streams/{id}/whip"),
            Some("application/trickle-ice-sdpfrag"),
            b"a=x\r\n".to_vec(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(b.delete(&format!("/api/daydream/streams/{id}/whip")).await.status, 204);
    // WHEP: the answer's URL was refused, the status one too -> not ready
    let r = b.sdp("POST", &format!("/api/daydream/streams/{id}/whep"), &offer).await;
    r.assert_error(404, "Playback not ready");
    // status passes through, but its hostile WHEP URL is not adopted
    assert_eq!(b.get(&format!("/api/daydream/streams/{id}/status")).await.status, 200);
    b.sdp("POST", &format!("/api/daydream/streams/{id}/whep"), &offer).await.assert_error(404, "Playback not ready");

    assert_eq!(fake.whip_hits.lock().unwrap().clone(), vec!["POST /whip".to_string(), "PATCH /whip".to_string()]);
    assert_eq!(trap.hits(), 0);
}

#[tokio::test]
async fn whip_redirects_are_not_followed() {
    let trap = Trap::start().await;
    let fake = Fake::default();
    let upstream = fake_upstream(fake.clone()).await;
    let gw = gateway(&upstream, |_| {}).await;
    *fake.whip_status.lock().unwrap() = 307;
    *fake.whip_headers.lock().unwrap() = vec![("location".into(), format!("http://127.0.0.1:{}/whip", trap.port))];
    fake.whip_urls.lock().unwrap().push_back(format!("{upstream}/whip"));
    let b = Browser::new(&gw.base_url());
    let stream = b.create().await;
    let (_p, offer) = whip_offer().await;
    let r = b.sdp("POST", &format!("/api/daydream/streams/{}/whip", stream["id"].as_str().unwrap()), &offer).await;
    let v = r.assert_error(502, "Upstream redirect refused");
    assert_eq!(v["upstreamStatus"], 307);
    assert!(r.header("location").is_none());
    assert_eq!(trap.hits(), 0, "the redirect was followed");
}

#[tokio::test]
async fn no_authorization_header_is_sent_to_whip() {
    let fake = Fake::default();
    let upstream = fake_upstream(fake.clone()).await;
    // a WHIP endpoint that records the Authorization header it gets
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen2 = seen.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let whip_base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/whip",
        post(move |h: HeaderMap| {
            let seen = seen2.clone();
            async move {
                seen.lock().unwrap().push(h.get("authorization").map(|v| v.to_str().unwrap().to_string()));
                (StatusCode::CREATED, [("content-type", "application/sdp")], "v=0\r\n")
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    fake.whip_urls.lock().unwrap().push_back(format!("{whip_base}/whip"));
    let gw = gateway(&upstream, |_| {}).await;
    let b = Browser::new(&gw.base_url());
    let stream = b.create().await;
    let r = b.sdp("POST", &format!("/api/daydream/streams/{}/whip", stream["id"].as_str().unwrap()), "v=0\r\n").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(seen.lock().unwrap().clone(), vec![None]);
}
