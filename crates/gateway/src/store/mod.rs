//! The store: everything the gateway must remember, behind one seam.
//!
//! | what | in-process ([`MemoryStore`], the default) | Redis ([`RedisStore`], `--store redis://…`) |
//! |---|---|---|
//! | issued sessions, idle expiry | [`SessionBook`](crate::session::SessionBook) (ordered by last activity; bounded by `max_sessions`) | `s:<session>` hashes with `PEXPIRE` (no expiry while they hold a slot) |
//! | one stream per session (the slot) | [`Registry`](crate::registry::Registry) | the `slot` field of `s:<session>` |
//! | ownership and stream records (ids, model, WHIP/WHEP URLs and resources) | [`Registry`](crate::registry::Registry) | `t:<stream>` hashes |
//! | tombstones | `Phase::Gone` entries dropped by the tick | `t:<stream>` with `PEXPIRE tombstone_ttl` |
//! | the reaper's schedule, delete leases | scanned by the tick | the `due` sorted set (score: when the reaper must look next) |
//! | deletes given up or not done at shutdown | a JSON file (`--pending-deletes`) | the `parked` set |
//! | who polls a watched stream's status, the status it published ([`crate::poll_lease`]) | a map under its own lock | `p:<stream>` (lease) and `w:<stream>` (published status) hashes |
//!
//! Every transition is one call here, atomic: under one lock in process,
//! one Lua script in Redis (so two instances can never both reserve a
//! session's slot, nor both hold the lease of one stream's delete). Time is
//! passed in as wall-clock [`Ms`] by the caller, so the same transition
//! gives the same answer on both backends; `tests/store.rs` holds both to
//! the same scenarios.
//!
//! The Redis backend keeps everything under a key prefix (`dreamgate:` by
//! default) and needs a single Redis server (not Cluster: its scripts touch
//! keys they compute). Session ids never appear in logs; in Redis they are
//! key names, as secret as the cookie (protect Redis accordingly).
//!
//! [`Store::durable`] says whether the state outlives the process: the
//! gateway deletes its streams at shutdown only when it does not (the
//! in-process store), and leaves them to the next instance otherwise.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use std::time::Duration;

use crate::poll_lease::Published;
use crate::registry::{Access, Conflict, FailOutcome, Ms, ReapAction, RecordUpdate, RegistryConfig, StreamRecord};
use crate::session::SessionId;

pub mod counters;
pub mod memory;
pub mod redis;
mod redis_scripts;

pub use self::counters::RedisCounters;
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// The store could not be reached or answered nonsense. Its text names no
/// key, session id or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// What a store call answers.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which store the gateway uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// In-process (default): state dies with the process, which deletes its
    /// streams at shutdown; ids it could not delete go to `pending_deletes`
    /// (when set) and are retried at the next start.
    #[default]
    Memory,
    /// In-process, with the file of deletes still to do.
    MemoryWithPendingFile(PathBuf),
    /// Redis at `url` (`redis://[user:password@]host:port/db`), keys under `prefix`.
    Redis {
        /// The connection URL (its password is never shown).
        url: String,
        /// Key prefix, e.g. `dreamgate:`.
        prefix: String,
    },
}

impl StoreConfig {
    /// Parses `--store`: `memory` (or empty) or a `redis://` / `rediss://` URL.
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let raw = raw.trim();
        if raw.is_empty() || raw == "memory" {
            return Ok(StoreConfig::Memory);
        }
        let url = url::Url::parse(raw).map_err(|_| StoreError("expected `memory` or a redis:// URL".into()))?;
        if url.scheme() != "redis" || url.host_str().is_none_or(str::is_empty) {
            return Err(StoreError("expected `memory` or a redis://host:port/db URL".into()));
        }
        Ok(StoreConfig::Redis { url: raw.to_string(), prefix: DEFAULT_PREFIX.into() })
    }
}

