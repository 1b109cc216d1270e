//! Which session owns which stream, and when an orphaned stream is deleted.
//!
//! [`Registry`] is a pure state machine: every method that depends on time
//! takes `now` (wall-clock [`Ms`]) as an argument, and the reaper decisions
//! come back as [`ReapAction`]s for the caller to execute. Nothing here
//! sleeps, spawns or performs IO, so the timing rules are tested with
//! injected times. It is the rule book of the in-process store
//! ([`crate::store::memory`]); the Redis store ([`crate::store::redis`])
//! applies the same rules, transition for transition, in atomic scripts (and
//! both are held to them by the same conformance tests).
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
//!   live (or being created) is refused with the active stream's id (409). A
//!   slot still "creating" after `create_lease` (the instance doing the create
//!   died) is free again.
//! * Every request the owner makes for the stream (status poll, parameter
//!   update, WHIP/WHEP traffic) calls [`Registry::touch`]. A live stream not
//!   touched for `reap_after` is reaped: the caller deletes it upstream.
//! * A delete attempt is leased to whoever started it for `delete_lease`: its
//!   outcome is reported with its attempt number; an attempt whose outcome
//!   did not come back in time (its instance died) is started again by the
//!   reaper ([`ReapReason::LeaseExpired`]), and a late report of a superseded
//!   attempt's failure is ignored. So with several instances one stream is
//!   deleted by one of them at a time.
//! * An upstream delete that fails is retried with exponential backoff
//!   (`retry_base`, doubling, capped at `retry_max`) up to `max_attempts`;
//!   then the stream is given up ([`FailOutcome::GaveUp`]: the caller parks
//!   its id in the store, retried at the next start).
//! * Deleted streams leave a tombstone for `tombstone_ttl`, so their owner gets
//!   404 (gone) rather than 403 on a late status poll.
//! * Every way into a delete attempt (the owner ends the stream, the end of a
//!   create the owner ended, the reaper, a due retry, an expired lease,
//!   shutdown) goes through one transition, [`Phase::start_delete_attempt`];
//!   the callers only decide whether an attempt may start.
//!
//! Which session ids the gateway issued is not kept here but in
//! [`crate::session::SessionBook`]: a session holding a slot is pinned there
//! (never forgotten); [`Registry::take_released`] tells which sessions let
//! go of their slot.

use std::collections::HashMap;
use std::time::Duration;

pub use crate::clock::Ms;
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
    /// Most issued sessions remembered at once by the in-process store
    /// (default 100 000; applied by [`crate::session::SessionBook`]).
    pub max_sessions: usize,
    /// How long a delete attempt is leased to the instance that started it
    /// (default 30 s; the gateway uses its API timeout + 10 s).
    pub delete_lease: Duration,
    /// How long a create in flight may hold its session's slot (default
    /// 150 s; the gateway uses its create timeout + 30 s).
    pub create_lease: Duration,
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
            delete_lease: Duration::from_secs(30),
            create_lease: Duration::from_secs(150),
        }
    }
}

pub use crate::clock::ParkedSchedule;
pub use crate::record::{valid_stream_id, RecordUpdate, StreamRecord};

/// Where a stream's current delete attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Started, outcome not reported yet; leased until `lease_until`.
    InFlight {
        /// When the attempt is presumed lost and may be started again.
        lease_until: Ms,
    },
    /// The last attempt failed; the next one is due at `retry_at`.
    Waiting {
        /// When to try again.
        retry_at: Ms,
    },
}

/// State of a registered stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Running; `last_seen` is the owner's last activity.
    Live {
        /// Last activity of the owner for this stream.
        last_seen: Ms,
    },
    /// Being deleted upstream.
    Deleting {
        /// Delete attempts started so far (the current attempt's number).
        attempts: u32,
        /// The current attempt.
        attempt: Attempt,
    },
    /// Deleted upstream (or given up); kept until `until` so the owner gets 404.
    Gone {
        /// When the tombstone is dropped.
        until: Ms,
    },
}

