//! The HTTP client for Daydream's `/v1/streams` API.

use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::env::ApiKey;

/// Default timeout of one API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot carry paths (e.g. `data:`), or is not http(s).
    #[error("invalid Daydream API base URL {0:?}: must be an http(s) URL")]
    InvalidBaseUrl(String),
    /// The API key cannot be sent in a header (empty, or contains control characters).
    #[error("the Daydream API key is empty or contains characters that cannot be sent in a header")]
    InvalidKey,
    /// The HTTP stack failed to initialise.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Daydream answered with an error status (or `success:false`). `body` is the parsed JSON
    /// body, or the raw text as a JSON string when it was not JSON.
    #[error("Daydream API answered {status}: {}", upstream_message(.body))]
    Upstream {
        /// HTTP status code.
        status: u16,
        /// Response body.
        body: Value,
    },
    /// No answer within the client's timeout.
    #[error("Daydream API did not answer in time")]
    Timeout,
    /// The connection failed (DNS, refused, TLS, reset...).
    #[error("Daydream API is unreachable: {0}")]
    Unreachable(String),
    /// A success status with a body that is not what the API documents.
    #[error("Daydream API sent an invalid response: {0}")]
    InvalidResponse(String),
}

impl ApiError {
    /// A success status (`status`) whose body is not JSON.
    pub fn not_json(status: u16) -> Self {
        ApiError::InvalidResponse(format!("status {status} with a body that is not JSON"))
    }

    /// The upstream HTTP status, when Daydream answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Upstream { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this looks like "the stream is still warming up" rather than a real failure:
    /// 404, 409, 429 or any 5xx, or a body saying "not ready" / `NOT_READY`.
    ///
    /// ```
    /// use dreamgate_client::ApiError;
    /// use serde_json::json;
    ///
    /// let e = ApiError::Upstream { status: 503, body: json!({"error": "busy"}) };
    /// assert!(e.is_warming_up());
    /// let e = ApiError::Upstream { status: 400, body: json!({"error": "Stream NOT_READY"}) };
    /// assert!(e.is_warming_up());
    /// let e = ApiError::Upstream { status: 401, body: json!({"error": "Unauthorized"}) };
    /// assert!(!e.is_warming_up());
    /// ```
    pub fn is_warming_up(&self) -> bool {
        match self {
            ApiError::Upstream { status, body } => {
                matches!(status, 404 | 409 | 429 | 500..=599) || body_says_not_ready(body)
            }
            _ => false,
        }
    }

    /// The human-readable message: the upstream `error`/`message` text, or this error's text.
    pub fn message(&self) -> String {
        match self {
            ApiError::Upstream { body, .. } => upstream_message(body),
            other => other.to_string(),
        }
    }

    /// The upstream machine code (`"STREAMS/NOT_FOUND"`...), when the body has one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Upstream { body, .. } => body.get("code").and_then(Value::as_str),
            _ => None,
        }
    }
}

/// Whether a response body says the stream is not ready yet.
pub fn body_says_not_ready(body: &Value) -> bool {
    let text = match body {
        Value::String(s) => s.clone(),
        Value::Null => return false,
        other => other.to_string(),
    };
    let lower = text.to_ascii_lowercase();
    lower.contains("not ready") || lower.contains("not_ready") || lower.contains("not-ready")
}

fn upstream_message(body: &Value) -> String {
    let pick = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    };
    match body {
        Value::String(s) if !s.trim().is_empty() => s.trim().chars().take(500).collect(),
        Value::Object(o) => o
            .get("error")
            .and_then(pick)
            .or_else(|| o.get("message").and_then(pick))
            .or_else(|| o.get("detail").and_then(pick))
            .unwrap_or_else(|| body.to_string()),
        Value::Null => "(empty body)".to_owned(),
        other => other.to_string(),
    }
}

