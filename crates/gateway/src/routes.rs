//! The HTTP surface: the router and its thin handlers.
//!
//! Each handler parses its request with the [`crate::extract`] extractors and
//! readers, asks the stream service ([`crate::state`]) or the WHIP/WHEP proxy
//! ([`crate::proxy`]) and shapes the answer. Every request first goes through
//! [`crate::middleware`] (session cookie, Origin check, security headers);
//! every error answered is one of [`crate::error`]'s catalogue.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{middleware, Extension, Json, Router};
use http::header::{CONTENT_TYPE, IF_MATCH};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};

use crate::edge::Edge;
use crate::error::HttpError;
use crate::extract::{self, Owned, Proxied, Session, StreamId};
use crate::limits::{wall_now, ClientAddr};
use crate::metrics::{self, SignalAction};
use crate::middleware::{IssuedSession, PublicBase};
use crate::proxy::{self, Leg, LegKind, Whep, Whip, SDP, TRICKLE};
use crate::session::SessionId;
use crate::state::AppState;
use crate::{assets, headers, health};

/// The gateway's router over `state`: the browser's routes (behind the
/// request-edge checks of `edge` and the session middleware), the operator's
/// ([`health`]; `/metrics` only when no separate metrics listener is
/// configured), every request counted ([`metrics::track_requests`]).
pub fn router(state: Arc<AppState>, edge: Arc<Edge>) -> Router {
    let with_metrics = state.config().metrics_listen.is_none();
    app_router(state.clone(), edge)
        .merge(health::router(state, with_metrics))
        .layer(middleware::from_fn(metrics::track_requests))
}

fn app_router(state: Arc<AppState>, edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/api/daydream/config", get(config))
        .route("/api/daydream/streams", post(create))
        .route("/api/daydream/streams/end", post(end))
        .route("/api/daydream/streams/{id}", delete(delete_stream))
        .route("/api/daydream/streams/{id}/status", get(status))
        .route("/api/daydream/streams/{id}/events", get(events))
        .route("/api/daydream/streams/{id}/parameters", patch(update_parameters))
        .route("/api/daydream/streams/{id}/whip", post(whip_post).patch(whip_patch).delete(teardown::<Whip>))
        .route("/api/daydream/streams/{id}/whep", post(whep_post).delete(teardown::<Whep>))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), crate::middleware::session_and_headers))
        .layer(middleware::from_fn_with_state(edge, crate::middleware::host_and_client))
        .with_state(state)
}

async fn config(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        // The gateway only runs with a key (daydream) or a running engine (local).
        "configured": true,
        "mode": st.config().mode.as_str(),
        "playback": { "iframeBase": format!("{}/", headers::PLAYER_ORIGIN) },
    }))
}

/// The one route that issues a session (after the body is valid) when the
/// request has none.
async fn create(
    State(st): State<Arc<AppState>>,
    Session(session): Session,
    Extension(edge): Extension<Arc<Edge>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let payload = extract::read_create(&headers, body).await?;
    let (session, issued) = match session {
        Some(s) => (s, false),
        None => (st.issue_session().await?, true),
    };
    let store_st = st.clone();
    let holds = move |member: String| -> crate::limits::HoldsFuture {
        let st = store_st.clone();
        Box::pin(async move {
            match SessionId::parse(&member) {
                Some(s) => st.holds_stream(&s).await,
                None => false,
            }
        })
    };
    let admitted = edge.limiter.admit_create(&session, client, wall_now(), holds).await;
    let mut resp = match admitted {
        Err(e) => e.into_response(),
        Ok(()) => match st.clone().create(session.clone(), payload).await {
            Ok(stream) => (StatusCode::CREATED, Json(st.upstream().scrubber().value(stream))).into_response(),
            Err(e) => e.into_response(),
        },
    };
    if issued {
        resp.extensions_mut().insert(IssuedSession(session));
    }
    Ok(resp)
}

/// The stream's status pushed as Server-Sent Events by its one watcher
/// ([`crate::watcher`]): owner only, like the status route.
async fn events(Owned { st, record }: Owned) -> Response {
    let body = crate::watcher::event_stream(&st, &record);
    ([(CONTENT_TYPE, "text/event-stream"), (http::header::HeaderName::from_static("x-accel-buffering"), "no")], body)
        .into_response()
}

