//! Which session owns which stream, and when an orphaned stream is deleted.
//!
//! [`Registry`] is a pure state machine: every method that depends on time
//! takes `now` as an argument, and the reaper decisions come back as
//! [`ReapAction`]s for the caller to execute (the stream service in
//! [`crate::state`], which owns the registry and drives the reaper). Nothing
//! here sleeps, spawns or performs IO, so the timing rules are tested with
//! injected instants.
//!
//! # Lifecycle of a stream
//!
//! ```text
//!  begin_create ──► (slot reserved) ──► finish_create ──► Live ──┬─► end/delete ──► Deleting ──► deleted ──► Gone
//!                         │                                      │                   ▲   │ failed: retry later
//!                         └─► abort_create                       └─► silent > reap_after ┘   └──(backoff)──┘
//! ```
//!
//! * A session owns at most one stream at a time: a second create while one is
//!   live (or being created) is refused with the active stream's id (409).
//! * Every request the owner makes for the stream (status poll, parameter
//!   update, WHIP/WHEP traffic) calls [`Registry::touch`]. A live stream not
//!   touched for `reap_after` is reaped: the caller deletes it upstream.
//! * An upstream delete that fails is retried with exponential backoff
//!   (`retry_base`, doubling, capped at `retry_max`) up to `max_attempts`.
//! * Deleted streams leave a tombstone for `tombstone_ttl`, so their owner gets
//!   404 (gone) rather than 403 on a late status poll.
//! * Every way into a delete attempt (the owner ends the stream, the end of a
//!   create the owner ended, the reaper, a due retry, shutdown) goes through
//!   one transition, [`Phase::start_delete_attempt`]; the callers only decide
//!   whether an attempt may start.
//!
//! Which session ids the gateway issued is not kept here but in
//! [`crate::session::SessionBook`], which asks [`Registry::has_slot`] whether
//! a session still holds a stream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use url::Url;

use crate::session::SessionId;

/// Timing rules of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryConfig {
    /// A live stream whose owner has been silent this long is deleted (default 2 min).
    pub reap_after: Duration,
    /// First retry delay after a failed upstream delete (default 5 s).
    pub retry_base: Duration,
    /// Largest retry delay (default 60 s).
    pub retry_max: Duration,
    /// Delete attempts before giving up on a stream (default 20).
    pub max_attempts: u32,
    /// How long a deleted stream is remembered as gone (default 10 min).
    pub tombstone_ttl: Duration,
    /// An issued session idle this long (and holding no stream) is forgotten
    /// (default 1 h; applied by [`crate::session::SessionBook`]).
    pub session_idle: Duration,
    /// Most issued sessions remembered at once (default 100 000; applied by
    /// [`crate::session::SessionBook`]).
    pub max_sessions: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            reap_after: Duration::from_secs(120),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(60),
            max_attempts: 20,
            tombstone_ttl: Duration::from_secs(600),
            session_idle: Duration::from_secs(3600),
            max_sessions: 100_000,
        }
    }
}

/// What the gateway remembers about a stream it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Upstream stream id.
    pub id: String,
    /// The session that created it.
    pub owner: SessionId,
    /// The model the stream was created with (always sent with updates).
    pub model_id: String,
    /// Checked upstream WHIP URL from the create response.
    pub whip_url: Url,
    /// Checked upstream WHIP session resource (from the WHIP answer's `Location`).
    pub whip_resource: Option<Url>,
    /// Checked upstream WHEP URL (WHIP answer `Livepeer-Playback-URL` or status).
    pub whep_url: Option<Url>,
    /// Checked upstream WHEP viewer resource.
    pub whep_resource: Option<Url>,
}

/// Whether `id` can be a stream id: upstream ids look like `str_...`;
/// anything outside `[A-Za-z0-9_-]{1,128}` is not an id.
pub fn valid_stream_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// State of a registered stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Running; `last_seen` is the owner's last activity.
    Live {
        /// Last activity of the owner for this stream.
        last_seen: Instant,
    },
    /// Being deleted upstream.
    Deleting {
        /// Delete attempts started so far.
        attempts: u32,
        /// When to try again; `None` while an attempt is in flight.
        next_attempt: Option<Instant>,
    },
    /// Deleted upstream; kept until `until` so the owner gets 404.
    Gone {
        /// When the tombstone is dropped.
        until: Instant,
    },
}

