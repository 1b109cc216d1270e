//! The machine itself: its fields and phase, what it shows of them, and its timers.

use std::time::Instant;

use url::Url;

use super::types::{Action, ConnectionState, RequestId, WhipConnectionState, WhipOptions};
use crate::error::WhipError;
use crate::link::IceServer;
use crate::sdpfrag::OfferIce;

/// Where the session is; every timer but the connection window hangs off it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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

/// The sans-IO WHIP client state machine. See the [module docs](crate::machine) for the
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
    pub(super) opts: WhipOptions,
    pub(super) phase: Phase,
    pub(super) state: ConnectionState,
    pub(super) next_request: u64,
    pub(super) budget_end: Option<Instant>,
    pub(super) conn_deadline: Option<Instant>,
    pub(super) retries: u32,
    pub(super) offer_sdp: Option<String>,
    pub(super) offer_ice: OfferIce,
    pub(super) trickle: bool,
    pub(super) resource: Option<Url>,
    pub(super) etag: Option<String>,
    pub(super) candidates: Vec<String>,
    pub(super) end_of_candidates: bool,
    pub(super) end_sent: bool,
    pub(super) patch_in_flight: Option<RequestId>,
    pub(super) ever_connected: bool,
    pub(super) ice_servers: Vec<IceServer>,
    /// The ICE servers the peer was created with.
    pub(super) peer_ice_servers: Vec<IceServer>,
    /// `GatherFrom` asked, its candidates not in yet: `a=end-of-candidates` waits.
    pub(super) gathering_link: bool,
    /// Offers in flight when their session ended: DELETE what they create.
    pub(super) orphans: Vec<RequestId>,
    /// Reconnects in a row since the session last connected.
    pub(super) reconnects: u32,
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
            reconnects: 0,
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

    /// Reconnects made in a row since the session last connected.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Retries made in this session.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// When to feed [`Event::Timeout`](super::Event::Timeout) next, if a timer is running.
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

    /// Whether the offer was answered (and the session not ended): candidates may go out.
    pub(super) fn answered(&self) -> bool {
        matches!(self.phase, Phase::Answered | Phase::Connected | Phase::Disconnected { .. })
    }

    pub(super) fn emit(&mut self, state: ConnectionState, error: Option<WhipError>, out: &mut Vec<Action>) {
        self.state = state;
        out.push(Action::EmitState(WhipConnectionState { state, error }));
    }

    pub(super) fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}
