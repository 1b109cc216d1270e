//! What a [`WhipClient`](super::WhipClient) is given and what it reports.

use std::time::{Duration, Instant};

use dreamgate_rtc::RtcConfig;
use http::header::HeaderMap;
use url::Url;

use crate::error::WhipError;
use crate::link::IceServer;
use crate::machine::{WhipConnectionState, WhipOptions};

/// Everything a [`WhipClient`](crate::WhipClient) needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The WHIPClient options and retry policy.
    pub whip: WhipOptions,
    /// Extra headers on every WHIP request (the gateway path needs `Origin`
    /// and its session `Cookie`). An `Authorization` header is never sent.
    pub headers: HeaderMap,
    /// Per-request HTTP timeout (default 10 s, like the official client).
    pub request_timeout: Duration,
    /// Local peer settings.
    pub rtc: RtcConfig,
}

impl ClientOptions {
    /// Defaults for `whip_url`.
    pub fn new(whip_url: Url) -> Self {
        Self {
            whip: WhipOptions::new(whip_url),
            headers: HeaderMap::new(),
            request_timeout: Duration::from_secs(10),
            rtc: RtcConfig::default(),
        }
    }
}

/// A warm-up retry waiting to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryStatus {
    /// Retry number (1 for the first).
    pub retry: u32,
    /// When the offer is sent again.
    pub at: Instant,
    /// What the last attempt got.
    pub error: WhipError,
}

/// What a [`WhipClient`](crate::WhipClient) is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// The last connection state.
    pub state: WhipConnectionState,
    /// The pending warm-up retry, while connecting.
    pub retry: Option<RetryStatus>,
    /// ICE servers announced by the endpoint (`Link` headers).
    pub link_ice_servers: Vec<IceServer>,
    /// The source has no more frames.
    pub source_ended: bool,
}
