//! The per-connection timer, as a pure state machine: it takes `now` and an
//! event and says when the connection must be closed. The IO shell in
//! [`crate::serve`] feeds it events (bytes read, request head parsed, body
//! complete, response produced and sent, shutdown) and closes the socket
//! when [`ConnClock::deadline`] passes or [`ConnClock::is_closed`] says so.
//!
//! | phase | entered when | ends |
//! |---|---|---|
//! | `Head` | connection accepted; first byte of a new request on an idle connection | request head parsed, or closed at `header_timeout` after it started (however the bytes trickle in) |
//! | `Idle` | response sent on a keep-alive connection | first byte (-> `Head`), or closed at `idle_timeout` |
//! | `Busy` | request head parsed | response sent (-> `Idle`); no deadline here: the body has its own (`body_timeout`, per request) and the handler its own |
//! | `Draining` | shutdown while a request is being answered | response sent, or closed at `shutdown_grace` |
//! | `Closed` | a deadline passed, or shutdown caught the connection idle, in a half-sent head or in a half-sent body | — |

use tokio::time::{Duration, Instant};

use crate::ServeLimits;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for (the rest of) a request head; closed at `deadline`.
    Head {
        /// When the connection is closed if the head is still incomplete.
        deadline: Instant,
    },
    /// Between requests, nothing received yet; closed at `deadline`.
    Idle {
        /// When the idle connection is closed.
        deadline: Instant,
    },
    /// Request `seq` is being read or answered.
    Busy {
        /// The request's number on this connection.
        seq: u64,
        /// Its body has been received in full.
        body_done: bool,
        /// The handler has produced its response.
        responding: bool,
    },
    /// Shutting down while request `seq` is answered; closed at `deadline` at the latest.
    Draining {
        /// The request's number on this connection.
        seq: u64,
        /// When the connection is closed even if the answer is not sent yet.
        deadline: Instant,
    },
    /// The connection must be closed now.
    Closed,
}

/// What the IO shell must do after [`ConnClock::shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    /// Close the connection at once (nothing worth waiting for).
    Close,
    /// Let the request in flight finish (keep-alive off), until the draining deadline.
    Drain,
}

/// The timer of one connection. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ConnClock {
    phase: Phase,
    header: Duration,
    idle: Duration,
    grace: Duration,
    seq: u64,
    shutting_down: bool,
}

impl ConnClock {
    /// A connection accepted at `now`: its first head must be complete by `now + header_timeout`.
    pub fn new(now: Instant, limits: &ServeLimits) -> Self {
        Self {
            phase: Phase::Head { deadline: now + limits.header_timeout },
            header: limits.header_timeout,
            idle: limits.idle_timeout,
            grace: limits.shutdown_grace,
            seq: 0,
            shutting_down: false,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the connection is to be closed if nothing else happens (`None`: no deadline).
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head { deadline } | Phase::Idle { deadline } | Phase::Draining { deadline, .. } => Some(deadline),
            Phase::Busy { .. } => None,
            Phase::Closed => None,
        }
    }

