//! HTTP handlers: the Daydream `/v1/streams` API and the WHIP/WHEP signalling endpoints.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use dreamgate_model::{parse_create, parse_update, validate_params, FieldError, StreamParams};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};

use crate::backend::{IngestOffer, MediaError, SdpAnswer, ViewerOffer};
use crate::faults::{Call, Injected};
use crate::status::{conn_quality, packet_loss_pct, Evaluation};
use crate::streams::StreamRecord;
use crate::Engine;

/// Builds the engine's router (every route, JSON fallbacks for unknown paths and methods).
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/v1/streams", post(create_stream).delete(delete_stream))
        .route("/v1/streams/{id}", get(get_stream).patch(update_stream))
        .route("/v1/streams/{id}/status", get(stream_status))
        .route("/live/video-to-video/{id}/whip", post(whip_offer).patch(whip_patch_root))
        .route("/live/video-to-video/{id}/whip/{session}", patch(whip_trickle).delete(whip_delete))
        .route("/live/video-to-video/{id}/whep", post(whep_offer))
        .route("/live/video-to-video/{id}/whep/{viewer}", axum::routing::delete(whep_delete))
        .fallback(|| async { error(404, "NOT_FOUND", "No such route") })
        .method_not_allowed_fallback(|| async { error(405, "METHOD_NOT_ALLOWED", "Method not allowed") })
        .layer(middleware::from_fn_with_state(engine.clone(), slow_fault))
        .with_state(engine)
}

/// A Daydream-shaped error answer: `{success:false, error, code, status[, details]}`.
#[derive(Debug)]
pub(crate) struct Fail {
    status: u16,
    code: &'static str,
    message: String,
    details: Option<Value>,
}

