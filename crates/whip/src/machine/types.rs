//! The machine's vocabulary: its options, the events fed to it, the actions it returns,
//! and the connection states it reports.

use std::fmt;
use std::time::{Duration, Instant};

use dreamgate_rtc::PeerState;
use url::Url;

use crate::error::WhipError;
use crate::link::IceServer;

/// Which ICE candidates the peer may use (`RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IceTransportPolicy {
    /// Host, server-reflexive and relay candidates.
    #[default]
    All,
    /// Relay (TURN) candidates only.
    Relay,
}

/// The WHIPClient options of the spec, plus the retry policy.
///
/// ```
/// use std::time::Duration;
/// use dreamgate_whip::WhipOptions;
///
/// let opts = WhipOptions::new("https://example.com/whip".parse().unwrap());
/// assert_eq!(opts.connection_timeout, Duration::from_secs(45));
/// assert_eq!(opts.ice_gathering_timeout, Duration::from_secs(20));
/// assert!(opts.enable_trickle_ice);
/// ```
#[derive(Debug, Clone)]
pub struct WhipOptions {
    /// WHIP endpoint (pre-signed: no Authorization header is ever sent to it).
    pub whip_url: Url,
    /// ICE servers (default: Google STUN). `Link` headers from the endpoint replace them
    /// (see the [module docs](crate::machine) for what they are used for).
    pub ice_servers: Vec<IceServer>,
    /// ICE transport policy (default: all).
    pub ice_transport_policy: IceTransportPolicy,
    /// Connect-to-connected limit (default 45 s).
    pub connection_timeout: Duration,
    /// Longest wait for ICE gathering before the offer goes out (default 20 s).
    pub ice_gathering_timeout: Duration,
    /// Send the offer at once and trickle candidates by PATCH (default true,
    /// as the reference's `DEFAULT_CONFIG`).
    pub enable_trickle_ice: bool,
    /// Window, from connect, in which not-ready answers are retried (default 60 s).
    pub warmup_budget: Duration,
    /// First retry delay (default 500 ms); doubles on each retry.
    pub backoff_initial: Duration,
    /// Largest retry delay (default 8 s).
    pub backoff_max: Duration,
    /// How long "disconnected" may last before the session fails (default 5 s).
    pub disconnected_grace: Duration,
    /// A session lost after it was connected (its peer failed, or stayed "disconnected" past
    /// the grace: Livepeer ends a WHIP session as soon as ICE reports "disconnected") is
    /// published again by a new offer POST, at most this many times in a row (each with a fresh
    /// warm-up budget and connection window; a reconnect that connects resets the count).
    /// Default 0: the session fails, as the spec's client does.
    pub max_reconnects: u32,
}

impl WhipOptions {
    /// Default options for `whip_url`.
    pub fn new(whip_url: Url) -> Self {
        Self {
            whip_url,
            ice_servers: vec![IceServer::new("stun:stun.l.google.com:19302")],
            ice_transport_policy: IceTransportPolicy::All,
            connection_timeout: Duration::from_secs(45),
            ice_gathering_timeout: Duration::from_secs(20),
            enable_trickle_ice: true,
            warmup_budget: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            disconnected_grace: Duration::from_secs(5),
            max_reconnects: 0,
        }
    }

    /// The delay before retry number `n + 1` (`n` retries already made).
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}

/// The public connection states of the spec's `WHIPConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Initial state, and the transient loss of connectivity.
    Disconnected,
    /// `connect()` called; signalling and ICE in progress (including warm-up retries).
    Connecting,
    /// Media flows.
    Connected,
    /// Gave up; see the error.
    Failed,
    /// `disconnect()` or remote close.
    Closed,
}

impl ConnectionState {
    /// The spec's lowercase name (`"connecting"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, as given to `onConnectionStateChange` listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipConnectionState {
    /// The new state.
    pub state: ConnectionState,
    /// Why, for `failed`.
    pub error: Option<WhipError>,
}

/// Identifies an HTTP request the machine asked for, so its reply can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// The parts of an HTTP reply the machine looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// `Location` header, as received (may be relative).
    pub location: Option<String>,
    /// Every `Link` header value.
    pub link: Vec<String>,
    /// `ETag` header.
    pub etag: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// Body text.
    pub body: String,
}

