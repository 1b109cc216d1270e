//! The Daydream client against a real engine over loopback HTTP.

use std::time::{Duration, Instant};

use dreamgate_client::{ApiError, ApiKey, DaydreamClient};
use dreamgate_engine::{start, EngineConfig, EngineHandle};
use serde_json::{json, Value};

const KEY: &str = "daydream_live_test_key";

async fn engine(cfg: EngineConfig) -> EngineHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, cfg).await
}

async fn keyed_engine(faults: &str) -> EngineHandle {
    engine(EngineConfig { api_key: Some(KEY.into()), faults: faults.parse().unwrap(), ..Default::default() }).await
}

fn client(h: &EngineHandle, key: &str, timeout: Duration) -> DaydreamClient {
    DaydreamClient::new(h.base_url().parse().unwrap(), ApiKey::new(key), timeout).unwrap()
}

fn payload() -> Value {
    serde_json::to_value(dreamgate_model::default_create_payload()).unwrap()
}

fn upstream(e: ApiError) -> (u16, Value) {
    match e {
        ApiError::Upstream { status, body } => (status, body),
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_status_update_get_delete() {
    let h = keyed_engine("").await;
    let c = client(&h, KEY, Duration::from_secs(5));

    let mut body = payload();
    body["name"] = json!("lifecycle");
    let stream = c.create_stream(&body).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let key = stream["stream_key"].as_str().unwrap();
    assert!(id.starts_with("str_") && id.len() > 10, "{id}");
    assert!(key.starts_with("stk_"), "{key}");
    assert_eq!(stream["whip_url"], json!(format!("{}/live/video-to-video/{key}/whip", h.base_url())));
    assert_eq!(stream["pipeline"], "streamdiffusion");
    assert_eq!(stream["name"], "lifecycle");
    assert_eq!(stream["params"]["model_id"], "stabilityai/sd-turbo");
    assert_eq!(stream["params"]["width"], 512);
    assert!(stream["output_playback_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(time::OffsetDateTime::parse(
        stream["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    for field in ["author", "from_playground", "gateway_host", "is_smoke_test"] {
        assert!(stream.get(field).is_some(), "missing {field}");
    }

    // a second stream gets different ids
    let other = c.create_stream(&payload()).await.unwrap();
    assert_ne!(other["id"], stream["id"]);
    assert_ne!(other["stream_key"], stream["stream_key"]);

    let status = c.stream_status(&id).await.unwrap();
    assert_eq!(status["success"], true);
    assert_eq!(status["error"], Value::Null);
    let data = &status["data"];
    assert_eq!(data["type"], "status");
    assert_eq!(data["state"], "LOADING");
    assert_eq!(data["stream_id"], json!(id));
    assert_eq!(data["input_status"]["fps"], 0.0);
    assert_eq!(data["input_status"]["last_input_time"], Value::Null);
    assert_eq!(data["inference_status"]["restart_count"], 0);
    assert_eq!(data["gateway_status"]["whep_url"], json!(format!("{}/live/video-to-video/{id}/whep", h.base_url())));
    assert_eq!(data["gateway_status"]["ingest_metrics"]["stats"]["conn_quality"], "good");
    assert_eq!(data["gateway_status"]["ingest_metrics"]["stats"]["peer_conn_stats"]["BytesReceived"], 0);
    assert!(data["start_time"].as_u64().unwrap() <= data["timestamp"].as_u64().unwrap());

    let update = dreamgate_model::update_body(
        "stabilityai/sd-turbo",
        json!({"prompt": "a fox", "seed": 7}).as_object().unwrap().clone(),
    );
    let updated = c.update_stream(&id, &update).await.unwrap().expect("200 with a stream object");
    assert_eq!(updated["params"]["prompt"], "a fox");
    assert_eq!(updated["params"]["seed"], 7);
    assert_eq!(updated["params"]["width"], 512, "other params kept (shallow merge)");

    let got = c.get_stream(&id).await.unwrap();
    assert_eq!(got["params"]["prompt"], "a fox");
    assert_eq!(got["stream_key"], stream["stream_key"]);
    let status = c.stream_status(&id).await.unwrap();
    let inf = &status["data"]["inference_status"];
    assert_eq!(inf["last_params"]["prompt"], "a fox");
    assert!(inf["last_params_update_time"].as_u64().is_some());
    assert_eq!(inf["last_params_hash"].as_str().unwrap().len(), 16);

    // the legacy flat update shape is accepted too
    let updated = c.update_stream(&id, &json!({"prompt": "flat"})).await.unwrap().unwrap();
    assert_eq!(updated["params"]["prompt"], "flat");

    c.delete_stream(&id).await.unwrap();
    let (status, body) = upstream(c.get_stream(&id).await.unwrap_err());
    assert_eq!(status, 404);
    assert_eq!(body["code"], "STREAMS/NOT_FOUND");
    let (status, _) = upstream(c.delete_stream(&id).await.unwrap_err());
    assert_eq!(status, 404);
    c.get_stream(other["id"].as_str().unwrap()).await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_key_is_401() {
    let h = keyed_engine("").await;
    let e = client(&h, "daydream_live_wrong", Duration::from_secs(5)).create_stream(&payload()).await.unwrap_err();
    assert!(!e.is_warming_up());
    let (status, body) = upstream(e);
    assert_eq!(status, 401);
    assert_eq!(body["success"], false);
    assert_eq!(body["status"], 401);
    assert_eq!(body["code"], "AUTH/UNAUTHORIZED");
    assert!(!body.to_string().contains(KEY), "the key must not be echoed");

    let raw = reqwest::Client::new();
    let resp = raw.post(format!("{}/v1/streams", h.base_url())).json(&payload()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp =
        raw.get(format!("{}/v1/streams/str_x", h.base_url())).header("authorization", "Bearer ").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.shutdown().await;

    // no key configured: any non-empty bearer token is accepted, none is not
    let h = engine(EngineConfig::default()).await;
    client(&h, "anything", Duration::from_secs(5)).create_stream(&payload()).await.unwrap();
    let resp = raw.post(format!("{}/v1/streams", h.base_url())).json(&payload()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let h = keyed_engine("").await;
    let c = client(&h, KEY, Duration::from_secs(5));
    for e in [
        c.get_stream("str_nope").await.unwrap_err(),
        c.stream_status("str_nope").await.unwrap_err(),
        c.update_stream("str_nope", &json!({"params": {"prompt": "x"}})).await.unwrap_err(),
        c.delete_stream("str_nope").await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Some("STREAMS/NOT_FOUND"), "{e:?}");
        assert_eq!(e.message(), "Stream not found");
        let (status, body) = upstream(e);
        assert_eq!((status, body["success"].clone(), body["status"].clone()), (404, json!(false), json!(404)));
    }
    // an id with path characters stays one segment
    assert_eq!(c.get_stream("../streams").await.unwrap_err().status(), Some(404));
    h.shutdown().await;
}

#[tokio::test]
async fn bad_payloads_are_400_with_field_errors() {
    let h = keyed_engine("").await;
    let c = client(&h, KEY, Duration::from_secs(5));
    let mut body = payload();
    body["params"]["width"] = json!(500);
    body["params"]["num_inference_steps"] = json!(0);
    let (status, err) = upstream(c.create_stream(&body).await.unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(err["error"], "Invalid stream configuration");
    assert_eq!(err["code"], "STREAMS/INVALID_PARAMS");
    let fields: Vec<&str> = err["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"params.width"), "{fields:?}");
    assert!(fields.contains(&"params.num_inference_steps"), "{fields:?}");
    assert!(err["details"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));

    // PATCH: a given field is checked, and so is the merged result
    let stream = c.create_stream(&payload()).await.unwrap();
    let id = stream["id"].as_str().unwrap();
    let (status, err) = upstream(c.update_stream(id, &json!({"params": {"height": 100}})).await.unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(err["details"][0]["field"], "params.height");
    // t_index_list fine alone, but beyond the stored num_inference_steps (25) once merged
    let (status, err) =
        upstream(c.update_stream(id, &json!({"params": {"t_index_list": [10, 40]}})).await.unwrap_err());
    assert_eq!(status, 400, "{err}");
    assert!(err["details"].to_string().contains("t_index_list"), "{err}");
    assert_eq!(c.get_stream(id).await.unwrap()["params"], stream["params"], "a refused PATCH changes nothing");

    // bad JSON
    let raw = reqwest::Client::new();
    for path in ["/v1/streams".to_owned(), format!("/v1/streams/{id}")] {
        let req = if path == "/v1/streams" {
            raw.post(format!("{}{path}", h.base_url()))
        } else {
            raw.patch(format!("{}{path}", h.base_url()))
        };
        let resp =
            req.bearer_auth(KEY).header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "STREAMS/INVALID_JSON");
    }
    // DELETE without id
    let resp = raw.delete(format!("{}/v1/streams", h.base_url())).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    h.shutdown().await;
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

async fn whip_post(url: &str, content_type: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn whip_http_checks_and_media_placeholder() {
    // NoMedia explicitly: the default backend is the real WebRTC one (tests/media.rs)
    let media: std::sync::Arc<dyn dreamgate_engine::MediaBackend> = std::sync::Arc::new(dreamgate_engine::NoMedia);
    let h = engine(EngineConfig { api_key: Some(KEY.into()), media: Some(media), ..Default::default() }).await;
    let c = client(&h, KEY, Duration::from_secs(5));
    let stream = c.create_stream(&payload()).await.unwrap();
    let whip = stream["whip_url"].as_str().unwrap();

    assert_eq!(whip_post(whip, "application/json", OFFER).await.0, 415);
    assert_eq!(whip_post(whip, "application/sdp", "").await.0, 400);
    assert_eq!(whip_post(whip, "application/sdp", "hello").await.0, 400);
    let unknown = format!("{}/live/video-to-video/stk_unknown/whip", h.base_url());
    assert_eq!(whip_post(&unknown, "application/sdp", OFFER).await.0, 404);
    let (status, body) = whip_post(whip, "application/sdp; charset=utf-8", OFFER).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "media not available");
    assert_eq!(body["success"], false);

    let whep = format!("{}/live/video-to-video/{}/whep", h.base_url(), stream["id"].as_str().unwrap());
    assert_eq!(whip_post(&whep, "application/sdp", OFFER).await.0, 503);
    assert_eq!(whip_post(&whep, "text/plain", OFFER).await.0, 415);
    let whep_unknown = format!("{}/live/video-to-video/str_unknown/whep", h.base_url());
    assert_eq!(whip_post(&whep_unknown, "application/sdp", OFFER).await.0, 404);

    // trickle on the WHIP URL itself: 405 like Livepeer
    let resp = reqwest::Client::new().patch(whip).body("a=candidate").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    h.shutdown().await;
}

/// The warm-up fault over HTTP, right after creation. The window long enough that the
/// calls all land in its first third (404); how the answer walks 404 -> 409 -> 503 and
/// clears is decided by the pure `FaultState`, tested with injected time in `faults.rs`.
#[tokio::test]
async fn fault_warmup_answers_not_ready_right_after_creation() {
    let h = keyed_engine("warmup=10m").await;
    let c = client(&h, KEY, Duration::from_secs(5));
    let stream = c.create_stream(&payload()).await.unwrap();
    let id = stream["id"].as_str().unwrap();
    // the body without its per-answer ids (`requestId`, `traceId`)
    let not_ready = |status: u16| {
        json!({
            "success": false,
            "error": "Stream is not ready yet (NOT_READY): warming up",
            "code": "STREAMS/NOT_READY",
            "status": status,
            "details": null,
        })
    };
    let upstream = |e| {
        let (status, mut body) = upstream(e);
        for id in ["requestId", "traceId"] {
            assert!(body.as_object_mut().unwrap().remove(id).is_some_and(|v| v.is_string()), "{id}");
        }
        (status, body)
    };

    let e = c.stream_status(id).await.unwrap_err();
    assert!(e.is_warming_up(), "{e:?}");
    assert_eq!(upstream(e), (404, not_ready(404)));
    let e = c.update_stream(id, &json!({"params": {"prompt": "x"}})).await.unwrap_err();
    assert!(e.is_warming_up(), "{e:?}");
    assert_eq!(upstream(e), (404, not_ready(404)));
    let (status, mut body) = whip_post(stream["whip_url"].as_str().unwrap(), "application/sdp", OFFER).await;
    body.as_object_mut().unwrap().retain(|k, _| k != "requestId" && k != "traceId");
    assert_eq!((status, body), (404, not_ready(404)));
    // GET, create and delete are not affected; an unknown stream is just not found
    c.get_stream(id).await.unwrap();
    let e = c.stream_status("str_unknown").await.unwrap_err();
    assert_eq!(upstream(e).1["code"], "STREAMS/NOT_FOUND");
    c.delete_stream(id).await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn fault_patch_and_trickle_statuses() {
    let h = keyed_engine("patch=405,trickle=409").await;
    let c = client(&h, KEY, Duration::from_secs(5));
    let stream = c.create_stream(&payload()).await.unwrap();
    let id = stream["id"].as_str().unwrap();
    let e = c.update_stream(id, &json!({"params": {"prompt": "x"}})).await.unwrap_err();
    assert_eq!(e.status(), Some(405));
    assert!(!e.is_warming_up());
    c.stream_status(id).await.unwrap();

    let raw = reqwest::Client::new();
    let whip = stream["whip_url"].as_str().unwrap();
    for url in [whip.to_owned(), format!("{whip}/sess_1")] {
        let resp = raw
            .patch(&url)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body("a=candidate:1 1 udp 1 127.0.0.1 9 typ host")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409, "{url}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn fault_burst_fails_the_next_calls_then_recovers() {
    let h = keyed_engine("burst=2").await;
    let c = client(&h, KEY, Duration::from_secs(5));
    for _ in 0..2 {
        let e = c.create_stream(&payload()).await.unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert!(e.is_warming_up());
    }
    let stream = c.create_stream(&payload()).await.unwrap();
    c.stream_status(stream["id"].as_str().unwrap()).await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn fault_slow_delays_answers_past_the_client_timeout() {
    let h = keyed_engine("slow=300ms").await;
    let impatient = client(&h, KEY, Duration::from_millis(100));
    assert_eq!(impatient.create_stream(&payload()).await.unwrap_err(), ApiError::Timeout);
    let patient = client(&h, KEY, Duration::from_secs(5));
    let started = Instant::now();
    patient.create_stream(&payload()).await.unwrap();
    println!("slow=300ms answer took {:?}", started.elapsed());
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_engine_is_reported() {
    let h = keyed_engine("").await;
    let base = h.base_url().to_owned();
    h.shutdown().await;
    let c = DaydreamClient::new(base.parse().unwrap(), ApiKey::new(KEY), Duration::from_secs(2)).unwrap();
    match c.get_stream("str_x").await.unwrap_err() {
        ApiError::Unreachable(msg) => assert!(!msg.contains(KEY), "{msg}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
