//! The HTTP surface: middleware (session cookie, Origin check, security
//! headers), the `/api/daydream/*` handlers, the WHIP/WHEP proxy and the
//! embedded files.
//!
//! Upstream work that changes the registry (create, delete, WHIP/WHEP
//! answers) runs in its own task, so a browser that disconnects mid-request
//! cannot leave a created stream unrecorded (and thus never reaped).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, IF_MATCH, LINK, LOCATION, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{json, Value};
use url::Url;

use dreamgate_client::ApiError as UpstreamError;
use dreamgate_model::FieldError;

use crate::error::HttpError;
use crate::headers;
use crate::registry::{Access, Registry, StreamRecord};
use crate::session::SessionId;
use crate::upstream::{Signal, SignalReply, Upstream};
use crate::{assets, normalize_origin, GatewayConfig, MAX_JSON_BODY, MAX_SDP_BODY};

/// `Livepeer-Playback-URL` (WHIP answer header naming the WHEP URL).
pub const PLAYBACK_URL: HeaderName = HeaderName::from_static("livepeer-playback-url");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The session of the current request (inserted by the middleware).
#[derive(Debug, Clone)]
pub struct Session(pub SessionId);

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    cfg: GatewayConfig,
    upstream: Upstream,
    registry: Mutex<Registry>,
    csp: HeaderValue,
}

impl AppState {
    /// State for a gateway with this configuration and upstream.
    pub fn new(cfg: GatewayConfig, upstream: Upstream) -> Self {
        let csp = HeaderValue::from_str(&headers::content_security_policy())
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let registry = Mutex::new(Registry::new(cfg.registry));
        Self { cfg, upstream, registry, csp }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry is never left half-updated, so a poisoned lock is still usable.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams still live or being deleted.
    pub fn open_streams(&self) -> usize {
        self.registry().open_streams()
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// Deletes every stream still live or being deleted upstream, all at once,
    /// waiting at most `limit`; logs and reports what was deleted and what was not.
    pub async fn delete_all(self: &Arc<Self>, limit: std::time::Duration) -> crate::ShutdownReport {
        let ids = self.registry().drain();
        let mut report = crate::ShutdownReport::default();
        if ids.is_empty() {
            return report;
        }
        tracing::info!(streams = ids.len(), "deleting the remaining streams upstream");
        let mut tasks = tokio::task::JoinSet::new();
        for id in &ids {
            let (st, id) = (self.clone(), id.clone());
            tasks.spawn(async move {
                let ok = st.delete_upstream(&id).await.is_ok();
                (id, ok)
            });
        }
        let collect = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok((id, true)) = done {
                    report.deleted.push(id);
                }
            }
        };
        let timed_out = tokio::time::timeout(limit, collect).await.is_err();
        tasks.abort_all();
        report.deleted.sort();
        report.not_deleted = ids.into_iter().filter(|id| !report.deleted.contains(id)).collect();
        if !report.deleted.is_empty() {
            tracing::info!(deleted = ?report.deleted, "streams deleted upstream on shutdown");
        }
        if !report.not_deleted.is_empty() {
            tracing::warn!(
                not_deleted = ?report.not_deleted,
                timed_out,
                "could not delete these streams upstream on shutdown: they may still be running (and billed)"
            );
        }
        report
    }

