//! HTTP handlers: the Daydream `/v1/streams` API (here), its status (`status.rs`) and the
//! WHIP/WHEP signalling endpoints (`media.rs`). JSON lives here: bodies are parsed into
//! [`dreamgate_model`] types before they reach the engine, and the engine's answers are
//! rendered here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

use crate::faults::{Call, Injected};
use crate::streams::{ActivityCell, StreamRecord};
use crate::Engine;

mod media;
mod status;

use media::{whep_delete, whep_offer, whip_delete, whip_offer, whip_patch_root, whip_trickle};
use status::stream_status;

/// Builds the engine's router (every route, JSON fallbacks for unknown paths and methods).
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/v1/streams", post(create_stream).get(list_streams).delete(delete_stream))
        .route("/v1/streams/{id}", get(get_stream).patch(update_stream))
        .route("/v1/streams/{id}/status", get(stream_status))
        .route("/live/video-to-video/{id}/whip", post(whip_offer).patch(whip_patch_root))
        .route("/live/video-to-video/{id}/whip/{session}", patch(whip_trickle).delete(whip_delete))
        .route("/live/video-to-video/{id}/whep", post(whep_offer))
        .route("/live/video-to-video/{id}/whep/{viewer}", axum::routing::delete(whep_delete))
        .fallback(|| async { error(404, "NOT_FOUND", "No such route") })
        .method_not_allowed_fallback(|| async { error(405, "METHOD_NOT_ALLOWED", "Method not allowed") })
        .layer(middleware::from_fn_with_state(engine.clone(), slow_fault))
        .layer(middleware::from_fn(media_cors))
        .with_state(engine)
}

/// Methods a browser may use on the WHIP/WHEP URLs and their resources.
const CORS_METHODS: &str = "POST, PATCH, DELETE, OPTIONS";
/// Request headers a browser may send there.
const CORS_HEADERS: &str = "content-type, authorization, if-match";
/// Answer headers a browser's script may read.
const CORS_EXPOSE: &str = "Location, ETag, Link, Livepeer-Playback-URL";

/// CORS on every WHIP/WHEP endpoint and resource (`/live/...`): a preflight `OPTIONS` answers
/// 204 with the allowed methods and headers, and every answer (errors included) carries
/// `Access-Control-Allow-Origin: *` and exposes `Location`, `ETag`, `Link`,
/// `Livepeer-Playback-URL`. Those URLs are pre-signed (no cookie, no key), so any origin may
/// call them, as a browser client on the app's page does. `/v1` is not concerned: it needs the
/// Bearer key, which never belongs in a browser.
async fn media_cors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/live/") {
        return next.run(req).await;
    }
    let mut resp = if req.method() == axum::http::Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(CORS_METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(CORS_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        resp
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(CORS_EXPOSE));
    resp
}

/// A Daydream-shaped error answer: `{success:false, error, code, status, details, requestId, traceId}`.
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
        // Daydream's published error body: every key present (`details` null when there is
        // nothing to add), a request id and a trace id per answer.
        let body = json!({
            "success": false,
            "error": self.message,
            "code": self.code,
            "status": self.status,
            "details": self.details,
            "requestId": random_id("req_", 16),
            "traceId": trace_id(),
        });
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

pub(crate) fn not_found() -> Fail {
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

/// Fails with the injected fault for `call` on a stream of age `age` (when known), if any.
fn gate(engine: &Engine, call: Call, age: Option<Duration>) -> Result<(), Fail> {
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
    gate(engine, call, stream.and_then(|id| engine.stream_age(id)))
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

/// 32 lowercase hex digits, as a W3C trace id.
fn trace_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn iso8601_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

async fn create_stream(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Create, None)?;
    let payload = parse_create(&parse_json(&body)?).map_err(invalid_params)?;
    closed(&payload.params)?;
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
        params: payload.params.clone(),
        name,
        output_stream_url,
        // what the pipeline is loaded with, until a PATCH is applied
        last_params: Some(payload.params.to_map()),
        pending_params: None,
        activity: Arc::new(ActivityCell::new(now)),
        owner: caller(&headers),
        whip_offers: 0,
    };
    // the pipeline will start with the create params
    let created_hash = crate::snapshot::params_hash(&record.params);
    record.activity.with(|a| a.params_applied(None, created_hash));
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
    let current = engine.streams().with(&id, |r| r.params.to_map()).ok_or_else(not_found)?;
    let given = parse_update(&parse_json(&body)?).map_err(invalid_params)?;
    let merged = merge_params(current, &given);
    let params = StreamParams::from_json(&Value::Object(merged)).map_err(invalid_params)?;
    closed(&params)?;
    let errors = validate_params(&params);
    if !errors.is_empty() {
        return Err(invalid_params(errors));
    }
    let now = Instant::now();
    let hash = crate::snapshot::params_hash(&params);
    let object = engine
        .streams()
        .with(&id, |r| {
            r.params = params.clone();
            r.pending_params = Some((hash.clone(), given.clone()));
            r.activity.with(|a| a.record_params_update(now));
            engine.stream_object(r)
        })
        .ok_or_else(not_found)?; // deleted meanwhile
                                 // A running transform reports when it has switched (`last_params_hash` moves then);
                                 // with none running, the next pipeline starts with these params: applied now.
    if !engine.media().params_updated(&id, &params) {
        if let Some(activity) = engine.streams().activity(&id) {
            activity.params_applied(now, hash);
        }
    }
    tracing::info!(stream_id = %id, fields = ?given.keys().collect::<Vec<_>>(), "stream params updated");
    Ok(axum::Json(object).into_response())
}

/// Daydream's params schemas are closed at every level: a key outside them is a 400 naming
/// its path (the model knows the fields; the engine is the one that refuses), so nothing
/// outside the schema is ever stored or echoed.
fn closed(params: &StreamParams) -> Result<(), Fail> {
    let unknown = params.unknown_fields();
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = unknown.iter().map(|e| e.field.as_str()).collect();
    let message = format!("Invalid stream configuration: unknown parameter {}", names.join(", "));
    Err(Fail { message, ..invalid_params(unknown) })
}

/// `GET /v1/streams`: the caller's streams, `{success:true, data:[stream, ...]}`.
async fn list_streams(State(engine): State<Engine>, headers: HeaderMap) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::List, None)?;
    let data = engine.streams().list(caller(&headers), |r| engine.stream_object(r));
    Ok(axum::Json(json!({ "success": true, "data": data })).into_response())
}

/// Who is calling: a fingerprint (FNV-1a) of the bearer token, so that each key lists its
/// own streams (without a configured key any token is accepted, and each is its own caller).
fn caller(headers: &HeaderMap) -> u64 {
    let token = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
    token.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Shallow merge (JSON, at the edge): each given top-level field replaces the stored one.
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
