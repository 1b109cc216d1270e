//! What every request goes through before its handler: the `Host` check
//! and the client address ([`crate::edge`]), the session cookie, the
//! `Origin` check on mutating methods, and the security headers.
//!
//! * On `/api/` routes a `Host` that does not name the gateway is answered
//!   421 before anything else (no session is issued, nothing upstream is
//!   contacted). Every request carries its [`ClientAddr`] (and the
//!   [`Edge`]) as extensions for the handlers.
//!
//! * Sessions are issued only where one is needed: the create route issues
//!   one (its cookie set on the response, see [`IssuedSession`]) when the
//!   request has none. On the stream routes the cookie's session id is read
//!   here ([`SessionCookie`]) and checked with the store by the handler's
//!   extractor, in one store transition with the stream's ownership
//!   ([`crate::extract`]); only a session id the store remembers is resumed
//!   (the config route and static files never touch the store and never set
//!   a cookie); a stream route without a valid session is served as a
//!   session owning nothing (403 for any stream id).
//! * A mutating request (anything but GET, HEAD, OPTIONS) must carry an
//!   `Origin` equal to the gateway's own origin (`http://<Host>`, or
//!   `https://` when [`GatewayConfig::https`] is set or a trusted
//!   `X-Forwarded-Proto: https` says so) or one of
//!   [`GatewayConfig::allowed_origins`] or the origin of
//!   [`GatewayConfig::public_url`]; otherwise 403 `Forbidden origin`.
//! * Every response gets the [`crate::headers`]; `/api/` ones also `no-store`.
//! * CORS, on `/api/` routes, for the origins of [`GatewayConfig::allowed_origins`] only
//!   (`--allowed-origin`): a preflight `OPTIONS` answers 204 with the methods and headers
//!   allowed, and every answer to such an origin carries `Access-Control-Allow-Origin: <it>`,
//!   `Access-Control-Allow-Credentials: true` and exposes `Location`, `ETag`, `Link`,
//!   `Livepeer-Playback-URL`. Any other origin gets no CORS header at all.
//! * Every request carries its [`PublicBase`]: the gateway's absolute base URL
//!   ([`GatewayConfig::public_url`], else `http(s)://<Host>`), so that `Location` and
//!   `Livepeer-Playback-URL` are answered as absolute URLs (browser clients resolve the
//!   player's `Location` against them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::edge::{client_address, Edge};
use crate::error::HttpError;
use crate::extract::SessionCookie;
use crate::headers;
use crate::limits::ClientAddr;
use crate::session::SessionId;
use crate::state::AppState;
use crate::{normalize_origin, GatewayConfig};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The Content-Security-Policy value, built once.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&headers::content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// Put in a response's extensions by a handler that issued a session: the
/// middleware sets its cookie.
#[derive(Debug, Clone)]
pub struct IssuedSession(pub SessionId);

/// The routes that act for a session (the stream routes).
const SESSION_ROUTES: &str = "/api/daydream/streams";
/// The peer's IP: from axum's `ConnectInfo` or a bare `SocketAddr`
/// extension (whichever the server inserted); unspecified when neither.
fn peer_ip(req: &Request) -> IpAddr {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip();
    }
    if let Some(addr) = req.extensions().get::<SocketAddr>() {
        return addr.ip();
    }
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// `Host` check on `/api/` (421), then the client address and the edge as
/// request extensions.
pub async fn host_and_client(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/api/") {
        let host = req.headers().get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !edge.hosts.allows(host) {
            tracing::debug!(path = %req.uri().path(), "refused /api/ request for a foreign Host");
            let mut resp = HttpError::misdirected().into_response();
            headers::apply(resp.headers_mut(), &CSP, true);
            return resp;
        }
    }
    let client = ClientAddr::of(client_address(peer_ip(&req), req.headers(), &edge.trusted_proxies));
    req.extensions_mut().insert(client);
    req.extensions_mut().insert(edge);
    next.run(req).await
}

/// Session cookie, Origin check on mutating methods, security headers.
pub async fn session_and_headers(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let cfg = st.config();
    let https = is_https(cfg, req.headers());
    let path = req.uri().path();
    let api = path.starts_with("/api/");
    let needs_session = path.starts_with(SESSION_ROUTES);
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cors = if api { cors_origin(cfg, req.headers()) } else { None };
    if let Some(base) = public_base(cfg, req.headers(), https) {
        req.extensions_mut().insert(base);
    }
    let mut resp = if cors.is_some() && req.method() == Method::OPTIONS {
        preflight()
    } else if mutating && !origin_ok(cfg, req.headers(), https) {
        tracing::debug!(path = %req.uri().path(), "refused mutating request from a foreign origin");
        HttpError::bad_origin().into_response()
    } else if needs_session {
        // Read here, checked with the store by the handler's extractor (`Session`, `Owned`),
        // in the same store transition as the stream's ownership for the stream routes.
        let cookie = SessionCookie(SessionId::from_headers(req.headers()));
        req.extensions_mut().insert(cookie);
        next.run(req).await
    } else {
        next.run(req).await
    };
    headers::apply(resp.headers_mut(), &CSP, api);
    if let Some(origin) = cors {
        let h = resp.headers_mut();
        h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, ETag, Link, Livepeer-Playback-URL"),
        );
        h.append(http::header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(IssuedSession(id)) = resp.extensions_mut().remove::<IssuedSession>() {
        if let Ok(v) = HeaderValue::from_str(&id.set_cookie(https)) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

/// The gateway's absolute base URL for this request (no trailing slash): `--public-url`, else
/// the request's own origin (`Host` is checked on `/api/` routes before this is used).
#[derive(Debug, Clone)]
pub struct PublicBase(pub String);

fn public_base(cfg: &GatewayConfig, headers: &HeaderMap, https: bool) -> Option<PublicBase> {
    if let Some(u) = &cfg.public_url {
        return Some(PublicBase(u.as_str().trim_end_matches('/').to_owned()));
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok())?;
    Some(PublicBase(format!("{}://{host}", if https { "https" } else { "http" })))
}

/// The request's `Origin` as a header value, when it is one of `--allowed-origin`.
fn cors_origin(cfg: &GatewayConfig, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = normalize_origin(headers.get(ORIGIN)?.to_str().ok()?).ok()?;
    cfg.allowed_origins.contains(&origin).then(|| HeaderValue::from_str(&origin).ok()).flatten()
}

/// 204 to a CORS preflight from an allowed origin.
fn preflight() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"));
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization, if-match"),
    );
    h.insert(http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
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
    if cfg.public_url.as_ref().is_some_and(|u| u.origin().ascii_serialization() == origin) {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let own = format!("{}://{host}", if https { "https" } else { "http" });
    normalize_origin(&own).is_ok_and(|own| own == origin)
}
