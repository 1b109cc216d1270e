//! Parsing at the edge: what a handler may assume about its request.
//!
//! * [`Session`]: the request's session, checked with the store (from the cookie the session
//!   middleware read: [`SessionCookie`]).
//! * [`StreamId`]: a well-formed `{id}` path parameter (else 404 `Unknown stream`).
//! * [`Owned`]: the live stream `{id}` owned by the request's session.
//! * [`Proxied`]: [`Owned`] for a WHIP/WHEP leg, with its `resource` query checked.
//! * the body readers: size limits (413), `Content-Type` (415), JSON (400),
//!   stream parameters (400 with `details`) and the end beacon's body.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Uri};
use serde_json::Value;
use url::Url;

use crate::error::HttpError;
use crate::proxy::LegKind;
use crate::registry::{valid_stream_id, StreamRecord};
use crate::session::SessionId;
use crate::state::AppState;
use crate::{MAX_JSON_BODY, MAX_SDP_BODY};

/// The session id the cookie of a stream route's request names (inserted by the session
/// middleware on the stream routes), not yet checked with the store: [`Session`] and
/// [`Owned`] check it, each in one store transition.
#[derive(Debug, Clone)]
pub struct SessionCookie(pub Option<SessionId>);

/// The session of the current request: `None` when it names no session the store
/// remembers (checking it records the session's activity). 503 when the store cannot be
/// reached.
#[derive(Debug, Clone)]
pub struct Session(pub Option<SessionId>);

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Some(SessionCookie(cookie)) = parts.extensions.get::<SessionCookie>().cloned() else {
            return Err(HttpError::no_session());
        };
        Ok(Session(st.resume(cookie).await?))
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
            _ => Err(HttpError::unknown_stream()),
        }
    }
}

/// The live stream `{id}` owned by the request's session (its activity is
/// recorded, postponing the reaper). 404 `Unknown stream` for a malformed id,
/// 404 `Stream not found` for this session's own stream once it has ended,
/// 403 `Stream not owned by active session` for any other well-formed id
/// (the registry alone decides: upstream is never asked).
#[derive(Debug)]
pub struct Owned {
    /// The stream service.
    pub st: Arc<AppState>,
    /// The stream, as recorded.
    pub record: StreamRecord,
}

impl FromRequestParts<Arc<AppState>> for Owned {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let StreamId(id) = StreamId::from_request_parts(parts, st).await?;
        let Some(SessionCookie(cookie)) = parts.extensions.get::<SessionCookie>() else {
            return Err(HttpError::no_session());
        };
        let record = st.owned(cookie.as_ref(), &id).await?;
        Ok(Owned { st: st.clone(), record })
    }
}

/// [`Owned`] for a WHIP/WHEP proxy route; a `resource` query parameter, when
/// given, must name one of the stream's stored upstream URLs of that leg (else 400).
#[derive(Debug)]
pub struct Proxied<L> {
    /// The stream service.
    pub st: Arc<AppState>,
    /// The stream, as recorded.
    pub record: StreamRecord,
    leg: PhantomData<L>,
}

impl<L: LegKind> FromRequestParts<Arc<AppState>> for Proxied<L> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Owned { st, record } = Owned::from_request_parts(parts, st).await?;
        check_resource(&parts.uri, &[L::LEG.endpoint(&record), L::LEG.resource(&record)])?;
        Ok(Proxied { st, record, leg: PhantomData })
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
            return Err(HttpError::invalid_resource());
        }
    }
    Ok(())
}

/// Reads a body of at most `limit` bytes (413 beyond).
pub async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes, HttpError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HttpError::too_large(limit));
    }
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(HttpError::unreadable_body)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(HttpError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.into())
}

/// A WHIP/WHEP request body: `content_type` required (415), at most [`MAX_SDP_BODY`] (413).
pub async fn read_signal_body(headers: &HeaderMap, body: Body, content_type: &str) -> Result<Bytes, HttpError> {
    require_content_type(headers, content_type)?;
    read_body(headers, body, MAX_SDP_BODY).await
}

/// A JSON body of at most [`MAX_JSON_BODY`] (413; 400 when not JSON).
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, HttpError> {
    let bytes = read_body(headers, body, MAX_JSON_BODY).await?;
    serde_json::from_slice(&bytes).map_err(HttpError::malformed_json)
}

/// A create body: the model's payload (400 with `details` when invalid).
pub async fn read_create(headers: &HeaderMap, body: Body) -> Result<dreamgate_model::CreatePayload, HttpError> {
    let value = read_json(headers, body).await?;
    dreamgate_model::parse_create(&value).map_err(|errors| HttpError::invalid_config(&errors))
}

/// A parameters update body in any accepted shape: the upstream update body
/// for a stream created with `model_id` (400 with `details` when invalid).
pub async fn read_update(headers: &HeaderMap, body: Body, model_id: &str) -> Result<Value, HttpError> {
    let value = read_json(headers, body).await?;
    let params = dreamgate_model::parse_update(&value).map_err(|errors| HttpError::invalid_config(&errors))?;
    Ok(dreamgate_model::update_body(model_id, params))
}

/// The end beacon's body (`navigator.sendBeacon`: text/plain JSON): the
/// stream id it names (`streamId`, `stream_id` or `id`), or `None` for an
/// empty body or a null id (the session's active stream).
pub async fn read_end_beacon(headers: &HeaderMap, body: Body) -> Result<Option<String>, HttpError> {
    let bytes = read_body(headers, body, MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(HttpError::malformed_json)?;
    match ["streamId", "stream_id", "id"].iter().find_map(|k| value.get(*k)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HttpError::stream_id_not_a_string()),
    }
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), HttpError> {
    let essence =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case(expected)) {
        Ok(())
    } else {
        Err(HttpError::unsupported_media_type(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};

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