impl Phase {
    /// Starts a delete attempt, in flight and leased until `now + lease`: a
    /// live stream's first, or the next one of a stream being deleted.
    /// Returns the attempt's number, or `None` (and changes nothing) for a
    /// stream already gone. The only place a delete attempt starts; callers
    /// decide whether one may.
    pub fn start_delete_attempt(&mut self, now: Ms, lease: Duration) -> Option<u32> {
        let attempt = Attempt::InFlight { lease_until: now + lease };
        match self {
            Phase::Live { .. } => *self = Phase::Deleting { attempts: 1, attempt },
            Phase::Deleting { attempts, attempt: current } => {
                *attempts += 1;
                *current = attempt;
            }
            Phase::Gone { .. } => return None,
        }
        match self {
            Phase::Deleting { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// A delete attempt is in flight at `now` (started, not reported, lease valid).
    fn attempt_in_flight(&self, now: Ms) -> bool {
        matches!(self, Phase::Deleting { attempt: Attempt::InFlight { lease_until }, .. } if *lease_until > now)
    }

    /// When the reaper must next look at a stream in this phase (`None`: never).
    pub fn due(&self, reap_after: Duration) -> Option<Ms> {
        match self {
            Phase::Live { last_seen } => Some(*last_seen + reap_after),
            Phase::Deleting { attempt: Attempt::InFlight { lease_until }, .. } => Some(*lease_until),
            Phase::Deleting { attempt: Attempt::Waiting { retry_at }, .. } => Some(*retry_at),
            Phase::Gone { .. } => None,
        }
    }

    /// Whether the stream is still live or being deleted.
    pub fn is_open(&self) -> bool {
        !matches!(self, Phase::Gone { .. })
    }
}

/// The backoff before attempt `attempts + 1`, after attempt `attempts` failed.
pub fn retry_delay(cfg: &RegistryConfig, attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    cfg.retry_base.saturating_mul(1u32 << shift).min(cfg.retry_max)
}

#[derive(Debug, Clone)]
struct Entry {
    record: StreamRecord,
    phase: Phase,
}

/// What a session currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// An upstream create is in flight since `since`; `ended` when the owner ended it meanwhile.
    Creating {
        ended: bool,
        since: Ms,
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
    /// The attempt's number (report it with the outcome).
    pub attempt: u32,
}

/// Why a stream is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapReason {
    /// The owner was silent for `reap_after`.
    Silent,
    /// A previous delete attempt failed.
    Retry,
    /// A previous attempt's outcome never came back within its lease.
    LeaseExpired,
    /// The gateway is stopping (in-process store).
    Shutdown,
}

impl ReapReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReapReason::Silent => "silent",
            ReapReason::Retry => "retry",
            ReapReason::LeaseExpired => "lease_expired",
            ReapReason::Shutdown => "shutdown",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [ReapReason::Silent, ReapReason::Retry, ReapReason::LeaseExpired, ReapReason::Shutdown]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What a failed delete attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Another attempt is scheduled.
    Retry,
    /// `max_attempts` reached: the stream is given up (tombstoned); the caller parks its id.
    GaveUp,
    /// Nothing to do: the stream is unknown, gone, or the report is of a superseded attempt.
    Ignored,
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
    released: Vec<SessionId>,
}

impl Registry {
    /// An empty registry with the given timing rules.
    pub fn new(cfg: RegistryConfig) -> Self {
        Self { cfg, streams: HashMap::new(), sessions: HashMap::new(), released: Vec::new() }
    }

    /// Whether `session` holds a stream (live, or a create in flight).
    pub fn has_slot(&self, session: &SessionId) -> bool {
        self.sessions.contains_key(session)
    }

    /// The sessions whose slot was released since the last call (each
    /// once, even if it took a slot again since: check [`has_slot`](Self::has_slot)).
    pub fn take_released(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.released)
    }

