//! Issue 9 (Daydream-compatible for real), over loopback HTTP against a real engine: CORS on
//! the WHIP/WHEP URLs, the published body shapes, the caller's stream list, closed params,
//! and DELETEs of resources the engine ended itself.

use std::sync::Arc;
use std::time::Duration;

use dreamgate_engine::{start, EngineConfig, EngineHandle, MediaBackend, NoMedia, RtcConfig};
use dreamgate_rtc::Publisher;
use dreamgate_testkit::eventually;
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

/// Keys every error body carries (Daydream's published error schema; the official SDK needs
/// each of them to parse a typed error).
fn assert_error_body(body: &Value, status: u16) {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    assert!(body["code"].as_str().is_some(), "{body}");
    assert!(body.get("details").is_some(), "{body}");
    assert!(body["requestId"].as_str().is_some_and(|r| r.starts_with("req_")), "{body}");
    assert!(body["traceId"].as_str().is_some_and(|t| t.len() == 32), "{body}");
}

#[tokio::test]
async fn stream_and_error_bodies_carry_every_published_key() {
    let h = no_media_engine("").await;
    let (status, plain) = create(&h, KEY, &payload()).await;
    assert_eq!(status, 201);
    assert_eq!(plain.get("output_stream_url"), Some(&Value::Null), "present, null without an RTMP output");
    let mut body = payload();
    body["output_rtmp_url"] = json!("rtmp://127.0.0.1/live/x");
    let (_, rtmp) = create(&h, KEY, &body).await;
    assert_eq!(rtmp["output_stream_url"], "rtmp://127.0.0.1/live/x");
    let id = plain["id"].as_str().unwrap();
    let (_, got) = call(Method::GET, &format!("{}/v1/streams/{id}", h.base_url()), Some(KEY), None).await;
    assert_eq!(got.get("output_stream_url"), Some(&Value::Null));

    let base = h.base_url();
    let (s, b) = call(Method::GET, &format!("{base}/v1/streams/str_nope"), Some(KEY), None).await;
    assert_eq!(s, 404);
    assert_error_body(&b, 404);
    assert_eq!(b["details"], Value::Null);
    let (s, b) = call(Method::POST, &format!("{base}/v1/streams"), None, Some(&payload())).await;
    assert_eq!(s, 401);
    assert_error_body(&b, 401);
    let mut bad = payload();
    bad["params"]["width"] = json!(100);
    let (s, b) = create(&h, KEY, &bad).await;
    assert_eq!(s, 400);
    assert_error_body(&b, 400);
    assert_eq!(b["details"][0]["field"], "params.width");
    let (s, b) = call(Method::DELETE, &format!("{base}/v1/streams?id=str_nope"), Some(KEY), None).await;
    assert_eq!(s, 404);
    assert_error_body(&b, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn get_v1_streams_lists_the_callers_streams_only() {
    // no configured key: every bearer token is accepted, and each is its own caller
    let media: Arc<dyn MediaBackend> = Arc::new(NoMedia);
    let h = engine(EngineConfig { media: Some(media), ..Default::default() }).await;
    let url = format!("{}/v1/streams", h.base_url());
    let (_, a1) = create(&h, "token_a", &payload()).await;
    let (_, b1) = create(&h, "token_b", &payload()).await;
    let (_, a2) = create(&h, "token_a", &payload()).await;
    let (status, list) = call(Method::GET, &url, Some("token_a"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["success"], true);
    let ids: Vec<&Value> = list["data"].as_array().unwrap().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&a1["id"], &a2["id"]], "token_a's streams, oldest first");
    assert_eq!(list["data"][0], a1, "each item is the stream object");
    let (_, list) = call(Method::GET, &url, Some("token_b"), None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], b1["id"]);
    let (_, list) = call(Method::GET, &url, Some("token_c"), None).await;
    assert_eq!(list, json!({"success": true, "data": []}));
    let (status, body) = call(Method::GET, &url, None, None).await;
    assert_eq!(status, 401);
    assert_error_body(&body, 401);
    h.shutdown().await;
}

