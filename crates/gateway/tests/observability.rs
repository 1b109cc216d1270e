//! `/metrics`, `/healthz` and `/readyz` against a real engine over loopback.
//!
//! The metrics are process-wide, and the tests of this file run concurrently:
//! assertions are about samples that exist (or counts that grew), never about
//! exact totals.

mod common;

use common::*;
use serde_json::json;

/// A client with no cookie and no Origin (a probe or a scraper).
async fn plain_get(url: &str) -> Resp {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap().to_vec();
    Resp { status, headers, body }
}

/// Every label value of every sample line.
fn label_values(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, rest)) = line.split_once('{') else { continue };
        let Some((labels, _)) = rest.rsplit_once('}') else { continue };
        for pair in labels.split("\",") {
            let (_, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
            values.push(v.trim_end_matches('"').to_string());
        }
    }
    values
}

/// The value of the sample line starting with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_whole_flow_and_reveal_no_key_session_stream_or_whip_url() {
    let (eng, gw, b) = stack("").await;
    let created = b.create().await;
    let id = created["id"].as_str().unwrap().to_string();
    let whip_url = created["whip_url"].as_str().unwrap().to_string();
    let cookie = b.cookie().unwrap();
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    let path = |tail: &str| format!("/api/daydream/streams/{id}{tail}");
    assert_eq!(b.get(&path("/status")).await.status, 200);
    assert_eq!(b.patch_json(&path("/parameters"), &json!({ "prompt": "a lighthouse" })).await.status, 200);
    let (_publisher, offer) = whip_offer().await;
    let r = b.sdp("POST", &path("/whip"), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = b.request("PATCH", &path("/whip"), Some("text/plain"), b"x".to_vec()).await;
    assert_eq!(r.status, 415);
    assert_eq!(b.get("/api/daydream/streams/someone-elses/status").await.status, 403);
    assert_eq!(b.delete(&path("")).await.status, 200);

    let m = plain_get(&format!("{}/metrics", gw.base_url())).await;
    assert_eq!(m.status, 200, "{}", m.text());
    assert!(m.header("content-type").unwrap().starts_with("application/openmetrics-text"), "{:?}", m.headers);
    assert!(m.header("set-cookie").is_none(), "a scrape gets no session");
    let text = m.text();
    for needle in [
        "dreamgate_http_requests_total{route=\"/api/daydream/streams\",method=\"POST\",status=\"201\"}",
        "dreamgate_http_requests_total{route=\"/api/daydream/streams/{id}/status\",method=\"GET\",status=\"200\"}",
        "dreamgate_http_requests_total{route=\"/api/daydream/streams/{id}/status\",method=\"GET\",status=\"403\"}",
        "dreamgate_http_requests_total{route=\"/api/daydream/streams/{id}/parameters\",method=\"PATCH\",status=\"200\"}",
        "dreamgate_http_requests_total{route=\"/api/daydream/streams/{id}/whip\",method=\"POST\",status=\"201\"}",
        "dreamgate_http_requests_total{route=\"/api/daydream/streams/{id}\",method=\"DELETE\",status=\"200\"}",
        "dreamgate_upstream_request_duration_seconds_count{op=\"create\",outcome=\"ok\"}",
        "dreamgate_upstream_request_duration_seconds_count{op=\"status\",outcome=\"ok\"}",
        "dreamgate_upstream_request_duration_seconds_count{op=\"update\",outcome=\"ok\"}",
        "dreamgate_upstream_request_duration_seconds_count{op=\"whip\",outcome=\"ok\"}",
        "dreamgate_upstream_request_duration_seconds_count{op=\"delete\",outcome=\"ok\"}",
        "dreamgate_signal_proxy_requests_total{leg=\"whip\",action=\"offer\",result=\"ok\"}",
        "dreamgate_signal_proxy_requests_total{leg=\"whip\",action=\"trickle\",result=\"rejected\"}",
        "dreamgate_streams_open 0",
        "dreamgate_sessions ",
        "dreamgate_streams_reaped_total ",
        "dreamgate_stream_deletes_failed_total ",
        "dreamgate_rate_limited_total ",
        "dreamgate_whep_offers_held_total ",
        "dreamgate_store_operation_duration_seconds_count{op=\"resume_and_authorize\"}",
        "dreamgate_store_operation_duration_seconds_count{op=\"begin_create\"}",
        "dreamgate_store_operation_duration_seconds_count{op=\"begin_delete\"}",
    ] {
        assert!(sample(&text, needle).is_some_and(|v| v >= 0.0), "{needle:?} missing from:\n{text}");
    }
    assert!(sample(&text, "dreamgate_sessions ").unwrap() >= 1.0);
    assert!(text.ends_with("# EOF\n"));

    let secrets = [KEY, cookie_value.as_str(), id.as_str(), whip_url.as_str()];
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} in the metrics:\n{text}");
    }
    for value in label_values(&text) {
        assert!(!value.contains("someone-elses"), "a raw path in a label: {value:?}");
        for secret in secrets {
            assert!(!value.contains(secret), "{secret:?} in a label value");
        }
    }
    drop(eng);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_alive_and_readyz_asks_upstream_without_creating_anything() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |_| {}).await;

    let h = plain_get(&format!("{}/healthz", gw.base_url())).await;
    assert_eq!((h.status, h.json()), (200, json!({ "status": "ok" })));
    assert!(h.header("set-cookie").is_none());
    assert_eq!(h.header("cache-control").as_deref(), Some("no-store"));

    let r = plain_get(&format!("{}/readyz", gw.base_url())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({ "status": "ready", "checks": { "upstream": "ok", "store": "ok" } }));
    assert!(r.header("set-cookie").is_none());
    assert_eq!(eng.stream_count(), 0, "the probe creates nothing");
    assert_eq!(eng.hits.all(), vec!["GET /v1/streams/dreamgate-readiness-probe".to_string()]);

    // a key upstream refuses: not ready, and the reason names no key
    let wrong = gateway(&eng.base, |cfg| cfg.api_key = dreamgate_client::ApiKey::new("daydream_live_WRONG_0000")).await;
    let r = plain_get(&format!("{}/readyz", wrong.base_url())).await;
    let v = r.assert_error(503, "Not ready");
    assert_eq!(v["message"], "the upstream API refuses the API key");
    assert_eq!(v["checks"]["store"], "ok");
    assert!(!r.text().contains("WRONG") && !r.text().contains(KEY));

    // upstream down: not ready, the reason names no address
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}")
    };
    let gw_down = gateway(&down, |_| {}).await;
    let r = plain_get(&format!("{}/readyz", gw_down.base_url())).await;
    let v = r.assert_error(503, "Not ready");
    assert_eq!(v["message"], "the upstream API is unreachable");
    assert!(!r.text().contains(&down[7..]), "{}", r.text());
    // ... and /healthz still says alive
    assert_eq!(plain_get(&format!("{}/healthz", gw_down.base_url())).await.status, 200);

    // the probe routes answer like the others for other methods
    let b = Browser::new(&gw.base_url());
    b.request("POST", "/healthz", None, vec![]).await.assert_error(405, "Method not allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_metrics_listener_takes_metrics_off_the_main_one() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let ops = gw.metrics_addr().expect("metrics listener bound");
    assert_ne!(ops, gw.local_addr());

    let main = plain_get(&format!("{}/metrics", gw.base_url())).await;
    main.assert_error(404, "Not found");
    let m = plain_get(&format!("http://{ops}/metrics")).await;
    assert_eq!(m.status, 200);
    assert!(m.text().contains("# TYPE dreamgate_streams_open gauge"), "{}", m.text());
    assert_eq!(plain_get(&format!("http://{ops}/healthz")).await.status, 200);
    assert_eq!(plain_get(&format!("http://{ops}/readyz")).await.status, 200);
    // the main listener keeps the probes (a load balancer checks them there)
    assert_eq!(plain_get(&format!("{}/healthz", gw.base_url())).await.status, 200);
    // the metrics listener serves nothing else
    assert_eq!(plain_get(&format!("http://{ops}/api/daydream/config")).await.status, 404);

    gw.shutdown().await;
    assert!(reqwest::get(format!("http://{ops}/metrics")).await.is_err(), "stopped with the gateway");
}

