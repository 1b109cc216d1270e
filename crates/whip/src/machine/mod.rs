//! The WHIP client's brain: a sans-IO state machine (in the style of
//! `str0m` / `quinn-proto`) that owns every timer, retry and grace window.
//!
//! It never touches the network or the clock. The driver feeds it
//! [`Event`]s together with the current [`Instant`], executes the returned
//! [`Action`]s, and calls [`WhipMachine::handle`] with [`Event::Timeout`] once
//! [`WhipMachine::next_timeout`] has passed.
//!
//! # Timing rules
//!
//! * **Warm-up budget** (default 60 s, counted from `Connect`): an offer
//!   answered 404, 409, 429 or 5xx, or that got no HTTP answer at all, is
//!   retried after `backoff_initial * 2^n` (default 500 ms, 1 s, 2 s, 4 s,
//!   then capped at `backoff_max`, default 8 s). When the next attempt would
//!   start after the budget, the session fails with the last error
//!   (`WHIP offer failed: 503`).
//! * **Non-retryable answers** (3xx, 400, 401, 403, 405, 415, any other 4xx)
//!   fail at once with `WHIP offer failed: <status>`.
//! * **Connection timeout** (default 45 s): from `Connect` to a connected
//!   peer -> `Connection timed out`. Time spent waiting for the server to warm
//!   up is governed by the budget instead: while a retry is pending the
//!   connection timer is off, and when an offer is accepted after retries the
//!   45 s window restarts at that moment.
//! * **ICE gathering timeout** (default 20 s, trickle off): the offer is sent
//!   when gathering completes or when the timeout passes, whichever is first.
//!   With trickle on the offer is sent at once and candidates follow by PATCH
//!   (`application/trickle-ice-sdpfrag`, `If-Match: <etag>`) to the resource;
//!   a PATCH answered 405 turns trickle off quietly (Livepeer does that).
//! * **`Link` ICE servers** (RFC 9725 section 4.6): the 201 answer may announce
//!   ICE servers. With trickle on, the `stun:` ones the peer did not already use
//!   are asked for server-reflexive candidates ([`Action::GatherFrom`]); the
//!   candidates ([`Event::CandidatesGathered`]) go out in the trickle PATCH, and
//!   `a=end-of-candidates` waits for them. With trickle off (or a relay-only
//!   policy) nothing is gathered: the servers are kept
//!   ([`WhipMachine::ice_servers`]) for a later ICE restart, which this client
//!   does not do yet.
//! * **Disconnected grace** (default 5 s): "disconnected" is transient; the
//!   session fails with `ICE connection failed` only if the peer does not come
//!   back within the grace period.
//! * On disconnect, failure or remote close the resource (`Location`, resolved
//!   against the WHIP URL) is DELETEd; the reply is ignored. An offer still in
//!   flight at that point has its resource DELETEd as soon as it is answered.

use std::fmt;
use std::time::{Duration, Instant};

/// The local peer's connection state, as reported by the driver (`dreamgate-rtc`'s own type).
pub use dreamgate_rtc::PeerState;
use url::Url;

use crate::link::{parse_ice_servers, IceServer};
use crate::sdpfrag::OfferIce;
use crate::WhipError;

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
    /// (see the [module docs](self) for what they are used for).
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

/// Something that happened, fed to [`WhipMachine::handle`].
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
    /// [`WhipMachine::next_timeout`] has passed.
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
    /// Tell listeners about a state change.
    EmitState(WhipConnectionState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Never connected.
    Idle,
    /// `CreatePeer` asked, waiting for the offer.
    AwaitingOffer,
    /// Trickle off: waiting for gathering to complete.
    Gathering {
        deadline: Instant,
    },
    /// The offer's POST is in flight.
    Offering {
        request: RequestId,
    },
    /// Waiting to send the offer again.
    RetryWait {
        at: Instant,
    },
    /// Answer applied, ICE/DTLS in progress.
    Answered,
    Connected,
    /// Connectivity lost at some point; fails at `deadline`.
    Disconnected {
        deadline: Instant,
    },
    /// Failed or closed.
    Ended,
}