/// A Daydream `/v1/streams` API client.
///
/// It sends `Authorization: Bearer <key>` on every call, never follows redirects (so the key
/// can never be sent to another host), and never logs the key.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use dreamgate_client::{ApiKey, DaydreamClient, DEFAULT_TIMEOUT};
///
/// let client = DaydreamClient::new(
///     "https://api.daydream.live".parse()?,
///     ApiKey::new("daydream_live_..."),
///     DEFAULT_TIMEOUT,
/// )?;
/// let body = serde_json::json!({
///     "pipeline": "streamdiffusion",
///     "params": { "model_id": "stabilityai/sd-turbo", "prompt": "cartoon magical dj blue sparkle" }
/// });
/// let stream = client.create_stream(&body).await?;
/// println!("whip_url: {}", stream["whip_url"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DaydreamClient {
    http: reqwest::Client,
    base: Url,
    /// `{base}/v1/streams`, parsed once.
    streams: Url,
    auth: HeaderValue,
}

impl std::fmt::Debug for DaydreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaydreamClient").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl DaydreamClient {
    /// Builds a client for the API at `base_url` (e.g. `https://api.daydream.live`; a path
    /// prefix is kept), with `timeout` per call.
    pub fn new(base_url: Url, key: ApiKey, timeout: Duration) -> Result<Self, ClientError> {
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ClientError::InvalidBaseUrl(base_url.to_string()));
        }
        if key.is_empty() {
            return Err(ClientError::InvalidKey);
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| ClientError::InvalidKey)?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("dreamgate/", env!("CARGO_PKG_VERSION")))
            // below the 60 s idle timeout of our own servers (dreamgate-serve): never reuse a
            // pooled connection the server is about to close
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let mut base = base_url;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let streams = base.join("v1/streams").map_err(|_| ClientError::InvalidBaseUrl(base.to_string()))?;
        Ok(DaydreamClient { http, base, streams, auth })
    }

    /// The API base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `POST /v1/streams`: creates a stream and returns the stream object (an old
    /// `{data:{...}}` wrapper is removed).
    pub async fn create_stream(&self, body: &Value) -> Result<Value, ApiError> {
        let url = self.url(&[])?;
        let (_, value) = self.call(Method::POST, url, Some(body)).await?;
        Ok(unwrap_stream(value))
    }

    /// `GET /v1/streams`: the caller's streams (the `data` array of `{success, data: [...]}`).
    pub async fn list_streams(&self) -> Result<Vec<Value>, ApiError> {
        let url = self.url(&[])?;
        let (status, value) = self.call(Method::GET, url, None).await?;
        match value {
            Value::Object(mut o) => match o.remove("data") {
                Some(Value::Array(items)) => Ok(items),
                _ => Err(not_a_list(status)),
            },
            Value::Array(items) => Ok(items),
            _ => Err(not_a_list(status)),
        }
    }

    /// `GET /v1/streams/{id}`: the stream object.
    pub async fn get_stream(&self, id: &str) -> Result<Value, ApiError> {
        let url = self.url(&[id])?;
        let (_, value) = self.call(Method::GET, url, None).await?;
        Ok(unwrap_stream(value))
    }

    /// `GET /v1/streams/{id}/status`: the whole `{success, error, data}` body, as sent
    /// (older gateways answer `success:false` under HTTP 200: the caller decides).
    pub async fn stream_status(&self, id: &str) -> Result<Value, ApiError> {
        let url = self.url(&[id, "status"])?;
        let (_, value) = self.call_raw(Method::GET, url, None).await?;
        Ok(value)
    }

    /// `GET /v1/streams/{id}/status` like [`Self::stream_status`], for relaying the body as
    /// sent without building a JSON tree: the 2xx status and body (an empty body is `null`),
    /// **not checked to be JSON** — the caller checks it (and answers
    /// [`ApiError::not_json`] when it is not). Errors are those of [`Self::stream_status`].
    pub async fn stream_status_raw(&self, id: &str) -> Result<(u16, bytes::Bytes), ApiError> {
        let url = self.url(&[id, "status"])?;
        let (status, bytes) = self.send(Method::GET, url, None).await?;
        if !status.is_success() {
            return Err(error_answer(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((status.as_u16(), bytes::Bytes::from_static(b"null")));
        }
        Ok((status.as_u16(), bytes))
    }

    /// `PATCH /v1/streams/{id}` with `{pipeline, params}`: the updated stream object, or `None`
    /// when the API answered 204.
    pub async fn update_stream(&self, id: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        let url = self.url(&[id])?;
        let (status, value) = self.call(Method::PATCH, url, Some(body)).await?;
        if status == StatusCode::NO_CONTENT || value.is_null() {
            Ok(None)
        } else {
            Ok(Some(unwrap_stream(value)))
        }
    }

    /// `DELETE /v1/streams?id={id}`.
    pub async fn delete_stream(&self, id: &str) -> Result<(), ApiError> {
        let mut url = self.url(&[])?;
        url.query_pairs_mut().append_pair("id", id);
        self.call(Method::DELETE, url, None).await.map(|_| ())
    }

    /// `{base}/v1/streams[/segment...]`, each segment percent-encoded (an id can never
    /// escape its path segment).
    fn url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        let mut url = self.streams.clone();
        if !segments.is_empty() {
            let mut path =
                url.path_segments_mut().map_err(|_| ApiError::InvalidResponse("base URL cannot have a path".into()))?;
            for s in segments {
                path.push(s);
            }
        }
        Ok(url)
    }

    /// Like [`Self::call_raw`], and a 2xx body with `success:false` is an error too.
    async fn call(&self, method: Method, url: Url, body: Option<&Value>) -> Result<(StatusCode, Value), ApiError> {
        let (status, value) = self.call_raw(method, url, body).await?;
        if value.get("success") == Some(&Value::Bool(false)) {
            return Err(ApiError::Upstream { status: status.as_u16(), body: value });
        }
        Ok((status, value))
    }

    /// Sends one request; non-2xx -> [`ApiError::Upstream`]; 2xx bodies must be JSON (or empty,
    /// returned as `Null`).
    async fn call_raw(&self, method: Method, url: Url, body: Option<&Value>) -> Result<(StatusCode, Value), ApiError> {
        let (status, bytes) = self.send(method, url, body).await?;
        if !status.is_success() {
            return Err(error_answer(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((status, Value::Null));
        }
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok((status, v)),
            Err(_) => Err(ApiError::not_json(status.as_u16())),
        }
    }

    /// Sends one request: the status and the whole body.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
        tracing::debug!(%method, url = %url, "daydream api call");
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| ApiError::InvalidResponse(e.to_string()))?;
            req = req.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let resp = req.send().await.map_err(map_transport_error)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(map_transport_error)?;
        tracing::debug!(%method, url = %url, status = status.as_u16(), "daydream api answer");
        Ok((status, bytes))
    }
}

