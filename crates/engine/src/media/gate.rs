//! The pure decisions of an ingest pump: which received access units go to the transform
//! thread, when to ask the publisher for a keyframe, and when to report transport figures.
//!
//! The transform thread takes access units through a small bounded queue. When it falls
//! behind, the queue is full and the unit is dropped; a dropped unit breaks the H.264
//! reference chain, so every following non-key unit is dropped too until a keyframe arrives,
//! and the publisher is asked for one (at most every [`KEYFRAME_REQUEST_INTERVAL`]). A decode
//! error reported by the thread is handled the same way.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dreamgate_engine::media::gate::{Admit, IngestGate};
//!
//! let t0 = Instant::now();
//! let mut gate = IngestGate::new(t0);
//! assert_eq!(gate.admit(t0, true), Admit::Forward);
//! // the transform thread's queue was full: the unit is lost, ask for a keyframe
//! assert!(gate.on_overflow(t0));
//! // deltas are useless until then; no second request this soon
//! assert_eq!(gate.admit(t0 + Duration::from_millis(33), false), Admit::Drop { request_keyframe: false });
//! assert_eq!(gate.admit(t0 + Duration::from_millis(66), true), Admit::Forward);
//! ```

use std::time::{Duration, Instant};

/// Minimum time between two keyframe requests sent to the publisher.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// How often transport figures are recorded in the stream's activity.
pub const TRANSPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What to do with one received access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Hand it to the transform thread.
    Forward,
    /// Drop it (waiting for a keyframe); ask the publisher for one when `request_keyframe`.
    Drop {
        /// Send a keyframe request (PLI) to the publisher now.
        request_keyframe: bool,
    },
}

/// The pump's state: waiting for a keyframe or not, and its two timers.
#[derive(Debug, Clone)]
pub struct IngestGate {
    waiting_keyframe: bool,
    last_request: Option<Instant>,
    next_transport: Instant,
    dropped: u64,
}

impl IngestGate {
    /// A gate for a session that starts at `now` (the first unit is expected to be a keyframe;
    /// the ingest peer only delivers from a keyframe on).
    pub fn new(now: Instant) -> Self {
        IngestGate { waiting_keyframe: false, last_request: None, next_transport: now, dropped: 0 }
    }

    /// A unit arrived from the publisher.
    pub fn admit(&mut self, now: Instant, keyframe: bool) -> Admit {
        if keyframe {
            self.waiting_keyframe = false;
        }
        if self.waiting_keyframe {
            self.dropped += 1;
            Admit::Drop { request_keyframe: self.may_request(now) }
        } else {
            Admit::Forward
        }
    }

    /// The unit [`admit`](Self::admit) forwarded did not fit in the transform queue (the
    /// transform is behind) and was dropped. Returns whether to request a keyframe now.
    pub fn on_overflow(&mut self, now: Instant) -> bool {
        self.dropped += 1;
        self.wait_keyframe(now)
    }

    /// The transform thread could not decode a unit. Returns whether to request a keyframe now.
    pub fn on_decode_error(&mut self, now: Instant) -> bool {
        self.wait_keyframe(now)
    }

    /// Whether transport figures are due at `now` (then the next are due one interval later).
    pub fn transport_due(&mut self, now: Instant) -> bool {
        if now >= self.next_transport {
            self.next_transport = now + TRANSPORT_INTERVAL;
            true
        } else {
            false
        }
    }

    /// Units dropped so far (queue overflow or waiting for a keyframe).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether non-key units are being dropped until the next keyframe.
    pub fn waiting_keyframe(&self) -> bool {
        self.waiting_keyframe
    }

    fn wait_keyframe(&mut self, now: Instant) -> bool {
        self.waiting_keyframe = true;
        self.may_request(now)
    }

    fn may_request(&mut self, now: Instant) -> bool {
        let due = self.last_request.is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.last_request = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn forwards_everything_while_the_transform_keeps_up() {
        let t0 = Instant::now();
        let mut g = IngestGate::new(t0);
        for i in 0..90u64 {
            assert_eq!(g.admit(t0 + ms(i * 33), i % 30 == 0), Admit::Forward);
        }
        assert_eq!(g.dropped(), 0);
    }

    #[test]
    fn overflow_drops_deltas_until_a_keyframe_and_throttles_requests() {
        let t0 = Instant::now();
        let mut g = IngestGate::new(t0);
        assert_eq!(g.admit(t0, true), Admit::Forward);
        assert!(g.on_overflow(t0 + ms(33)));
        assert!(g.waiting_keyframe());
        // deltas dropped; the next request only after the interval
        assert_eq!(g.admit(t0 + ms(66), false), Admit::Drop { request_keyframe: false });
        assert_eq!(g.admit(t0 + ms(500), false), Admit::Drop { request_keyframe: false });
        assert_eq!(g.admit(t0 + ms(533), false), Admit::Drop { request_keyframe: true });
        assert_eq!(g.admit(t0 + ms(566), false), Admit::Drop { request_keyframe: false });
        // the keyframe resumes the flow
        assert_eq!(g.admit(t0 + ms(600), true), Admit::Forward);
        assert!(!g.waiting_keyframe());
        assert_eq!(g.admit(t0 + ms(633), false), Admit::Forward);
        assert_eq!(g.dropped(), 5);
    }

    #[test]
    fn a_dropped_keyframe_means_waiting_for_the_next_one() {
        let t0 = Instant::now();
        let mut g = IngestGate::new(t0);
        assert_eq!(g.admit(t0, true), Admit::Forward);
        assert!(g.on_overflow(t0));
        assert_eq!(g.admit(t0 + ms(10), false), Admit::Drop { request_keyframe: false });
    }

    #[test]
    fn decode_errors_wait_for_a_keyframe_with_the_same_throttle() {
        let t0 = Instant::now();
        let mut g = IngestGate::new(t0);
        assert!(g.on_decode_error(t0));
        assert!(!g.on_decode_error(t0 + ms(100)));
        assert!(g.on_decode_error(t0 + ms(600)));
        assert_eq!(g.admit(t0 + ms(700), false), Admit::Drop { request_keyframe: false });
        assert_eq!(g.admit(t0 + ms(733), true), Admit::Forward);
    }

    #[test]
    fn transport_is_due_once_per_interval() {
        let t0 = Instant::now();
        let mut g = IngestGate::new(t0);
        assert!(g.transport_due(t0));
        assert!(!g.transport_due(t0 + ms(999)));
        assert!(g.transport_due(t0 + ms(1000)));
        assert!(!g.transport_due(t0 + ms(1500)));
        // a late tick does not cause a burst
        assert!(g.transport_due(t0 + ms(5000)));
        assert!(!g.transport_due(t0 + ms(5100)));
    }
}
