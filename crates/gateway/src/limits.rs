//! Per-client limits: live streams per client address, stream creates per
//! minute per session and per client address, answered 429 with
//! `Retry-After` and the JSON error shape.
//!
//! # Defaults
//!
//! Sized for a single-user tool behind one shared key (see [`LimitsConfig`]):
//!
//! | limit | default | `dreamgate serve` option |
//! |---|---|---|
//! | live streams per client address | 3 | `--max-live-streams-per-ip` |
//! | creates per minute per session | 10 | `--max-creates-per-minute-per-session` |
//! | creates per minute per client address | 20 | `--max-creates-per-minute-per-ip` |
//!
//! `0` turns a limit off. A client address is an IPv4 address or an IPv6
//! /64 network (one host usually holds a whole /64); see
//! [`crate::edge::client_address`] for how it is found behind proxies.
//!
//! # How it decides
//!
//! The decisions are pure functions of counts and an injected `now`
//! ([`rate_verdict`], [`live_verdict`]); the counts live
//! behind the small async [`Counters`] trait, so that several gateways can
//! share them through a store (Redis: `INCR` + `PEXPIRE NX`, and a sorted
//! set per address for live streams). [`MemoryCounters`] is the in-process
//! implementation, bounded in memory (entries expire; expiry is O(log n));
//! [`crate::store::RedisCounters`] keeps them in the Redis store, shared by
//! every instance ([`crate::store::Store::counters`] picks one).
//!
//! * **Creates per minute** are fixed one-minute windows opened by the first
//!   create: the counter `create:s:<session>` (or `create:a:<address>`) is
//!   incremented on every create attempt that reaches the check and expires
//!   one minute after its first increment; past the limit the answer is 429
//!   with `Retry-After` = the seconds left in the window. (A create the
//!   session limit refuses is not counted for the address.)
//! * **Live streams per address**: the sessions of that address that were
//!   admitted to create are members of `live:a:<address>`, with the time of
//!   their admission. A member whose session no longer holds a stream (or a
//!   create in flight) is pruned once it is older than a short grace (the
//!   time between the admission and the create's reservation); past the cap
//!   the newcomer is removed again and the answer is 429 with
//!   `Retry-After: 10` (a stream ends when its owner or the reaper ends it).
//!   Adding first and counting after makes concurrent creates safe: they
//!   may be refused together, never admitted together past the cap.
//! * A store failure lets the request through (logged): the limits protect
//!   the key's budget, they must not lock the operator out.
//!
//! Every 429 answered adds one to the `dreamgate_rate_limited_total` metric.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::HttpError;
use crate::session::SessionId;

/// Per-client limits (see the module docs for the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Streams live (or being created) at once per client address (0: no limit).
    pub live_streams_per_address: u32,
    /// Creates per window per session (0: no limit).
    pub creates_per_session: u32,
    /// Creates per window per client address (0: no limit).
    pub creates_per_address: u32,
    /// The rate window (one minute).
    pub window: Duration,
}

impl LimitsConfig {
    /// Every limit off.
    pub fn unlimited() -> Self {
        Self { live_streams_per_address: 0, creates_per_session: 0, creates_per_address: 0, window: MINUTE }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { live_streams_per_address: 3, creates_per_session: 10, creates_per_address: 20, window: MINUTE }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
/// `Retry-After` of a refusal for too many live streams.
pub const LIVE_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long an admitted session counts as live before its create must have
/// reserved its stream.
pub const LIVE_GRACE: Duration = Duration::from_secs(5);
/// How long a live-streams set outlives its last change.
pub const LIVE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Creates per window per session.
    SessionCreates,
    /// Creates per window per client address.
    AddressCreates,
    /// Live streams per client address.
    LiveStreams,
}

impl Limit {
    fn message(self, retry: u64) -> String {
        let what = match self {
            Limit::SessionCreates => "Too many streams created by this session",
            Limit::AddressCreates => "Too many streams created from this address",
            Limit::LiveStreams => "Too many live streams from this address; end one first",
        };
        format!("{what}; retry in {retry} s")
    }
}

/// A decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// Refuse with 429.
    Deny {
        /// The limit reached.
        limit: Limit,
        /// When to try again (whole seconds, at least 1).
        retry_after: u64,
    },
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A window counter at `count` (this request included) against `limit`,
/// its window ending in `left`.
pub fn rate_verdict(which: Limit, count: u64, limit: u32, left: Duration) -> Verdict {
    if limit == 0 || count <= u64::from(limit) {
        return Verdict::Allow;
    }
    Verdict::Deny { limit: which, retry_after: ceil_secs(left).max(1) }
}

/// What to do with a live-streams set after adding `newcomer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDecision {
    /// Members to remove: stale ones (their session holds nothing and their
    /// grace is over), and the newcomer when refused.
    pub remove: Vec<String>,
    /// The verdict for the newcomer.
    pub verdict: Verdict,
}

