//! Wall-clock time as the gateway's state machines see it.
//!
//! Every timer rule (reaping, retries, leases, tombstones, session expiry) is
//! decided by a pure machine taking `now` as an [`Ms`]: milliseconds since
//! the Unix epoch. Wall-clock time (not [`std::time::Instant`]) because the
//! same records are shared by several gateway processes through the Redis
//! store, where an `Instant` means nothing; machines never move a timestamp
//! backwards, so a clock step back only delays a decision.

use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in wall-clock time: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ms(pub u64);

impl Ms {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Ms(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }

    /// How long after `earlier` this is (zero when it is not later).
    pub fn since(self, earlier: Ms) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Ms {
    type Output = Ms;
    fn add(self, d: Duration) -> Ms {
        Ms(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for Ms {
    type Output = Ms;
    fn sub(self, d: Duration) -> Ms {
        Ms(self.0.saturating_sub(millis(d)))
    }
}

impl Sub<Ms> for Ms {
    type Output = Duration;
    fn sub(self, earlier: Ms) -> Duration {
        self.since(earlier)
    }
}

/// When the deletes parked in the store are retried: at once (at start), then
/// every `every` while the gateway runs, so a delete given up while the
/// upstream was down is done by a running instance once it is back, not only
/// by the next one to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedSchedule {
    next: Ms,
    every: Duration,
}

impl ParkedSchedule {
    /// The first retry is due at `start`.
    pub fn new(start: Ms, every: Duration) -> Self {
        Self { next: start, every: every.max(Duration::from_millis(1)) }
    }

    /// Whether a retry is due at `now`; when it is, the next one is due `every` later.
    pub fn due(&mut self, now: Ms) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Ms(1_000);
        assert_eq!(t + Duration::from_secs(1), Ms(2_000));
        assert_eq!(t - Duration::from_secs(5), Ms(0));
        assert_eq!(Ms(500) - t, Duration::ZERO);
        assert_eq!(t - Ms(400), Duration::from_millis(600));
        assert!(Ms::now() > Ms(1_600_000_000_000));
    }
}