    fn is_https(&self, headers: &HeaderMap) -> bool {
        self.cfg.https
            || (self.cfg.trust_forwarded_proto
                && headers
                    .get(X_FORWARDED_PROTO)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
    }

    /// `Origin` is the request's own origin or an allowed one.
    fn origin_ok(&self, headers: &HeaderMap, https: bool) -> bool {
        let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Ok(origin) = normalize_origin(origin) else { return false };
        if self.cfg.allowed_origins.contains(&origin) {
            return true;
        }
        let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let own = format!("{}://{host}", if https { "https" } else { "http" });
        normalize_origin(&own).is_ok_and(|own| own == origin)
    }

    /// The live stream `id` if `session` owns it (and records the activity).
    fn owned(&self, session: &SessionId, id: &str) -> Result<StreamRecord, HttpError> {
        let mut reg = self.registry();
        match reg.authorize(session, id) {
            Access::Live(record) => {
                reg.touch(id, Instant::now());
                Ok(record)
            }
            Access::Deleting(_) | Access::Gone => Err(HttpError::stream_gone(id)),
            Access::NotOwned => Err(HttpError::not_owned()),
        }
    }

    /// Checks an upstream-provided URL (absolute or relative to `base`).
    fn checked_url(&self, base: &Url, raw: &str, what: &str) -> Option<Url> {
        let joined = base.join(raw).ok()?;
        match self.upstream.policy().check(joined.as_str()) {
            Ok(url) => Some(url),
            Err(refusal) => {
                tracing::warn!(%refusal, "ignoring upstream {what} URL outside the WHIP policy");
                None
            }
        }
    }

    /// Remembers the WHEP URL named by a status body.
    fn learn_whep_from_status(&self, record: &StreamRecord, status: &Value) -> Option<Url> {
        let raw = status.pointer("/data/gateway_status/whep_url").and_then(Value::as_str)?;
        if raw.is_empty() {
            return None;
        }
        let url = self.checked_url(&record.whip_url, raw, "WHEP")?;
        self.registry().update_record(&record.id, |r| r.whep_url = Some(url.clone()));
        Some(url)
    }

    /// Creates the stream upstream and records it (the session's slot was
    /// reserved by the handler; any failure releases it).
    async fn create(
        self: Arc<Self>,
        session: SessionId,
        payload: dreamgate_model::CreatePayload,
    ) -> Result<Response, HttpError> {
        let (stream, record) = match self.create_upstream(&session, &payload).await {
            Ok(created) => created,
            Err(e) => {
                self.registry().abort_create(&session);
                return Err(e);
            }
        };
        let id = record.id.clone();
        let ended = self.registry().finish_create(record, Instant::now());
        tracing::info!(stream_id = %id, "stream created");
        if ended {
            tracing::info!(stream_id = %id, "session ended during the create: deleting the stream");
            let _ = self.delete_upstream(&id).await;
        }
        Ok((StatusCode::CREATED, Json(stream)).into_response())
    }

    /// The upstream create: the stream object and the record to keep. A
    /// stream whose WHIP URL the policy refuses is deleted again at once.
    async fn create_upstream(
        &self,
        session: &SessionId,
        payload: &dreamgate_model::CreatePayload,
    ) -> Result<(Value, StreamRecord), HttpError> {
        let body = serde_json::to_value(payload)
            .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e.to_string()))?;
        let stream = self.upstream.api().create_stream(&body).await.map_err(|e| {
            tracing::warn!(error = %e.message(), "stream create failed upstream");
            HttpError::from_upstream(&e)
        })?;
        let Some(id) = stream.get("id").and_then(Value::as_str).filter(|id| valid_stream_id(id)) else {
            return Err(HttpError::bad_gateway(
                "Invalid upstream response",
                "Daydream's stream object has no usable id",
            ));
        };
        let id = id.to_string();
        let whip = match stream.get("whip_url").and_then(Value::as_str) {
            Some(raw) => self.upstream.policy().check(raw).map_err(|r| r.to_string()),
            None => Err("the stream object has no whip_url".to_string()),
        };
        let whip_url = match whip {
            Ok(url) => url,
            Err(why) => {
                tracing::warn!(stream_id = %id, reason = %why, "refusing created stream: WHIP URL not allowed; deleting it");
                if let Err(e) = self.upstream.api().delete_stream(&id).await {
                    tracing::warn!(stream_id = %id, error = %e.message(), "could not delete the refused stream");
                }
                return Err(HttpError::bad_gateway(
                    "WHIP URL not allowed",
                    format!(
                        "Daydream returned a WHIP URL the gateway will not contact ({why}); \
                         if its domain is legitimate, add it to DAYDREAM_WHIP_ALLOWED_HOSTS"
                    ),
                ));
            }
        };
        let model_id = [&stream, &body]
            .into_iter()
            .find_map(|v| v.pointer("/params/model_id").and_then(Value::as_str))
            .unwrap_or(dreamgate_model::catalog::DEFAULT_MODEL_ID)
            .to_string();
        let record = StreamRecord {
            id,
            owner: session.clone(),
            model_id,
            whip_url,
            whip_resource: None,
            whep_url: None,
            whep_resource: None,
        };
        Ok((stream, record))
    }

    /// Deletes upstream and records the outcome (404/405 = already gone).
    async fn delete_upstream(&self, id: &str) -> Result<(), HttpError> {
        let result = self.upstream.api().delete_stream(id).await;
        let now = Instant::now();
        match result {
            Ok(()) | Err(UpstreamError::Upstream { status: 404 | 405, .. }) => {
                self.registry().delete_succeeded(id, now);
                tracing::info!(stream_id = %id, "stream deleted upstream");
                Ok(())
            }
            Err(e) => {
                let retry = self.registry().delete_failed(id, now);
                tracing::warn!(stream_id = %id, error = %e.message(), retry, "stream delete failed");
                Err(HttpError::from_upstream(&e))
            }
        }
    }

    /// The session ends stream `id` (DELETE route, end beacon): deletes it
    /// upstream unless it is already gone. Idempotent.
    async fn end_owned(self: Arc<Self>, session: &SessionId, id: String) -> Result<Value, HttpError> {
        let access = self.registry().authorize(session, &id);
        match access {
            Access::NotOwned => Err(HttpError::not_owned()),
            Access::Gone => Ok(json!({ "success": true, "id": id })),
            Access::Live(_) | Access::Deleting(_) => {
                tracing::info!(stream_id = %id, "owner ends the stream");
                run_detached(self.end_stream(id)).await
            }
        }
    }

    async fn end_stream(self: Arc<Self>, id: String) -> Result<Value, HttpError> {
        if !self.registry().begin_delete(&id) {
            return Ok(json!({ "success": true, "id": id, "pending": true }));
        }
        self.delete_upstream(&id).await?;
        Ok(json!({ "success": true, "id": id }))
    }

    /// POSTs an SDP offer to `target`: the upstream answer and the checked
    /// session resource it names in `Location`.
    async fn send_offer(&self, leg: Leg, target: &Url, offer: Bytes) -> Result<(SignalReply, Option<Url>), HttpError> {
        let reply = self.upstream.signal(Signal::offer(target, offer)).await?;
        ensure_success(&reply, &format!("{} offer failed", leg.label()))?;
        let resource = header_str(&reply.headers, &LOCATION)
            .and_then(|raw| self.checked_url(target, raw, &format!("{} resource", leg.label())));
        Ok((reply, resource))
    }

    /// Deletes the stream's upstream session resource of `leg` (204 when there is none).
    async fn teardown(&self, leg: Leg, record: &StreamRecord) -> Result<Response, HttpError> {
        let Some(target) = leg.resource(record).cloned() else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        self.registry().update_record(&record.id, |r| *leg.resource_mut(r) = None);
        let reply = self.upstream.signal(Signal::delete(&target)).await?;
        ensure_success(&reply, &format!("{} teardown failed", leg.label()))?;
        Ok(relay(&reply, "text/plain"))
    }

    async fn whip_offer(self: Arc<Self>, record: StreamRecord, offer: Bytes) -> Result<Response, HttpError> {
        let (reply, resource) = self.send_offer(Leg::Whip, &record.whip_url, offer).await?;
        let playback =
            header_str(&reply.headers, &PLAYBACK_URL).and_then(|raw| self.checked_url(&record.whip_url, raw, "WHEP"));
        let whep_known = playback.is_some() || record.whep_url.is_some();
        self.registry().update_record(&record.id, |r| {
            r.whip_resource = resource;
            if playback.is_some() {
                r.whep_url = playback;
            }
        });
        let mut resp = relay(&reply, "application/sdp");
        let h = resp.headers_mut();
        insert_path(h, LOCATION, &Leg::Whip.gateway_path(&record.id));
        if whep_known {
            insert_path(h, PLAYBACK_URL, &Leg::Whep.gateway_path(&record.id));
        }
        Ok(resp)
    }

    async fn whep_offer(self: Arc<Self>, record: StreamRecord, offer: Bytes) -> Result<Response, HttpError> {
        let whep_url = match record.whep_url.clone() {
            Some(u) => Some(u),
            None => {
                let status =
                    self.upstream.api().stream_status(&record.id).await.map_err(|e| HttpError::from_upstream(&e))?;
                self.learn_whep_from_status(&record, &status)
            }
        };
        let Some(whep_url) = whep_url else {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "Playback not ready",
                "No WHEP URL is known for this stream yet; retry shortly",
            ));
        };
        let (reply, resource) = self.send_offer(Leg::Whep, &whep_url, offer).await?;
        self.registry().update_record(&record.id, |r| r.whep_resource = resource);
        let mut resp = relay(&reply, "application/sdp");
        insert_path(resp.headers_mut(), LOCATION, &Leg::Whep.gateway_path(&record.id));
        Ok(resp)
    }
}