impl Phase {
    /// Starts a delete attempt, in flight: a live stream's first, or the next
    /// one of a stream being deleted. Returns `false` (and changes nothing)
    /// for a stream already gone. The only place a delete attempt starts;
    /// callers decide whether one may.
    pub fn start_delete_attempt(&mut self) -> bool {
        match self {
            Phase::Live { .. } => *self = Phase::Deleting { attempts: 1, next_attempt: None },
            Phase::Deleting { attempts, next_attempt } => {
                *attempts += 1;
                *next_attempt = None;
            }
            Phase::Gone { .. } => return false,
        }
        true
    }

    /// A delete attempt is in flight (started, outcome not yet reported).
    fn attempt_in_flight(&self) -> bool {
        matches!(self, Phase::Deleting { next_attempt: None, .. })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    record: StreamRecord,
    phase: Phase,
}

/// What a session currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// An upstream create is in flight; `ended` when the owner ended it meanwhile.
    Creating {
        ended: bool,
    },
    Stream(String),
}

/// An upstream delete the caller must perform, then report with
/// [`Registry::delete_succeeded`] or [`Registry::delete_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapAction {
    /// Stream to delete upstream.
    pub stream_id: String,
    /// Why.
    pub reason: ReapReason,
}

/// Why a stream is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapReason {
    /// The owner was silent for `reap_after`.
    Silent,
    /// A previous delete attempt failed.
    Retry,
}

/// Answer of [`Registry::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The session owns this live stream.
    Live(StreamRecord),
    /// The session owns this stream but it is being deleted.
    Deleting(StreamRecord),
    /// The session owned this stream; it has been deleted.
    Gone,
    /// Another session (or none) created this stream, or it is unknown.
    NotOwned,
}

/// A create refused because the session already has a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The live stream, or `None` while another create is in flight.
    pub active_stream_id: Option<String>,
}

/// The ownership and reaper state machine. See the module docs.
#[derive(Debug, Default)]
pub struct Registry {
    cfg: RegistryConfig,
    streams: HashMap<String, Entry>,
    sessions: HashMap<SessionId, Slot>,
}

impl Registry {
    /// An empty registry with the given timing rules.
    pub fn new(cfg: RegistryConfig) -> Self {
        Self { cfg, streams: HashMap::new(), sessions: HashMap::new() }
    }

    /// Whether `session` holds a stream (live, or a create in flight).
    pub fn has_slot(&self, session: &SessionId) -> bool {
        self.sessions.contains_key(session)
    }

    /// The timing rules.
    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    /// Reserves the session's single stream slot before the upstream create.
    pub fn begin_create(&mut self, session: &SessionId) -> Result<(), Conflict> {
        match self.sessions.get(session) {
            Some(Slot::Creating { .. }) => Err(Conflict { active_stream_id: None }),
            Some(Slot::Stream(id)) => Err(Conflict { active_stream_id: Some(id.clone()) }),
            None => {
                self.sessions.insert(session.clone(), Slot::Creating { ended: false });
                Ok(())
            }
        }
    }

    /// Releases a slot reserved by [`begin_create`](Self::begin_create) (create failed).
    pub fn abort_create(&mut self, session: &SessionId) {
        if matches!(self.sessions.get(session), Some(Slot::Creating { .. })) {
            self.sessions.remove(session);
        }
    }

    /// The owner ended its session (end beacon) while its create is in flight:
    /// the stream will be deleted as soon as it exists. Returns whether a
    /// create was in flight.
    pub fn end_pending_create(&mut self, session: &SessionId) -> bool {
        match self.sessions.get_mut(session) {
            Some(Slot::Creating { ended }) => {
                *ended = true;
                true
            }
            _ => false,
        }
    }