/// The sans-IO WHIP client state machine. See the [module docs](self) for the
/// timing rules.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dreamgate_whip::machine::{Action, Event, HttpReply, WhipMachine, WhipOptions};
///
/// let mut opts = WhipOptions::new("http://127.0.0.1:9/whip".parse().unwrap());
/// opts.enable_trickle_ice = false;
/// let mut m = WhipMachine::new(opts);
/// let t0 = Instant::now();
/// m.handle(t0, Event::Connect).unwrap();
/// m.handle(t0, Event::OfferReady { sdp: "v=0\r\n".into() }).unwrap();
/// // trickle off: the offer waits for gathering (at most 20 s)
/// assert_eq!(m.next_timeout(), Some(t0 + Duration::from_secs(20)));
/// let actions = m.handle(t0, Event::GatheringComplete { sdp: None }).unwrap();
/// let Some(Action::SendOffer { request, .. }) = actions.first() else { panic!() };
/// let actions = m.handle(t0, Event::HttpResponse { request: *request, reply: HttpReply::status(503) }).unwrap();
/// assert!(matches!(actions[0], Action::RetryScheduled { retry: 1, .. }));
/// assert_eq!(m.next_timeout(), Some(t0 + Duration::from_millis(500)));
/// ```
#[derive(Debug)]
pub struct WhipMachine {
    opts: WhipOptions,
    phase: Phase,
    state: ConnectionState,
    next_request: u64,
    budget_end: Option<Instant>,
    conn_deadline: Option<Instant>,
    retries: u32,
    offer_sdp: Option<String>,
    offer_ice: OfferIce,
    trickle: bool,
    resource: Option<Url>,
    etag: Option<String>,
    candidates: Vec<String>,
    end_of_candidates: bool,
    end_sent: bool,
    patch_in_flight: Option<RequestId>,
    ever_connected: bool,
    ice_servers: Vec<IceServer>,
    /// The ICE servers the peer was created with.
    peer_ice_servers: Vec<IceServer>,
    /// `GatherFrom` asked, its candidates not in yet: `a=end-of-candidates` waits.
    gathering_link: bool,
    /// Offers in flight when their session ended: DELETE what they create.
    orphans: Vec<RequestId>,
}

impl WhipMachine {
    /// A machine in the initial `disconnected` state.
    pub fn new(options: WhipOptions) -> Self {
        Self {
            trickle: options.enable_trickle_ice,
            ice_servers: options.ice_servers.clone(),
            peer_ice_servers: Vec::new(),
            gathering_link: false,
            opts: options,
            phase: Phase::Idle,
            state: ConnectionState::Disconnected,
            next_request: 0,
            budget_end: None,
            conn_deadline: None,
            retries: 0,
            offer_sdp: None,
            offer_ice: OfferIce::default(),
            resource: None,
            etag: None,
            candidates: Vec::new(),
            end_of_candidates: false,
            end_sent: false,
            patch_in_flight: None,
            ever_connected: false,
            orphans: Vec::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &WhipOptions {
        &self.opts
    }

    /// The last state emitted.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Whether a session is connecting or connected (so `Connect` is refused).
    pub fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Ended)
    }

    /// The session resource (absolute), once the offer was accepted.
    pub fn resource_url(&self) -> Option<&Url> {
        self.resource.as_ref()
    }

    /// Whether candidates are still trickled (off when configured so or after a 405).
    pub fn trickle_enabled(&self) -> bool {
        self.trickle
    }