/// Which proxied signalling endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// WHIP ingest (`/api/daydream/streams/:id/whip`).
    Whip,
    /// WHEP playback (`/api/daydream/streams/:id/whep`).
    Whep,
}

impl Leg {
    fn label(self) -> &'static str {
        match self {
            Leg::Whip => "WHIP",
            Leg::Whep => "WHEP",
        }
    }

    /// The gateway's own path for this leg of stream `id`.
    fn gateway_path(self, id: &str) -> String {
        match self {
            Leg::Whip => format!("/api/daydream/streams/{id}/whip"),
            Leg::Whep => format!("/api/daydream/streams/{id}/whep"),
        }
    }

    /// The stored upstream endpoint URL.
    fn endpoint(self, r: &StreamRecord) -> Option<&Url> {
        match self {
            Leg::Whip => Some(&r.whip_url),
            Leg::Whep => r.whep_url.as_ref(),
        }
    }

    /// The stored upstream session resource.
    fn resource(self, r: &StreamRecord) -> Option<&Url> {
        match self {
            Leg::Whip => r.whip_resource.as_ref(),
            Leg::Whep => r.whep_resource.as_ref(),
        }
    }

    fn resource_mut(self, r: &mut StreamRecord) -> &mut Option<Url> {
        match self {
            Leg::Whip => &mut r.whip_resource,
            Leg::Whep => &mut r.whep_resource,
        }
    }
}