/// Decides on `newcomer`, just added to a live-streams set whose members
/// (with the time each was added) are `members`. `holds(member)`: whether
/// that session still holds a stream or a create in flight.
pub fn live_verdict(
    members: &[(String, Duration)],
    newcomer: &str,
    now: Duration,
    cap: u32,
    holds: impl Fn(&str) -> bool,
) -> LiveDecision {
    let mut remove = Vec::new();
    let mut live = 0u64;
    for (member, added) in members {
        if member == newcomer || now.saturating_sub(*added) < LIVE_GRACE || holds(member) {
            live += 1;
        } else {
            remove.push(member.clone());
        }
    }
    if cap == 0 || live <= u64::from(cap) {
        return LiveDecision { remove, verdict: Verdict::Allow };
    }
    remove.push(newcomer.to_string());
    LiveDecision {
        remove,
        verdict: Verdict::Deny { limit: Limit::LiveStreams, retry_after: LIVE_RETRY_AFTER.as_secs() },
    }
}

/// A client address as counted: an IPv4 address, or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The counting key of `ip` (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
                }
            },
            v4 => Self(v4),
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

// ---- the counters ------------------------------------------------------------

/// A store operation that failed (Redis down...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("counter store: {0}")]
pub struct CounterError(pub String);

/// The future of a [`Counters`] operation.
pub type CounterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CounterError>> + Send + 'a>>;

/// Whether a session (named by its id) still holds a stream: asked of the store.
pub type HoldsFuture = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// Where the counts live. Times are durations since the Unix epoch (the
/// caller's clock, injected), so that stores shared by several processes
/// agree on windows.
pub trait Counters: Send + Sync + fmt::Debug {
    /// Adds one to counter `key` and returns its new value and the time left
    /// before it expires. A new counter expires `ttl` after `now`;
    /// incrementing does not extend it (Redis: `INCR key` +
    /// `PEXPIRE key ttl NX` + `PTTL key`, in one `MULTI`).
    fn incr<'a>(&'a self, key: &'a str, ttl: Duration, now: Duration) -> CounterFuture<'a, (u64, Duration)>;

    /// Adds (or re-adds) `member` to set `key` with time `now`, makes the set
    /// expire `ttl` after `now`, and returns every member with its time
    /// (Redis: `ZADD key now member` + `PEXPIRE key ttl` + `ZRANGE key 0 -1 WITHSCORES`,
    /// in one `MULTI`).
    fn add_member<'a>(
        &'a self,
        key: &'a str,
        member: &'a str,
        ttl: Duration,
        now: Duration,
    ) -> CounterFuture<'a, Vec<(String, Duration)>>;

    /// Removes `member` from set `key` (Redis: `ZREM`).
    fn remove_member<'a>(&'a self, key: &'a str, member: &'a str) -> CounterFuture<'a, ()>;
}

#[derive(Debug)]
enum Slot {
    Count(u64),
    Set(Vec<(String, Duration)>),
}

#[derive(Debug)]
struct Entry {
    slot: Slot,
    expires: Duration,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    by_expiry: BTreeSet<(Duration, String)>,
}