impl Fail {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Fail { status, code, message: message.into(), details: None }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let mut body = json!({ "success": false, "error": self.message, "code": self.code, "status": self.status });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A Daydream-shaped error response.
pub(crate) fn error(status: u16, code: &'static str, message: &str) -> Response {
    Fail::new(status, code, message).into_response()
}

fn not_found() -> Fail {
    Fail::new(404, "STREAMS/NOT_FOUND", "Stream not found")
}

fn injected(fault: Injected) -> Fail {
    match fault {
        Injected::Burst => Fail::new(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable (injected burst)"),
        Injected::NotReady(s) => Fail::new(s, "STREAMS/NOT_READY", "Stream is not ready yet (NOT_READY): warming up"),
        Injected::Status(s) => {
            let text = StatusCode::from_u16(s).ok().and_then(|c| c.canonical_reason()).unwrap_or("Error");
            Fail::new(s, "INJECTED_FAULT", format!("{text} (injected fault)"))
        }
    }
}

fn media_error(e: MediaError) -> Fail {
    Fail::new(e.status(), e.code(), e.to_string())
}

/// Fails with the injected fault for `call`, if any.
fn gate(engine: &Engine, call: Call, stream: Option<&str>) -> Result<(), Fail> {
    let age = stream.and_then(|id| engine.stream_age(id));
    engine.fault(call, age).map_or(Ok(()), |f| Err(injected(f)))
}

/// `slow=D`: delays every answer.
async fn slow_fault(State(engine): State<Engine>, req: Request, next: Next) -> Response {
    if let Some(d) = engine.fault_delay() {
        tokio::time::sleep(d).await;
    }
    next.run(req).await
}

/// Checks `Authorization: Bearer <key>` (any non-empty token when no key is configured).
fn check_auth(engine: &Engine, headers: &HeaderMap) -> Result<(), Fail> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let ok = match (token, engine.api_key()) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(t), Some(key)) => constant_time_eq(t.as_bytes(), key.as_bytes()),
    };
    if ok {
        Ok(())
    } else {
        Err(Fail::new(401, "AUTH/UNAUTHORIZED", "Unauthorized: missing or invalid API key"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Auth, then the fault decision for an API call on `stream` (when known).
fn api_gate(engine: &Engine, headers: &HeaderMap, call: Call, stream: Option<&str>) -> Result<(), Fail> {
    check_auth(engine, headers)?;
    gate(engine, call, stream)
}

fn parse_json(body: &Bytes) -> Result<Value, Fail> {
    serde_json::from_slice(body).map_err(|e| Fail::new(400, "STREAMS/INVALID_JSON", format!("Invalid JSON body: {e}")))
}

fn invalid_params(errors: Vec<FieldError>) -> Fail {
    let details = serde_json::to_value(&errors).unwrap_or(Value::Null);
    Fail { details: Some(details), ..Fail::new(400, "STREAMS/INVALID_PARAMS", "Invalid stream configuration") }
}

fn random_id(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

fn iso8601_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

async fn create_stream(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Create, None)?;
    let payload = parse_create(&parse_json(&body)?).map_err(invalid_params)?;
    let now = Instant::now();
    let id = random_id("str_", 16);
    let name = payload.extra.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let output_stream_url = payload.extra.get("output_rtmp_url").and_then(Value::as_str).map(str::to_owned);
    let record = StreamRecord {
        id: id.clone(),
        stream_key: random_id("stk_", 24),
        output_playback_id: Alphanumeric.sample_string(&mut rand::rng(), 16).to_ascii_lowercase(),
        created_at: iso8601_now(),
        pipeline: payload.pipeline.clone(),
        params: payload.params.to_map(),
        name,
        output_stream_url,
        activity: crate::status::Activity::new(now),
        last_params: None,
    };
    let object = engine.stream_object(&record);
    engine.streams().insert(record);
    tracing::info!(stream_id = %id, "stream created");
    Ok((StatusCode::CREATED, axum::Json(object)).into_response())
}

async fn get_stream(
    State(engine): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Get, Some(&id))?;
    let object = engine.streams().with(&id, |r| engine.stream_object(r)).ok_or_else(not_found)?;
    Ok(axum::Json(object).into_response())
}

async fn update_stream(
    State(engine): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Update, Some(&id))?;
    let current = engine.streams().with(&id, |r| r.params.clone()).ok_or_else(not_found)?;
    let given = parse_update(&parse_json(&body)?).map_err(invalid_params)?;
    let merged = merge_params(current, &given);
    let params = StreamParams::from_json(&Value::Object(merged)).map_err(invalid_params)?;
    let errors = validate_params(&params);
    if !errors.is_empty() {
        return Err(invalid_params(errors));
    }
    let params = params.to_map();
    let now = Instant::now();
    let object = engine
        .streams()
        .with(&id, |r| {
            r.params = params.clone();
            r.last_params = Some(Value::Object(given.clone()));
            r.activity.record_params_update(now);
            engine.stream_object(r)
        })
        .ok_or_else(not_found)?; // deleted meanwhile
    engine.media().params_updated(&id, &Value::Object(params));
    tracing::info!(stream_id = %id, fields = ?given.keys().collect::<Vec<_>>(), "stream params updated");
    Ok(axum::Json(object).into_response())
}

/// Shallow merge: each given top-level field replaces the stored one.
fn merge_params(mut current: Map<String, Value>, given: &Map<String, Value>) -> Map<String, Value> {
    for (k, v) in given {
        current.insert(k.clone(), v.clone());
    }
    current
}

async fn delete_stream(
    State(engine): State<Engine>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Fail> {
    let id = query.ok().and_then(|Query(q)| q.get("id").cloned()).filter(|s| !s.is_empty());
    api_gate(&engine, &headers, Call::Delete, id.as_deref())?;
    let id = id.ok_or_else(|| Fail::new(400, "STREAMS/MISSING_ID", "Missing query parameter: id"))?;
    engine.streams().remove(&id).ok_or_else(not_found)?;
    engine.media().stream_deleted(&id);
    tracing::info!(stream_id = %id, "stream deleted");
    Ok(axum::Json(json!({ "success": true, "data": {} })).into_response())
}

async fn stream_status(
    State(engine): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Status, Some(&id))?;
    let data = engine.evaluate(&id, Instant::now()).ok_or_else(not_found)?;
    Ok(axum::Json(json!({ "success": true, "error": null, "data": data })).into_response())
}

/// The status `data` object of `record` (already evaluated at `now`).
pub(crate) fn status_data(engine: &Engine, r: &StreamRecord, ev: &Evaluation, now: Instant) -> Value {
    let a = &r.activity;
    let ms = |t: Option<Instant>| t.map(|t| engine.epoch_ms(t));
    let t = a.transport;
    let loss = packet_loss_pct(t.packets_received, t.packets_lost);
    let track_stats = if a.last_input().is_some() {
        json!([{
            "type": "video",
            "jitter": t.jitter_ms / 1000.0,
            "packets_lost": t.packets_lost,
            "packets_received": t.packets_received,
            "packet_loss_pct": loss,
            "rtt": t.rtt_ms / 1000.0,
            "last_input_ts": ms(a.last_input()),
            "last_output_ts": ms(a.last_output()),
            "latency": match (a.last_input(), a.last_output()) {
                (Some(i), Some(o)) if o >= i => o.duration_since(i).as_secs_f64(),
                _ => 0.0,
            },
        }])
    } else {
        json!([])
    };
    json!({
        "type": "status",
        "pipeline": r.pipeline,
        "start_time": engine.epoch_ms(a.created()),
        "state": ev.state.as_str(),
        "last_state_update_time": engine.epoch_ms(ev.since),
        "timestamp": engine.epoch_ms(now),
        "stream_id": r.id,
        "request_id": random_id("req_", 16),
        "pipeline_id": legacy_pipeline_id(r.params.get("model_id").and_then(Value::as_str)),
        "orchestrator_info": { "address": "dreamgate-engine", "url": engine.base_url() },
        "input_status": { "fps": round2(ev.input_fps), "last_input_time": ms(a.last_input()) },
        "inference_status": {
            "fps": round2(ev.output_fps),
            "last_output_time": ms(a.last_output()),
            "last_params_update_time": ms(a.last_params_update()),
            "last_params": r.last_params.clone().unwrap_or_else(|| Value::Object(r.params.clone())),
            "last_params_hash": params_hash(&r.params),
            "last_error_time": ms(a.last_error.as_ref().map(|e| e.0)),
            "last_error": a.last_error.as_ref().map(|e| e.1.clone()),
            "last_restart_time": ms(a.last_restart()),
            "last_restart_logs": a.restart_logs,
            "restart_count": a.restart_count,
        },
        "gateway_status": {
            "whep_url": engine.whep_url(&r.id),
            "ingest_metrics": { "stats": {
                "peer_conn_stats": { "ID": r.id, "BytesReceived": a.bytes_received, "BytesSent": a.bytes_sent },
                "track_stats": track_stats,
                "conn_quality": conn_quality(t.jitter_ms, loss),
            }},
        },
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn legacy_pipeline_id(model_id: Option<&str>) -> &'static str {
    match model_id {
        Some("stabilityai/sdxl-turbo") => "pip_SDXL-turbo",
        Some("Lykon/dreamshaper-8" | "prompthero/openjourney-v4") => "pip_SD15",
        _ => "pip_SD-turbo",
    }
}

/// FNV-1a of the params JSON, hex: stable across runs.
fn params_hash(params: &Map<String, Value>) -> String {
    let text = Value::Object(params.clone()).to_string();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

// ---- WHIP / WHEP ----

/// Checks `Content-Type: application/sdp` and an SDP body starting with `v=0`.
fn check_sdp(headers: &HeaderMap, body: &Bytes) -> Result<String, Fail> {
    if !content_type_is(headers, "application/sdp") {
        return Err(Fail::new(415, "MEDIA/UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/sdp"));
    }
    let sdp = std::str::from_utf8(body).map_err(|_| Fail::new(400, "MEDIA/BAD_OFFER", "SDP offer is not UTF-8"))?;
    if !sdp.trim_start().starts_with("v=0") {
        return Err(Fail::new(400, "MEDIA/BAD_OFFER", "Body is not an SDP offer (must start with v=0)"));
    }
    Ok(sdp.to_owned())
}

/// Whether the media type of `Content-Type` (parameters ignored) is `mime`.
fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(mime)
}

fn sdp_answer(status: StatusCode, answer: &SdpAnswer, location: String, playback: Option<String>) -> Response {
    let mut resp = (status, answer.sdp.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.append(name, v);
        }
    };
    put("location", &location);
    put("etag", &format!("\"{}\"", answer.resource_id));
    for server in &answer.ice_servers {
        put("link", &format!("<{server}>; rel=\"ice-server\""));
    }
    if let Some(p) = playback {
        put("livepeer-playback-url", &p);
    }
    put("access-control-expose-headers", "Location, ETag, Link, Livepeer-Playback-URL");
    resp
}

/// WHIP POST on `{base}/live/video-to-video/{stream_key}/whip`.
async fn whip_offer(
    State(engine): State<Engine>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let id = engine.streams().id_for_key(&key).ok_or_else(not_found)?;
    gate(&engine, Call::WhipOffer, Some(&id))?;
    let sdp = check_sdp(&headers, &body)?;
    let activity = engine.streams().activity(&id);
    let params = activity.params().ok_or_else(not_found)?;
    let offer = IngestOffer { stream_id: id.clone(), params, offer_sdp: sdp, activity: activity.clone() };
    let answer = engine.media().ingest(offer).await.map_err(media_error)?;
    activity.ingest_started(Instant::now());
    tracing::info!(stream_id = %id, session = %answer.resource_id, "WHIP ingest accepted");
    let location = format!("{}/{}", engine.whip_url(&key), answer.resource_id);
    Ok(sdp_answer(StatusCode::CREATED, &answer, location, Some(engine.whep_url(&id))))
}

/// PATCH on the WHIP URL itself: Livepeer answers 405 (or the `trickle` fault status).
async fn whip_patch_root(State(engine): State<Engine>, Path(key): Path<String>) -> Fail {
    let id = engine.streams().id_for_key(&key);
    match gate(&engine, Call::WhipTrickle, id.as_deref()) {
        Err(f) => f,
        Ok(()) => Fail::new(405, "METHOD_NOT_ALLOWED", "Trickle ICE is not supported on the WHIP URL"),
    }
}

/// Trickle ICE PATCH on a WHIP session resource.
async fn whip_trickle(
    State(engine): State<Engine>,
    Path((key, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let id = engine.streams().id_for_key(&key).ok_or_else(not_found)?;
    gate(&engine, Call::WhipTrickle, Some(&id))?;
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return Err(Fail::new(
            415,
            "MEDIA/UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/trickle-ice-sdpfrag",
        ));
    }
    let frag =
        std::str::from_utf8(&body).map_err(|_| Fail::new(400, "MEDIA/BAD_OFFER", "Trickle body is not UTF-8"))?;
    engine.media().trickle(&id, &session, frag).map_err(media_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE on a WHIP session resource: ends the ingest.
async fn whip_delete(
    State(engine): State<Engine>,
    Path((key, session)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let id = engine.streams().id_for_key(&key).ok_or_else(not_found)?;
    gate(&engine, Call::WhipDelete, Some(&id))?;
    engine.media().end_ingest(&id, Some(&session)).map_err(media_error)?;
    engine.streams().activity(&id).ingest_closed(Instant::now());
    Ok(StatusCode::OK.into_response())
}

/// WHEP POST on `{base}/live/video-to-video/{stream_id}/whep`.
async fn whep_offer(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    engine.stream_age(&id).ok_or_else(not_found)?;
    gate(&engine, Call::WhepOffer, Some(&id))?;
    let sdp = check_sdp(&headers, &body)?;
    let offer = ViewerOffer { stream_id: id.clone(), offer_sdp: sdp, activity: engine.streams().activity(&id) };
    let answer = engine.media().view(offer).await.map_err(media_error)?;
    let location = format!("{}/{}", engine.whep_url(&id), answer.resource_id);
    Ok(sdp_answer(StatusCode::CREATED, &answer, location, None))
}

/// DELETE on a WHEP viewer resource.
async fn whep_delete(
    State(engine): State<Engine>,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<Response, Fail> {
    engine.stream_age(&id).ok_or_else(not_found)?;
    gate(&engine, Call::WhepDelete, Some(&id))?;
    engine.media().end_view(&id, &viewer).map_err(media_error)?;
    Ok(StatusCode::OK.into_response())
}