impl HttpReply {
    /// A reply with only a status.
    pub fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }
}

/// Why an HTTP request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// The request timed out.
    Timeout,
    /// Connection refused, DNS failure, TLS error...
    Unreachable(String),
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("request timed out"),
            Self::Unreachable(why) => write!(f, "unreachable ({why})"),
        }
    }
}

/// Something that happened, fed to [`WhipMachine::handle`](super::WhipMachine::handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user called `connect()`.
    Connect,
    /// The peer created its local offer (after `Action::CreatePeer`).
    OfferReady {
        /// The offer SDP.
        sdp: String,
    },
    /// The candidates of `Action::GatherFrom` (`a=candidate:...` lines; maybe none).
    CandidatesGathered {
        /// The candidate attributes, with or without `a=`.
        candidates: Vec<String>,
    },
    /// The peer gathered one more local candidate (`candidate:...`).
    LocalCandidate {
        /// The candidate attribute, with or without `a=`.
        candidate: String,
    },
    /// ICE gathering finished.
    GatheringComplete {
        /// The complete offer (with candidates), if it differs from `OfferReady`'s.
        sdp: Option<String>,
    },
    /// The peer refused the answer of `Action::ApplyAnswer`.
    AnswerRejected,
    /// An HTTP request asked for by an action got a reply.
    HttpResponse {
        /// Which request.
        request: RequestId,
        /// The reply.
        reply: HttpReply,
    },
    /// An HTTP request asked for by an action got no reply.
    HttpError {
        /// Which request.
        request: RequestId,
        /// Why.
        error: HttpFailure,
    },
    /// The peer's connection state changed.
    PeerStateChanged(PeerState),
    /// [`WhipMachine::next_timeout`](super::WhipMachine::next_timeout) has passed.
    Timeout,
    /// The user called `disconnect()`.
    Disconnect,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the peer with these ICE servers and produce `Event::OfferReady`.
    CreatePeer {
        /// ICE servers to use.
        ice_servers: Vec<IceServer>,
        /// ICE transport policy.
        policy: IceTransportPolicy,
    },
    /// `POST url` with `Content-Type: application/sdp` and `sdp` as body.
    SendOffer {
        /// Request id for the reply.
        request: RequestId,
        /// The WHIP URL.
        url: Url,
        /// The offer.
        sdp: String,
    },
    /// `PATCH url` with `Content-Type: application/trickle-ice-sdpfrag`
    /// and `If-Match: etag` (when known).
    SendCandidates {
        /// Request id for the reply.
        request: RequestId,
        /// The session resource.
        url: Url,
        /// ETag of the session, from the offer's reply.
        etag: Option<String>,
        /// The SDP fragment.
        sdpfrag: String,
    },
    /// `DELETE url` (the session resource); the reply is ignored.
    SendDelete {
        /// Request id (replies to it are ignored).
        request: RequestId,
        /// The session resource.
        url: Url,
    },
    /// Give the answer to the peer (reply `Event::AnswerRejected` if it refuses it).
    ApplyAnswer {
        /// The answer SDP.
        sdp: String,
    },
    /// The endpoint announced ICE servers (`Link: <...>; rel="ice-server"`): use them.
    SetIceServers(Vec<IceServer>),
    /// Trickle ICE: gather server-reflexive candidates from these (new, `stun:`) ICE
    /// servers with the running peer, then report `Event::CandidatesGathered`.
    GatherFrom(Vec<IceServer>),
    /// A not-ready answer will be retried at `at`.
    RetryScheduled {
        /// Retry number (1 for the first retry).
        retry: u32,
        /// When the offer is sent again.
        at: Instant,
        /// What the last attempt got.
        error: WhipError,
    },
    /// Close the peer and stop sending media.
    ClosePeer,
    /// Close the peer but keep the media source: a new peer follows (`CreatePeer`), and the
    /// media goes to it once connected (a reconnect).
    DropPeer,
    /// Tell listeners about a state change.
    EmitState(WhipConnectionState),
}
