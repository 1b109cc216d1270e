//! The two ways the gateway talks upstream: the Daydream API (through
//! [`DaydreamClient`], with the key) and WHIP/WHEP signalling (a separate
//! HTTP client with no key, no redirects and a shorter timeout).
//!
//! Both modes use the same code: in `daydream` mode the API base is
//! `DAYDREAM_API_GATEWAY`; in `local` mode it is an engine on loopback (the
//! `dreamgate serve` command starts one in-process, with a random key, and
//! hands its base URL and key to the gateway).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use dreamgate_client::{error_chain, ApiError, ApiKey, DaydreamClient};

use crate::error::HttpError;
use crate::scrub::Scrubber;
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
    scrub: Scrubber,
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
        let scrub = Scrubber::new([key.expose()]);
        let api = DaydreamClient::new(base, key, api_timeout).map_err(|e| e.to_string())?;
        let signal = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(whip_timeout)
            .connect_timeout(whip_timeout)
            .user_agent(concat!("dreamgate-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { api, signal, policy, scrub })
    }

    /// Removes the key (and any credential) from upstream text before it is relayed or logged.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrub
    }

    /// The answer to a failed API call (see [`HttpError::from_upstream`]).
    pub fn api_error(&self, e: &ApiError) -> HttpError {
        HttpError::from_upstream(e, &self.scrub)
    }

    /// An API error as one safe log field: scrubbed, one line.
    pub fn log_text(&self, e: &ApiError) -> String {
        self.scrub.message(&e.message())
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
            return Err(HttpError::signal_url_refused(refusal));
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
                return Err(HttpError::signal_answer_too_large());
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
        HttpError::signal_timeout()
    } else {
        HttpError::signal_unreachable(&error_chain(&e))
    }
}