    /// The ICE servers in use (the options', replaced by `Link` ones when announced).
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    /// Retries made in this session.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// When to feed [`Event::Timeout`] next, if a timer is running.
    pub fn next_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Gathering { deadline } | Phase::Disconnected { deadline } => Some(deadline),
            Phase::RetryWait { at } => Some(at),
            _ => None,
        };
        match (phase, self.conn_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles one event at time `now`, returning what to do, in order.
    ///
    /// Only [`Event::Connect`] can fail: with
    /// [`WhipError::AlreadyConnected`] while a session is active.
    pub fn handle(&mut self, now: Instant, event: Event) -> Result<Vec<Action>, WhipError> {
        let mut out = Vec::new();
        match event {
            Event::Connect => {
                if self.is_active() {
                    return Err(WhipError::AlreadyConnected);
                }
                self.start(now, &mut out);
            }
            Event::OfferReady { sdp } => self.on_offer(now, sdp, &mut out),
            Event::LocalCandidate { candidate } => {
                if self.trickle && self.is_active() {
                    self.candidates.push(candidate);
                    self.try_patch(&mut out);
                }
            }
            Event::CandidatesGathered { candidates } => {
                if std::mem::take(&mut self.gathering_link) && self.trickle && self.is_active() {
                    self.candidates.extend(candidates);
                    self.try_patch(&mut out);
                }
            }
            Event::GatheringComplete { sdp } => self.on_gathered(now, sdp, &mut out),
            Event::AnswerRejected => {
                if self.phase == Phase::Answered {
                    self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), &mut out);
                }
            }
            Event::HttpResponse { request, reply } => self.on_reply(now, request, reply, &mut out),
            Event::HttpError { request, error } => self.on_http_error(now, request, error, &mut out),
            Event::PeerStateChanged(peer) => self.on_peer(now, peer, &mut out),
            Event::Timeout => self.on_timeout(now, &mut out),
            Event::Disconnect => {
                if self.is_active() {
                    self.end(ConnectionState::Closed, None, &mut out);
                }
            }
        }
        Ok(out)
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        let orphans = std::mem::take(&mut self.orphans);
        let next_request = self.next_request;
        *self = Self::new(self.opts.clone());
        self.orphans = orphans;
        self.next_request = next_request;
        self.budget_end = Some(now + self.opts.warmup_budget);
        self.conn_deadline = Some(now + self.opts.connection_timeout);
        self.phase = Phase::AwaitingOffer;
        self.emit(ConnectionState::Connecting, None, out);
        self.peer_ice_servers = self.ice_servers.clone();
        out.push(Action::CreatePeer { ice_servers: self.ice_servers.clone(), policy: self.opts.ice_transport_policy });
    }

    fn on_offer(&mut self, now: Instant, sdp: String, out: &mut Vec<Action>) {
        if self.phase != Phase::AwaitingOffer {
            return;
        }
        self.offer_ice = OfferIce::from_offer(&sdp);
        self.offer_sdp = Some(sdp);
        if self.trickle {
            self.send_offer(out);
        } else {
            self.phase = Phase::Gathering { deadline: now + self.opts.ice_gathering_timeout };
        }
    }

    fn on_gathered(&mut self, _now: Instant, sdp: Option<String>, out: &mut Vec<Action>) {
        if !self.is_active() {
            return;
        }
        let answered = matches!(self.phase, Phase::Answered | Phase::Connected | Phase::Disconnected { .. });
        if let (Some(sdp), false) = (sdp, answered) {
            self.offer_sdp = Some(sdp);
        }
        if matches!(self.phase, Phase::Gathering { .. }) {
            self.send_offer(out);
        } else if self.trickle {
            self.end_of_candidates = true;
            self.try_patch(out);
        }
    }

    fn on_reply(&mut self, now: Instant, request: RequestId, reply: HttpReply, out: &mut Vec<Action>) {
        if self.phase == (Phase::Offering { request }) {
            self.on_offer_reply(now, reply, out);
        } else if let Some(i) = self.orphans.iter().position(|r| *r == request) {
            self.orphans.swap_remove(i);
            if (200..300).contains(&reply.status) {
                if let Some(url) = reply.location.as_deref().and_then(|l| self.opts.whip_url.join(l).ok()) {
                    let request = self.request_id();
                    out.push(Action::SendDelete { request, url });
                }
            }
        } else if self.patch_in_flight == Some(request) {
            self.patch_in_flight = None;
            if reply.status == 405 {
                // The endpoint does not do trickle ICE (Livepeer): stop quietly.
                self.trickle = false;
                self.candidates.clear();
            } else {
                if let (true, Some(etag)) = ((200..300).contains(&reply.status), reply.etag) {
                    self.etag = Some(etag);
                }
                self.try_patch(out);
            }
        }
    }

    fn on_offer_reply(&mut self, now: Instant, reply: HttpReply, out: &mut Vec<Action>) {
        match reply.status {
            200..=299 => {
                self.resource = reply.location.as_deref().and_then(|l| self.opts.whip_url.join(l).ok());
                self.etag = reply.etag;
                let Some(answer) = answer_sdp(reply.content_type.as_deref(), reply.body) else {
                    self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
                    return;
                };
                let servers = parse_ice_servers(reply.link.iter().map(String::as_str));
                if !servers.is_empty() {
                    self.ice_servers = servers.clone();
                    out.push(Action::SetIceServers(servers));
                }
                out.push(Action::ApplyAnswer { sdp: answer });
                // New STUN servers only matter to a peer that may still add candidates.
                let new: Vec<IceServer> = self
                    .ice_servers
                    .iter()
                    .filter(|s| s.url.starts_with("stun:"))
                    .filter(|s| !self.peer_ice_servers.iter().any(|used| used.url == s.url))
                    .cloned()
                    .collect();
                if self.trickle && self.opts.ice_transport_policy == IceTransportPolicy::All && !new.is_empty() {
                    self.gathering_link = true;
                    out.push(Action::GatherFrom(new));
                }
                self.phase = Phase::Answered;
                if self.retries > 0 {
                    self.conn_deadline = Some(now + self.opts.connection_timeout);
                }
                self.try_patch(out);
            }
            status if is_warming_up(status) => self.retry_or_fail(now, WhipError::OfferRejected(status), out),
            status => self.end(ConnectionState::Failed, Some(WhipError::OfferRejected(status)), out),
        }
    }

    fn on_http_error(&mut self, now: Instant, request: RequestId, error: HttpFailure, out: &mut Vec<Action>) {
        if self.phase == (Phase::Offering { request }) {
            self.retry_or_fail(now, WhipError::OfferUnreachable(error.to_string()), out);
        } else if self.patch_in_flight == Some(request) {
            self.patch_in_flight = None;
        } else {
            self.orphans.retain(|r| *r != request);
        }
    }

    fn on_peer(&mut self, now: Instant, peer: PeerState, out: &mut Vec<Action>) {
        match (self.phase, peer) {
            (Phase::Answered | Phase::Disconnected { .. }, PeerState::Connected) => {
                self.phase = Phase::Connected;
                self.ever_connected = true;
                self.conn_deadline = None;
                self.emit(ConnectionState::Connected, None, out);
            }
            (Phase::Connected, PeerState::Disconnected) => {
                self.phase = Phase::Disconnected { deadline: now + self.opts.disconnected_grace };
                self.emit(ConnectionState::Disconnected, None, out);
            }
            (Phase::Answered | Phase::Connected | Phase::Disconnected { .. }, PeerState::Failed) => {
                let error = if self.ever_connected { WhipError::PeerFailed } else { WhipError::IceFailed };
                self.end(ConnectionState::Failed, Some(error), out);
            }
            (Phase::Answered | Phase::Connected | Phase::Disconnected { .. }, PeerState::Closed) => {
                self.end(ConnectionState::Closed, None, out);
            }
            // The peer died before ICE could even start: not an ICE problem.
            (_, PeerState::Failed | PeerState::Closed) if self.is_active() => {
                self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.conn_deadline.is_some_and(|d| now >= d) {
            self.end(ConnectionState::Failed, Some(WhipError::ConnectionTimedOut), out);
            return;
        }
        match self.phase {
            Phase::Gathering { deadline } | Phase::RetryWait { at: deadline } if now >= deadline => {
                self.send_offer(out)
            }
            Phase::Disconnected { deadline } if now >= deadline => {
                self.end(ConnectionState::Failed, Some(WhipError::IceFailed), out)
            }
            _ => {}
        }
    }

    fn retry_or_fail(&mut self, now: Instant, error: WhipError, out: &mut Vec<Action>) {
        let at = now + self.opts.backoff(self.retries);
        if self.budget_end.is_none_or(|end| at > end) {
            self.end(ConnectionState::Failed, Some(error), out);
            return;
        }
        self.retries += 1;
        self.phase = Phase::RetryWait { at };
        self.conn_deadline = None;
        out.push(Action::RetryScheduled { retry: self.retries, at, error });
    }

    fn send_offer(&mut self, out: &mut Vec<Action>) {
        let Some(sdp) = self.offer_sdp.clone() else {
            self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
            return;
        };
        let request = self.request_id();
        self.phase = Phase::Offering { request };
        out.push(Action::SendOffer { request, url: self.opts.whip_url.clone(), sdp });
    }

    fn try_patch(&mut self, out: &mut Vec<Action>) {
        let answered = matches!(self.phase, Phase::Answered | Phase::Connected | Phase::Disconnected { .. });
        let pending = !self.candidates.is_empty() || (self.end_of_candidates && !self.end_sent && !self.gathering_link);
        if !(self.trickle && answered && pending && self.patch_in_flight.is_none()) {
            return;
        }
        let Some(url) = self.resource.clone() else {
            self.trickle = false; // nowhere to PATCH
            return;
        };
        let end = self.end_of_candidates && !self.end_sent && !self.gathering_link;
        let sdpfrag = self.offer_ice.fragment(&self.candidates, end);
        self.candidates.clear();
        self.end_sent |= end;
        let request = self.request_id();
        self.patch_in_flight = Some(request);
        out.push(Action::SendCandidates { request, url, etag: self.etag.clone(), sdpfrag });
    }

    fn end(&mut self, state: ConnectionState, error: Option<WhipError>, out: &mut Vec<Action>) {
        if let Phase::Offering { request } = self.phase {
            self.orphans.push(request);
        }
        if self.phase != Phase::Idle {
            out.push(Action::ClosePeer);
        }
        if let Some(url) = self.resource.take() {
            let request = self.request_id();
            out.push(Action::SendDelete { request, url });
        }
        self.phase = Phase::Ended;
        self.conn_deadline = None;
        self.patch_in_flight = None;
        self.emit(state, error, out);
    }

    fn emit(&mut self, state: ConnectionState, error: Option<WhipError>, out: &mut Vec<Action>) {
        self.state = state;
        out.push(Action::EmitState(WhipConnectionState { state, error }));
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}

/// Statuses a warming-up endpoint answers: retried inside the budget.
pub fn is_warming_up(status: u16) -> bool {
    matches!(status, 404 | 409 | 429 | 500..=599)
}

/// The answer SDP of a successful offer reply, if usable.
fn answer_sdp(content_type: Option<&str>, body: String) -> Option<String> {
    let sdp_type = content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/sdp"))
        .unwrap_or(true);
    (sdp_type && body.trim_start().starts_with("v=")).then_some(body)
}
