//! JSON error responses: `{ "error": ..., "message": ..., ...extra }`.
//!
//! Every error the gateway answers goes through [`HttpError`], so each has
//! the right status and the same shape. Upstream errors from the Daydream
//! client map as follows (see [`HttpError::from_upstream`]):
//!
//! | upstream | gateway |
//! |---|---|
//! | 4xx | same status, `details` = upstream body |
//! | 5xx | 502, `upstreamStatus` + `details` |
//! | timeout | 504 |
//! | unreachable | 502 |
//! | unusable answer | 502 |

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Map, Value};

use dreamgate_client::ApiError as UpstreamError;

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
}

impl HttpError {
    /// An error with a status, `error` and `message`.
    pub fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, error: error.into(), message: message.into(), extra: Vec::new() }
    }

    /// Adds a top-level field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.retain(|(k, _)| k != key);
        self.extra.push((key.to_string(), value.into()));
        self
    }

    /// 400 for a body that is not JSON.
    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Malformed JSON", format!("Request body is not valid JSON: {detail}"))
    }

    /// 413 for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("Request body exceeds {} KiB", limit / 1024),
        )
    }

    /// 403 for a stream owned by another session (or by none).
    pub fn not_owned() -> Self {
        Self::new(StatusCode::FORBIDDEN, NOT_OWNED, "This stream was not created by your session")
    }

    /// 404 for a stream this session owned that has since been deleted.
    pub fn stream_gone(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Stream not found", format!("Stream {id} has ended"))
    }

    /// 404 for an unknown path.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", "No such resource")
    }

    /// 403 for a mutating request from a foreign (or missing) `Origin`.
    pub fn bad_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden origin",
            "Mutating requests must come from the gateway's own origin or an allowed origin",
        )
    }

    /// 502 for an answer the gateway cannot use.
    pub fn bad_gateway(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, error, message)
    }

    /// Maps a Daydream client error (see the module table).
    pub fn from_upstream(err: &UpstreamError) -> Self {
        match err {
            UpstreamError::Upstream { status, body } => {
                let upstream_text = body
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Daydream answered {status}"));
                match StatusCode::from_u16(*status) {
                    Ok(s) if s.is_client_error() => {
                        Self::new(s, upstream_text, format!("Daydream answered {status}")).with("details", body.clone())
                    }
                    _ => Self::new(
                        StatusCode::BAD_GATEWAY,
                        "Upstream error",
                        format!("Daydream answered {status}: {upstream_text}"),
                    )
                    .with("upstreamStatus", *status)
                    .with("details", body.clone()),
                }
            }
            UpstreamError::Timeout => Self::upstream_timeout(),
            UpstreamError::Unreachable(why) => Self::unreachable(why),
            UpstreamError::InvalidResponse(why) => {
                Self::bad_gateway("Invalid upstream response", format!("Daydream answered something unusable: {why}"))
            }
        }
    }

    /// 504.
    pub fn upstream_timeout() -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "Upstream timeout", "Daydream did not answer in time")
    }

    /// 502 for a connection failure.
    pub fn unreachable(why: &str) -> Self {
        Self::bad_gateway("Upstream unreachable", format!("Cannot reach Daydream: {why}"))
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
        (self.status, Json(self.body())).into_response()
    }
}
