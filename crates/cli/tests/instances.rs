//! `dreamgate serve` processes sharing one Redis (`--store`) in front of one
//! engine (daydream mode: `DAYDREAM_API_GATEWAY` names the engine, behind a
//! request recorder). Skipped, with the reason printed, when
//! `DREAMGATE_TEST_REDIS` is unset (`scripts/test.sh` starts a Redis and sets it).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dreamgate_testkit::{eventually, Hits, Recorder};
use serde_json::{json, Value};

const KEY: &str = "daydream_live_INSTANCES_TESTKEY_0123456789";

/// The engine behind the test kit's recorder (`"METHOD /path?query"` lines).
struct Engine {
    engine: dreamgate_engine::Engine,
    base: String,
    hits: Hits,
}

impl Engine {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = dreamgate_engine::EngineConfig { api_key: Some(KEY.into()), ..Default::default() };
        let engine = dreamgate_engine::Engine::new(cfg, &base);
        let recorder = Recorder::new();
        let app = recorder.wrap(dreamgate_engine::router(engine.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { engine, base, hits: recorder.hits() }
    }

    fn streams(&self) -> usize {
        self.engine.streams().len()
    }

    fn deletes_of(&self, id: &str) -> usize {
        self.hits.count(&format!("DELETE /v1/streams?id={id}"))
    }
}

/// A running `dreamgate serve`, killed (SIGKILL) when dropped.
struct Gateway {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

impl Gateway {
    /// Starts `dreamgate serve` on a free port in front of `engine`, with
    /// `store` and `prefix`, reaping streams silent for 5 s.
    fn start(engine: &Engine, store: &str, prefix: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
            .args(["serve", "--listen", "127.0.0.1:0", "--reap-after", "5", "--store-prefix", prefix])
            .env("DREAMGATE_STORE", store)
            .env("DAYDREAM_API_KEY", KEY)
            .env("DAYDREAM_API_GATEWAY", &engine.base)
            .env("DAYDREAM_WHIP_ALLOW_DEV", "1")
            .env_remove("DAYDREAM_WHIP_ALLOWED_HOSTS")
            .env("DREAMGATE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dreamgate serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no address logged; stderr:\n{}", seen.join("\n")));
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("dreamgate: open ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Self { child, base, log: rx }
    }

    /// SIGTERM, then waits (at most 30 s) for a clean exit; the rest of its log.
    fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "no exit after SIGTERM");
            thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}");
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: its cookie, sent to whichever gateway it is balanced to.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self { http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(), cookie: None }
    }

    async fn send(&mut self, gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", gw.base)).header("origin", &gw.base);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        if let Some(sc) = resp.headers().get("set-cookie") {
            self.cookie = Some(sc.to_str().unwrap().split(';').next().unwrap().to_string());
        }
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn create(&mut self, gw: &Gateway) -> String {
        let payload = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
        let (status, stream) = self.send(gw, "POST", "/api/daydream/streams", Some(payload)).await;
        assert_eq!(status, 201, "{stream}");
        stream["id"].as_str().unwrap().to_string()
    }
}

fn redis() -> Option<String> {
    match std::env::var("DREAMGATE_TEST_REDIS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: DREAMGATE_TEST_REDIS is not set (scripts/test.sh sets it)");
            None
        }
    }
}

fn prefix(test: &str) -> String {
    format!("dgcli:{test}:{}:{}:", std::process::id(), rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_keeps_the_dream_and_silence_then_deletes_it_once() {
    let Some(store) = redis() else { return };
    let engine = Engine::start().await;
    let prefix = prefix("kill9");
    let a = Gateway::start(&engine, &store, &prefix);
    let b = Gateway::start(&engine, &store, &prefix);
    let mut browser = Browser::new();
    let id = browser.create(&a).await;
    let status = format!("/api/daydream/streams/{id}/status");

    drop(a); // kill -9

    // the same browser, now balanced to B, carries on (within the 5 s reap window)
    for _ in 0..3 {
        let (code, body) = browser.send(&b, "GET", &status, None).await;
        assert_eq!(code, 200, "{body}");
    }
    let params = json!({"prompt": "still dreaming"});
    let (code, body) = browser.send(&b, "PATCH", &format!("/api/daydream/streams/{id}/parameters"), Some(params)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(engine.deletes_of(&id), 0);

    // the browser leaves: after the reap window, exactly one DELETE, by B
    assert!(eventually(Duration::from_secs(20), || engine.streams() == 0).await, "the stream outlived its session");
    assert_eq!(engine.deletes_of(&id), 1);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_deletes_nothing_and_the_restarted_instance_keeps_the_session() {
    let Some(store) = redis() else { return };
    let engine = Engine::start().await;
    let prefix = prefix("restart");
    let a = Gateway::start(&engine, &store, &prefix);
    let mut browser = Browser::new();
    let id = browser.create(&a).await;

    let log = a.terminate(); // a deploy
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert_eq!(engine.deletes_of(&id), 0, "the deploy deleted the stream");
    assert_eq!(engine.streams(), 1);

    let again = Gateway::start(&engine, &store, &prefix);
    let (code, body) = browser.send(&again, "GET", &format!("/api/daydream/streams/{id}/status"), None).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = browser.send(&again, "DELETE", &format!("/api/daydream/streams/{id}"), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(engine.streams(), 0);
    assert_eq!(engine.deletes_of(&id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_refuses_to_start() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &format!("redis://:hunter2@{closed}/0")])
        .env_remove("DAYDREAM_API_KEY")
        .env_remove("DREAMGATE_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Redis unreachable"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the Redis password was printed: {stderr}");
}