/// Selects the [`Leg`] of a [`Proxied`] extractor at compile time.
trait LegKind: Send + Sync + 'static {
    const LEG: Leg;
}

/// Marker for [`Leg::Whip`].
#[derive(Debug)]
struct Whip;
/// Marker for [`Leg::Whep`].
#[derive(Debug)]
struct Whep;

impl LegKind for Whip {
    const LEG: Leg = Leg::Whip;
}
impl LegKind for Whep {
    const LEG: Leg = Leg::Whep;
}

/// The live stream `{id}` owned by the request's session (its activity is
/// recorded, postponing the reaper). 404 `Unknown stream` for a malformed id,
/// 404 `Stream not found` for this session's own stream once it has ended,
/// 403 `Stream not owned by active session` for any other well-formed id
/// (the registry alone decides: upstream is never asked).
#[derive(Debug)]
struct Owned {
    st: Arc<AppState>,
    record: StreamRecord,
}

impl FromRequestParts<Arc<AppState>> for Owned {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let StreamId(id) = StreamId::from_request_parts(parts, st).await?;
        let Some(Session(session)) = parts.extensions.get::<Session>() else {
            return Err(HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "No session for this request",
            ));
        };
        let record = st.owned(session, &id)?;
        Ok(Owned { st: st.clone(), record })
    }
}

/// [`Owned`] for a WHIP/WHEP proxy route; a `resource` query parameter, when
/// given, must name one of the stream's stored upstream URLs of that leg (else 400).
#[derive(Debug)]
struct Proxied<L> {
    st: Arc<AppState>,
    record: StreamRecord,
    leg: std::marker::PhantomData<L>,
}

impl<L: LegKind> FromRequestParts<Arc<AppState>> for Proxied<L> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Owned { st, record } = Owned::from_request_parts(parts, st).await?;
        check_resource(&parts.uri, &[L::LEG.endpoint(&record), L::LEG.resource(&record)])?;
        Ok(Proxied { st, record, leg: std::marker::PhantomData })
    }
}

