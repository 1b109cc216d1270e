//! Issue 9 (Daydream-compatible for real), over loopback HTTP against a real engine: CORS on
//! the WHIP/WHEP URLs, the published body shapes, the caller's stream list, closed params,
//! and DELETEs of resources the engine ended itself.

use std::sync::Arc;
use std::time::Duration;

use dreamgate_engine::{start, EngineConfig, EngineHandle, MediaBackend, NoMedia};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "daydream_live_compat_key";
const ORIGIN: &str = "https://app.example";

async fn engine(cfg: EngineConfig) -> EngineHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, cfg).await
}

async fn no_media_engine(faults: &str) -> EngineHandle {
    let media: Arc<dyn MediaBackend> = Arc::new(NoMedia);
    engine(EngineConfig {
        api_key: Some(KEY.into()),
        media: Some(media),
        faults: faults.parse().unwrap(),
        ..Default::default()
    })
    .await
}

fn payload() -> Value {
    serde_json::to_value(dreamgate_model::default_create_payload()).unwrap()
}

async fn call(method: Method, url: &str, key: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn create(h: &EngineHandle, key: &str, body: &Value) -> (u16, Value) {
    call(Method::POST, &format!("{}/v1/streams", h.base_url()), Some(key), Some(body)).await
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

#[tokio::test]
async fn whip_and_whep_urls_answer_cors_preflights_and_every_answer_allows_any_origin() {
    let h = no_media_engine("").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let whip = stream["whip_url"].as_str().unwrap().to_owned();
    let whep = format!("{}/live/video-to-video/{}/whep", h.base_url(), stream["id"].as_str().unwrap());
    let http = reqwest::Client::new();
    for (url, method) in [
        (whip.clone(), "POST"),
        (format!("{whip}/ses_anything"), "DELETE"),
        (format!("{whip}/ses_anything"), "PATCH"),
        (whep.clone(), "POST"),
        (format!("{whep}/vwr_anything"), "DELETE"),
    ] {
        let resp = http
            .request(Method::OPTIONS, &url)
            .header("origin", ORIGIN)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, authorization, if-match")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{url}");
        assert_eq!(header(&resp, "access-control-allow-origin"), "*", "{url}");
        let methods = header(&resp, "access-control-allow-methods");
        assert!(methods.contains(method), "{url}: {methods}");
        let allowed = header(&resp, "access-control-allow-headers");
        for name in ["content-type", "authorization", "if-match"] {
            assert!(allowed.contains(name), "{url}: {allowed}");
        }
    }
    // actual answers, errors included, carry the origin grant and expose the WHIP headers
    for (url, ct, expected) in [
        (whip.clone(), "application/sdp", 503),
        (whip.clone(), "text/plain", 415),
        (whep.clone(), "application/sdp", 503),
        (format!("{}/live/video-to-video/stk_unknown/whip", h.base_url()), "application/sdp", 404),
    ] {
        let resp =
            http.post(&url).header("origin", ORIGIN).header("content-type", ct).body("v=0\r\n").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{url}");
        assert_eq!(header(&resp, "access-control-allow-origin"), "*", "{url}");
        let exposed = header(&resp, "access-control-expose-headers");
        for name in ["Location", "ETag", "Link", "Livepeer-Playback-URL"] {
            assert!(exposed.contains(name), "{url}: {exposed}");
        }
    }
    // the API keeps needing the key, and is no CORS endpoint
    let resp = http.get(format!("{}/v1/streams/str_x", h.base_url())).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "access-control-allow-origin"), "");
    h.shutdown().await;
}