    /// The timing rules.
    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    /// Reserves the session's single stream slot before the upstream create.
    /// A slot still creating after `create_lease` is taken over.
    pub fn begin_create(&mut self, session: &SessionId, now: Ms) -> Result<(), Conflict> {
        match self.sessions.get(session) {
            Some(Slot::Creating { since, .. }) if *since + self.cfg.create_lease > now => {
                Err(Conflict { active_stream_id: None })
            }
            Some(Slot::Stream(id)) => Err(Conflict { active_stream_id: Some(id.clone()) }),
            _ => {
                self.sessions.insert(session.clone(), Slot::Creating { ended: false, since: now });
                Ok(())
            }
        }
    }

    /// Releases a slot reserved by [`begin_create`](Self::begin_create) (create failed).
    pub fn abort_create(&mut self, session: &SessionId) {
        if matches!(self.sessions.get(session), Some(Slot::Creating { .. })) {
            self.sessions.remove(session);
            self.released.push(session.clone());
        }
    }

    /// The owner ended its session (end beacon) while its create is in flight:
    /// the stream will be deleted as soon as it exists. Returns whether a
    /// create was in flight.
    pub fn end_pending_create(&mut self, session: &SessionId) -> bool {
        match self.sessions.get_mut(session) {
            Some(Slot::Creating { ended, .. }) => {
                *ended = true;
                true
            }
            _ => false,
        }
    }

    /// Records the created stream as live and owned by `record.owner`.
    ///
    /// Returns the delete attempt's number when the owner ended it while it
    /// was being created: the stream is then already being deleted (attempt
    /// in flight) and the caller must delete it upstream.
    pub fn finish_create(&mut self, record: StreamRecord, now: Ms) -> Option<u32> {
        let ended = matches!(self.sessions.get(&record.owner), Some(Slot::Creating { ended: true, .. }));
        self.sessions.insert(record.owner.clone(), Slot::Stream(record.id.clone()));
        let id = record.id.clone();
        self.streams.insert(id.clone(), Entry { record, phase: Phase::Live { last_seen: now } });
        if ended {
            self.begin_delete(&id, now)
        } else {
            None
        }
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
        self.streams.values().filter(|e| e.phase.is_open()).count()
    }

    /// Owner activity on a live stream: postpones reaping.
    pub fn touch(&mut self, stream_id: &str, now: Ms) {
        if let Some(Entry { phase: Phase::Live { last_seen }, .. }) = self.streams.get_mut(stream_id) {
            if now > *last_seen {
                *last_seen = now;
            }
        }
    }

    /// Updates the stored upstream URLs of a stream (after a WHIP/WHEP answer).
    pub fn update_record(&mut self, stream_id: &str, update: &RecordUpdate) {
        if let Some(e) = self.streams.get_mut(stream_id) {
            update.apply(&mut e.record);
        }
    }

    /// The owner ends the stream (DELETE route or end beacon): frees the
    /// session's slot and marks the stream as being deleted, attempt in flight.
    ///
    /// Returns the attempt's number, or `None` when the stream is not live
    /// (gone, or an attempt is already in flight); a stream waiting for a
    /// retry (or whose attempt's lease expired) is taken in flight again.
    pub fn begin_delete(&mut self, stream_id: &str, now: Ms) -> Option<u32> {
        let lease = self.cfg.delete_lease;
        let entry = self.streams.get_mut(stream_id)?;
        let started =
            if entry.phase.attempt_in_flight(now) { None } else { entry.phase.start_delete_attempt(now, lease) };
        let owner = entry.record.owner.clone();
        self.release_slot(&owner, stream_id);
        started
    }

    /// The upstream delete succeeded (or the stream was already gone upstream).
    pub fn delete_succeeded(&mut self, stream_id: &str, now: Ms) {
        if let Some(entry) = self.streams.get_mut(stream_id) {
            entry.phase = Phase::Gone { until: now + self.cfg.tombstone_ttl };
            let owner = entry.record.owner.clone();
            self.release_slot(&owner, stream_id);
        }
    }