    /// Records the created stream as live and owned by `record.owner`.
    ///
    /// Returns `true` when the owner ended it while it was being created: the
    /// stream is then already marked for deletion (attempt in flight) and the
    /// caller must delete it upstream.
    pub fn finish_create(&mut self, record: StreamRecord, now: Instant) -> bool {
        let ended = matches!(self.sessions.get(&record.owner), Some(Slot::Creating { ended: true }));
        self.sessions.insert(record.owner.clone(), Slot::Stream(record.id.clone()));
        let id = record.id.clone();
        self.streams.insert(id.clone(), Entry { record, phase: Phase::Live { last_seen: now } });
        if ended {
            self.begin_delete(&id);
        }
        ended
    }

    /// What `session` may do with `stream_id`.
    pub fn authorize(&self, session: &SessionId, stream_id: &str) -> Access {
        match self.streams.get(stream_id) {
            Some(e) if e.record.owner == *session => match e.phase {
                Phase::Live { .. } => Access::Live(e.record.clone()),
                Phase::Deleting { .. } => Access::Deleting(e.record.clone()),
                Phase::Gone { .. } => Access::Gone,
            },
            _ => Access::NotOwned,
        }
    }

    /// The session's live stream, if any.
    pub fn active_stream(&self, session: &SessionId) -> Option<&str> {
        match self.sessions.get(session) {
            Some(Slot::Stream(id)) => Some(id.as_str()),
            _ => None,
        }
    }

    /// The phase of a stream (for tests and diagnostics).
    pub fn phase(&self, stream_id: &str) -> Option<&Phase> {
        self.streams.get(stream_id).map(|e| &e.phase)
    }

    /// Number of streams still live or being deleted.
    pub fn open_streams(&self) -> usize {
        self.streams.values().filter(|e| !matches!(e.phase, Phase::Gone { .. })).count()
    }

    /// Owner activity on a live stream: postpones reaping.
    pub fn touch(&mut self, stream_id: &str, now: Instant) {
        if let Some(Entry { phase: Phase::Live { last_seen }, .. }) = self.streams.get_mut(stream_id) {
            if now > *last_seen {
                *last_seen = now;
            }
        }
    }

    /// Updates the stored upstream URLs of a stream (after a WHIP/WHEP answer).
    pub fn update_record(&mut self, stream_id: &str, update: impl FnOnce(&mut StreamRecord)) {
        if let Some(e) = self.streams.get_mut(stream_id) {
            update(&mut e.record);
        }
    }

    /// The owner ends the stream (DELETE route or end beacon): frees the
    /// session's slot and marks the stream as being deleted, attempt in flight.
    ///
    /// Returns `false` when the stream is not live (already deleting or gone),
    /// except that a stream waiting for a retry is taken in flight again.
    pub fn begin_delete(&mut self, stream_id: &str) -> bool {
        let Some(entry) = self.streams.get_mut(stream_id) else { return false };
        let start = !entry.phase.attempt_in_flight() && entry.phase.start_delete_attempt();
        let owner = entry.record.owner.clone();
        self.release_slot(&owner, stream_id);
        start
    }

    /// The upstream delete succeeded (or the stream was already gone upstream).
    pub fn delete_succeeded(&mut self, stream_id: &str, now: Instant) {
        if let Some(entry) = self.streams.get_mut(stream_id) {
            entry.phase = Phase::Gone { until: now + self.cfg.tombstone_ttl };
            let owner = entry.record.owner.clone();
            self.release_slot(&owner, stream_id);
        }
    }

    /// The upstream delete failed: schedule a retry (or give up after
    /// `max_attempts`, returning `false`).
    pub fn delete_failed(&mut self, stream_id: &str, now: Instant) -> bool {
        let cfg = self.cfg;
        let Some(entry) = self.streams.get_mut(stream_id) else { return false };
        let Phase::Deleting { attempts, next_attempt } = &mut entry.phase else { return false };
        if *attempts >= cfg.max_attempts {
            entry.phase = Phase::Gone { until: now + cfg.tombstone_ttl };
            return false;
        }
        let shift = attempts.saturating_sub(1).min(16);
        let delay = cfg.retry_base.saturating_mul(1u32 << shift).min(cfg.retry_max);
        *next_attempt = Some(now + delay);
        true
    }

