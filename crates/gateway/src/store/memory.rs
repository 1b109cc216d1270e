//! The in-process store: the pure [`Registry`] and [`SessionBook`] behind one
//! lock (the [`Ledger`]), plus the file of deletes still to do.
//!
//! Nothing outlives the process ([`StoreApi::durable`] is `false`): the
//! gateway deletes every open stream at shutdown. Ids it could not delete
//! (upstream down, retries exhausted) are parked in a small JSON file, when
//! one is configured (`dreamgate serve --pending-deletes FILE`), keyed by
//! the API base they belong to, and retried at the next start:
//!
//! ```json
//! { "https://api.daydream.live/": ["str_abc", "str_def"] }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{StoreApi, StoreError, StoreResult};
use crate::poll_lease::{PollLease, Published};
use crate::registry::{
    Access, Conflict, FailOutcome, Ms, ReapAction, RecordUpdate, Registry, RegistryConfig, StreamRecord,
};
use crate::session::{SessionBook, SessionId};

/// The pure machines the in-process store applies, kept together because a
/// session is pinned in the book while it holds a slot in the registry.
#[derive(Debug)]
pub struct Ledger {
    /// Stream ownership, one stream per session, reaper decisions.
    pub registry: Registry,
    /// The session ids this gateway issued.
    pub sessions: SessionBook,
}

impl Ledger {
    /// An empty ledger with these timing rules.
    pub fn new(cfg: RegistryConfig) -> Self {
        Self { registry: Registry::new(cfg), sessions: SessionBook::new(cfg.session_idle, cfg.max_sessions) }
    }

    /// Unpins the sessions whose slot the last registry transitions released.
    fn sync_pins(&mut self) {
        for s in self.registry.take_released() {
            let holds = self.registry.has_slot(&s);
            self.sessions.set_pinned(&s, holds);
        }
    }

    /// Reserves `session`'s slot (and pins it).
    pub fn begin_create(&mut self, session: &SessionId, now: Ms) -> Result<(), Conflict> {
        self.registry.begin_create(session, now)?;
        self.sessions.set_pinned(session, true);
        Ok(())
    }

    /// Advances time: the deletes to perform now (see [`Registry::tick`]);
    /// idle sessions holding nothing are forgotten.
    pub fn tick(&mut self, now: Ms) -> Vec<ReapAction> {
        let actions = self.registry.tick(now);
        self.sync_pins();
        self.sessions.forget_idle(now);
        actions
    }
}

/// The pending-deletes file and the API base whose entries are ours.
#[derive(Debug, Clone)]
struct PendingFile {
    path: PathBuf,
    api: String,
}

/// The in-process store. See the module docs.
#[derive(Debug)]
pub struct MemoryStore {
    ledger: Mutex<Ledger>,
    pending: Option<PendingFile>,
    /// Ids parked without a file (kept for [`StoreApi::take_parked`] in this process).
    parked: Mutex<Vec<String>>,
    /// Poll leases and published statuses of watched streams (their own lock:
    /// the watchers never wait for the ledger).
    polls: Mutex<PollBook>,
}

/// Who polls each watched stream, and what it published.
#[derive(Debug, Default)]
struct PollBook {
    leases: HashMap<String, PollLease>,
    published: HashMap<String, Published>,
}

impl MemoryStore {
    /// An empty store with these timing rules (no pending-deletes file).
    pub fn new(rules: RegistryConfig) -> Self {
        Self {
            ledger: Mutex::new(Ledger::new(rules)),
            pending: None,
            parked: Mutex::new(Vec::new()),
            polls: Mutex::new(PollBook::default()),
        }
    }

    /// Parks ids in `path`, under the entry of `api` (the upstream they belong to).
    pub fn with_pending_file(mut self, path: PathBuf, api: &str) -> Self {
        self.pending = Some(PendingFile { path, api: api.to_string() });
        self
    }

