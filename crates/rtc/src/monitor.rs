//! Pure timing state machines of a peer: no IO, no clock. The caller passes the current
//! time with every event and asks for the next deadline.
//!
//! * [`ConnectionMonitor`] turns ICE/DTLS events into a [`PeerState`] and decides the
//!   connect and disconnect timeouts.
//! * [`KeyframeGate`] decides, on the receiving side, which access units can be handed to a
//!   decoder (nothing between a loss and the next keyframe) and when to ask the sender for a
//!   keyframe (at most once per retry interval while waiting).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dreamgate_rtc::monitor::{ConnectionMonitor, LinkEvent};
//! use dreamgate_rtc::PeerState;
//!
//! let t0 = Instant::now();
//! let mut m = ConnectionMonitor::new(t0, Duration::from_secs(5), Duration::from_secs(3));
//! assert_eq!(m.handle(t0, LinkEvent::IceChecking), Some(PeerState::Connecting));
//! assert_eq!(m.poll(t0 + Duration::from_secs(4)), None);
//! assert_eq!(m.poll(t0 + Duration::from_secs(5)), Some(PeerState::Failed));
//! ```

use std::time::{Duration, Instant};

use crate::PeerState;

/// Something that happened to the connection, as seen by the IO task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// ICE started checking candidate pairs.
    IceChecking,
    /// ICE found (or nominated) a working pair.
    IceConnected,
    /// ICE lost every working pair.
    IceDisconnected,
    /// DTLS is up on top of ICE (str0m `Event::Connected`): media can flow.
    TransportConnected,
    /// The remote closed the DTLS session.
    RemoteClosed,
    /// The application closed the peer.
    LocalClose,
    /// The WebRTC stack hit an unrecoverable error.
    Fatal,
}

/// Connection state machine with connect and disconnect timeouts.
#[derive(Debug, Clone)]
pub struct ConnectionMonitor {
    state: PeerState,
    created: Instant,
    connect_timeout: Duration,
    disconnect_timeout: Duration,
    ice_up: bool,
    transport_up: bool,
    disconnected_since: Option<Instant>,
    silence_timeout: Option<Duration>,
    last_heard: Instant,
    silent: bool,
}

impl ConnectionMonitor {
    /// With `timeout`, a connected peer that hears nothing for that long becomes
    /// `Disconnected` (see [`ConnectionMonitor::heard`]).
    pub fn with_silence_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.silence_timeout = timeout;
        self
    }

    /// Something arrived from the remote at `now`; returns the new state when it changed
    /// (back to `Connected` after a silence).
    pub fn heard(&mut self, now: Instant) -> Option<PeerState> {
        self.last_heard = now;
        if self.silent && !self.state.is_terminal() {
            self.silent = false;
            if self.ice_up && self.transport_up {
                return self.set(now, PeerState::Connected);
            }
        }
        None
    }

    /// A monitor for a peer created at `now`.
    pub fn new(now: Instant, connect_timeout: Duration, disconnect_timeout: Duration) -> Self {
        ConnectionMonitor {
            state: PeerState::New,
            created: now,
            connect_timeout,
            disconnect_timeout,
            ice_up: false,
            transport_up: false,
            disconnected_since: None,
            silence_timeout: None,
            last_heard: now,
            silent: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Feeds one event; returns the new state when it changed.
    pub fn handle(&mut self, now: Instant, event: LinkEvent) -> Option<PeerState> {
        if self.state.is_terminal() {
            return None;
        }
        let next = match event {
            LinkEvent::IceChecking => match self.state {
                PeerState::New => PeerState::Connecting,
                other => other,
            },
            LinkEvent::IceConnected => {
                self.ice_up = true;
                if self.transport_up {
                    PeerState::Connected
                } else if self.state == PeerState::Disconnected {
                    PeerState::Disconnected
                } else {
                    PeerState::Connecting
                }
            }
            LinkEvent::TransportConnected => {
                self.ice_up = true;
                self.transport_up = true;
                PeerState::Connected
            }
            LinkEvent::IceDisconnected => {
                self.ice_up = false;
                match self.state {
                    PeerState::Connected => PeerState::Disconnected,
                    PeerState::New => PeerState::Connecting,
                    other => other,
                }
            }
            LinkEvent::RemoteClosed | LinkEvent::LocalClose => PeerState::Closed,
            LinkEvent::Fatal => PeerState::Failed,
        };
        self.set(now, next)
    }

    /// Checks the timeouts at `now`; returns the new state when it changed.
    pub fn poll(&mut self, now: Instant) -> Option<PeerState> {
        if let Some(silence) = self.silence_timeout.filter(|_| self.state == PeerState::Connected) {
            if now >= self.last_heard + silence {
                self.silent = true;
                return self.set(now, PeerState::Disconnected);
            }
        }
        match self.deadline() {
            Some(deadline) if now >= deadline => self.set(now, PeerState::Failed),
            _ => None,
        }
    }

    /// When [`ConnectionMonitor::poll`] must run next, if a timeout is armed.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            PeerState::New | PeerState::Connecting if !self.transport_up => Some(self.created + self.connect_timeout),
            PeerState::Disconnected => self.disconnected_since.map(|t| t + self.disconnect_timeout),
            PeerState::Connected => self.silence_timeout.map(|s| self.last_heard + s),
            _ => None,
        }
    }

    fn set(&mut self, now: Instant, next: PeerState) -> Option<PeerState> {
        if next == self.state {
            return None;
        }
        self.disconnected_since = (next == PeerState::Disconnected).then_some(now);
        self.state = next;
        Some(next)
    }
}