#[tokio::test]
async fn params_outside_the_published_schema_are_refused_by_path_and_never_echoed() {
    let h = no_media_engine("").await;
    let cases = [
        (json!({"foo": 1}), "params.foo"),
        (
            json!({"image_preprocessing": {"enabled": true, "processors": [{"type": "blur", "foo": 1}]}}),
            "params.image_preprocessing.processors[0].foo",
        ),
        (json!({"image_postprocessing": {"processors": [], "bar": true}}), "params.image_postprocessing.bar"),
        (
            json!({"cached_attention": {"enabled": false, "max_frames": 1, "interval": 1, "foo": 1}}),
            "params.cached_attention",
        ),
        (json!({"ip_adapter": {"enabled": false}}), "params.ip_adapter"),
    ];
    // create (sd-turbo: no ip_adapter nor cached_attention at all in its schema)
    for (extra, field) in &cases {
        let mut body = payload();
        for (k, v) in extra.as_object().unwrap() {
            body["params"][k] = v.clone();
        }
        let (status, err) = create(&h, KEY, &body).await;
        assert_eq!(status, 400, "{field}: {err}");
        assert_error_body(&err, 400);
        assert!(err["details"].as_array().unwrap().iter().any(|d| d["field"] == *field), "{field}: {err}");
        assert!(err["error"].as_str().unwrap().contains(field), "the message names it: {err}");
    }
    let (_, list) = call(Method::GET, &format!("{}/v1/streams", h.base_url()), Some(KEY), None).await;
    assert_eq!(list["data"], json!([]), "no refused create made a stream");

    // PATCH, on an sd15 stream (ip_adapter and cached_attention are in its schema)
    let mut body = payload();
    body["params"] = json!({"model_id": "Lykon/dreamshaper-8", "prompt": "a fox"});
    let (status, stream) = create(&h, KEY, &body).await;
    assert_eq!(status, 201, "{stream}");
    let url = format!("{}/v1/streams/{}", h.base_url(), stream["id"].as_str().unwrap());
    for (given, field) in [
        (json!({"foo": 1}), "params.foo"),
        (
            json!({"controlnets": [{"model_id": "lllyasviel/control_v11p_sd15_canny", "conditioning_scale": 0.5, "preprocessor": "canny", "enabled": true, "foo": 2}]}),
            "params.controlnets[0].foo",
        ),
        (json!({"ip_adapter": {"enabled": true, "scale": 0.5, "foo": 3}}), "params.ip_adapter.foo"),
        (
            json!({"image_preprocessing": {"enabled": true, "processors": [{"type": "blur", "enabled": true, "params": {}, "foo": 1}]}}),
            "params.image_preprocessing.processors[0].foo",
        ),
    ] {
        let mut params = given.as_object().unwrap().clone();
        params.insert("model_id".into(), json!("Lykon/dreamshaper-8"));
        let body = json!({"pipeline": "streamdiffusion", "params": params});
        let (status, err) = call(Method::PATCH, &url, Some(KEY), Some(&body)).await;
        assert_eq!(status, 400, "{field}: {err}");
        assert!(err["details"].as_array().unwrap().iter().any(|d| d["field"] == field), "{field}: {err}");
    }
    // the flat legacy shape too
    let (status, _) = call(Method::PATCH, &url, Some(KEY), Some(&json!({"prompt": "x", "foo": 1}))).await;
    assert_eq!(status, 400);
    let (_, got) = call(Method::GET, &url, Some(KEY), None).await;
    assert_eq!(got["params"], stream["params"], "refused PATCHes changed nothing");
    assert!(!got.to_string().contains("foo"), "{got}");
    // the schema's own nested keys are fine
    let ok = json!({"pipeline": "streamdiffusion", "params": {"model_id": "Lykon/dreamshaper-8",
        "ip_adapter": {"type": "regular", "enabled": true, "scale": 0.5, "weight_type": "linear"}}});
    let (status, body) = call(Method::PATCH, &url, Some(KEY), Some(&ok)).await;
    assert_eq!(status, 200, "{body}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_whip_session_the_engine_ended_a_moment_ago_succeeds() {
    let h = engine(EngineConfig { api_key: Some(KEY.into()), ..Default::default() }).await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let whip = stream["whip_url"].as_str().unwrap().to_owned();
    let post = |offer: String| {
        let whip = whip.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(&whip)
                .header("content-type", "application/sdp")
                .body(offer)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            let location = header(&resp, "location");
            url::Url::parse(&whip).unwrap().join(&location).unwrap().to_string()
        }
    };
    let (_first, offer) = Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    let first = post(offer).await;
    // a second offer replaces the first session: the engine ended it
    let (_second, offer) = Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    let second = post(offer).await;
    assert_ne!(first, second);
    let http = reqwest::Client::new();
    assert_eq!(http.delete(&first).send().await.unwrap().status(), StatusCode::OK, "ended by the engine");
    assert_eq!(http.delete(&second).send().await.unwrap().status(), StatusCode::OK, "ended by this DELETE");
    assert_eq!(http.delete(&second).send().await.unwrap().status(), StatusCode::OK, "and again");
    let never = format!("{whip}/ses_neverIssued000000");
    assert_eq!(http.delete(&never).send().await.unwrap().status(), StatusCode::NOT_FOUND, "never issued");
    h.shutdown().await;
}