/// A non-2xx answer: its parsed JSON body, or the raw text as a JSON string.
fn error_answer(status: StatusCode, bytes: &[u8]) -> ApiError {
    let parsed =
        if bytes.iter().all(u8::is_ascii_whitespace) { Some(Value::Null) } else { serde_json::from_slice(bytes).ok() };
    let body = parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    ApiError::Upstream { status: status.as_u16(), body }
}

fn map_transport_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else {
        // reqwest's message names the URL (never the key); add the root cause
        ApiError::Unreachable(error_chain(&e))
    }
}

/// Formats an error followed by each of its [`source`](std::error::Error::source)s,
/// joined by `": "` — the whole cause chain on one line, for messages and logs.
///
/// Transport errors are terse at the top (`error sending request`) and precise at the
/// bottom (`Connection refused`), so showing only the outer error hides the reason.
///
/// ```
/// use dreamgate_client::error_chain;
///
/// #[derive(Debug)]
/// struct Outer(std::io::Error);
/// impl std::fmt::Display for Outer {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("error sending request")
///     }
/// }
/// impl std::error::Error for Outer {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let e = Outer(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
/// assert_eq!(error_chain(&e), "error sending request: connection refused");
/// ```
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A list answer that is not `{data: [...]}`.
fn not_a_list(status: StatusCode) -> ApiError {
    ApiError::InvalidResponse(format!("status {} with a body that is not a list of streams", status.as_u16()))
}