/// The default Redis key prefix.
pub const DEFAULT_PREFIX: &str = "dreamgate:";

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("memory"),
            StoreConfig::MemoryWithPendingFile(p) => write!(f, "memory (pending deletes in {})", p.display()),
            StoreConfig::Redis { url, prefix } => write!(f, "redis {} (keys {prefix}*)", redacted(url)),
        }
    }
}

/// `redis://host:port/db` without user or password.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(6379),
            if u.path().is_empty() { "/0" } else { u.path() }
        ),
        Err(_) => "redis://?".into(),
    }
}

/// Everything the gateway remembers. Each method is one atomic transition of
/// the rules in [`crate::registry`] and [`crate::session`]; `now` is the
/// caller's wall-clock time.
pub trait StoreApi: Send + Sync {
    /// Whether the state outlives this process (and is shared with other instances).
    fn durable(&self) -> bool;

    /// Remembers a freshly generated session id as issued at `now`.
    fn issue_session(&self, id: &SessionId, now: Ms) -> impl Future<Output = StoreResult<()>> + Send;
    /// Whether `id` was issued and is still remembered (its activity recorded).
    fn resume_session(&self, id: &SessionId, now: Ms) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Reserves the session's single stream slot (409's [`Conflict`] when held).
    fn begin_create(
        &self,
        session: &SessionId,
        now: Ms,
    ) -> impl Future<Output = StoreResult<Result<(), Conflict>>> + Send;
    /// Records the created stream; `Some(attempt)`: the owner ended it during
    /// the create, delete it now (attempt leased to the caller).
    fn finish_create(&self, record: &StreamRecord, now: Ms) -> impl Future<Output = StoreResult<Option<u32>>> + Send;
    /// Releases a slot reserved for a create that failed.
    fn abort_create(&self, session: &SessionId, now: Ms) -> impl Future<Output = StoreResult<()>> + Send;
    /// The owner ended its session during its create: whether one was in flight.
    fn end_pending_create(&self, session: &SessionId) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The session's live stream, if any.
    fn active_stream(&self, session: &SessionId) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// What `session` may do with stream `id`; `touch`: record the owner's
    /// activity on it when live (postponing the reaper).
    fn authorize(
        &self,
        session: &SessionId,
        id: &str,
        touch: Option<Ms>,
    ) -> impl Future<Output = StoreResult<Access>> + Send;
    /// [`StoreApi::resume_session`] then [`StoreApi::authorize`] (the activity recorded at
    /// `now`) as one transition, one round trip with Redis: what the session named by a
    /// request's cookie may do with stream `id` (the stream routes' check). A session the store
    /// does not remember owns nothing.
    fn resume_and_authorize(
        &self,
        session: &SessionId,
        id: &str,
        now: Ms,
    ) -> impl Future<Output = StoreResult<Access>> + Send;
    /// Updates the stored upstream URLs of stream `id`.
    fn update_record(&self, id: &str, update: &RecordUpdate) -> impl Future<Output = StoreResult<()>> + Send;

    /// The owner ends stream `id`: its slot is freed; `Some(attempt)` when a
    /// delete attempt starts (leased to the caller), `None` when one is in
    /// flight or the stream is gone.
    fn begin_delete(&self, id: &str, now: Ms) -> impl Future<Output = StoreResult<Option<u32>>> + Send;
    /// The upstream delete succeeded (or the stream was already gone).
    fn delete_succeeded(&self, id: &str, now: Ms) -> impl Future<Output = StoreResult<()>> + Send;
    /// Delete attempt `attempt` failed (retry scheduled, given up and parked, or ignored).
    fn delete_failed(&self, id: &str, attempt: u32, now: Ms) -> impl Future<Output = StoreResult<FailOutcome>> + Send;
    /// The reaper's turn: the delete attempts due now, each leased to the caller.
    fn claim_due(&self, now: Ms) -> impl Future<Output = StoreResult<Vec<ReapAction>>> + Send;
    /// Shutdown of a non-durable store: a delete attempt for every open stream.
    fn drain(&self, now: Ms) -> impl Future<Output = StoreResult<Vec<ReapAction>>> + Send;
    /// Streams live or being deleted.
    fn open_streams(&self) -> impl Future<Output = StoreResult<usize>> + Send;
    /// Which of `ids` the store knows (a record, live or tombstoned): the orphan sweep's question.
    fn known_streams(&self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// Remembers stream ids still to delete upstream (given up, or not done at shutdown).
    fn park(&self, ids: &[String]) -> impl Future<Output = StoreResult<()>> + Send;
    /// Takes every parked id (each taken by one caller only).
    fn take_parked(&self) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Whether the store answers (readiness).
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// `holder` (a gateway instance) claims or renews the poll lease of stream
    /// `id` until `now + lease` ([`crate::poll_lease::PollLease::claim`]):
    /// whether it holds it (and so polls upstream; the others relay).
    fn claim_poll(
        &self,
        id: &str,
        holder: &str,
        now: Ms,
        lease: Duration,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// `holder` stops watching stream `id`: its lease (and what it published)
    /// is dropped, so another instance takes over at once.
    fn release_poll(&self, id: &str, holder: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// The lease holder publishes stream `id`'s latest status message, fresh for `ttl`.
    fn publish_status(
        &self,
        id: &str,
        text: &str,
        now: Ms,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The status message last published for stream `id`, unless stale at `now`.
    fn latest_status(&self, id: &str, now: Ms) -> impl Future<Output = StoreResult<Option<Published>>> + Send;
}

/// The store the gateway runs with: one of the two backends.
#[derive(Debug)]
pub enum Store {
    /// In-process.
    Memory(Box<MemoryStore>),
    /// Redis.
    Redis(Box<RedisStore>),
}

impl Store {
    /// Opens the configured store (connects to Redis; fails when it cannot).
    /// `api_base` keys the in-process store's pending-deletes file.
    pub async fn open(cfg: &StoreConfig, rules: RegistryConfig, api_base: &str) -> StoreResult<Self> {
        Ok(match cfg {
            StoreConfig::Memory => Store::Memory(Box::new(MemoryStore::new(rules))),
            StoreConfig::MemoryWithPendingFile(path) => {
                Store::Memory(Box::new(MemoryStore::new(rules).with_pending_file(path.clone(), api_base)))
            }
            StoreConfig::Redis { url, prefix } => {
                Store::Redis(Box::new(RedisStore::connect(url, prefix, rules).await?))
            }
        })
    }

    /// Sessions remembered, where that is cheap to know: the in-process store
    /// counts them; a shared store is not scanned (`None`).
    pub fn session_count(&self) -> Option<usize> {
        match self {
            Store::Memory(m) => Some(m.ledger().sessions.len()),
            Store::Redis(_) => None,
        }
    }

    /// Where the per-client limits count ([`crate::limits`]): in this
    /// process with the in-process store, in the same Redis (shared by every
    /// instance) with the Redis store.
    pub fn counters(&self) -> std::sync::Arc<dyn crate::limits::Counters> {
        match self {
            Store::Redis(r) => std::sync::Arc::new(RedisCounters::new(r.connection(), r.prefix())),
            Store::Memory(_) => std::sync::Arc::new(crate::limits::MemoryCounters::default()),
        }
    }

    /// `memory` or `redis` (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

/// Calls the backend's method, timed as store operation `$m`
/// (`dreamgate_store_operation_duration_seconds{op="$m"}`).
macro_rules! dispatch {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        crate::metrics::time_store(stringify!($m), async {
            match $self {
                Store::Memory(s) => s.$m($($a),*).await,
                Store::Redis(s) => s.$m($($a),*).await,
            }
        })
        .await
    };
}

impl StoreApi for Store {
    fn durable(&self) -> bool {
        match self {
            Store::Memory(s) => s.durable(),
            Store::Redis(s) => s.durable(),
        }
    }
    async fn issue_session(&self, id: &SessionId, now: Ms) -> StoreResult<()> {
        dispatch!(self.issue_session(id, now))
    }
    async fn resume_session(&self, id: &SessionId, now: Ms) -> StoreResult<bool> {
        dispatch!(self.resume_session(id, now))
    }
    async fn begin_create(&self, session: &SessionId, now: Ms) -> StoreResult<Result<(), Conflict>> {
        dispatch!(self.begin_create(session, now))
    }
    async fn finish_create(&self, record: &StreamRecord, now: Ms) -> StoreResult<Option<u32>> {
        dispatch!(self.finish_create(record, now))
    }
    async fn abort_create(&self, session: &SessionId, now: Ms) -> StoreResult<()> {
        dispatch!(self.abort_create(session, now))
    }
    async fn end_pending_create(&self, session: &SessionId) -> StoreResult<bool> {
        dispatch!(self.end_pending_create(session))
    }
    async fn active_stream(&self, session: &SessionId) -> StoreResult<Option<String>> {
        dispatch!(self.active_stream(session))
    }
    async fn authorize(&self, session: &SessionId, id: &str, touch: Option<Ms>) -> StoreResult<Access> {
        dispatch!(self.authorize(session, id, touch))
    }
    async fn resume_and_authorize(&self, session: &SessionId, id: &str, now: Ms) -> StoreResult<Access> {
        dispatch!(self.resume_and_authorize(session, id, now))
    }
    async fn update_record(&self, id: &str, update: &RecordUpdate) -> StoreResult<()> {
        dispatch!(self.update_record(id, update))
    }
    async fn begin_delete(&self, id: &str, now: Ms) -> StoreResult<Option<u32>> {
        dispatch!(self.begin_delete(id, now))
    }
    async fn delete_succeeded(&self, id: &str, now: Ms) -> StoreResult<()> {
        dispatch!(self.delete_succeeded(id, now))
    }
    async fn delete_failed(&self, id: &str, attempt: u32, now: Ms) -> StoreResult<FailOutcome> {
        dispatch!(self.delete_failed(id, attempt, now))
    }
    async fn claim_due(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        dispatch!(self.claim_due(now))
    }
    async fn drain(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        dispatch!(self.drain(now))
    }
    async fn open_streams(&self) -> StoreResult<usize> {
        dispatch!(self.open_streams())
    }
    async fn known_streams(&self, ids: &[String]) -> StoreResult<Vec<bool>> {
        dispatch!(self.known_streams(ids))
    }
    async fn park(&self, ids: &[String]) -> StoreResult<()> {
        dispatch!(self.park(ids))
    }
    async fn take_parked(&self) -> StoreResult<Vec<String>> {
        dispatch!(self.take_parked())
    }
    async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }
    async fn claim_poll(&self, id: &str, holder: &str, now: Ms, lease: Duration) -> StoreResult<bool> {
        dispatch!(self.claim_poll(id, holder, now, lease))
    }
    async fn release_poll(&self, id: &str, holder: &str) -> StoreResult<()> {
        dispatch!(self.release_poll(id, holder))
    }
    async fn publish_status(&self, id: &str, text: &str, now: Ms, ttl: Duration) -> StoreResult<()> {
        dispatch!(self.publish_status(id, text, now, ttl))
    }
    async fn latest_status(&self, id: &str, now: Ms) -> StoreResult<Option<Published>> {
        dispatch!(self.latest_status(id, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_never_show_the_password() {
        assert_eq!(StoreConfig::parse("memory").unwrap(), StoreConfig::Memory);
        assert_eq!(StoreConfig::parse("").unwrap(), StoreConfig::Memory);
        let cfg = StoreConfig::parse("redis://:s3cret@127.0.0.1:6380/2").unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("127.0.0.1:6380/2"), "{shown}");
        for bad in ["redis:/x", "http://127.0.0.1:6379", "127.0.0.1:6379", "redis://"] {
            assert!(StoreConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