/// What to do with one received access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateVerdict {
    /// Hand the access unit to the consumer.
    pub deliver: bool,
    /// Send a keyframe request (PLI) to the sender now.
    pub request_keyframe: bool,
}

/// Receiving-side keyframe gate: only decodable access units pass.
///
/// It starts closed (a decoder needs a keyframe first), closes on a discontinuity (lost
/// packets) or when the consumer could not take a frame, and opens on the next keyframe.
/// While closed it asks for a keyframe at most once per `retry` interval.
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    waiting: bool,
    last_request: Option<Instant>,
    retry: Duration,
}

impl KeyframeGate {
    /// A closed gate that re-requests keyframes every `retry` while waiting.
    pub fn new(retry: Duration) -> Self {
        KeyframeGate { waiting: true, last_request: None, retry }
    }

    /// Whether the gate waits for a keyframe.
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// One access unit arrived: `contiguous` is false when packets before it were lost.
    pub fn on_frame(&mut self, now: Instant, keyframe: bool, contiguous: bool) -> GateVerdict {
        if keyframe {
            self.waiting = false;
            return GateVerdict { deliver: true, request_keyframe: false };
        }
        if !contiguous {
            self.waiting = true;
        }
        if self.waiting {
            GateVerdict { deliver: false, request_keyframe: self.request_if_due(now) }
        } else {
            GateVerdict { deliver: true, request_keyframe: false }
        }
    }

    /// The consumer could not take an access unit (its queue was full): the following
    /// ones are undecodable until the next keyframe. Returns whether to request one now.
    pub fn on_dropped(&mut self, now: Instant) -> bool {
        self.waiting = true;
        self.request_if_due(now)
    }

    /// Periodic check: returns whether to re-request a keyframe now (only once a first
    /// request went out; the first one is triggered by an arriving frame).
    pub fn poll(&mut self, now: Instant) -> bool {
        self.waiting && self.last_request.is_some() && self.request_if_due(now)
    }

    /// When [`KeyframeGate::poll`] wants to run next.
    pub fn deadline(&self) -> Option<Instant> {
        if self.waiting {
            self.last_request.map(|t| t + self.retry)
        } else {
            None
        }
    }

    fn request_if_due(&mut self, now: Instant) -> bool {
        let due = self.last_request.is_none_or(|t| now >= t + self.retry);
        if due {
            self.last_request = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn monitor(t0: Instant) -> ConnectionMonitor {
        ConnectionMonitor::new(t0, 10 * S, 5 * S)
    }

    #[test]
    fn connects_through_ice_then_dtls() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        assert_eq!(m.state(), PeerState::New);
        assert_eq!(m.deadline(), Some(t0 + 10 * S));
        assert_eq!(m.handle(t0, LinkEvent::IceChecking), Some(PeerState::Connecting));
        assert_eq!(m.handle(t0 + S, LinkEvent::IceConnected), None);
        assert_eq!(m.state(), PeerState::Connecting);
        assert_eq!(m.handle(t0 + 2 * S, LinkEvent::TransportConnected), Some(PeerState::Connected));
        assert_eq!(m.deadline(), None);
        // Long after the connect timeout, nothing happens to a connected peer.
        assert_eq!(m.poll(t0 + 100 * S), None);
        assert_eq!(m.state(), PeerState::Connected);
    }

    #[test]
    fn fails_when_not_connected_in_time() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        m.handle(t0, LinkEvent::IceChecking);
        m.handle(t0 + S, LinkEvent::IceConnected);
        assert_eq!(m.poll(t0 + 10 * S - Duration::from_millis(1)), None);
        assert_eq!(m.poll(t0 + 10 * S), Some(PeerState::Failed));
        // Terminal: nothing revives it.
        assert_eq!(m.handle(t0 + 11 * S, LinkEvent::TransportConnected), None);
        assert_eq!(m.state(), PeerState::Failed);
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn fails_without_any_event() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        assert_eq!(m.poll(t0 + 9 * S), None);
        assert_eq!(m.poll(t0 + 10 * S), Some(PeerState::Failed));
    }