/// A stand-in for Daydream whose status answer the test sets.
async fn status_upstream(body: std::sync::Arc<std::sync::Mutex<&'static str>>) -> String {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/v1/streams",
            post(|| async { axum::Json(json!({ "id": "str_standin1", "whip_url": "http://127.0.0.1:9/whip" })) }),
        )
        .route(
            "/v1/streams/{id}/status",
            get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], *body.lock().unwrap()) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_body_is_relayed_as_sent_and_one_that_is_not_json_is_502() {
    let body = std::sync::Arc::new(std::sync::Mutex::new(""));
    let base = status_upstream(body.clone()).await;
    let gw = gateway(&base, |_| {}).await;
    let b = Browser::new(&gw.base_url());
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let path = format!("/api/daydream/streams/{id}/status");

    let sent = "{ \"success\" : true,\n  \"data\": {\"gateway_status\": {\"whep_url\": \"http://127.0.0.1:9/whep\"}, \"n\": 1.50} }";
    *body.lock().unwrap() = sent;
    let r = b.get(&path).await;
    assert_eq!((r.status, r.text().as_str()), (200, sent), "byte for byte");
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));

    *body.lock().unwrap() = "  ";
    let r = b.get(&path).await;
    assert_eq!((r.status, r.text().as_str()), (200, "null"));

    for bad in ["<html>busy</html>", "{\"data\": ", "{} {}"] {
        *body.lock().unwrap() = bad;
        let v = b.get(&path).await.assert_error(502, "Invalid upstream response");
        assert!(v["message"].as_str().unwrap().contains("not JSON"), "{v}");
    }
}