/// Removes an old `{data:{...}}` wrapper around a stream object.
fn unwrap_stream(value: Value) -> Value {
    match value {
        Value::Object(mut o) if !o.contains_key("id") && o.get("data").is_some_and(Value::is_object) => {
            o.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warming_up_classification() {
        let up = |status, body| ApiError::Upstream { status, body };
        for s in [404, 409, 429, 500, 502, 503, 504] {
            assert!(up(s, Value::Null).is_warming_up(), "{s}");
        }
        for s in [400, 401, 403, 405, 422] {
            assert!(!up(s, json!({"error": "nope"})).is_warming_up(), "{s}");
        }
        assert!(up(400, json!({"error": "stream not ready"})).is_warming_up());
        assert!(up(200, json!({"success": false, "code": "STREAMS/NOT_READY"})).is_warming_up());
        assert!(up(403, json!("Not Ready yet")).is_warming_up());
        assert!(!ApiError::Timeout.is_warming_up());
        assert!(!ApiError::Unreachable("x".into()).is_warming_up());
    }

    #[test]
    fn messages_come_from_the_body() {
        let e = ApiError::Upstream {
            status: 404,
            body: json!({"success": false, "error": "Stream not found", "code": "STREAMS/NOT_FOUND"}),
        };
        assert_eq!(e.message(), "Stream not found");
        assert_eq!(e.code(), Some("STREAMS/NOT_FOUND"));
        assert_eq!(e.to_string(), "Daydream API answered 404: Stream not found");
        assert_eq!(e.status(), Some(404));
        let e = ApiError::Upstream { status: 502, body: json!("<html>bad gateway</html>") };
        assert_eq!(e.message(), "<html>bad gateway</html>");
        let e = ApiError::Upstream { status: 400, body: json!({"error": {"message": "bad width"}}) };
        assert_eq!(e.message(), "bad width");
    }

    #[test]
    fn data_wrapper_is_removed() {
        assert_eq!(unwrap_stream(json!({"data": {"id": "str_1"}})), json!({"id": "str_1"}));
        assert_eq!(unwrap_stream(json!({"id": "str_1", "data": {}})), json!({"id": "str_1", "data": {}}));
    }

    #[test]
    fn urls_keep_prefix_and_encode_ids() {
        let c =
            DaydreamClient::new("http://127.0.0.1:1/base".parse().unwrap(), ApiKey::new("k"), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(c.url(&[]).unwrap().as_str(), "http://127.0.0.1:1/base/v1/streams");
        assert_eq!(
            c.url(&["../x?y", "status"]).unwrap().as_str(),
            "http://127.0.0.1:1/base/v1/streams/..%2Fx%3Fy/status"
        );
        assert!(format!("{c:?}").contains("127.0.0.1"));
    }

    #[test]
    fn rejects_bad_keys_and_bases() {
        assert!(matches!(
            DaydreamClient::new("http://127.0.0.1:1".parse().unwrap(), ApiKey::new(""), DEFAULT_TIMEOUT),
            Err(ClientError::InvalidKey)
        ));
        assert!(matches!(
            DaydreamClient::new("http://127.0.0.1:1".parse().unwrap(), ApiKey::new("a\nb"), DEFAULT_TIMEOUT),
            Err(ClientError::InvalidKey)
        ));
        assert!(matches!(
            DaydreamClient::new("data:text/plain,x".parse().unwrap(), ApiKey::new("k"), DEFAULT_TIMEOUT),
            Err(ClientError::InvalidBaseUrl(_))
        ));
    }
}