/// The stream id path parameter: `[A-Za-z0-9_-]{1,128}`, else 404.
#[derive(Debug, Clone)]
pub struct StreamId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for StreamId {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if valid_stream_id(&id) => Ok(StreamId(id)),
            _ => Err(HttpError::new(StatusCode::NOT_FOUND, "Unknown stream", "No stream has this id")),
        }
    }
}

/// Upstream ids look like `str_...`; anything outside this set is not an id.
pub fn valid_stream_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The gateway's router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/daydream/config", get(config))
        .route("/api/daydream/streams", post(create))
        .route("/api/daydream/streams/end", post(end))
        .route("/api/daydream/streams/{id}", delete(delete_stream))
        .route("/api/daydream/streams/{id}/status", get(status))
        .route("/api/daydream/streams/{id}/parameters", patch(update_parameters))
        .route("/api/daydream/streams/{id}/whip", post(whip_post).patch(whip_patch).delete(teardown::<Whip>))
        .route("/api/daydream/streams/{id}/whep", post(whep_post).delete(teardown::<Whep>))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), session_and_headers))
        .with_state(state)
}

/// Session cookie, Origin check on mutating methods, security headers.
async fn session_and_headers(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let https = st.is_https(req.headers());
    // Only ids this gateway issued are resumed; anything else gets a fresh one.
    let (id, fresh) = {
        let now = Instant::now();
        let mut reg = st.registry();
        match SessionId::from_headers(req.headers()).filter(|id| reg.resume_session(id, now)) {
            Some(id) => (id, false),
            None => {
                let id = SessionId::generate();
                reg.issue_session(id.clone(), now);
                (id, true)
            }
        }
    };
    let api = req.uri().path().starts_with("/api/");
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut resp = if mutating && !st.origin_ok(req.headers(), https) {
        tracing::debug!(path = %req.uri().path(), "refused mutating request from a foreign origin");
        HttpError::bad_origin().into_response()
    } else {
        req.extensions_mut().insert(Session(id.clone()));
        next.run(req).await
    };
    headers::apply(resp.headers_mut(), &st.csp, api);
    if fresh {
        if let Ok(v) = HeaderValue::from_str(&id.set_cookie(https)) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

async fn config(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        // The gateway only runs with a key (daydream) or a running engine (local).
        "configured": true,
        "mode": st.cfg.mode.as_str(),
        "playback": { "iframeBase": format!("{}/", headers::PLAYER_ORIGIN) },
    }))
}

async fn create(
    State(st): State<Arc<AppState>>,
    Extension(Session(session)): Extension<Session>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let value = read_json(&headers, body).await?;
    let payload = dreamgate_model::parse_create(&value).map_err(invalid_config)?;
    if let Err(conflict) = st.registry().begin_create(&session) {
        let active = conflict.active_stream_id;
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "Stream already active",
            "This session already has a stream; end it before creating another",
        )
        .with("activeStreamId", active.map(Value::String).unwrap_or(Value::Null)));
    }
    run_detached(st.create(session, payload)).await
}

async fn status(Owned { st, record }: Owned) -> Result<Response, HttpError> {
    let body = st.upstream.api().stream_status(&record.id).await.map_err(|e| HttpError::from_upstream(&e))?;
    st.learn_whep_from_status(&record, &body);
    Ok(Json(body).into_response())
}

