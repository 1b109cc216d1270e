//! What every request goes through before its handler: the session cookie,
//! the `Origin` check on mutating methods, and the security headers.
//!
//! * Only a session id this gateway issued is resumed; any other request is
//!   served under a fresh session whose cookie is set on the response.
//! * A mutating request (anything but GET, HEAD, OPTIONS) must carry an
//!   `Origin` equal to the gateway's own origin (`http://<Host>`, or
//!   `https://` when [`GatewayConfig::https`] is set or a trusted
//!   `X-Forwarded-Proto: https` says so) or one of
//!   [`GatewayConfig::allowed_origins`]; otherwise 403 `Forbidden origin`.
//! * Every response gets the [`crate::headers`]; `/api/` ones also `no-store`.

use std::sync::{Arc, LazyLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::error::HttpError;
use crate::extract::Session;
use crate::headers;
use crate::session::SessionId;
use crate::state::AppState;
use crate::{normalize_origin, GatewayConfig};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The Content-Security-Policy value, built once.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&headers::content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// Session cookie, Origin check on mutating methods, security headers.
pub async fn session_and_headers(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let cfg = st.config();
    let https = is_https(cfg, req.headers());
    // Only ids this gateway issued are resumed; anything else gets a fresh one.
    let (id, fresh) = st.session(SessionId::from_headers(req.headers()));
    let api = req.uri().path().starts_with("/api/");
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut resp = if mutating && !origin_ok(cfg, req.headers(), https) {
        tracing::debug!(path = %req.uri().path(), "refused mutating request from a foreign origin");
        HttpError::bad_origin().into_response()
    } else {
        req.extensions_mut().insert(Session(id.clone()));
        next.run(req).await
    };
    headers::apply(resp.headers_mut(), &CSP, api);
    if fresh {
        if let Ok(v) = HeaderValue::from_str(&id.set_cookie(https)) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

/// The request reached the gateway over https (configured, or a trusted
/// `X-Forwarded-Proto: https`).
fn is_https(cfg: &GatewayConfig, headers: &HeaderMap) -> bool {
    cfg.https
        || (cfg.trust_forwarded_proto
            && headers
                .get(X_FORWARDED_PROTO)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
}

/// `Origin` is the request's own origin or an allowed one.
fn origin_ok(cfg: &GatewayConfig, headers: &HeaderMap, https: bool) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = normalize_origin(origin) else { return false };
    if cfg.allowed_origins.contains(&origin) {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let own = format!("{}://{host}", if https { "https" } else { "http" });
    normalize_origin(&own).is_ok_and(|own| own == origin)
}
