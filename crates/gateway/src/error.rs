//! Every error the gateway answers, named once: JSON
//! `{ "error": ..., "message": ..., ...extra }`.
//!
//! Each constructor of [`HttpError`] below is one entry of the catalogue:
//! the status and the `error` text are fixed here, and no other module builds
//! an error from a bare status and text ([`HttpError::new`] is private).
//!
//! | constructor | status | `error` |
//! |---|---|---|
//! | [`malformed_json`](HttpError::malformed_json) | 400 | `Malformed JSON` |
//! | [`unreadable_body`](HttpError::unreadable_body) | 400 | `Unreadable body` |
//! | [`invalid_config`](HttpError::invalid_config) | 400 | `Invalid stream configuration` (+ `details`) |
//! | [`stream_id_not_a_string`](HttpError::stream_id_not_a_string) | 400 | `Invalid request` |
//! | [`invalid_resource`](HttpError::invalid_resource) | 400 | `Invalid resource` |
//! | [`not_owned`](HttpError::not_owned) | 403 | [`NOT_OWNED`] |
//! | [`bad_origin`](HttpError::bad_origin) | 403 | `Forbidden origin` |
//! | [`misdirected`](HttpError::misdirected) | 421 | `Misdirected request` |
//! | [`rate_limited`](HttpError::rate_limited) | 429 | `Too many requests` (+ `retryAfter`, and the `Retry-After` header) |
//! | [`unknown_stream`](HttpError::unknown_stream) | 404 | `Unknown stream` |
//! | [`stream_gone`](HttpError::stream_gone) | 404 | `Stream not found` |
//! | [`playback_not_ready`](HttpError::playback_not_ready) | 404 | `Playback not ready` |
//! | [`not_found`](HttpError::not_found) | 404 | `Not found` |
//! | [`method_not_allowed`](HttpError::method_not_allowed) | 405 | `Method not allowed` |
//! | [`stream_active`](HttpError::stream_active) | 409 | `Stream already active` (+ `activeStreamId`) |
//! | [`too_large`](HttpError::too_large) | 413 | `Payload too large` |
//! | [`unsupported_media_type`](HttpError::unsupported_media_type) | 415 | `Unsupported media type` |
//! | [`internal`](HttpError::internal), [`no_session`](HttpError::no_session), [`task_failed`](HttpError::task_failed) | 500 | `Internal error` |
//! | [`no_stream_id`](HttpError::no_stream_id) | 502 | `Invalid upstream response` |
//! | [`whip_url_refused`](HttpError::whip_url_refused), [`signal_url_refused`](HttpError::signal_url_refused) | 502 | `WHIP URL not allowed` |
//! | [`signal_answer_too_large`](HttpError::signal_answer_too_large) | 502 | `Invalid WHIP answer` |
//! | [`signal_unreachable`](HttpError::signal_unreachable) | 502 | `Upstream unreachable` |
//! | [`store_unavailable`](HttpError::store_unavailable) | 503 | `Store unavailable` |
//! | [`signal_timeout`](HttpError::signal_timeout) | 504 | `Upstream timeout` |
//!
//! Errors of the Daydream API client map as follows (see
//! [`HttpError::from_upstream`]):
//!
//! | upstream | gateway |
//! |---|---|
//! | 4xx | same status, `details` = upstream body (bounded, see [`crate::scrub`]) |
//! | 5xx | 502 `Upstream error`, `upstreamStatus` + `details` (bounded) |
//! | timeout | 504 `Upstream timeout` |
//! | unreachable | 502 `Upstream unreachable` |
//! | unusable answer | 502 `Invalid upstream response` |
//!
//! Unsuccessful WHIP/WHEP answers map as follows (see
//! [`HttpError::from_signal`]; `error` is the failed step, e.g. `WHIP offer failed`):
//!
//! | upstream | gateway |
//! |---|---|
//! | 3xx | 502 `Upstream redirect refused`, `upstreamStatus` |
//! | 4xx | same status, `details` = upstream body (a scrubbed string of at most 2 KiB) |
//! | 5xx and others | 502, `upstreamStatus` + `details` (the same) |
//!
//! No message carries the key, an `Authorization` value, a heap address, an
//! internal URL or stack text: upstream text goes through
//! [`crate::scrub`] first, and the transport-failure constructors strip
//! internals from the cause they are given.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use dreamgate_client::ApiError as UpstreamError;
use dreamgate_model::FieldError;

use crate::scrub::{strip_internals, Scrubber};