async fn update_parameters(Owned { st, record }: Owned, headers: HeaderMap, body: Body) -> Result<Response, HttpError> {
    let value = read_json(&headers, body).await?;
    let params = dreamgate_model::parse_update(&value).map_err(invalid_config)?;
    let upstream_body = dreamgate_model::update_body(&record.model_id, params);
    match st.upstream.api().update_stream(&record.id, &upstream_body).await {
        Ok(Some(stream)) => Ok(Json(stream).into_response()),
        Ok(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(HttpError::from_upstream(&e)),
    }
}

async fn delete_stream(
    State(st): State<Arc<AppState>>,
    Extension(Session(session)): Extension<Session>,
    StreamId(id): StreamId,
) -> Result<Json<Value>, HttpError> {
    st.end_owned(&session, id).await.map(Json)
}

/// `navigator.sendBeacon` target: `{streamId}` as text/plain JSON (or no body:
/// the session's active stream).
async fn end(
    State(st): State<Arc<AppState>>,
    Extension(Session(session)): Extension<Session>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, HttpError> {
    let bytes = read_body(&headers, body, MAX_JSON_BODY).await?;
    let requested = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: Value = serde_json::from_slice(&bytes).map_err(HttpError::malformed_json)?;
        match ["streamId", "stream_id", "id"].iter().find_map(|k| value.get(*k)) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(HttpError::new(StatusCode::BAD_REQUEST, "Invalid request", "streamId must be a string"));
            }
        }
    };
    let id = match requested {
        Some(id) => id,
        None => {
            let mut reg = st.registry();
            match reg.active_stream(&session) {
                Some(id) => id.to_string(),
                None => {
                    // a create still in flight is deleted as soon as it completes
                    let pending = reg.end_pending_create(&session);
                    return Ok(Json(json!({ "success": true, "id": null, "pending": pending })));
                }
            }
        }
    };
    st.end_owned(&session, id).await.map(Json)
}

async fn whip_post(
    Proxied { st, record, .. }: Proxied<Whip>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let offer = read_signal_body(&headers, body, SDP).await?;
    run_detached(st.whip_offer(record, offer)).await
}

/// Trickle ICE, to the WHIP session resource (or the endpoint before there is one).
async fn whip_patch(
    Proxied { st, record, .. }: Proxied<Whip>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let frag = read_signal_body(&headers, body, TRICKLE).await?;
    let target = record.whip_resource.as_ref().unwrap_or(&record.whip_url);
    let reply = st.upstream.signal(Signal::trickle(target, frag, headers.get(IF_MATCH))).await?;
    ensure_success(&reply, "WHIP trickle failed")?;
    Ok(relay(&reply, TRICKLE))
}

async fn whep_post(
    Proxied { st, record, .. }: Proxied<Whep>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let offer = read_signal_body(&headers, body, SDP).await?;
    run_detached(st.whep_offer(record, offer)).await
}

/// `DELETE` of the WHIP or WHEP session: tears down its upstream resource.
async fn teardown<L: LegKind>(Proxied { st, record, .. }: Proxied<L>) -> Result<Response, HttpError> {
    st.teardown(L::LEG, &record).await
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        if let Some(asset) = assets::lookup(uri.path()) {
            return ([(CONTENT_TYPE, asset.content_type)], asset.bytes).into_response();
        }
    }
    HttpError::not_found().into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Drives the reaper: every `reap_interval`, asks the registry what to delete
/// and deletes it upstream (outcomes go back to the registry).
pub async fn run_reaper(st: Arc<AppState>) {
    let mut interval = tokio::time::interval(st.cfg.reap_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let actions = st.registry().tick(Instant::now());
        for action in actions {
            let st = st.clone();
            tracing::info!(stream_id = %action.stream_id, reason = ?action.reason, "reaping stream");
            tokio::spawn(async move {
                let _ = st.delete_upstream(&action.stream_id).await;
            });
        }
    }
}

/// Runs `fut` in its own task so that a client disconnect cannot cancel it.
async fn run_detached<T: Send + 'static>(
    fut: impl Future<Output = Result<T, HttpError>> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::spawn(fut).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "request task failed");
        Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "The request failed unexpectedly"))
    })
}

/// Reads a body of at most `limit` bytes (413 beyond).
async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes, HttpError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HttpError::too_large(limit));
    }
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                "Unreadable body",
                format!("The request body could not be read: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(HttpError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.into())
}

/// `Content-Type` of SDP offers and answers.
const SDP: &str = "application/sdp";
/// `Content-Type` of trickle ICE fragments.
const TRICKLE: &str = "application/trickle-ice-sdpfrag";

/// A WHIP/WHEP request body: `content_type` required (415), at most [`MAX_SDP_BODY`] (413).
async fn read_signal_body(headers: &HeaderMap, body: Body, content_type: &str) -> Result<Bytes, HttpError> {
    require_content_type(headers, content_type)?;
    read_body(headers, body, MAX_SDP_BODY).await
}

