//! [`RecentlyEnded`]: the WHIP sessions and WHEP viewers of one stream that the engine ended
//! a moment ago, so that a client's DELETE of such a resource still succeeds (a client closes
//! its peer connection, the engine notices and ends the session, then the client's DELETE
//! arrives: that is a success, not a 404). Pure and bounded: entries are forgotten
//! [`RecentlyEnded::KEEP`] after their end, and at most [`RecentlyEnded::CAP`] are kept (the
//! oldest go first). Time is injected.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Resource ids ended recently, with when.
#[derive(Debug, Default, Clone)]
pub struct RecentlyEnded {
    entries: VecDeque<(String, Instant)>,
}

impl RecentlyEnded {
    /// How long an ended resource is remembered.
    pub const KEEP: Duration = Duration::from_secs(60);
    /// How many ended resources are remembered at most.
    pub const CAP: usize = 32;

    /// `id` ended at `now`.
    pub fn record(&mut self, id: &str, now: Instant) {
        self.expire(now);
        self.entries.retain(|(e, _)| e != id);
        if self.entries.len() == Self::CAP {
            self.entries.pop_front();
        }
        self.entries.push_back((id.to_owned(), now));
    }

    /// Whether `id` ended within [`Self::KEEP`] before `now`.
    pub fn contains(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        self.entries.iter().any(|(e, _)| e == id)
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|(_, at)| now.saturating_duration_since(*at) >= Self::KEEP) {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_resource_is_remembered_for_a_minute_then_forgotten() {
        let t0 = Instant::now();
        let mut r = RecentlyEnded::default();
        assert!(!r.contains("ses_a", t0));
        r.record("ses_a", t0);
        assert!(r.contains("ses_a", t0 + Duration::from_secs(59)));
        assert!(!r.contains("ses_b", t0));
        assert!(!r.contains("ses_a", t0 + RecentlyEnded::KEEP));
        assert!(r.is_empty(), "expired entries are dropped");
    }

    #[test]
    fn at_most_cap_entries_the_oldest_go_first() {
        let t0 = Instant::now();
        let mut r = RecentlyEnded::default();
        for i in 0..RecentlyEnded::CAP + 3 {
            r.record(&format!("ses_{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(r.len(), RecentlyEnded::CAP);
        let now = t0 + Duration::from_secs(1);
        assert!(!r.contains("ses_0", now) && !r.contains("ses_2", now));
        assert!(r.contains("ses_3", now) && r.contains(&format!("ses_{}", RecentlyEnded::CAP + 2), now));
    }

    #[test]
    fn ending_again_refreshes_without_duplicating() {
        let t0 = Instant::now();
        let mut r = RecentlyEnded::default();
        r.record("ses_a", t0);
        r.record("ses_a", t0 + Duration::from_secs(50));
        assert_eq!(r.len(), 1);
        assert!(r.contains("ses_a", t0 + Duration::from_secs(100)));
    }
}