/// The `error` text for requests on a stream the session does not own (spec wording).
pub const NOT_OWNED: &str = "Stream not owned by active session";

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short, stable error text (`error`).
    pub error: String,
    /// Human-readable explanation (`message`).
    pub message: String,
    /// Extra top-level fields (`details`, `activeStreamId`, ...), in order.
    pub extra: Vec<(String, Value)>,
    /// `Retry-After` seconds (429).
    pub retry_after: Option<u64>,
}

impl HttpError {
    /// An error with a status, `error` and `message` (catalogue entries only).
    fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, error: error.into(), message: message.into(), extra: Vec::new(), retry_after: None }
    }

    /// 502 for an answer the gateway cannot use (catalogue entries only).
    fn bad_gateway(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, error, message)
    }

    /// Adds a top-level field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.retain(|(k, _)| k != key);
        self.extra.push((key.to_string(), value.into()));
        self
    }

    // ---- the request -------------------------------------------------------

    /// 400 for a body that is not JSON.
    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Malformed JSON", format!("Request body is not valid JSON: {detail}"))
    }

    /// 400 for a body that could not be read off the connection.
    pub fn unreadable_body(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Unreadable body", format!("The request body could not be read: {detail}"))
    }

    /// 400 for stream parameters the model refuses, each error in `details`.
    pub fn invalid_config(errors: &[FieldError]) -> Self {
        let summary: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        let details = serde_json::to_value(errors).unwrap_or(Value::Null);
        Self::new(StatusCode::BAD_REQUEST, "Invalid stream configuration", summary.join("; ")).with("details", details)
    }

    /// 400 for an end beacon whose `streamId` is not a string.
    pub fn stream_id_not_a_string() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Invalid request", "streamId must be a string")
    }

    /// 400 for a `resource` query parameter naming none of the stream's upstream URLs.
    pub fn invalid_resource() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Invalid resource",
            "The resource parameter does not name this stream's upstream URL",
        )
    }

    /// 413 for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("Request body exceeds {} KiB", limit / 1024),
        )
    }

    /// 415 for a body without the `expected` `Content-Type`.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("Content-Type must be {expected}"),
        )
    }

    /// 404 for an unknown path.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", "No such resource")
    }

    /// 405 for a known path with another method.
    pub fn method_not_allowed(method: &Method, path: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", format!("{method} is not allowed on {path}"))
    }

    // ---- sessions, origin, ownership ---------------------------------------

    /// 403 for a mutating request from a foreign (or missing) `Origin`.
    pub fn bad_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden origin",
            "Mutating requests must come from the gateway's own origin or an allowed origin",
        )
    }

    /// 421 for an `/api/` request whose `Host` names another server (DNS rebinding).
    pub fn misdirected() -> Self {
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "Misdirected request",
            "The Host header does not name this gateway; use its own address or configured public URL",
        )
    }

    /// 429 for a client past a per-client limit (`message` says which); retry after `retry_after` s.
    pub fn rate_limited(message: String, retry_after: u64) -> Self {
        let mut e =
            Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests", message).with("retryAfter", retry_after);
        e.retry_after = Some(retry_after);
        e
    }

    /// 403 for a stream owned by another session (or by none).
    pub fn not_owned() -> Self {
        Self::new(StatusCode::FORBIDDEN, NOT_OWNED, "This stream was not created by your session")
    }

    /// 404 for a malformed stream id (not `[A-Za-z0-9_-]{1,128}`).
    pub fn unknown_stream() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Unknown stream", "No stream has this id")
    }

    /// 404 for a stream this session owned that has since been deleted.
    pub fn stream_gone(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Stream not found", format!("Stream {id} has ended"))
    }

    /// 409 for a create while the session has a stream (`active`, or `None`
    /// while another create is in flight).
    pub fn stream_active(active: Option<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Stream already active",
            "This session already has a stream; end it before creating another",
        )
        .with("activeStreamId", active.map(Value::String).unwrap_or(Value::Null))
    }

    /// 404 for a WHEP offer before any WHEP URL is known for the stream.
    pub fn playback_not_ready() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Playback not ready",
            "No WHEP URL is known for this stream yet; retry shortly",
        )
    }

    // ---- the gateway itself ------------------------------------------------

    /// 500 for a failure of the gateway's own making.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", detail.to_string())
    }

    /// 500 for a stream route reached without the session middleware.
    pub fn no_session() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "No session for this request")
    }

    /// 500 for a request task that panicked or was cancelled.
    pub fn task_failed() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "The request failed unexpectedly")
    }

    /// 503 when the store (Redis) cannot be reached: nothing was decided.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            "The gateway cannot reach its store; retry shortly",
        )
    }

    // ---- the Daydream API --------------------------------------------------

    /// Maps a Daydream client error (see the module table); upstream text
    /// goes through `scrub` (the key, credentials, internals) and bodies are
    /// bounded ([`Scrubber::details_json`]).
    pub fn from_upstream(err: &UpstreamError, scrub: &Scrubber) -> Self {
        match err {
            UpstreamError::Upstream { status, body } => {
                let upstream_text = body
                    .get("error")
                    .and_then(Value::as_str)
                    .map(|t| scrub.message(t))
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("Daydream answered {status}"));
                let details = scrub.details_json(body);
                match StatusCode::from_u16(*status) {
                    Ok(s) if s.is_client_error() => {
                        Self::new(s, upstream_text, format!("Daydream answered {status}")).with("details", details)
                    }
                    _ => Self::new(
                        StatusCode::BAD_GATEWAY,
                        "Upstream error",
                        format!("Daydream answered {status}: {upstream_text}"),
                    )
                    .with("upstreamStatus", *status)
                    .with("details", details),
                }
            }
            UpstreamError::Timeout => Self::upstream_timeout(),
            UpstreamError::Unreachable(why) => Self::unreachable(&scrub.message(why)),
            UpstreamError::InvalidResponse(why) => Self::bad_gateway(
                "Invalid upstream response",
                format!("Daydream answered something unusable: {}", scrub.message(why)),
            ),
        }
    }

    /// 504.
    pub fn upstream_timeout() -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "Upstream timeout", "Daydream did not answer in time")
    }

    /// 502 for a connection failure (`why` is stripped of URLs and addresses).
    pub fn unreachable(why: &str) -> Self {
        Self::bad_gateway("Upstream unreachable", format!("Cannot reach Daydream: {}", one_line(why)))
    }

    /// 502 for a created stream object without a usable id.
    pub fn no_stream_id() -> Self {
        Self::bad_gateway("Invalid upstream response", "Daydream's stream object has no usable id")
    }

    /// 502 for a created stream whose WHIP URL the policy refuses (`why`).
    pub fn whip_url_refused(why: &str) -> Self {
        Self::bad_gateway(
            "WHIP URL not allowed",
            format!(
                "Daydream returned a WHIP URL the gateway will not contact ({why}); \
                 if its domain is legitimate, add it to DAYDREAM_WHIP_ALLOWED_HOSTS"
            ),
        )
    }

    // ---- WHIP/WHEP signalling ----------------------------------------------

    /// 502 for a WHIP/WHEP target the policy refuses right before sending.
    pub fn signal_url_refused(refusal: impl std::fmt::Display) -> Self {
        Self::bad_gateway(
            "WHIP URL not allowed",
            format!("The gateway refuses to contact this WHIP/WHEP URL: {refusal}"),
        )
    }

    /// 502 for a WHIP/WHEP answer over the size limit.
    pub fn signal_answer_too_large() -> Self {
        Self::bad_gateway("Invalid WHIP answer", "The WHIP/WHEP upstream answer is too large")
    }

    /// 504 for a WHIP/WHEP upstream that did not answer in time.
    pub fn signal_timeout() -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "Upstream timeout", "The WHIP/WHEP upstream did not answer in time")
    }

    /// 502 for a WHIP/WHEP upstream that cannot be reached (`why`: the cause chain; stripped of URLs and addresses).
    pub fn signal_unreachable(why: &str) -> Self {
        Self::bad_gateway("Upstream unreachable", format!("Cannot reach the WHIP/WHEP upstream: {}", one_line(why)))
    }

    /// Maps an unsuccessful WHIP/WHEP answer to step `what` (see the module
    /// table); `body` is the upstream body, passed on in `details` scrubbed
    /// and bounded ([`Scrubber::details_text`]).
    pub fn from_signal(what: &str, status: StatusCode, body: &[u8], scrub: &Scrubber) -> Self {
        let details = scrub.details_text(body);
        if status.is_redirection() {
            return Self::bad_gateway(
                "Upstream redirect refused",
                format!(
                    "{what}: the upstream answered a {} redirect, which the gateway does not follow",
                    status.as_u16()
                ),
            )
            .with("upstreamStatus", status.as_u16());
        }
        let err = if status.is_client_error() {
            Self::new(status, what, format!("{what}: {}", status.as_u16()))
        } else {
            Self::bad_gateway(what, format!("{what}: {}", status.as_u16())).with("upstreamStatus", status.as_u16())
        };
        err.with("details", details)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("error".into(), json!(self.error));
        obj.insert("message".into(), json!(self.message));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}

/// The first line of a cause, without internals.
fn one_line(why: &str) -> String {
    let clean = strip_internals(why);
    clean.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown cause").chars().take(300).collect()
}
