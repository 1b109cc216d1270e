//! The API key never appears in a response (body or header) or a log line.
//!
//! This file installs a global tracing subscriber at TRACE level writing to a
//! buffer, so it holds a single test.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_key_is_in_no_response_and_no_log_line() {
    let logs = Logs::capture();

    let wrong_key = "daydream_live_WRONGKEY_fedcba9876543210";
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |_| {}).await;
    let wrong = gateway(&eng.base, |cfg| cfg.api_key = dreamgate_client::ApiKey::new(wrong_key)).await;

    let b = Browser::new(&gw.base_url());
    let mut responses = Vec::new();
    responses.push(b.get("/").await);
    responses.push(b.get("/api/daydream/config").await);
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    responses.push(r);
    let path = |tail: &str| format!("/api/daydream/streams/{id}{tail}");
    responses.push(b.get(&path("/status")).await);
    responses.push(b.patch_json(&path("/parameters"), &json!({"prompt": "secret?"})).await);
    responses.push(b.patch_json(&path("/parameters"), &json!({"width": 1})).await);
    let (_p, offer) = whip_offer().await;
    responses.push(b.sdp("POST", &path("/whip"), &offer).await);
    responses.push(b.sdp("POST", &path("/whep"), &offer).await);
    responses.push(b.post_json("/api/daydream/streams", &create_payload()).await); // 409
    responses.push(b.delete(&path("")).await);
    responses.push(b.end_beacon(None).await);
    // the engine refuses a wrong key: the refusal is relayed without either key
    let w = Browser::new(&wrong.base_url());
    let r = w.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    responses.push(r);

    for (i, r) in responses.iter().enumerate() {
        for secret in [KEY, wrong_key, "TESTKEY", "WRONGKEY"] {
            assert!(!r.text().contains(secret), "response {i} body contains the key: {}", r.text());
            for (name, value) in &r.headers {
                assert!(!String::from_utf8_lossy(value.as_bytes()).contains(secret), "response {i} header {name}");
            }
        }
    }
    // the gateway logged its work (so the check below looks at real lines)
    gw.shutdown().await;
    let text = logs.text();
    assert!(text.contains("dreamgate gateway listening"), "{text}");
    assert!(text.contains("stream created"), "{text}");
    assert!(text.contains("whip_allowlist"), "{text}");
    for secret in ["TESTKEY", "WRONGKEY"] {
        for line in text.lines() {
            assert!(!line.contains(secret), "log line contains the key: {line}");
        }
    }
}
