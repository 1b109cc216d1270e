//! The two ways the gateway talks upstream: the Daydream API (through
//! [`DaydreamClient`], with the key) and WHIP/WHEP signalling (a separate
//! HTTP client with no key, no redirects and a shorter timeout).
//!
//! Both modes use the same code: in `daydream` mode the API base is
//! `DAYDREAM_API_GATEWAY`; in `local` mode it is the embedded engine, started
//! by [`start_local_engine`] on a free loopback port with a random key.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rand::RngCore;
use url::Url;

use dreamgate_client::{error_chain, ApiKey, DaydreamClient};
use dreamgate_engine::{EngineConfig, EngineHandle, Faults};

use crate::error::HttpError;
use crate::whip_policy::WhipPolicy;

/// Largest WHIP/WHEP answer the gateway reads (an SDP answer is a few KiB).
pub const MAX_SIGNAL_ANSWER: usize = 256 * 1024;

/// One WHIP/WHEP request to forward.
#[derive(Debug)]
pub struct Signal<'a> {
    /// POST (offer), PATCH (trickle) or DELETE (teardown).
    pub method: Method,
    /// The upstream URL (already checked by the policy; checked again here).
    pub target: &'a Url,
    /// `Content-Type` to send with the body.
    pub content_type: Option<&'a str>,
    /// `If-Match` to forward (PATCH).
    pub if_match: Option<&'a HeaderValue>,
    /// Request body.
    pub body: Bytes,
}

impl<'a> Signal<'a> {
    /// `POST` of an SDP offer (`application/sdp`).
    pub fn offer(target: &'a Url, sdp: Bytes) -> Self {
        Self { method: Method::POST, target, content_type: Some("application/sdp"), if_match: None, body: sdp }
    }

    /// `PATCH` of a trickle ICE fragment (`application/trickle-ice-sdpfrag`), forwarding `If-Match`.
    pub fn trickle(target: &'a Url, frag: Bytes, if_match: Option<&'a HeaderValue>) -> Self {
        Self {
            method: Method::PATCH,
            target,
            content_type: Some("application/trickle-ice-sdpfrag"),
            if_match,
            body: frag,
        }
    }

    /// `DELETE` of a session resource (no body).
    pub fn delete(target: &'a Url) -> Self {
        Self { method: Method::DELETE, target, content_type: None, if_match: None, body: Bytes::new() }
    }
}

/// The upstream answer to a [`Signal`].
#[derive(Debug)]
pub struct SignalReply {
    /// Upstream status (redirects are not followed: a 3xx comes back as is).
    pub status: StatusCode,
    /// Upstream headers.
    pub headers: HeaderMap,
    /// Upstream body (at most [`MAX_SIGNAL_ANSWER`] bytes).
    pub body: Bytes,
}

/// The gateway's upstream: the API client plus the WHIP/WHEP client.
#[derive(Debug, Clone)]
pub struct Upstream {
    api: DaydreamClient,
    signal: reqwest::Client,
    policy: WhipPolicy,
}

impl Upstream {
    /// Builds both clients. `api_timeout` applies to API calls, `whip_timeout`
    /// to each WHIP/WHEP request.
    pub fn new(
        base: Url,
        key: ApiKey,
        policy: WhipPolicy,
        api_timeout: Duration,
        whip_timeout: Duration,
    ) -> Result<Self, String> {
        let api = DaydreamClient::new(base, key, api_timeout).map_err(|e| e.to_string())?;
        let signal = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(whip_timeout)
            .connect_timeout(whip_timeout)
            .user_agent(concat!("dreamgate-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { api, signal, policy })
    }

    /// The Daydream API client.
    pub fn api(&self) -> &DaydreamClient {
        &self.api
    }

    /// The WHIP/WHEP URL policy.
    pub fn policy(&self) -> &WhipPolicy {
        &self.policy
    }

    /// Sends one WHIP/WHEP request: no `Authorization`, no redirects followed.
    ///
    /// The target is checked against the policy again right before sending.
    /// Transport failures map to 502, timeouts to 504.
    pub async fn signal(&self, s: Signal<'_>) -> Result<SignalReply, HttpError> {
        if let Err(refusal) = self.policy.check(s.target.as_str()) {
            return Err(HttpError::bad_gateway(
                "WHIP URL not allowed",
                format!("The gateway refuses to contact this WHIP/WHEP URL: {refusal}"),
            ));
        }
        let mut req = self.signal.request(s.method.clone(), s.target.clone());
        if let Some(ct) = s.content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(tag) = s.if_match {
            req = req.header(http::header::IF_MATCH, tag.clone());
        }
        if !s.body.is_empty() {
            req = req.body(s.body);
        }
        let mut resp = req.send().await.map_err(signal_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(signal_error)? {
            if body.len() + chunk.len() > MAX_SIGNAL_ANSWER {
                return Err(HttpError::bad_gateway(
                    "Invalid WHIP answer",
                    "The WHIP/WHEP upstream answer is too large",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(method = %s.method, status = status.as_u16(), "whip/whep upstream answer");
        Ok(SignalReply { status, headers, body: body.into() })
    }
}

fn signal_error(e: reqwest::Error) -> HttpError {
    // The URL may carry a pre-signed token: never echo it.
    let e = e.without_url();
    if e.is_timeout() {
        HttpError::new(StatusCode::GATEWAY_TIMEOUT, "Upstream timeout", "The WHIP/WHEP upstream did not answer in time")
    } else {
        HttpError::bad_gateway(
            "Upstream unreachable",
            format!("Cannot reach the WHIP/WHEP upstream: {}", error_chain(&e)),
        )
    }
}

/// The embedded engine of `local` mode and how to reach it.
pub struct LocalEngine {
    /// The running engine (shut it down when the gateway stops).
    pub handle: EngineHandle,
    /// Its API base URL (loopback http).
    pub base: Url,
    /// The random key it was started with (never logged).
    pub key: ApiKey,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine").field("base", &self.base.as_str()).field("key", &self.key).finish()
    }
}

/// Starts the engine in-process on a free `127.0.0.1` port, protected by a
/// fresh random key (so no other local process can use it through the API).
pub async fn start_local_engine(faults: Faults) -> std::io::Result<LocalEngine> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let key = ApiKey::new(format!("dreamgate_local_{key}"));
    let cfg = EngineConfig { api_key: Some(key.expose().to_string()), faults, ..EngineConfig::default() };
    let handle = dreamgate_engine::start(listener, cfg).await;
    let base = Url::parse(handle.base_url()).map_err(|e| std::io::Error::other(format!("engine base URL: {e}")))?;
    Ok(LocalEngine { handle, base, key })
}