// ---- the Livepeer-behaviour fault knobs ----

/// The media-heavy tests share 2 cores with everyone: one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn media_engine(faults: &str) -> (EngineHandle, Arc<dreamgate_engine::WebRtcMedia>) {
    let media = dreamgate_engine::WebRtcMedia::new(RtcConfig::default());
    let backend: Arc<dyn MediaBackend> = media.clone();
    let h = engine(EngineConfig {
        api_key: Some(KEY.into()),
        media: Some(backend),
        faults: faults.parse().unwrap(),
        ..Default::default()
    })
    .await;
    (h, media)
}

/// Publishes the test pattern to `whip` with the native client (no STUN on loopback).
async fn publish(whip: &str) -> dreamgate_whip::WhipClient {
    let mut options = dreamgate_whip::ClientOptions::new(whip.parse().unwrap());
    options.whip.ice_servers = Vec::new();
    let client = dreamgate_whip::WhipClient::new(options).unwrap();
    let source = dreamgate_whip::EncodingSource::test_pattern(256, 256, 30).unwrap();
    client.connect(Box::new(source)).await.unwrap();
    client
}

async fn post_sdp(url: &str, sdp: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn status_shape_public_answers_daydreams_public_reference_shape() {
    let h = no_media_engine("status_shape=public").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let url = format!("{}/v1/streams/{}/status", h.base_url(), stream["id"].as_str().unwrap());
    let (status, body) = call(Method::GET, &url, Some(KEY), None).await;
    assert_eq!(status, 200);
    let data = &body["data"];
    assert!(data.get("state").is_none() && data.get("input_status").is_none(), "{data}");
    let inference = &data["inference_status"];
    assert!(inference.get("fps").is_none(), "{inference}");
    assert_eq!(inference["input_fps"], 0.0);
    assert_eq!(inference["output_fps"], 0.0);
    for key in ["last_input_time", "last_output_time", "last_params", "last_params_hash", "restart_count"] {
        assert!(inference.get(key).is_some(), "{key}: {inference}");
    }
    assert!(data["gateway_status"]["whep_url"].is_string());
    h.shutdown().await;

    let h = no_media_engine("").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let url = format!("{}/v1/streams/{}/status", h.base_url(), stream["id"].as_str().unwrap());
    let (_, body) = call(Method::GET, &url, Some(KEY), None).await;
    assert_eq!(body["data"]["state"], "LOADING", "the runner's shape by default");
    assert!(body["data"]["inference_status"].get("input_fps").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn drop_field_leaves_that_field_out_of_every_stream_body() {
    let h = no_media_engine("drop_field=output_stream_url").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    assert!(stream.get("output_stream_url").is_none(), "{stream}");
    assert!(stream.get("whip_url").is_some());
    let (_, list) = call(Method::GET, &format!("{}/v1/streams", h.base_url()), Some(KEY), None).await;
    assert!(list["data"][0].get("output_stream_url").is_none());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_hold_holds_the_post_until_the_first_output_frame() {
    let _heavy = HEAVY.lock().await;
    // without output and a short hold: held, then 404
    let (h, _media) = media_engine("whep_hold=600ms").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let whep = format!("{}/live/video-to-video/{}/whep", h.base_url(), stream["id"].as_str().unwrap());
    let (_viewer, offer) = dreamgate_rtc::Viewer::new(&RtcConfig::default()).await.unwrap();
    let asked = std::time::Instant::now();
    assert_eq!(post_sdp(&whep, &offer).await.status(), StatusCode::NOT_FOUND);
    assert!(asked.elapsed() >= Duration::from_millis(600), "held for the whole window");
    h.shutdown().await;

    // a long hold: the POST sent before any publisher answers 201 once output exists
    let (h, media) = media_engine("whep_hold=30s").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let id = stream["id"].as_str().unwrap().to_owned();
    let whep = format!("{}/live/video-to-video/{id}/whep", h.base_url());
    let (_viewer, offer) = dreamgate_rtc::Viewer::new(&RtcConfig::default()).await.unwrap();
    let held = tokio::spawn(async move { post_sdp(&whep, &offer).await.status() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "held while there is no output");
    let publisher = publish(stream["whip_url"].as_str().unwrap()).await;
    assert_eq!(held.await.unwrap(), StatusCode::CREATED);
    assert!(media.stats(&id).unwrap().first_output.is_some());
    publisher.shutdown().await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_knob_caps_whep_viewers_with_429() {
    let _heavy = HEAVY.lock().await;
    let (h, media) = media_engine("viewers=1").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let id = stream["id"].as_str().unwrap().to_owned();
    let whep = format!("{}/live/video-to-video/{id}/whep", h.base_url());
    let publisher = publish(stream["whip_url"].as_str().unwrap()).await;
    assert!(
        eventually(Duration::from_secs(20), || media.stats(&id).is_some_and(|s| s.first_output.is_some())).await,
        "output"
    );
    let (_v1, offer) = dreamgate_rtc::Viewer::new(&RtcConfig::default()).await.unwrap();
    assert_eq!(post_sdp(&whep, &offer).await.status(), StatusCode::CREATED);
    let (_v2, offer) = dreamgate_rtc::Viewer::new(&RtcConfig::default()).await.unwrap();
    let resp = post_sdp(&whep, &offer).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Too many viewers (at most 1 per stream)");
    publisher.shutdown().await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_disconnect_ends_the_first_whip_session_and_its_delete_still_succeeds() {
    let _heavy = HEAVY.lock().await;
    let (h, media) = media_engine("ice_disconnect=1").await;
    let (_, stream) = create(&h, KEY, &payload()).await;
    let id = stream["id"].as_str().unwrap().to_owned();
    let whip = stream["whip_url"].as_str().unwrap().to_owned();
    // a raw first session, to know its resource
    let (mut p1, offer) = dreamgate_rtc::Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    let resp = post_sdp(&whip, &offer).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resource = url::Url::parse(&whip).unwrap().join(&header(&resp, "location")).unwrap().to_string();
    p1.set_answer(&resp.text().await.unwrap()).unwrap();
    let session = resource.rsplit('/').next().unwrap().to_owned();
    let pattern = tokio::spawn(feed(p1));
    assert!(
        eventually(Duration::from_secs(20), || media.stats(&id).is_some_and(|s| s.frames_received > 0)).await,
        "frames in"
    );
    assert_eq!(media.stats(&id).unwrap().session_id.as_deref(), Some(session.as_str()));
    // cut after its first frames, then ended by the engine by itself
    let cut = dreamgate_engine::faults::ICE_CUT_AFTER + dreamgate_engine::faults::ICE_CUT_END;
    assert!(
        eventually(cut + Duration::from_secs(10), || media.stats(&id).unwrap().session_id.is_none()).await,
        "the cut session ended"
    );
    let http = reqwest::Client::new();
    assert_eq!(http.delete(&resource).send().await.unwrap().status(), StatusCode::OK, "ended a moment ago");
    pattern.abort();
    // the next session (a new POST) is not cut
    let publisher = publish(&whip).await;
    assert!(
        eventually(Duration::from_secs(20), || media.stats(&id).is_some_and(|s| s.frames_received > 0)).await,
        "the new session carries frames"
    );
    tokio::time::sleep(dreamgate_engine::faults::ICE_CUT_AFTER + Duration::from_secs(1)).await;
    assert!(media.stats(&id).unwrap().session_id.is_some(), "the second session lives on");
    publisher.shutdown().await;
    h.shutdown().await;
}

/// Sends the test pattern on a raw publisher until aborted.
async fn feed(mut publisher: dreamgate_rtc::Publisher) {
    use dreamgate_media::{H264Encoder, TestPattern};
    let pattern = TestPattern::new(256, 256);
    let mut encoder = H264Encoder::new(256, 256, 30).unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    for i in 0u64.. {
        tick.tick().await;
        let force = publisher.keyframe_requests.try_recv().is_ok();
        let e = encoder.encode(&pattern.frame(i), force).unwrap();
        publisher.send(dreamgate_rtc::MediaFrame {
            data: e.data.into(),
            keyframe: e.keyframe,
            rtp_time: (i * 3000) as u32,
        });
    }
}