    /// Advances time: returns the deletes to perform now (silent live streams,
    /// due retries) and drops expired tombstones.
    pub fn tick(&mut self, now: Instant) -> Vec<ReapAction> {
        let cfg = self.cfg;
        let mut actions = Vec::new();
        let mut freed = Vec::new();
        self.streams.retain(|id, entry| {
            let due = match entry.phase {
                Phase::Live { last_seen } => {
                    (now.saturating_duration_since(last_seen) >= cfg.reap_after).then_some(ReapReason::Silent)
                }
                Phase::Deleting { next_attempt: Some(at), .. } => (at <= now).then_some(ReapReason::Retry),
                Phase::Deleting { next_attempt: None, .. } => None,
                Phase::Gone { until } => return until > now,
            };
            if let Some(reason) = due {
                entry.phase.start_delete_attempt();
                if reason == ReapReason::Silent {
                    freed.push((entry.record.owner.clone(), id.clone()));
                }
                actions.push(ReapAction { stream_id: id.clone(), reason });
            }
            true
        });
        for (owner, id) in freed {
            self.release_slot(&owner, &id);
        }
        actions.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        actions
    }

    /// The gateway is stopping: every stream still live or being deleted is
    /// marked as being deleted (attempt in flight, slots released) and its id
    /// returned (sorted), for the caller to delete upstream at once.
    pub fn drain(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        for (id, entry) in &mut self.streams {
            if entry.phase.start_delete_attempt() {
                ids.push(id.clone());
            }
        }
        self.sessions.retain(|_, slot| !matches!(slot, Slot::Stream(_)));
        ids.sort();
        ids
    }

