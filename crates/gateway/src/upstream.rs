//! The two ways the gateway talks upstream: the Daydream API (through
//! [`DaydreamClient`], with the key) and WHIP/WHEP signalling (a separate
//! HTTP client with no key, no redirects and a shorter timeout).
//!
//! Both modes use the same code: in `daydream` mode the API base is
//! `DAYDREAM_API_GATEWAY`; in `local` mode it is an engine on loopback (the
//! `dreamgate serve` command starts one in-process, with a random key, and
//! hands its base URL and key to the gateway).

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::Value;
use url::Url;

use dreamgate_client::{error_chain, ApiError, ApiKey, DaydreamClient};

use crate::error::HttpError;
use crate::metrics::{self, UpstreamOp};
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
    /// The same API with the longer create timeout (a create outliving the
    /// request is still awaited, see [`crate::state`]).
    create_api: DaydreamClient,
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
        let api = DaydreamClient::new(base.clone(), key.clone(), api_timeout).map_err(|e| e.to_string())?;
        let create_api = api.clone();
        let signal = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(whip_timeout)
            .connect_timeout(whip_timeout)
            .user_agent(concat!("dreamgate-gateway/", env!("CARGO_PKG_VERSION")))
            // below the 60 s idle timeout of our own servers (dreamgate-serve): never reuse a
            // pooled connection the server is about to close
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { api, create_api, signal, policy, scrub })
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

    /// Awaits creates for up to `create_timeout` (at least the API timeout).
    pub fn with_create_timeout(mut self, base: Url, key: ApiKey, create_timeout: Duration) -> Result<Self, String> {
        self.create_api = DaydreamClient::new(base, key, create_timeout).map_err(|e| e.to_string())?;
        Ok(self)
    }

    /// The API client for creates (see [`with_create_timeout`](Self::with_create_timeout)),
    /// timed like [`api`](Self::api).
    pub fn create_api(&self) -> Api<'_> {
        Api(&self.create_api)
    }

    /// The Daydream API client, each call timed into
    /// `dreamgate_upstream_request_duration_seconds`.
    pub fn api(&self) -> Api<'_> {
        Api(&self.api)
    }

    /// The WHIP/WHEP URL policy.
    pub fn policy(&self) -> &WhipPolicy {
        &self.policy
    }

    /// Sends one WHIP/WHEP request: no `Authorization`, no redirects followed.
    ///
    /// The target is checked against the policy again right before sending.
    /// Transport failures map to 502, timeouts to 504.
    /// `op` ([`UpstreamOp::Whip`] or [`UpstreamOp::Whep`]) names the call in
    /// the latency metric.
    pub async fn signal(&self, op: UpstreamOp, s: Signal<'_>) -> Result<SignalReply, HttpError> {
        if let Err(refusal) = self.policy.check(s.target.as_str()) {
            return Err(HttpError::signal_url_refused(refusal));
        }
        let start = Instant::now();
        let result = self.send_signal(s).await;
        let outcome = match &result {
            Ok(reply) => metrics::status_class(reply.status.as_u16()),
            Err(e) if e.status == StatusCode::GATEWAY_TIMEOUT => "timeout",
            Err(e) if e.error == HttpError::signal_answer_too_large().error => "invalid",
            Err(_) => "unreachable",
        };
        metrics::observe_upstream(op, outcome, start.elapsed());
        result
    }

    async fn send_signal(&self, s: Signal<'_>) -> Result<SignalReply, HttpError> {
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

/// The Daydream API calls the gateway makes, timed (see [`Upstream::api`]).
#[derive(Debug, Clone, Copy)]
pub struct Api<'a>(&'a DaydreamClient);

impl Api<'_> {
    /// `POST /v1/streams` (see [`DaydreamClient::create_stream`]).
    pub async fn create_stream(self, body: &Value) -> Result<Value, ApiError> {
        timed(UpstreamOp::Create, self.0.create_stream(body)).await
    }

    /// `GET /v1/streams/{id}` (see [`DaydreamClient::get_stream`]).
    pub async fn get_stream(self, id: &str) -> Result<Value, ApiError> {
        timed(UpstreamOp::Get, self.0.get_stream(id)).await
    }

    /// `GET /v1/streams` (see [`DaydreamClient::list_streams`]).
    pub async fn list_streams(self) -> Result<Vec<Value>, ApiError> {
        timed(UpstreamOp::List, self.0.list_streams()).await
    }

    /// `GET /v1/streams/{id}/status` (see [`DaydreamClient::stream_status`]).
    pub async fn stream_status(self, id: &str) -> Result<Value, ApiError> {
        timed(UpstreamOp::Status, self.0.stream_status(id)).await
    }

    /// `GET /v1/streams/{id}/status`: the 2xx status and body as sent, not
    /// checked to be JSON (see [`DaydreamClient::stream_status_raw`]).
    pub async fn stream_status_raw(self, id: &str) -> Result<(u16, Bytes), ApiError> {
        timed(UpstreamOp::Status, self.0.stream_status_raw(id)).await
    }

    /// `PATCH /v1/streams/{id}` (see [`DaydreamClient::update_stream`]).
    pub async fn update_stream(self, id: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        timed(UpstreamOp::Update, self.0.update_stream(id, body)).await
    }

    /// `DELETE /v1/streams?id=` (see [`DaydreamClient::delete_stream`]); a
    /// failure other than 404/405 (already gone) also counts in
    /// `dreamgate_stream_deletes_failed_total`.
    pub async fn delete_stream(self, id: &str) -> Result<(), ApiError> {
        let result = timed(UpstreamOp::Delete, self.0.delete_stream(id)).await;
        if matches!(&result, Err(e) if !matches!(e.status(), Some(404 | 405))) {
            metrics::delete_failed();
        }
        result
    }

    /// The readiness probe: a `GET` of a stream id that never exists, which
    /// creates nothing. The API is ready when it answers within `limit` and
    /// accepts the key (any answer but 401, 403 and 5xx); otherwise the reason,
    /// which names no URL and no key.
    pub async fn probe(self, limit: Duration) -> Result<(), &'static str> {
        match tokio::time::timeout(limit, self.get_stream(PROBE_STREAM_ID)).await {
            Err(_) | Ok(Err(ApiError::Timeout)) => Err("the upstream API did not answer in time"),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(ApiError::Upstream { status: 401 | 403, .. })) => Err("the upstream API refuses the API key"),
            Ok(Err(ApiError::Upstream { status, .. })) if status >= 500 => Err("the upstream API answers errors"),
            Ok(Err(ApiError::Upstream { .. })) => Ok(()),
            Ok(Err(ApiError::Unreachable(_))) => Err("the upstream API is unreachable"),
            Ok(Err(ApiError::InvalidResponse(_))) => Err("the upstream API answers something unusable"),
        }
    }
}

/// The stream id the readiness probe asks about (never a real stream).
pub const PROBE_STREAM_ID: &str = "dreamgate-readiness-probe";

async fn timed<T>(op: UpstreamOp, call: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    let start = Instant::now();
    let result = call.await;
    metrics::observe_upstream(op, metrics::api_outcome(&result), start.elapsed());
    result
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