    #[test]
    fn disconnect_recovers_within_grace() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        m.handle(t0, LinkEvent::TransportConnected);
        assert_eq!(m.handle(t0 + 20 * S, LinkEvent::IceDisconnected), Some(PeerState::Disconnected));
        assert_eq!(m.deadline(), Some(t0 + 25 * S));
        assert_eq!(m.poll(t0 + 24 * S), None);
        assert_eq!(m.handle(t0 + 24 * S, LinkEvent::IceConnected), Some(PeerState::Connected));
        assert_eq!(m.deadline(), None);
        assert_eq!(m.poll(t0 + 30 * S), None);
        // A second disconnection gets a fresh grace window.
        m.handle(t0 + 40 * S, LinkEvent::IceDisconnected);
        assert_eq!(m.poll(t0 + 44 * S), None);
        assert_eq!(m.poll(t0 + 45 * S), Some(PeerState::Failed));
    }

    #[test]
    fn checking_again_while_disconnected_keeps_the_timer() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        m.handle(t0, LinkEvent::TransportConnected);
        m.handle(t0 + S, LinkEvent::IceDisconnected);
        assert_eq!(m.handle(t0 + 2 * S, LinkEvent::IceChecking), None);
        assert_eq!(m.state(), PeerState::Disconnected);
        assert_eq!(m.poll(t0 + 6 * S), Some(PeerState::Failed));
    }

    #[test]
    fn close_and_fatal_are_terminal() {
        let t0 = Instant::now();
        let mut m = monitor(t0);
        assert_eq!(m.handle(t0, LinkEvent::LocalClose), Some(PeerState::Closed));
        assert_eq!(m.poll(t0 + 100 * S), None);
        assert_eq!(m.state(), PeerState::Closed);

        let mut m = monitor(t0);
        m.handle(t0, LinkEvent::TransportConnected);
        assert_eq!(m.handle(t0, LinkEvent::RemoteClosed), Some(PeerState::Closed));

        let mut m = monitor(t0);
        assert_eq!(m.handle(t0, LinkEvent::Fatal), Some(PeerState::Failed));
        assert_eq!(m.handle(t0, LinkEvent::LocalClose), None);
    }

    #[test]
    fn gate_waits_for_first_keyframe_and_rate_limits_requests() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(S);
        assert!(g.is_waiting());
        // A delta frame first: dropped, one request.
        assert_eq!(g.on_frame(t0, false, true), GateVerdict { deliver: false, request_keyframe: true });
        // More delta frames within the retry interval: dropped, no new request.
        assert_eq!(
            g.on_frame(t0 + Duration::from_millis(500), false, true),
            GateVerdict { deliver: false, request_keyframe: false }
        );
        assert!(!g.poll(t0 + Duration::from_millis(999)));
        assert_eq!(g.deadline(), Some(t0 + S));
        assert!(g.poll(t0 + S));
        assert!(!g.poll(t0 + S));
        // Keyframe opens the gate; deltas then pass.
        assert_eq!(g.on_frame(t0 + 2 * S, true, true), GateVerdict { deliver: true, request_keyframe: false });
        assert!(!g.is_waiting());
        assert_eq!(g.deadline(), None);
        assert!(g.on_frame(t0 + 2 * S, false, true).deliver);
        assert!(!g.poll(t0 + 10 * S));
    }

    #[test]
    fn gate_closes_on_loss_and_on_overflow() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(S);
        assert!(g.on_frame(t0, true, true).deliver);
        // Loss: the delta frame after the gap is undecodable.
        let v = g.on_frame(t0 + S, false, false);
        assert!(!v.deliver);
        assert!(v.request_keyframe);
        // A keyframe after a gap is fine.
        assert!(g.on_frame(t0 + S, true, false).deliver);
        // Consumer overflow closes the gate too, requests respect the interval.
        assert!(!g.on_dropped(t0 + S + Duration::from_millis(100)));
        assert!(g.is_waiting());
        assert!(g.on_dropped(t0 + 3 * S));
        assert!(!g.on_frame(t0 + 3 * S, false, true).deliver);
    }

    #[test]
    fn silence_disconnects_a_connected_peer_until_it_hears_again() {
        let t0 = Instant::now();
        let mut m = ConnectionMonitor::new(t0, 10 * S, 5 * S).with_silence_timeout(Some(3 * S));
        assert_eq!(m.handle(t0, LinkEvent::TransportConnected), Some(PeerState::Connected));
        assert_eq!(m.heard(t0 + S), None);
        assert_eq!(m.deadline(), Some(t0 + 4 * S));
        assert_eq!(m.poll(t0 + 3 * S), None);
        assert_eq!(m.poll(t0 + 4 * S), Some(PeerState::Disconnected));
        assert_eq!(m.heard(t0 + 5 * S), Some(PeerState::Connected), "heard again");
        assert_eq!(m.poll(t0 + 8 * S), Some(PeerState::Disconnected));
        assert_eq!(m.poll(t0 + 13 * S), Some(PeerState::Failed), "then the disconnect timeout");
        // off by default
        let mut m = ConnectionMonitor::new(t0, 10 * S, 5 * S);
        m.handle(t0, LinkEvent::TransportConnected);
        assert_eq!(m.deadline(), None);
        assert_eq!(m.poll(t0 + 100 * S), None);
    }
}