    /// Delete attempt `attempt` failed: schedule a retry, or give up after
    /// `max_attempts`. A report of a superseded attempt (the stream moved on
    /// to a later one) is ignored.
    pub fn delete_failed(&mut self, stream_id: &str, attempt: u32, now: Ms) -> FailOutcome {
        let cfg = self.cfg;
        let Some(entry) = self.streams.get_mut(stream_id) else { return FailOutcome::Ignored };
        let Phase::Deleting { attempts, attempt: current } = &mut entry.phase else { return FailOutcome::Ignored };
        if *attempts != attempt {
            return FailOutcome::Ignored;
        }
        if *attempts >= cfg.max_attempts {
            entry.phase = Phase::Gone { until: now + cfg.tombstone_ttl };
            return FailOutcome::GaveUp;
        }
        *current = Attempt::Waiting { retry_at: now + retry_delay(&cfg, *attempts) };
        FailOutcome::Retry
    }

    /// Advances time: returns the deletes to perform now (silent live streams,
    /// due retries, attempts whose lease expired) and drops expired tombstones.
    pub fn tick(&mut self, now: Ms) -> Vec<ReapAction> {
        let cfg = self.cfg;
        let mut actions = Vec::new();
        let mut freed = Vec::new();
        self.streams.retain(|id, entry| {
            let reason = match entry.phase {
                Phase::Gone { until } => return until > now,
                Phase::Live { .. } => ReapReason::Silent,
                Phase::Deleting { attempt: Attempt::Waiting { .. }, .. } => ReapReason::Retry,
                Phase::Deleting { attempt: Attempt::InFlight { .. }, .. } => ReapReason::LeaseExpired,
            };
            if entry.phase.due(cfg.reap_after).is_some_and(|due| due <= now) {
                if let Some(attempt) = entry.phase.start_delete_attempt(now, cfg.delete_lease) {
                    if reason == ReapReason::Silent {
                        freed.push((entry.record.owner.clone(), id.clone()));
                    }
                    actions.push(ReapAction { stream_id: id.clone(), reason, attempt });
                }
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
    /// marked as being deleted (attempt in flight, slots released) and
    /// returned (sorted), for the caller to delete upstream at once.
    pub fn drain(&mut self, now: Ms) -> Vec<ReapAction> {
        let lease = self.cfg.delete_lease;
        let mut actions = Vec::new();
        for (id, entry) in &mut self.streams {
            if let Some(attempt) = entry.phase.start_delete_attempt(now, lease) {
                actions.push(ReapAction { stream_id: id.clone(), reason: ReapReason::Shutdown, attempt });
            }
        }
        let released: Vec<SessionId> =
            self.sessions.iter().filter(|(_, slot)| matches!(slot, Slot::Stream(_))).map(|(s, _)| s.clone()).collect();
        for s in released {
            self.sessions.remove(&s);
            self.released.push(s);
        }
        actions.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        actions
    }

    fn release_slot(&mut self, owner: &SessionId, stream_id: &str) {
        if matches!(self.sessions.get(owner), Some(Slot::Stream(id)) if id == stream_id) {
            self.sessions.remove(owner);
            self.released.push(owner.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    #[test]
    fn parked_deletes_are_retried_at_start_then_every_interval() {
        let t0 = Ms(1_000_000);
        let mut p = ParkedSchedule::new(t0, Duration::from_secs(300));
        assert!(p.due(t0), "at start");
        assert!(!p.due(t0), "once per turn");
        assert!(!p.due(t0 + Duration::from_secs(299)));
        assert!(p.due(t0 + Duration::from_secs(301)));
        assert!(!p.due(t0 + Duration::from_secs(600)), "counted from the last retry");
        assert!(p.due(t0 + Duration::from_secs(601)));
    }
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
            delete_lease: Duration::from_secs(30),
            create_lease: Duration::from_secs(150),
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

    fn created(reg: &mut Registry, id: &str, owner: &SessionId, now: Ms) {
        reg.begin_create(owner, now).unwrap();
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
        let t0 = Ms(1_000_000);
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
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        reg.begin_create(&a, t0).unwrap();
        // a concurrent second create is refused while the first is in flight
        assert_eq!(reg.begin_create(&a, t0), Err(Conflict { active_stream_id: None }));
        reg.finish_create(record("str_a", &a), t0);
        assert_eq!(reg.begin_create(&a, t0), Err(Conflict { active_stream_id: Some("str_a".into()) }));
        // another session is independent
        assert!(reg.begin_create(&sid(2), t0).is_ok());
        // after the stream ends, the session may create again
        assert_eq!(reg.begin_delete("str_a", t0), Some(1));
        assert!(reg.begin_create(&a, t0).is_ok());
    }

    #[test]
    fn a_create_slot_whose_instance_died_is_free_after_the_create_lease() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        reg.begin_create(&a, t0).unwrap();
        assert!(reg.begin_create(&a, t0 + S(149)).is_err());
        assert!(reg.begin_create(&a, t0 + S(150)).is_ok(), "a create 150 s old is presumed lost");
        assert!(reg.begin_create(&a, t0 + S(151)).is_err(), "the new create holds the slot");
    }

    #[test]
    fn ending_during_create_deletes_once_created() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        assert!(!reg.end_pending_create(&a), "nothing in flight");
        reg.begin_create(&a, t0).unwrap();
        assert!(reg.end_pending_create(&a));
        assert_eq!(reg.finish_create(record("str_a", &a), t0), Some(1));
        assert!(matches!(reg.phase("str_a"), Some(Phase::Deleting { attempt: Attempt::InFlight { .. }, .. })));
        assert_eq!(reg.active_stream(&a), None);
        assert!(reg.begin_create(&a, t0).is_ok());
        // a normal create is not ended
        let b = sid(2);
        reg.begin_create(&b, t0).unwrap();
        assert_eq!(reg.finish_create(record("str_b", &b), t0), None);
    }

    #[test]
    fn aborted_create_frees_the_slot() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        reg.begin_create(&a, t0).unwrap();
        reg.abort_create(&a);
        assert_eq!(reg.take_released(), vec![a.clone()]);
        assert!(reg.begin_create(&a, t0).is_ok());
    }

    #[test]
    fn silent_stream_is_reaped_after_the_window() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        assert!(reg.tick(t0 + S(119)).is_empty());
        let actions = reg.tick(t0 + S(120));
        assert_eq!(actions, vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::Silent, attempt: 1 }]);
        assert!(matches!(reg.authorize(&a, "str_a"), Access::Deleting(_)));
        assert_eq!(reg.active_stream(&a), None);
        assert_eq!(reg.take_released(), vec![a.clone()]);
        // in flight (within its lease): no duplicate action
        assert!(reg.tick(t0 + S(149)).is_empty());
        reg.delete_succeeded("str_a", t0 + S(121));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        assert_eq!(reg.open_streams(), 0);
    }

    #[test]
    fn an_attempt_whose_outcome_never_comes_back_is_started_again_after_its_lease() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        assert_eq!(reg.tick(t0 + S(120)).len(), 1); // attempt 1, leased for 30 s (its instance dies)
        assert!(reg.tick(t0 + S(149)).is_empty());
        assert_eq!(reg.begin_delete("str_a", t0 + S(149)), None, "leased to attempt 1");
        let again = reg.tick(t0 + S(150));
        assert_eq!(again, vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::LeaseExpired, attempt: 2 }]);
        // the late failure of the superseded attempt changes nothing
        assert_eq!(reg.delete_failed("str_a", 1, t0 + S(151)), FailOutcome::Ignored);
        assert!(reg.tick(t0 + S(179)).is_empty(), "attempt 2 still in flight");
        reg.delete_succeeded("str_a", t0 + S(152));
        assert!(reg.tick(t0 + S(1000)).is_empty());
    }

    #[test]
    fn activity_postpones_reaping() {
        let t0 = Ms(1_000_000);
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
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        created(&mut reg, "str_b", &sid(2), t0 + S(60));
        let ids: Vec<_> = reg.tick(t0 + S(150)).into_iter().map(|a| a.stream_id).collect();
        assert_eq!(ids, vec!["str_a".to_string()]);
        assert!(matches!(reg.authorize(&sid(2), "str_b"), Access::Live(_)));
    }

    #[test]
    fn failed_delete_retries_with_capped_backoff_then_gives_up() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        let mut now = t0 + S(120);
        let mut attempt = reg.tick(now)[0].attempt; // attempt 1
        let mut delays = Vec::new();
        loop {
            if reg.delete_failed("str_a", attempt, now) != FailOutcome::Retry {
                break;
            }
            let Some(Phase::Deleting { attempt: Attempt::Waiting { retry_at: at }, .. }) = reg.phase("str_a").cloned()
            else {
                panic!("not scheduled")
            };
            delays.push(at - now);
            assert!(reg.tick(at - Duration::from_millis(1)).is_empty());
            let actions = reg.tick(at);
            assert_eq!(
                actions,
                vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::Retry, attempt: attempt + 1 }]
            );
            attempt += 1;
            now = at;
        }
        // attempts 2..=4 after 5 s, 10 s, 20 s (capped), then given up
        assert_eq!(delays, vec![S(5), S(10), S(20)]);
        assert!(matches!(reg.phase("str_a"), Some(Phase::Gone { .. })));
        assert_eq!(reg.delete_failed("str_a", attempt, now), FailOutcome::Ignored, "reported once");
    }

    #[test]
    fn explicit_end_then_failure_is_retried_by_the_reaper() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        assert_eq!(reg.begin_delete("str_a", t0), Some(1));
        assert_eq!(reg.begin_delete("str_a", t0), None, "attempt already in flight");
        assert_eq!(reg.delete_failed("str_a", 1, t0 + S(1)), FailOutcome::Retry);
        // the owner retrying takes the scheduled retry in flight
        assert_eq!(reg.begin_delete("str_a", t0 + S(1)), Some(2));
        assert!(reg.tick(t0 + S(30)).is_empty());
        assert_eq!(reg.delete_failed("str_a", 2, t0 + S(2)), FailOutcome::Retry);
        assert_eq!(reg.tick(t0 + S(12)).len(), 1);
        reg.delete_succeeded("str_a", t0 + S(13));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        assert_eq!(reg.begin_delete("str_a", t0 + S(14)), None);
    }

    #[test]
    fn tombstones_expire() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        reg.begin_delete("str_a", t0);
        reg.delete_succeeded("str_a", t0);
        reg.tick(t0 + S(599));
        assert_eq!(reg.authorize(&a, "str_a"), Access::Gone);
        reg.tick(t0 + S(600));
        assert_eq!(reg.authorize(&a, "str_a"), Access::NotOwned);
        assert!(reg.phase("str_a").is_none());
    }

    #[test]
    fn touch_after_reap_does_not_revive() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        reg.tick(t0 + S(120));
        reg.touch("str_a", t0 + S(121));
        assert!(matches!(reg.phase("str_a"), Some(Phase::Deleting { .. })));
    }

    #[test]
    fn urls_can_be_updated() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        created(&mut reg, "str_a", &a, t0);
        let whep = Url::parse("https://lp-playback.studio/webrtc/x").unwrap();
        reg.update_record("str_a", &RecordUpdate::WhepUrl(whep.clone()));
        let Access::Live(r) = reg.authorize(&a, "str_a") else { panic!() };
        assert_eq!(r.whep_url, Some(whep.clone()));
        // a WHIP answer without a playback URL keeps the known one
        let res = Url::parse("https://ai.livepeer.com/live/video-to-video/stk/whip/ses_1").unwrap();
        reg.update_record("str_a", &RecordUpdate::WhipAnswer { resource: Some(res.clone()), playback: None });
        let Access::Live(r) = reg.authorize(&a, "str_a") else { panic!() };
        assert_eq!((r.whip_resource, r.whep_url), (Some(res), Some(whep)));
    }

    #[test]
    fn a_session_holds_a_slot_from_create_until_its_stream_ends() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        let a = sid(1);
        assert!(!reg.has_slot(&a));
        reg.begin_create(&a, t0).unwrap();
        assert!(reg.has_slot(&a), "a create in flight holds the slot");
        reg.finish_create(record("str_a", &a), t0);
        assert!(reg.has_slot(&a));
        assert!(reg.take_released().is_empty());
        reg.tick(t0 + S(120));
        assert!(!reg.has_slot(&a), "reaped: the slot is free");
        assert_eq!(reg.take_released(), vec![a.clone()]);
        reg.begin_create(&a, t0).unwrap();
        reg.abort_create(&a);
        assert!(!reg.has_slot(&a));
    }

    #[test]
    fn every_way_into_a_delete_attempt_counts_attempts_the_same() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_a", &sid(1), t0);
        let attempts = |reg: &Registry| match reg.phase("str_a") {
            Some(Phase::Deleting { attempts, attempt: Attempt::InFlight { .. } }) => *attempts,
            other => panic!("not in flight: {other:?}"),
        };
        assert_eq!(reg.begin_delete("str_a", t0), Some(1)); // the owner
        assert_eq!(attempts(&reg), 1);
        reg.delete_failed("str_a", 1, t0);
        assert_eq!(reg.tick(t0 + S(5)).len(), 1); // the reaper's retry
        assert_eq!(attempts(&reg), 2);
        reg.delete_failed("str_a", 2, t0 + S(5));
        assert_eq!(reg.begin_delete("str_a", t0 + S(6)), Some(3)); // the owner again, before the retry is due
        assert_eq!(attempts(&reg), 3);
        let drained = reg.drain(t0 + S(6)); // shutdown, even in flight
        assert_eq!(drained, vec![ReapAction { stream_id: "str_a".into(), reason: ReapReason::Shutdown, attempt: 4 }]);
        assert_eq!(attempts(&reg), 4);
        reg.delete_succeeded("str_a", t0 + S(6));
        let mut gone = reg.phase("str_a").cloned().unwrap();
        assert_eq!(gone.start_delete_attempt(t0 + S(7), S(30)), None, "a stream already gone is not deleted again");
    }

    #[test]
    fn drain_hands_over_every_stream_not_yet_gone() {
        let t0 = Ms(1_000_000);
        let mut reg = Registry::new(cfg());
        created(&mut reg, "str_live", &sid(1), t0);
        created(&mut reg, "str_retry", &sid(2), t0);
        created(&mut reg, "str_gone", &sid(3), t0);
        reg.begin_delete("str_retry", t0);
        reg.delete_failed("str_retry", 1, t0);
        reg.begin_delete("str_gone", t0);
        reg.delete_succeeded("str_gone", t0);
        reg.take_released();
        let ids: Vec<String> = reg.drain(t0).into_iter().map(|a| a.stream_id).collect();
        assert_eq!(ids, vec!["str_live".to_string(), "str_retry".to_string()]);
        for id in ["str_live", "str_retry"] {
            assert!(matches!(reg.phase(id), Some(Phase::Deleting { attempt: Attempt::InFlight { .. }, .. })), "{id}");
        }
        assert_eq!(reg.active_stream(&sid(1)), None);
        assert_eq!(reg.take_released(), vec![sid(1)]);
        // nothing is left for the reaper to retry behind the caller's back (within the lease)
        assert!(reg.tick(t0 + S(29)).is_empty());
    }
}
