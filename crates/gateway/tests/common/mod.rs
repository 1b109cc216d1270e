//! Shared helpers: a real engine (with its real WebRTC media backend) behind
//! the test kit's request recorder, a gateway in front of it and a cookie-keeping
//! "browser" client. Everything talks over real sockets on 127.0.0.1.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use dreamgate_client::ApiKey;
use dreamgate_engine::{Engine, EngineConfig};
use dreamgate_gateway::whip_policy::WhipPolicy;
use dreamgate_gateway::{GatewayConfig, GatewayHandle, Mode};
use dreamgate_rtc::RtcConfig;
use dreamgate_testkit::{Hits, Recorder};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const KEY: &str = "daydream_live_TESTKEY_0123456789abcdef";

/// A real engine (its own router and control plane) served behind a recorder.
pub struct TestEngine {
    pub engine: Engine,
    pub base: String,
    /// Every request the engine received, as `"METHOD /path?query"`.
    pub hits: Hits,
    recorder: Recorder,
    task: JoinHandle<()>,
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestEngine {
    pub async fn start(cfg: EngineConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let engine = Engine::new(cfg, &base);
        let recorder = Recorder::new();
        let app = recorder.wrap(dreamgate_engine::router(engine.clone()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { engine, base, hits: recorder.hits(), recorder, task }
    }

    /// From now on, the engine makes each stream at once but its answer to
    /// `POST /v1/streams` is held until [`release_answers`](Self::release_answers).
    pub fn hold_answers(&self) {
        self.recorder.hold_answers(Method::POST, "/v1/streams");
    }

    /// Lets held (and later) create answers through.
    pub fn release_answers(&self) {
        self.recorder.release_answers();
    }

    /// While `true`, `DELETE /v1/streams` is answered 503 (recorded, never reaching the engine).
    pub fn fail_deletes(&self, fail: bool) {
        if fail {
            self.recorder.refuse(Method::DELETE, "/v1/streams", StatusCode::SERVICE_UNAVAILABLE);
        } else {
            self.recorder.accept();
        }
    }

    /// How many `DELETE /v1/streams?id=<id>` arrived (failed ones included).
    pub fn deletes_of(&self, id: &str) -> usize {
        self.hits.count(&format!("DELETE /v1/streams?id={id}"))
    }

    /// How many `POST /v1/streams` arrived.
    pub fn creates(&self) -> usize {
        self.hits.all().iter().filter(|h| h.starts_with("POST /v1/streams")).count()
    }

    /// From now on, `POST /v1/streams` is recorded on arrival, then held
    /// before the engine sees it, until [`release_creates`](Self::release_creates).
    pub fn hold_creates(&self) {
        self.recorder.hold(Method::POST, "/v1/streams");
    }

    /// Lets held (and later) creates through to the engine.
    pub fn release_creates(&self) {
        self.recorder.release();
    }

    /// Engine with the test key, `faults`, and its default (real WebRTC) media backend.
    pub async fn keyed(faults: &str) -> Self {
        Self::start(EngineConfig { api_key: Some(KEY.into()), faults: faults.parse().unwrap(), ..Default::default() })
            .await
    }

    pub fn stream_count(&self) -> usize {
        self.engine.streams().len()
    }

    pub fn params(&self, id: &str) -> Option<Value> {
        self.engine.streams().with(id, |r| serde_json::to_value(&r.params).unwrap())
    }
}

/// The test Redis (`DREAMGATE_TEST_REDIS`) as a store with a key prefix of
/// its own, or `None` (the reason printed: the caller skips).
pub fn redis_store(test: &str) -> Option<dreamgate_gateway::StoreConfig> {
    match std::env::var("DREAMGATE_TEST_REDIS") {
        Ok(url) if !url.is_empty() => {
            let unique = dreamgate_gateway::session::SessionId::generate();
            Some(dreamgate_gateway::StoreConfig::Redis { url, prefix: format!("dgtest:{test}:{}:", unique.as_str()) })
        }
        _ => {
            eprintln!("{test}: skipped: DREAMGATE_TEST_REDIS is not set (scripts/test.sh sets it)");
            None
        }
    }
}

/// A gateway in front of `api_base` (dev WHIP allowed: loopback engines).
pub async fn gateway(api_base: &str, tweak: impl FnOnce(&mut GatewayConfig)) -> GatewayHandle {
    let policy = WhipPolicy::with_defaults(Vec::<String>::new(), true).unwrap();
    let mut cfg = GatewayConfig::new(Mode::Local, api_base.parse().unwrap(), ApiKey::new(KEY), policy);
    tweak(&mut cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    dreamgate_gateway::start(listener, cfg).await.unwrap()
}

/// The usual setup: a keyed engine with `faults`, a default gateway in front
/// of it, and one browser on that gateway.
pub async fn stack(faults: &str) -> (TestEngine, GatewayHandle, Browser) {
    let eng = TestEngine::keyed(faults).await;
    let gw = gateway(&eng.base, |_| {}).await;
    let b = Browser::new(&gw.base_url());
    (eng, gw, b)
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
    /// Asserts a JSON error with this status and `error` text (and a message).
    pub fn assert_error(&self, status: u16, error: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        let v = self.json();
        assert_eq!(v["error"], error, "body: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {v}");
        v
    }
}

/// A browser: keeps its session cookie, sends the gateway's own Origin.
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    pub origin: Option<String>,
    cookie: Mutex<Option<String>>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.to_string(),
            origin: Some(base.to_string()),
            cookie: Mutex::new(None),
        }
    }

    pub fn set_cookie(&self, pair: &str) {
        *self.cookie.lock().unwrap() = Some(pair.to_string());
    }

    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    pub async fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(o) = &self.origin {
            req = req.header("origin", o);
        }
        if let Some(c) = self.cookie() {
            req = req.header("cookie", c);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if !body.is_empty() {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let pair = sc.to_str().unwrap().split(';').next().unwrap().to_string();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        let body = resp.bytes().await.unwrap().to_vec();
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None, vec![]).await
    }
    pub async fn post_json(&self, path: &str, v: &Value) -> Resp {
        self.request("POST", path, Some("application/json"), serde_json::to_vec(v).unwrap()).await
    }
    pub async fn patch_json(&self, path: &str, v: &Value) -> Resp {
        self.request("PATCH", path, Some("application/json"), serde_json::to_vec(v).unwrap()).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None, vec![]).await
    }
    pub async fn sdp(&self, method: &str, path: &str, sdp: &str) -> Resp {
        self.request(method, path, Some("application/sdp"), sdp.as_bytes().to_vec()).await
    }

