//! The operator's routes: `/healthz`, `/readyz` and `/metrics`.
//!
//! They sit outside the session middleware (a probe or a scrape never gets
//! a session or a cookie) and answer JSON (`/metrics`: OpenMetrics text).
//!
//! * `GET /healthz`: the process is alive and serving: always 200 `{"status":"ok"}`.
//! * `GET /readyz`: 200 `{"status":"ready"}` when the upstream API answers
//!   and accepts the key (a `GET` of a stream id that never exists: nothing is
//!   created, see [`Api::probe`](crate::upstream::Api::probe)) and the
//!   store is reachable ([`store_ready`]); otherwise 503 `{"status":"not ready",
//!   "error":"Not ready","message":<reason>,"checks":{...}}`. A reason names no
//!   URL, no key and no id.
//! * `GET /metrics`: see [`crate::metrics`]. On the main listener unless
//!   [`GatewayConfig::metrics_listen`](crate::GatewayConfig::metrics_listen)
//!   moves it (with the two probes) to a listener of its own.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::metrics::{self, StateGauges};
use crate::state::AppState;

/// Longest a readiness check waits for the upstream API.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// `/healthz` and `/readyz`, and `/metrics` when `with_metrics`.
pub fn router(state: Arc<AppState>, with_metrics: bool) -> Router {
    let mut r = Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz));
    if with_metrics {
        r = r.route("/metrics", get(metrics_route));
    }
    r.method_not_allowed_fallback(crate::routes::method_not_allowed).with_state(state)
}

async fn healthz() -> Response {
    no_store(Json(json!({ "status": "ok" })).into_response())
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let limit = st.config().api_timeout.min(READY_TIMEOUT);
    let (upstream, store) = tokio::join!(st.upstream().api().probe(limit), store_ready(&st));
    let check = |r: &Result<(), &'static str>| r.err().unwrap_or("ok");
    let checks = json!({ "upstream": check(&upstream), "store": check(&store) });
    let resp = match upstream.and(store) {
        Ok(()) => Json(json!({ "status": "ready", "checks": checks })).into_response(),
        Err(reason) => {
            tracing::debug!(reason, "not ready");
            let body = json!({ "status": "not ready", "error": "Not ready", "message": reason, "checks": checks });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    };
    no_store(resp)
}

/// Whether the state store answers (the store seam's hook: the in-process
/// store always does; a remote one pings its server here). The reason, on
/// failure, names no address or credential.
pub async fn store_ready(st: &AppState) -> Result<(), &'static str> {
    use crate::store::StoreApi;
    st.store().ping().await.map_err(|_| "the state store does not answer")
}

async fn metrics_route(State(st): State<Arc<AppState>>) -> Response {
    let streams_open = st.open_streams().await.unwrap_or(0);
    let text =
        metrics::render(StateGauges { streams_open, sessions: st.live_sessions(), watched: st.watchers().count() });
    no_store(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