    /// The ledger (tests and diagnostics).
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is never left half-updated, so a poisoned lock is still usable.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn polls(&self) -> MutexGuard<'_, PollBook> {
        self.polls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        let mut ledger = self.ledger();
        let out = f(&mut ledger);
        ledger.sync_pins();
        out
    }
}

type PendingMap = BTreeMap<String, Vec<String>>;

async fn read_pending(path: &PathBuf) -> StoreResult<PendingMap> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError(format!("pending-deletes file {} is not valid: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PendingMap::new()),
        Err(e) => Err(StoreError(format!("cannot read the pending-deletes file {}: {e}", path.display()))),
    }
}

async fn write_pending(path: &PathBuf, map: &PendingMap) -> StoreResult<()> {
    let io = |e: std::io::Error| StoreError(format!("cannot write the pending-deletes file {}: {e}", path.display()));
    if map.is_empty() {
        return match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        };
    }
    let body = serde_json::to_vec_pretty(map).map_err(|e| StoreError(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, body).await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}

impl StoreApi for MemoryStore {
    fn durable(&self) -> bool {
        false
    }

    async fn issue_session(&self, id: &SessionId, now: Ms) -> StoreResult<()> {
        self.with(|l| l.sessions.issue(id.clone(), now));
        Ok(())
    }

    async fn resume_session(&self, id: &SessionId, now: Ms) -> StoreResult<bool> {
        Ok(self.with(|l| l.sessions.resume(id, now)))
    }

    async fn begin_create(&self, session: &SessionId, now: Ms) -> StoreResult<Result<(), Conflict>> {
        Ok(self.with(|l| l.begin_create(session, now)))
    }

    async fn finish_create(&self, record: &StreamRecord, now: Ms) -> StoreResult<Option<u32>> {
        Ok(self.with(|l| l.registry.finish_create(record.clone(), now)))
    }

    async fn abort_create(&self, session: &SessionId, _now: Ms) -> StoreResult<()> {
        self.with(|l| l.registry.abort_create(session));
        Ok(())
    }

    async fn end_pending_create(&self, session: &SessionId) -> StoreResult<bool> {
        Ok(self.with(|l| l.registry.end_pending_create(session)))
    }

    async fn active_stream(&self, session: &SessionId) -> StoreResult<Option<String>> {
        Ok(self.with(|l| l.registry.active_stream(session).map(str::to_string)))
    }

    async fn authorize(&self, session: &SessionId, id: &str, touch: Option<Ms>) -> StoreResult<Access> {
        Ok(self.with(|l| {
            let access = l.registry.authorize(session, id);
            if let (Access::Live(_), Some(now)) = (&access, touch) {
                l.registry.touch(id, now);
            }
            access
        }))
    }

    async fn resume_and_authorize(&self, session: &SessionId, id: &str, now: Ms) -> StoreResult<Access> {
        Ok(self.with(|l| {
            if !l.sessions.resume(session, now) {
                return Access::NotOwned;
            }
            let access = l.registry.authorize(session, id);
            if let Access::Live(_) = &access {
                l.registry.touch(id, now);
            }
            access
        }))
    }

    async fn update_record(&self, id: &str, update: &RecordUpdate) -> StoreResult<()> {
        self.with(|l| l.registry.update_record(id, update));
        Ok(())
    }

    async fn begin_delete(&self, id: &str, now: Ms) -> StoreResult<Option<u32>> {
        Ok(self.with(|l| l.registry.begin_delete(id, now)))
    }

    async fn delete_succeeded(&self, id: &str, now: Ms) -> StoreResult<()> {
        self.with(|l| l.registry.delete_succeeded(id, now));
        Ok(())
    }

    async fn delete_failed(&self, id: &str, attempt: u32, now: Ms) -> StoreResult<FailOutcome> {
        let outcome = self.with(|l| l.registry.delete_failed(id, attempt, now));
        if outcome == FailOutcome::GaveUp {
            self.park(&[id.to_string()]).await?;
        }
        Ok(outcome)
    }