async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, HttpError> {
    let bytes = read_body(headers, body, MAX_JSON_BODY).await?;
    serde_json::from_slice(&bytes).map_err(HttpError::malformed_json)
}

fn invalid_config(errors: Vec<FieldError>) -> HttpError {
    let summary: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
    let details = serde_json::to_value(&errors).unwrap_or(Value::Null);
    HttpError::new(StatusCode::BAD_REQUEST, "Invalid stream configuration", summary.join("; ")).with("details", details)
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), HttpError> {
    let essence =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case(expected)) {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("Content-Type must be {expected}"),
        ))
    }
}

/// A `resource` query parameter must name one of the stored URLs.
fn check_resource(uri: &Uri, stored: &[Option<&Url>]) -> Result<(), HttpError> {
    let Some(query) = uri.query() else { return Ok(()) };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "resource" {
            continue;
        }
        let matches =
            Url::parse(&value).ok().is_some_and(|given| stored.iter().flatten().any(|s| s.as_str() == given.as_str()));
        if !matches {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "Invalid resource",
                "The resource parameter does not name this stream's upstream URL",
            ));
        }
    }
    Ok(())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|s| !s.is_empty())
}

fn insert_path(headers: &mut HeaderMap, name: HeaderName, path: &str) {
    if let Ok(v) = HeaderValue::from_str(path) {
        headers.insert(name, v);
    }
}

/// Refuses redirects and maps error statuses (4xx kept, others 502).
fn ensure_success(reply: &SignalReply, what: &str) -> Result<(), HttpError> {
    let status = reply.status;
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&reply.body);
    let details: String = text.chars().take(2000).collect();
    if status.is_redirection() {
        return Err(HttpError::bad_gateway(
            "Upstream redirect refused",
            format!("{what}: the upstream answered a {} redirect, which the gateway does not follow", status.as_u16()),
        )
        .with("upstreamStatus", status.as_u16()));
    }
    let err = if status.is_client_error() {
        HttpError::new(status, what, format!("{what}: {}", status.as_u16()))
    } else {
        HttpError::bad_gateway(what, format!("{what}: {}", status.as_u16())).with("upstreamStatus", status.as_u16())
    };
    Err(err.with("details", details))
}

/// The upstream answer with only the headers the browser needs (Content-Type,
/// ETag, Link); Location is replaced by the caller.
fn relay(reply: &SignalReply, default_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(reply.body.clone()));
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    if !reply.body.is_empty() {
        let ct = reply.headers.get(CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static(default_type));
        h.insert(CONTENT_TYPE, ct);
    }
    if let Some(tag) = reply.headers.get(ETAG) {
        h.insert(ETAG, tag.clone());
    }
    for link in reply.headers.get_all(LINK) {
        h.append(LINK, link.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert!(valid_stream_id("str_abc-123"));
        for bad in ["", "a/b", "a b", "..", "é", &"a".repeat(129)] {
            assert!(!valid_stream_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn resource_must_name_a_stored_url() {
        let whip = Url::parse("https://ai.livepeer.com/live/video-to-video/stk/whip").unwrap();
        let uri = |q: &str| format!("/x?{q}").parse::<Uri>().unwrap();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        assert!(check_resource(&"/x".parse().unwrap(), &[Some(&whip)]).is_ok());
        assert!(check_resource(&uri(&format!("resource={}", enc(whip.as_str()))), &[Some(&whip), None]).is_ok());
        assert!(check_resource(&uri("resource=https%3A%2F%2Fevil.com%2Fwhip"), &[Some(&whip)]).is_err());
        assert!(check_resource(&uri("resource=not-a-url"), &[Some(&whip)]).is_err());
        assert!(check_resource(&uri(&format!("resource={}", enc(whip.as_str()))), &[None]).is_err());
    }

    #[test]
    fn content_type_essence() {
        let mut h = HeaderMap::new();
        assert!(require_content_type(&h, "application/sdp").is_err());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("Application/SDP; charset=utf-8"));
        assert!(require_content_type(&h, "application/sdp").is_ok());
        assert_eq!(
            require_content_type(&h, "application/trickle-ice-sdpfrag").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