impl Table {
    /// Drops every entry expired at `now` (O(log n) each).
    fn expire(&mut self, now: Duration) {
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
        }
    }

    fn set_expiry(&mut self, key: &str, expires: Duration) {
        if let Some(e) = self.entries.get_mut(key) {
            self.by_expiry.remove(&(e.expires, key.to_string()));
            e.expires = expires;
            self.by_expiry.insert((expires, key.to_string()));
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.by_expiry.remove(&(e.expires, key.to_string()));
        }
    }

    /// Makes room for one more entry: the one expiring first goes.
    fn make_room(&mut self, max: usize) {
        while self.entries.len() >= max {
            let Some((_, key)) = self.by_expiry.pop_first() else { break };
            self.entries.remove(&key);
        }
    }
}

/// The in-process [`Counters`]: at most `max_entries` keys (default
/// 100 000; when full, the key expiring first is dropped), each dropped at
/// its expiry.
#[derive(Debug)]
pub struct MemoryCounters {
    table: Mutex<Table>,
    max_entries: usize,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryCounters {
    /// Counters holding at most `max_entries` keys (at least 1).
    pub fn new(max_entries: usize) -> Self {
        Self { table: Mutex::new(Table::default()), max_entries: max_entries.max(1) }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keys held now (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    /// No key held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn incr_now(&self, key: &str, ttl: Duration, now: Duration) -> (u64, Duration) {
        let mut t = self.table();
        t.expire(now);
        if let Some(Entry { slot: Slot::Count(n), expires }) = t.entries.get_mut(key) {
            *n += 1;
            return (*n, expires.saturating_sub(now));
        }
        t.remove(key);
        t.make_room(self.max_entries);
        let expires = now + ttl;
        t.entries.insert(key.to_string(), Entry { slot: Slot::Count(1), expires });
        t.by_expiry.insert((expires, key.to_string()));
        (1, ttl)
    }

    fn add_member_now(&self, key: &str, member: &str, ttl: Duration, now: Duration) -> Vec<(String, Duration)> {
        let mut t = self.table();
        t.expire(now);
        if !matches!(t.entries.get(key), Some(Entry { slot: Slot::Set(_), .. })) {
            t.remove(key);
            t.make_room(self.max_entries);
            let expires = now + ttl;
            t.entries.insert(key.to_string(), Entry { slot: Slot::Set(Vec::new()), expires });
            t.by_expiry.insert((expires, key.to_string()));
        }
        t.set_expiry(key, now + ttl);
        let Some(Entry { slot: Slot::Set(members), .. }) = t.entries.get_mut(key) else { return Vec::new() };
        members.retain(|(m, _)| m != member);
        members.push((member.to_string(), now));
        members.clone()
    }

    fn remove_member_now(&self, key: &str, member: &str) {
        let mut t = self.table();
        let empty = match t.entries.get_mut(key) {
            Some(Entry { slot: Slot::Set(members), .. }) => {
                members.retain(|(m, _)| m != member);
                members.is_empty()
            }
            _ => false,
        };
        if empty {
            t.remove(key);
        }
    }
}

impl Counters for MemoryCounters {
    fn incr<'a>(&'a self, key: &'a str, ttl: Duration, now: Duration) -> CounterFuture<'a, (u64, Duration)> {
        let n = self.incr_now(key, ttl, now);
        Box::pin(async move { Ok(n) })
    }

    fn add_member<'a>(
        &'a self,
        key: &'a str,
        member: &'a str,
        ttl: Duration,
        now: Duration,
    ) -> CounterFuture<'a, Vec<(String, Duration)>> {
        let members = self.add_member_now(key, member, ttl, now);
        Box::pin(async move { Ok(members) })
    }

    fn remove_member<'a>(&'a self, key: &'a str, member: &'a str) -> CounterFuture<'a, ()> {
        self.remove_member_now(key, member);
        Box::pin(async { Ok(()) })
    }
}

// ---- the limiter ---------------------------------------------------------------

/// Applies [`LimitsConfig`] with a [`Counters`] store.
#[derive(Debug, Clone)]
pub struct Limiter {
    cfg: LimitsConfig,
    counters: Arc<dyn Counters>,
}

