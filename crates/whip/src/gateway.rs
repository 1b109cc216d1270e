//! Publishing through a running Dreamgate gateway instead of straight to a
//! WHIP URL: the gateway keeps the API key, so a native client behaves like
//! the browser page: it creates the stream (which issues the session cookie), and sends
//! `Origin` + `Cookie` on every mutating call (WHIP included).

use serde_json::Value;
use url::Url;

use crate::ClientOptions;

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway URL cannot be used.
    #[error("invalid gateway URL: {0}")]
    BadUrl(String),
    /// No HTTP answer.
    #[error("cannot reach the gateway: {0}")]
    Unreachable(String),
    /// A non-success answer; `message` is the gateway's `"<error>: <message>"`
    /// when it answered the usual JSON error body.
    #[error("gateway answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The gateway's explanation.
        message: String,
    },
    /// A success answer without what we need.
    #[error("unexpected gateway answer: {0}")]
    Invalid(String),
}

/// A session with a Dreamgate gateway (`dreamgate serve`).
///
/// ```no_run
/// use dreamgate_whip::{GatewaySession, WhipClient};
///
/// # async fn demo(create_body: serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
/// let gateway = GatewaySession::open("http://127.0.0.1:3000".parse()?).await?;
/// let stream_id = gateway.create_stream(&create_body).await?;
/// let client = WhipClient::new(gateway.whip_options(&stream_id)?)?;
/// // ... connect, publish ...
/// client.shutdown().await;
/// gateway.delete_stream(&stream_id).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GatewaySession {
    http: reqwest::Client,
    base: Url,
    origin: String,
    /// The session cookie: set by the gateway on the first create (older
    /// gateways set it on `config` already); shared by the clones.
    cookie: std::sync::Arc<std::sync::Mutex<String>>,
}

impl GatewaySession {
    /// `GET /api/daydream/config`: checks the gateway answers (a session
    /// cookie, when it sets one, is kept; current gateways issue it on create).
    pub async fn open(base: Url) -> Result<Self, GatewayError> {
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(GatewayError::BadUrl(base.to_string()));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        let origin = base.origin().ascii_serialization();
        let url = join(&base, "api/daydream/config")?;
        let response = http.get(url).send().await.map_err(unreachable)?;
        let cookie = set_cookies(response.headers());
        check(response).await?;
        Ok(Self { http, base, origin, cookie: std::sync::Arc::new(std::sync::Mutex::new(cookie)) })
    }

    /// The gateway's origin (`scheme://host:port`), sent as `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `POST /api/daydream/streams` with `body`; returns the stream id.
    pub async fn create_stream(&self, body: &Value) -> Result<String, GatewayError> {
        let url = join(&self.base, "api/daydream/streams")?;
        let response = self.mutating(self.http.post(url)).json(body).send().await.map_err(unreachable)?;
        let issued = set_cookies(response.headers());
        if !issued.is_empty() {
            *self.cookie.lock().unwrap_or_else(|e| e.into_inner()) = issued;
        }
        let stream: Value = check(response).await?.json().await.map_err(|e| GatewayError::Invalid(e.to_string()))?;
        let stream = stream.get("data").filter(|d| d.get("id").is_some()).unwrap_or(&stream);
        stream
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GatewayError::Invalid("the created stream has no id".into()))
    }

    /// `DELETE /api/daydream/streams/<id>`.
    pub async fn delete_stream(&self, id: &str) -> Result<(), GatewayError> {
        let url = join(&self.base, &format!("api/daydream/streams/{}", path_segment(id)))?;
        let response = self.mutating(self.http.delete(url)).send().await.map_err(unreachable)?;
        check(response).await.map(drop)
    }

    /// WHIP client options for the gateway's WHIP proxy of stream `id`, with
    /// the `Origin` and `Cookie` headers it requires.
    pub fn whip_options(&self, id: &str) -> Result<ClientOptions, GatewayError> {
        let url = join(&self.base, &format!("api/daydream/streams/{}/whip", path_segment(id)))?;
        let mut options = ClientOptions::new(url);
        let value = |v: &str| v.parse().map_err(|_| GatewayError::Invalid("unusable header value".into()));
        options.headers.insert(reqwest::header::ORIGIN, value(&self.origin)?);
        let cookie = self.cookie();
        if !cookie.is_empty() {
            options.headers.insert(reqwest::header::COOKIE, value(&cookie)?);
        }
        Ok(options)
    }

    fn cookie(&self) -> String {
        self.cookie.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn mutating(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let builder = builder.header(reqwest::header::ORIGIN, &self.origin);
        let cookie = self.cookie();
        if cookie.is_empty() {
            builder
        } else {
            builder.header(reqwest::header::COOKIE, cookie)
        }
    }
}

/// The `name=value` pairs a response sets (`Set-Cookie`), joined as a `Cookie` header.
fn set_cookies(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .filter(|pair| pair.contains('='))
        .collect::<Vec<_>>()
        .join("; ")
}

fn join(base: &Url, path: &str) -> Result<Url, GatewayError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| GatewayError::BadUrl(e.to_string()))
}

/// Stream ids come from the gateway; keep them to one path segment anyway.
fn path_segment(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect()
}

/// The whole cause chain (e.g. "error sending request: client error (Connect): Connection refused").
fn unreachable(e: reqwest::Error) -> GatewayError {
    GatewayError::Unreachable(dreamgate_client::error_chain(&e.without_url()))
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str::<Value>(&text).ok();
    let field = |name: &str| json.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
    let message = match (field("error"), field("message")) {
        (Some(error), Some(message)) => format!("{error}: {message}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => text.chars().take(200).collect(),
    };
    Err(GatewayError::Status { status: status.as_u16(), message })
}