    fn release_slot(&mut self, owner: &SessionId, stream_id: &str) {
        if matches!(self.sessions.get(owner), Some(Slot::Stream(id)) if id == stream_id) {
            self.sessions.remove(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RegistryConfig {
        RegistryConfig {
            reap_after: Duration::from_secs(120),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(20),
            max_attempts: 4,
            tombstone_ttl: Duration::from_secs(600),
            session_idle: Duration::from_secs(1800),
            max_sessions: 3,
        }
    }

    fn sid(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    fn record(id: &str, owner: &SessionId) -> StreamRecord {
        StreamRecord {
            id: id.into(),
            owner: owner.clone(),
            model_id: "stabilityai/sd-turbo".into(),
            whip_url: Url::parse("https://ai.livepeer.com/live/video-to-video/stk/whip").unwrap(),
            whip_resource: None,
            whep_url: None,
            whep_resource: None,
        }
    }

    fn created(reg: &mut Registry, id: &str, owner: &SessionId, now: Instant) {
        reg.begin_create(owner).unwrap();
        reg.finish_create(record(id, owner), now);
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn stream_ids() {
        assert!(valid_stream_id("str_abc-123"));
        for bad in ["", "a/b", "a b", "..", "é", &"a".repeat(129)] {
            assert!(!valid_stream_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn ownership() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let (a, b) = (sid(1), sid(2));
        created(&mut reg, "str_a", &a, t0);
        assert!(matches!(reg.authorize(&a, "str_a"), Access::Live(r) if r.owner == a));
        assert_eq!(reg.authorize(&b, "str_a"), Access::NotOwned);
        assert_eq!(reg.authorize(&a, "str_unknown"), Access::NotOwned);
        assert_eq!(reg.active_stream(&a), Some("str_a"));
        assert_eq!(reg.active_stream(&b), None);
    }

    #[test]
    fn one_stream_per_session() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        reg.begin_create(&a).unwrap();
        // a concurrent second create is refused while the first is in flight
        assert_eq!(reg.begin_create(&a), Err(Conflict { active_stream_id: None }));
        reg.finish_create(record("str_a", &a), t0);
        assert_eq!(reg.begin_create(&a), Err(Conflict { active_stream_id: Some("str_a".into()) }));
        // another session is independent
        assert!(reg.begin_create(&sid(2)).is_ok());
        // after the stream ends, the session may create again
        assert!(reg.begin_delete("str_a"));
        assert!(reg.begin_create(&a).is_ok());
    }

    #[test]
    fn ending_during_create_deletes_once_created() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        assert!(!reg.end_pending_create(&a), "nothing in flight");
        reg.begin_create(&a).unwrap();
        assert!(reg.end_pending_create(&a));
        assert!(reg.finish_create(record("str_a", &a), t0));
        assert!(matches!(reg.phase("str_a"), Some(Phase::Deleting { next_attempt: None, .. })));
        assert_eq!(reg.active_stream(&a), None);
        assert!(reg.begin_create(&a).is_ok());
        // a normal create is not ended
        let b = sid(2);
        reg.begin_create(&b).unwrap();
        assert!(!reg.finish_create(record("str_b", &b), t0));
    }

    #[test]
    fn aborted_create_frees_the_slot() {
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        reg.begin_create(&a).unwrap();
        reg.abort_create(&a);
        assert!(reg.begin_create(&a).is_ok());
    }

    #[test]
    fn silent_stream_is_reaped_after_the_window() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        assert!(reg.tick(t0 + S(119)).is_empty());
        let actions = reg.tick(t0 + S(120));
        assert_eq!(actions, vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::Silent }]);
        assert!(matches!(reg.authorize(&a, "str_a"), Access::Deleting(_)));
        assert_eq!(reg.active_stream(&a), None);
        // in flight: no duplicate action
        assert!(reg.tick(t0 + S(500)).is_empty());
        reg.delete_succeeded("str_a", t0 + S(121));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        assert_eq!(reg.open_streams(), 0);
    }

    #[test]
    fn activity_postpones_reaping() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        reg.touch("str_a", t0 + S(100));
        assert!(reg.tick(t0 + S(200)).is_empty());
        // an older timestamp never moves last_seen backwards
        reg.touch("str_a", t0 + S(50));
        assert!(reg.tick(t0 + S(219)).is_empty());
        assert_eq!(reg.tick(t0 + S(220)).len(), 1);
    }

    #[test]
    fn only_silent_streams_are_reaped() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        created(&mut reg, "str_b", &sid(2), t0 + S(60));
        let ids: Vec<_> = reg.tick(t0 + S(150)).into_iter().map(|a| a.stream_id).collect();
        assert_eq!(ids, vec!["str_a".to_string()]);
        assert!(matches!(reg.authorize(&sid(2), "str_b"), Access::Live(_)));
    }

