//! Who polls a stream's upstream status, and the status it published: pure
//! rules the store applies (under its lock in process, in one Lua script in
//! Redis), with the caller's wall-clock `now`.
//!
//! One gateway instance at a time holds a stream's **poll lease**: it polls
//! the upstream status once per interval and publishes what it learnt
//! ([`Published`], kept for a short TTL); the other instances watching the
//! same stream read the published status instead of polling. The holder
//! renews the lease each interval; a lease not renewed runs out, and the next
//! instance to ask takes it over (the holder died or stopped watching).
//!
//! ```
//! use std::time::Duration;
//! use dreamgate_gateway::clock::Ms;
//! use dreamgate_gateway::poll_lease::PollLease;
//!
//! let lease = Duration::from_secs(3);
//! let a = PollLease::claim(None, "a", Ms(0), lease).unwrap();
//! assert!(PollLease::claim(Some(&a), "b", Ms(1_000), lease).is_none()); // held by a
//! let a = PollLease::claim(Some(&a), "a", Ms(2_000), lease).unwrap(); // renewed
//! assert_eq!(a.until, Ms(5_000));
//! let b = PollLease::claim(Some(&a), "b", Ms(5_000), lease).unwrap(); // ran out: taken over
//! assert_eq!(b.holder, "b");
//! ```

use std::time::Duration;

use crate::clock::Ms;

/// The poll lease of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollLease {
    /// The instance that holds it.
    pub holder: String,
    /// It runs out then (unless renewed).
    pub until: Ms,
}

impl PollLease {
    /// `holder` asks for the lease at `now`: granted (the new lease, until
    /// `now + lease`) when nobody holds it, when its holder's lease ran out, or
    /// when `holder` already holds it (renewed); `None` while another holds it.
    pub fn claim(current: Option<&PollLease>, holder: &str, now: Ms, lease: Duration) -> Option<PollLease> {
        match current {
            Some(c) if c.holder != holder && c.until > now => None,
            _ => Some(PollLease { holder: holder.to_string(), until: now + lease }),
        }
    }

    /// `holder` gives the lease up: whether it is released (only its holder may).
    pub fn release(current: Option<&PollLease>, holder: &str) -> bool {
        current.is_some_and(|c| c.holder == holder)
    }
}

/// A status published by the lease holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// When it was published (the relays push each one once).
    pub at: Ms,
    /// It is stale from then on.
    pub until: Ms,
    /// The published message (the event stream's `data`).
    pub text: String,
}

impl Published {
    /// The published status as seen at `now`: `None` once stale.
    pub fn fresh(stored: Option<&Published>, now: Ms) -> Option<&Published> {
        stored.filter(|p| p.until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(3);

    #[test]
    fn one_holder_at_a_time_renewed_by_it_taken_over_when_it_runs_out() {
        let a = PollLease::claim(None, "a", Ms(10_000), L).unwrap();
        assert_eq!(a, PollLease { holder: "a".into(), until: Ms(13_000) });
        assert_eq!(PollLease::claim(Some(&a), "b", Ms(12_999), L), None);
        let a2 = PollLease::claim(Some(&a), "a", Ms(12_000), L).unwrap();
        assert_eq!(a2.until, Ms(15_000));
        assert_eq!(PollLease::claim(Some(&a2), "b", Ms(14_000), L), None);
        let b = PollLease::claim(Some(&a2), "b", Ms(15_000), L).unwrap();
        assert_eq!(b.holder, "b");
        assert_eq!(PollLease::claim(Some(&b), "a", Ms(15_001), L), None);
    }

    #[test]
    fn only_the_holder_releases() {
        let a = PollLease::claim(None, "a", Ms(0), L).unwrap();
        assert!(!PollLease::release(Some(&a), "b"));
        assert!(PollLease::release(Some(&a), "a"));
        assert!(!PollLease::release(None, "a"));
    }

    #[test]
    fn a_published_status_is_stale_after_its_ttl() {
        let p = Published { at: Ms(1_000), until: Ms(4_000), text: "x".into() };
        assert_eq!(Published::fresh(Some(&p), Ms(3_999)), Some(&p));
        assert_eq!(Published::fresh(Some(&p), Ms(4_000)), None);
        assert_eq!(Published::fresh(None, Ms(0)), None);
    }
}