async fn status(Owned { st, record }: Owned) -> Result<Response, HttpError> {
    // Polls of one stream in flight together share one upstream call (checked,
    // scrubbed once).
    let answer = st.stream_status(&record.id).await.map_err(|e| st.upstream().api_error(&e))?;
    if let Some(raw) = &answer.whep {
        proxy::learn_whep_url(&st, &record, raw).await;
    }
    Ok(([(CONTENT_TYPE, "application/json")], answer.body).into_response())
}

async fn update_parameters(Owned { st, record }: Owned, headers: HeaderMap, body: Body) -> Result<Response, HttpError> {
    let upstream_body = extract::read_update(&headers, body, &record.model_id).await?;
    match st.upstream().api().update_stream(&record.id, &upstream_body).await {
        Ok(Some(stream)) => Ok(Json(st.upstream().scrubber().value(stream)).into_response()),
        Ok(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(st.upstream().api_error(&e)),
    }
}

async fn delete_stream(
    State(st): State<Arc<AppState>>,
    Session(session): Session,
    StreamId(id): StreamId,
) -> Result<Json<Value>, HttpError> {
    st.end_owned(session.as_ref(), id).await.map(Json)
}

/// `navigator.sendBeacon` target: `{streamId}` as text/plain JSON (or no body:
/// the session's active stream).
async fn end(
    State(st): State<Arc<AppState>>,
    Session(session): Session,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, HttpError> {
    match extract::read_end_beacon(&headers, body).await? {
        Some(id) => st.end_owned(session.as_ref(), id).await.map(Json),
        None => st.end_active(session.as_ref()).await.map(Json),
    }
}

async fn whip_post(
    Proxied { st, record, .. }: Proxied<Whip>,
    base: Option<Extension<PublicBase>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    counted(Leg::Whip, SignalAction::Offer, async {
        let offer = extract::read_signal_body(&headers, body, SDP).await?;
        proxy::whip_offer(st, record, offer, base.map(|Extension(b)| b.0)).await
    })
    .await
}

/// Trickle ICE, to the WHIP session resource (or the endpoint before there is one).
async fn whip_patch(
    Proxied { st, record, .. }: Proxied<Whip>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    counted(Leg::Whip, SignalAction::Trickle, async {
        let frag = extract::read_signal_body(&headers, body, TRICKLE).await?;
        proxy::whip_trickle(&st, &record, frag, headers.get(IF_MATCH)).await
    })
    .await
}

async fn whep_post(
    Proxied { st, record, .. }: Proxied<Whep>,
    base: Option<Extension<PublicBase>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    counted(Leg::Whep, SignalAction::Offer, async {
        let offer = extract::read_signal_body(&headers, body, SDP).await?;
        proxy::whep_offer(st, record, offer, base.map(|Extension(b)| b.0)).await
    })
    .await
}

/// `DELETE` of the WHIP or WHEP session: tears down its upstream resource.
async fn teardown<L: LegKind>(Proxied { st, record, .. }: Proxied<L>) -> Result<Response, HttpError> {
    counted(L::LEG, SignalAction::Teardown, proxy::teardown(&st, L::LEG, &record)).await
}

/// Runs a WHIP/WHEP proxy request and counts its result.
async fn counted(
    leg: Leg,
    action: SignalAction,
    fut: impl std::future::Future<Output = Result<Response, HttpError>>,
) -> Result<Response, HttpError> {
    let result = fut.await;
    metrics::signal_proxied(leg.op(), action, &result);
    result
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        if let Some(asset) = assets::lookup(uri.path()) {
            return ([(CONTENT_TYPE, asset.content_type)], asset.bytes).into_response();
        }
    }
    HttpError::not_found().into_response()
}

/// 404 `Not found` (the metrics listener's fallback).
pub(crate) async fn not_found() -> HttpError {
    HttpError::not_found()
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> HttpError {
    HttpError::method_not_allowed(&method, uri.path())
}