    /// The end beacon as `navigator.sendBeacon` sends it: text/plain JSON
    /// `{streamId}`, or an empty body (the session's active stream).
    pub async fn end_beacon(&self, stream_id: Option<&str>) -> Resp {
        let body =
            stream_id.map(|id| serde_json::json!({ "streamId": id }).to_string().into_bytes()).unwrap_or_default();
        self.request("POST", "/api/daydream/streams/end", Some("text/plain;charset=UTF-8"), body).await
    }

    /// Creates a stream with the default payload; returns the stream object.
    pub async fn create(&self) -> Value {
        let r = self.post_json("/api/daydream/streams", &create_payload()).await;
        assert_eq!(r.status, 201, "create: {}", r.text());
        r.json()
    }
}

pub fn create_payload() -> Value {
    serde_json::to_value(dreamgate_model::default_create_payload()).unwrap()
}

/// A real WebRTC offer (H.264 video) from the rtc crate's publisher.
pub async fn whip_offer() -> (dreamgate_rtc::Publisher, String) {
    dreamgate_rtc::Publisher::new(&RtcConfig::default(), &[]).await.unwrap()
}

/// Every log line of this test process, at TRACE level, kept in memory. [`Logs::capture`]
/// installs the global tracing subscriber, so a test file that uses it holds a single test.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Installs the subscriber; the handle reads what was logged so far.
    pub fn capture() -> Logs {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