    #[test]
    fn failed_delete_retries_with_capped_backoff_then_gives_up() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        let mut now = t0 + S(120);
        assert_eq!(reg.tick(now).len(), 1); // attempt 1
        let mut delays = Vec::new();
        loop {
            if !reg.delete_failed("str_a", now) {
                break;
            }
            let Some(Phase::Deleting { next_attempt: Some(at), .. }) = reg.phase("str_a").cloned() else {
                panic!("not scheduled")
            };
            delays.push(at - now);
            assert!(reg.tick(at - Duration::from_millis(1)).is_empty());
            let actions = reg.tick(at);
            assert_eq!(actions, vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::Retry }]);
            now = at;
        }
        // attempts 2..=4 after 5 s, 10 s, 20 s (capped), then given up
        assert_eq!(delays, vec![S(5), S(10), S(20)]);
        assert!(matches!(reg.phase("str_a"), Some(Phase::Gone { .. })));
    }

    #[test]
    fn explicit_end_then_failure_is_retried_by_the_reaper() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        assert!(reg.begin_delete("str_a"));
        assert!(!reg.begin_delete("str_a"), "attempt already in flight");
        assert!(reg.delete_failed("str_a", t0 + S(1)));
        // the owner retrying takes the scheduled retry in flight
        assert!(reg.begin_delete("str_a"));
        assert!(reg.tick(t0 + S(100)).is_empty());
        assert!(reg.delete_failed("str_a", t0 + S(2)));
        assert_eq!(reg.tick(t0 + S(12)).len(), 1);
        reg.delete_succeeded("str_a", t0 + S(13));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        assert!(!reg.begin_delete("str_a"));
    }

    #[test]
    fn tombstones_expire() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        reg.begin_delete("str_a");
        reg.delete_succeeded("str_a", t0);
        reg.tick(t0 + S(599));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        reg.tick(t0 + S(600));
        assert_eq!(reg.authorize(&a, "str_a"), Access::NotOwned);
        assert!(reg.phase("str_a").is_none());
    }

    #[test]
    fn touch_after_reap_does_not_revive() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        reg.tick(t0 + S(120));
        reg.touch("str_a", t0 + S(121));
        assert!(matches!(reg.phase("str_a"), Some(Phase::Deleting { .. })));
    }

    #[test]
    fn urls_can_be_updated() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        let whep = Url::parse("https://lp-playback.studio/webrtc/x").unwrap();
        reg.update_record("str_a", |r| r.whep_url = Some(whep.clone()));
        let Access::Live(r) = reg.authorize(&a, "str_a") else { panic!() };
        assert_eq!(r.whep_url, Some(whep));
    }

    #[test]
    fn a_session_holds_a_slot_from_create_until_its_stream_ends() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        assert!(!reg.has_slot(&a));
        reg.begin_create(&a).unwrap();
        assert!(reg.has_slot(&a), "a create in flight holds the slot");
        reg.finish_create(record("str_a", &a), t0);
        assert!(reg.has_slot(&a));
        reg.tick(t0 + S(120));
        assert!(!reg.has_slot(&a), "reaped: the slot is free");
        reg.begin_create(&a).unwrap();
        reg.abort_create(&a);
        assert!(!reg.has_slot(&a));
    }

    #[test]
    fn every_way_into_a_delete_attempt_counts_attempts_the_same() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        let attempts = |reg: &Registry| match reg.phase("str_a") {
            Some(Phase::Deleting { attempts, next_attempt: None }) => *attempts,
            other => panic!("not in flight: {other:?}"),
        };
        assert!(reg.begin_delete("str_a")); // the owner
        assert_eq!(attempts(&reg), 1);
        reg.delete_failed("str_a", t0);
        assert_eq!(reg.tick(t0 + S(5)).len(), 1); // the reaper's retry
        assert_eq!(attempts(&reg), 2);
        reg.delete_failed("str_a", t0 + S(5));
        assert!(reg.begin_delete("str_a")); // the owner again, before the retry is due
        assert_eq!(attempts(&reg), 3);
        assert_eq!(reg.drain(), vec!["str_a".to_string()]); // shutdown, even in flight
        assert_eq!(attempts(&reg), 4);
        reg.delete_succeeded("str_a", t0 + S(6));
        let mut gone = reg.phase("str_a").cloned().unwrap();
        assert!(!gone.start_delete_attempt(), "a stream already gone is not deleted again");
    }

    #[test]
    fn drain_hands_over_every_stream_not_yet_gone() {
        let t0 = Instant::now();
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_live", &sid(1), t0);
        created(&mut reg, "str_retry", &sid(2), t0);
        created(&mut reg, "str_gone", &sid(3), t0);
        reg.begin_delete("str_retry");
        reg.delete_failed("str_retry", t0);
        reg.begin_delete("str_gone");
        reg.delete_succeeded("str_gone", t0);
        assert_eq!(reg.drain(), vec!["str_live".to_string(), "str_retry".to_string()]);
        for id in ["str_live", "str_retry"] {
            assert!(matches!(reg.phase(id), Some(Phase::Deleting { next_attempt: None, .. })), "{id}");
        }
        assert_eq!(reg.active_stream(&sid(1)), None);
        // nothing is left for the reaper to retry behind the caller's back
        assert!(reg.tick(t0 + S(1000)).is_empty());
    }
}