    /// The connection must be closed now.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Bytes arrived. On an idle connection that starts a new head, which must
    /// be complete within `header_timeout` from now. Returns whether the
    /// deadline changed.
    pub fn bytes_read(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Idle { .. } => {
                self.phase = Phase::Head { deadline: now + self.header };
                true
            }
            _ => false,
        }
    }

    /// A request head was parsed; returns the request's number.
    pub fn request_started(&mut self, now: Instant) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        match self.phase {
            Phase::Closed => {}
            _ if self.shutting_down => {
                let deadline = match self.phase {
                    Phase::Draining { deadline, .. } => deadline,
                    _ => now + self.grace,
                };
                self.phase = Phase::Draining { seq, deadline };
            }
            _ => self.phase = Phase::Busy { seq, body_done: false, responding: false },
        }
        seq
    }

    /// Request `seq`'s body was received in full (or it had none).
    pub fn body_done(&mut self, seq: u64) {
        if let Phase::Busy { seq: s, ref mut body_done, .. } = self.phase {
            if s == seq {
                *body_done = true;
            }
        }
    }

    /// The handler produced request `seq`'s response.
    pub fn response_started(&mut self, seq: u64) {
        if let Phase::Busy { seq: s, ref mut responding, .. } = self.phase {
            if s == seq {
                *responding = true;
            }
        }
    }

    /// Request `seq`'s response was sent: the connection is idle (or closed
    /// when shutting down).
    pub fn response_done(&mut self, now: Instant, seq: u64) {
        match self.phase {
            Phase::Busy { seq: s, .. } if s == seq => self.phase = Phase::Idle { deadline: now + self.idle },
            Phase::Draining { seq: s, .. } if s == seq => self.phase = Phase::Closed,
            _ => {}
        }
    }

    /// The server is shutting down: an idle connection, a half-sent head or
    /// a half-sent body is closed at once; a request whose body is in (or
    /// whose answer is ready) may finish within `shutdown_grace`.
    pub fn shutdown(&mut self, now: Instant) -> OnShutdown {
        self.shutting_down = true;
        match self.phase {
            Phase::Busy { seq, body_done, responding } if body_done || responding => {
                self.phase = Phase::Draining { seq, deadline: now + self.grace };
                OnShutdown::Drain
            }
            Phase::Draining { .. } => OnShutdown::Drain,
            _ => {
                self.phase = Phase::Closed;
                OnShutdown::Close
            }
        }
    }

    /// Time passed: closes the connection if its deadline is reached.
    pub fn tick(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.phase = Phase::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            ..ServeLimits::default()
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_silent_connection_is_closed_at_the_header_timeout() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        assert_eq!(c.deadline(), Some(t0 + s(10)));
        c.tick(t0 + s(9));
        assert!(!c.is_closed());
        c.tick(t0 + s(10));
        assert!(c.is_closed());
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn trickled_head_bytes_do_not_extend_the_header_deadline() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        for i in 1..10 {
            assert!(!c.bytes_read(t0 + s(i)), "a byte in the head moved the deadline");
            c.tick(t0 + s(i));
            assert!(!c.is_closed());
        }
        c.tick(t0 + s(10));
        assert!(c.is_closed());
    }

    #[test]
    fn a_request_has_no_connection_deadline_then_idles_then_a_new_head_has_its_own() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0 + s(1));
        assert_eq!(c.deadline(), None);
        c.tick(t0 + s(1000));
        assert!(!c.is_closed(), "a long request is not the connection clock's business");
        c.body_done(seq);
        c.response_started(seq);
        c.response_done(t0 + s(1000), seq);
        assert_eq!(c.phase(), Phase::Idle { deadline: t0 + s(1060) });
        c.tick(t0 + s(1059));
        assert!(!c.is_closed());
        // a byte of the next request: the head must be complete within 10 s of it
        assert!(c.bytes_read(t0 + s(1050)));
        assert_eq!(c.deadline(), Some(t0 + s(1060)));
        assert!(!c.bytes_read(t0 + s(1055)));
        let next = c.request_started(t0 + s(1058));
        assert_eq!(next, seq + 1);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0);
        c.response_done(t0 + s(1), seq);
        c.tick(t0 + s(60));
        assert!(!c.is_closed());
        c.tick(t0 + s(61));
        assert!(c.is_closed());
    }

    #[test]
    fn a_stale_response_done_does_not_idle_the_next_request() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        let first = c.request_started(t0);
        let second = c.request_started(t0 + s(1));
        c.response_done(t0 + s(2), first);
        assert!(matches!(c.phase(), Phase::Busy { seq, .. } if seq == second));
    }

    #[test]
    fn shutdown_closes_idle_and_half_sent_connections_at_once() {
        let t0 = Instant::now();
        // silent / half-sent head
        let mut c = ConnClock::new(t0, &limits());
        assert!(!c.bytes_read(t0 + s(1)));
        assert_eq!(c.shutdown(t0 + s(2)), OnShutdown::Close);
        assert!(c.is_closed());
        // idle keep-alive
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0);
        c.response_done(t0, seq);
        assert_eq!(c.shutdown(t0 + s(2)), OnShutdown::Close);
        assert!(c.is_closed());
        // head in, body half-sent, no answer yet
        let mut c = ConnClock::new(t0, &limits());
        c.request_started(t0);
        assert_eq!(c.shutdown(t0 + s(2)), OnShutdown::Close);
        assert!(c.is_closed());
    }

    #[test]
    fn shutdown_lets_a_request_in_flight_finish_within_the_grace() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0);
        c.body_done(seq);
        assert_eq!(c.shutdown(t0 + s(1)), OnShutdown::Drain);
        assert_eq!(c.deadline(), Some(t0 + s(6)));
        assert_eq!(c.shutdown(t0 + s(2)), OnShutdown::Drain, "a second signal changes nothing");
        assert_eq!(c.deadline(), Some(t0 + s(6)));
        c.response_started(seq);
        c.response_done(t0 + s(3), seq);
        assert!(c.is_closed(), "no keep-alive once shutting down");

        // an answer that takes too long is cut at the grace
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0);
        c.response_started(seq);
        assert_eq!(c.shutdown(t0 + s(1)), OnShutdown::Drain);
        c.tick(t0 + s(5));
        assert!(!c.is_closed());
        c.tick(t0 + s(6));
        assert!(c.is_closed());
    }

    #[test]
    fn a_request_after_shutdown_is_draining_under_the_same_grace() {
        let t0 = Instant::now();
        let mut c = ConnClock::new(t0, &limits());
        let seq = c.request_started(t0);
        c.body_done(seq);
        c.shutdown(t0);
        c.response_done(t0 + s(1), seq);
        assert!(c.is_closed());
        c.request_started(t0 + s(1));
        assert!(c.is_closed(), "a closed connection stays closed");
    }
}