    async fn claim_due(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        Ok(self.with(|l| l.tick(now)))
    }

    async fn drain(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        Ok(self.with(|l| l.registry.drain(now)))
    }

    async fn open_streams(&self) -> StoreResult<usize> {
        Ok(self.ledger().registry.open_streams())
    }

    async fn known_streams(&self, ids: &[String]) -> StoreResult<Vec<bool>> {
        let ledger = self.ledger();
        Ok(ids.iter().map(|id| ledger.registry.phase(id).is_some()).collect())
    }

    async fn park(&self, ids: &[String]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let Some(file) = &self.pending else {
            self.parked.lock().unwrap_or_else(|e| e.into_inner()).extend(ids.iter().cloned());
            return Ok(());
        };
        let mut map = read_pending(&file.path).await?;
        let ours = map.entry(file.api.clone()).or_default();
        for id in ids {
            if !ours.contains(id) {
                ours.push(id.clone());
            }
        }
        write_pending(&file.path, &map).await
    }

    async fn take_parked(&self) -> StoreResult<Vec<String>> {
        let mut ids = std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(file) = &self.pending {
            let mut map = read_pending(&file.path).await?;
            if let Some(ours) = map.remove(&file.api) {
                ids.extend(ours);
                write_pending(&file.path, &map).await?;
            }
        }
        Ok(ids)
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn claim_poll(&self, id: &str, holder: &str, now: Ms, lease: Duration) -> StoreResult<bool> {
        let mut polls = self.polls();
        match PollLease::claim(polls.leases.get(id), holder, now, lease) {
            Some(granted) => {
                polls.leases.insert(id.to_string(), granted);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn release_poll(&self, id: &str, holder: &str) -> StoreResult<()> {
        let mut polls = self.polls();
        if PollLease::release(polls.leases.get(id), holder) {
            polls.leases.remove(id);
            polls.published.remove(id);
        }
        Ok(())
    }

    async fn publish_status(&self, id: &str, text: &str, now: Ms, ttl: Duration) -> StoreResult<()> {
        let published = Published { at: now, until: now + ttl, text: text.to_string() };
        self.polls().published.insert(id.to_string(), published);
        Ok(())
    }

    async fn latest_status(&self, id: &str, now: Ms) -> StoreResult<Option<Published>> {
        Ok(Published::fresh(self.polls().published.get(id), now).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sid(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    #[test]
    fn only_an_issued_cookie_is_resumed_and_a_reaped_session_is_then_forgotten() {
        let t0 = Ms(1_000_000);
        let cfg = RegistryConfig { session_idle: Duration::from_secs(1800), ..RegistryConfig::default() };
        let mut ledger = Ledger::new(cfg);
        let s = sid(1);
        ledger.sessions.issue(s.clone(), t0);
        assert!(ledger.sessions.resume(&s, t0));
        assert!(!ledger.sessions.resume(&sid(9), t0), "not issued here");
        ledger.sessions.issue(sid(3), t0);
        // the session holds a stream: kept while it lives, however idle
        ledger.begin_create(&s, t0).unwrap();
        ledger.registry.finish_create(
            StreamRecord {
                id: "str_a".into(),
                owner: s.clone(),
                model_id: "m".into(),
                whip_url: "https://ai.livepeer.com/whip".parse().unwrap(),
                whip_resource: None,
                whep_url: None,
                whep_resource: None,
            },
            t0,
        );
        assert!(ledger.tick(t0 + Duration::from_secs(119)).is_empty());
        assert_eq!(ledger.sessions.len(), 2);
        // reaped (silent 2 min) ...
        assert_eq!(ledger.tick(t0 + Duration::from_secs(120)).len(), 1);
        // ... and, holding nothing now, forgotten once idle like the other one
        ledger.tick(t0 + Duration::from_secs(1800));
        assert!(ledger.sessions.is_empty());
        assert!(!ledger.sessions.resume(&s, t0 + Duration::from_secs(1801)));
    }
}