/// Wall-clock time since the Unix epoch.
pub fn wall_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Limiter {
    /// A limiter over `counters`.
    pub fn new(cfg: LimitsConfig, counters: Arc<dyn Counters>) -> Self {
        Self { cfg, counters }
    }

    /// The limits.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// May `session`, from `client`, create a stream now? `holds(session)`:
    /// whether a session still holds a stream or a create in flight.
    /// 429 when not (counted in `dreamgate_rate_limited_total`).
    pub async fn admit_create(
        &self,
        session: &SessionId,
        client: ClientAddr,
        now: Duration,
        holds: impl Fn(String) -> HoldsFuture + Send + Sync,
    ) -> Result<(), HttpError> {
        let verdict = self.decide(session, client, now, holds).await;
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Deny { limit, retry_after } => {
                crate::metrics::rate_limited();
                tracing::info!(client = %client, ?limit, retry_after, "create refused: per-client limit");
                Err(HttpError::rate_limited(limit.message(retry_after), retry_after))
            }
        }
    }

    async fn decide(
        &self,
        session: &SessionId,
        client: ClientAddr,
        now: Duration,
        holds: impl Fn(String) -> HoldsFuture + Send + Sync,
    ) -> Verdict {
        let cfg = self.cfg;
        let rates = [
            (Limit::SessionCreates, format!("create:s:{}", session.as_str()), cfg.creates_per_session),
            (Limit::AddressCreates, format!("create:a:{client}"), cfg.creates_per_address),
        ];
        for (which, key, limit) in rates {
            if limit == 0 {
                continue;
            }
            match self.counters.incr(&key, cfg.window, now).await {
                Ok((count, left)) => {
                    let v = rate_verdict(which, count, limit, left);
                    if v != Verdict::Allow {
                        return v;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "rate counter unavailable: not limiting"),
            }
        }
        if cfg.live_streams_per_address == 0 {
            return Verdict::Allow;
        }
        let key = format!("live:a:{client}");
        let members = match self.counters.add_member(&key, session.as_str(), LIVE_TTL, now).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "live-stream counter unavailable: not limiting");
                return Verdict::Allow;
            }
        };
        // which members still hold something (asked of the store before the pure decision)
        let mut holding = std::collections::HashSet::new();
        for (member, _) in &members {
            if member != session.as_str() && holds(member.clone()).await {
                holding.insert(member.clone());
            }
        }
        let decision =
            live_verdict(&members, session.as_str(), now, cfg.live_streams_per_address, |m| holding.contains(m));
        for member in &decision.remove {
            if let Err(e) = self.counters.remove_member(&key, member).await {
                tracing::warn!(error = %e, "live-stream counter unavailable");
            }
        }
        decision.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn rate_allows_up_to_the_limit_then_says_when_the_window_ends() {
        let left = 15 * S;
        assert_eq!(rate_verdict(Limit::SessionCreates, 10, 10, left), Verdict::Allow);
        assert_eq!(
            rate_verdict(Limit::SessionCreates, 11, 10, left),
            Verdict::Deny { limit: Limit::SessionCreates, retry_after: 15 }
        );
        assert_eq!(rate_verdict(Limit::SessionCreates, 1_000, 0, left), Verdict::Allow, "0 = off");
        assert!(matches!(
            rate_verdict(Limit::AddressCreates, 30, 20, Duration::from_millis(1)),
            Verdict::Deny { retry_after: 1, .. }
        ));
        assert!(matches!(
            rate_verdict(Limit::AddressCreates, 30, 20, Duration::ZERO),
            Verdict::Deny { retry_after: 1, .. }
        ));
    }

    #[tokio::test]
    async fn the_limiter_counts_a_window_from_the_first_create_then_starts_again() {
        let cfg = LimitsConfig {
            live_streams_per_address: 0,
            creates_per_session: 2,
            creates_per_address: 0,
            window: MINUTE,
        };
        let limiter = Limiter::new(cfg, Arc::new(MemoryCounters::default()));
        let s = SessionId::from_bytes([7; 16]);
        let addr = ClientAddr::of("192.0.2.1".parse().unwrap());
        let t = Duration::from_secs(1_000_000);
        assert!(limiter
            .admit_create(&s, addr, t, |_: String| -> HoldsFuture { Box::pin(async { false }) })
            .await
            .is_ok());
        assert!(limiter
            .admit_create(&s, addr, t + 40 * S, |_: String| -> HoldsFuture { Box::pin(async { false }) })
            .await
            .is_ok());
        let refused = limiter
            .admit_create(&s, addr, t + 45 * S, |_: String| -> HoldsFuture { Box::pin(async { false }) })
            .await
            .unwrap_err();
        assert_eq!(refused.status, http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(15));
        assert!(
            limiter
                .admit_create(&s, addr, t + 60 * S, |_: String| -> HoldsFuture { Box::pin(async { false }) })
                .await
                .is_ok(),
            "a new window"
        );
    }

    #[test]
    fn live_counts_holders_and_fresh_admissions_and_prunes_the_rest() {
        let t = Duration::from_secs(1000);
        let members = vec![
            ("a".to_string(), t - 100 * S), // holds a stream
            ("b".to_string(), t - 100 * S), // ended: stale
            ("c".to_string(), t - S),       // just admitted: within grace
            ("n".to_string(), t),
        ];
        let d = live_verdict(&members, "n", t, 3, |m| m == "a");
        assert_eq!(d, LiveDecision { remove: vec!["b".into()], verdict: Verdict::Allow });
        let d = live_verdict(&members, "n", t, 2, |m| m == "a");
        assert_eq!(d.remove, vec!["b".to_string(), "n".to_string()]);
        assert_eq!(d.verdict, Verdict::Deny { limit: Limit::LiveStreams, retry_after: 10 });
        // once the grace is over, "c" counts only if it holds something
        let d = live_verdict(&members, "n", t + 10 * S, 2, |m| m == "a");
        assert_eq!(d.remove, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(d.verdict, Verdict::Allow);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ClientAddr::of(a), ClientAddr::of(b));
        assert_eq!(ClientAddr::of(a).to_string(), "2001:db8:1:2::/64");
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientAddr::of(m).to_string(), "10.0.0.1");
    }

    #[test]
    fn memory_counters_expire_and_stay_bounded() {
        let c = MemoryCounters::new(3);
        let t = Duration::from_secs(10);
        assert_eq!(c.incr_now("k", MINUTE, t), (1, MINUTE));
        assert_eq!(c.incr_now("k", MINUTE, t + 59 * S), (2, S), "incr does not extend the expiry");
        assert_eq!(c.incr_now("k", MINUTE, t + 60 * S), (1, MINUTE), "expired, starts again");
        c.incr_now("x", MINUTE, t + 61 * S);
        c.incr_now("y", MINUTE, t + 62 * S);
        c.incr_now("z", MINUTE, t + 63 * S);
        assert_eq!(c.len(), 3, "bounded");
        assert_eq!(c.incr_now("k", MINUTE, t + 63 * S).0, 1, "the soonest-expiring key was dropped");
        assert_eq!(c.incr_now("z", MINUTE, t + 63 * S).0, 2);
        // sets: members with their time, refreshed expiry, removed when empty
        let m = c.add_member_now("live", "s1", MINUTE, t + 70 * S);
        assert_eq!(m, vec![("s1".to_string(), t + 70 * S)]);
        let m = c.add_member_now("live", "s2", MINUTE, t + 100 * S);
        assert_eq!(m.len(), 2);
        assert_eq!(c.add_member_now("live", "s3", MINUTE, t + 159 * S).len(), 3, "expiry refreshed on add");
        c.remove_member_now("live", "s1");
        c.remove_member_now("live", "s2");
        c.remove_member_now("live", "s3");
        assert_eq!(c.add_member_now("other", "s", MINUTE, t + 500 * S).len(), 1);
        assert_eq!(c.len(), 1, "everything else expired or emptied");
    }
}
