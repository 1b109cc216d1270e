//! The Redis store: several gateway instances share sessions, ownership,
//! the reaper's schedule and delete leases through one Redis server.
//!
//! Each transition of [`crate::registry`]'s rules is one Lua script (run
//! atomically by Redis), so two instances can never both reserve a
//! session's slot, nor both start the same delete attempt. Keys, under the
//! prefix (`dreamgate:` by default):
//!
//! | key | type | what |
//! |---|---|---|
//! | `s:<session>` | hash `slot` (`none`, `creating`, `ended`, `stream`), `stream`, `since`, `seen` | an issued session; expires `session_idle` after it was last seen while it holds nothing (no expiry while it holds a stream; `create_lease + session_idle` while creating) |
//! | `t:<stream>` | hash `owner`, `model`, `whip`, `whip_res`, `whep`, `whep_res`, `phase` (`live`, `deleting`, `gone`), `seen`, `attempts`, `inflight`, `at` | a stream's record; a tombstone (`gone`) expires after `tombstone_ttl` |
//! | `due` | sorted set of stream ids | when the reaper must look at each open stream next: `seen + reap_after` (live), the retry time or the end of the current attempt's lease (deleting) |
//! | `parked` | set of stream ids | deletes given up, retried by the next instance to start |
//! | `p:<stream>` | hash `holder`, `until` | the poll lease of a watched stream ([`crate::poll_lease`]); expires (as a backstop) 10 leases after its last renewal |
//! | `w:<stream>` | hash `at`, `until`, `text` | the status message its holder published last; expires (as a backstop) 10 TTLs after |
//!
//! Each script takes `now` from the caller (wall-clock milliseconds), like
//! the pure machines, so the instances' clocks should agree to well under a
//! second (NTP).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::RedisError;

use super::redis_scripts::Scripts;
use url::Url;

use super::{StoreApi, StoreError, StoreResult};
use crate::clock::millis;
use crate::poll_lease::Published;
use crate::registry::{
    Access, Conflict, FailOutcome, Ms, ReapAction, ReapReason, RecordUpdate, RegistryConfig, StreamRecord,
};
use crate::session::SessionId;

/// Most delete attempts one reaper turn claims.
const CLAIM_BATCH: usize = 64;

/// The Redis store. See the module docs.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    rules: RegistryConfig,
    scripts: Scripts,
    /// `host:port/db`, for logs.
    target: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("target", &self.target).field("prefix", &self.prefix).finish()
    }
}

fn err(e: RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout() {
        StoreError("Redis unreachable".into())
    } else {
        StoreError(format!("Redis error: {e}"))
    }
}

fn ms(d: Duration) -> u64 {
    millis(d)
}

fn url_text(u: &Option<url::Url>) -> String {
    u.as_ref().map(|u| u.to_string()).unwrap_or_default()
}

impl RedisStore {
    /// Connects to `url` (checked with a PING); keys go under `prefix`.
    pub async fn connect(url: &str, prefix: &str, rules: RegistryConfig) -> StoreResult<Self> {
        let client = ::redis::Client::open(url).map_err(|_| StoreError("invalid Redis URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(3))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StoreError("Redis unreachable (no answer within 10 s)".into()))?
            .map_err(err)?;
        let store =
            Self { conn, prefix: prefix.to_string(), rules, scripts: Scripts::new(), target: super::redacted(url) };
        store.ping().await?;
        Ok(store)
    }

    /// A handle on the shared connection (cheap to clone; reconnects by itself).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn session_key(&self, id: &SessionId) -> String {
        format!("{}s:{}", self.prefix, id.as_str())
    }

    fn stream_key(&self, id: &str) -> String {
        format!("{}t:{}", self.prefix, id)
    }

    fn due_key(&self) -> String {
        format!("{}due", self.prefix)
    }

    fn poll_key(&self, id: &str) -> String {
        format!("{}p:{}", self.prefix, id)
    }

    fn published_key(&self, id: &str) -> String {
        format!("{}w:{}", self.prefix, id)
    }

    fn parked_key(&self) -> String {
        format!("{}parked", self.prefix)
    }

    async fn claim(&self, now: Ms, limit: i64, max_score: String, drain: bool) -> StoreResult<Vec<ReapAction>> {
        let mut inv = self.scripts.claim_due.prepare_invoke();
        inv.key(self.due_key())
            .arg(now.0)
            .arg(limit)
            .arg(ms(self.rules.delete_lease))
            .arg(ms(self.rules.session_idle))
            .arg(&self.prefix)
            .arg(max_score)
            .arg(if drain { "1" } else { "0" });
        let flat: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
        let mut actions = Vec::new();
        for triple in flat.chunks(3) {
            let [id, reason, attempt] = triple else { break };
            let (Some(reason), Ok(attempt)) = (ReapReason::parse(reason), attempt.parse::<u32>()) else {
                return Err(StoreError("Redis answered an unknown reap action".into()));
            };
            actions.push(ReapAction { stream_id: id.clone(), reason, attempt });
        }
        actions.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        Ok(actions)
    }
}

fn parse_url(raw: &str) -> Option<Url> {
    (!raw.is_empty()).then(|| Url::parse(raw).ok()).flatten()
}

impl StoreApi for RedisStore {
    fn durable(&self) -> bool {
        true
    }

    async fn issue_session(&self, id: &SessionId, now: Ms) -> StoreResult<()> {
        let mut inv = self.scripts.issue.prepare_invoke();
        inv.key(self.session_key(id)).arg(now.0).arg(ms(self.rules.session_idle));
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn resume_session(&self, id: &SessionId, now: Ms) -> StoreResult<bool> {
        let mut inv = self.scripts.resume.prepare_invoke();
        inv.key(self.session_key(id)).arg(now.0).arg(ms(self.rules.session_idle));
        Ok(inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)? == 1)
    }

    async fn begin_create(&self, session: &SessionId, now: Ms) -> StoreResult<Result<(), Conflict>> {
        let mut inv = self.scripts.begin_create.prepare_invoke();
        inv.key(self.session_key(session)).arg(now.0).arg(ms(self.rules.create_lease)).arg(ms(self.rules.session_idle));
        let answer: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
        Ok(match answer.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("stream") => Err(Conflict { active_stream_id: answer.get(1).cloned() }),
            _ => Err(Conflict { active_stream_id: None }),
        })
    }

    async fn finish_create(&self, r: &StreamRecord, now: Ms) -> StoreResult<Option<u32>> {
        let mut inv = self.scripts.finish_create.prepare_invoke();
        inv.key(self.session_key(&r.owner))
            .key(self.stream_key(&r.id))
            .key(self.due_key())
            .arg(now.0)
            .arg(&r.id)
            .arg(r.owner.as_str())
            .arg(&r.model_id)
            .arg(r.whip_url.as_str())
            .arg(ms(self.rules.reap_after))
            .arg(ms(self.rules.delete_lease))
            .arg(ms(self.rules.session_idle))
            .arg(&self.prefix);
        let n: u32 = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
        Ok((n > 0).then_some(n))
    }

    async fn abort_create(&self, session: &SessionId, now: Ms) -> StoreResult<()> {
        let mut inv = self.scripts.abort_create.prepare_invoke();
        inv.key(self.session_key(session)).arg(now.0).arg(ms(self.rules.session_idle));
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn end_pending_create(&self, session: &SessionId) -> StoreResult<bool> {
        let mut inv = self.scripts.end_pending.prepare_invoke();
        inv.key(self.session_key(session));
        Ok(inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)? == 1)
    }

    async fn active_stream(&self, session: &SessionId) -> StoreResult<Option<String>> {
        let (slot, stream): (Option<String>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.session_key(session))
            .arg("slot")
            .arg("stream")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        Ok(if slot.as_deref() == Some("stream") { stream } else { None })
    }

    async fn authorize(&self, session: &SessionId, id: &str, touch: Option<Ms>) -> StoreResult<Access> {
        let mut inv = self.scripts.authorize.prepare_invoke();
        inv.key(self.stream_key(id))
            .key(self.due_key())
            .arg(session.as_str())
            .arg(id)
            .arg(touch.map(|t| t.0.to_string()).unwrap_or_default())
            .arg(ms(self.rules.reap_after));
        access(session, id, inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?)
    }

    async fn resume_and_authorize(&self, session: &SessionId, id: &str, now: Ms) -> StoreResult<Access> {
        let mut inv = self.scripts.resume_authorize.prepare_invoke();
        inv.key(self.session_key(session))
            .key(self.stream_key(id))
            .key(self.due_key())
            .arg(now.0)
            .arg(ms(self.rules.session_idle))
            .arg(session.as_str())
            .arg(id)
            .arg(ms(self.rules.reap_after));
        access(session, id, inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?)
    }

    async fn update_record(&self, id: &str, update: &RecordUpdate) -> StoreResult<()> {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        match update {
            RecordUpdate::WhipAnswer { resource, playback } => {
                pairs.push(("whip_res", url_text(resource)));
                if playback.is_some() {
                    pairs.push(("whep", url_text(playback)));
                }
            }
            RecordUpdate::WhepUrl(u) => pairs.push(("whep", u.to_string())),
            RecordUpdate::WhipResource(u) => pairs.push(("whip_res", url_text(u))),
            RecordUpdate::WhepResource(u) => pairs.push(("whep_res", url_text(u))),
        }
        let mut inv = self.scripts.update_record.prepare_invoke();
        inv.key(self.stream_key(id));
        for (field, value) in pairs {
            inv.arg(field).arg(value);
        }
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn begin_delete(&self, id: &str, now: Ms) -> StoreResult<Option<u32>> {
        let mut inv = self.scripts.begin_delete.prepare_invoke();
        inv.key(self.stream_key(id))
            .key(self.due_key())
            .arg(id)
            .arg(now.0)
            .arg(ms(self.rules.delete_lease))
            .arg(ms(self.rules.session_idle))
            .arg(&self.prefix);
        let n: u32 = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
        Ok((n > 0).then_some(n))
    }

    async fn delete_succeeded(&self, id: &str, now: Ms) -> StoreResult<()> {
        let mut inv = self.scripts.delete_succeeded.prepare_invoke();
        inv.key(self.stream_key(id))
            .key(self.due_key())
            .arg(id)
            .arg(now.0)
            .arg(ms(self.rules.tombstone_ttl).max(1))
            .arg(ms(self.rules.session_idle))
            .arg(&self.prefix);
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn delete_failed(&self, id: &str, attempt: u32, now: Ms) -> StoreResult<FailOutcome> {
        let mut inv = self.scripts.delete_failed.prepare_invoke();
        inv.key(self.stream_key(id))
            .key(self.due_key())
            .key(self.parked_key())
            .arg(id)
            .arg(attempt)
            .arg(now.0)
            .arg(ms(self.rules.retry_base))
            .arg(ms(self.rules.retry_max))
            .arg(self.rules.max_attempts)
            .arg(ms(self.rules.tombstone_ttl).max(1));
        let answer: String = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
        Ok(match answer.as_str() {
            "retry" => FailOutcome::Retry,
            "gaveup" => FailOutcome::GaveUp,
            _ => FailOutcome::Ignored,
        })
    }

    async fn claim_due(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        self.claim(now, CLAIM_BATCH as i64, now.0.to_string(), false).await
    }

    async fn drain(&self, now: Ms) -> StoreResult<Vec<ReapAction>> {
        self.claim(now, -1, "+inf".into(), true).await
    }

    async fn known_streams(&self, ids: &[String]) -> StoreResult<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.exists(self.stream_key(id));
        }
        pipe.query_async(&mut self.conn.clone()).await.map_err(err)
    }

    async fn open_streams(&self) -> StoreResult<usize> {
        let n: usize =
            ::redis::cmd("ZCARD").arg(self.due_key()).query_async(&mut self.conn.clone()).await.map_err(err)?;
        Ok(n)
    }

    async fn park(&self, ids: &[String]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        ::redis::cmd("SADD")
            .arg(self.parked_key())
            .arg(ids)
            .query_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn take_parked(&self) -> StoreResult<Vec<String>> {
        let mut inv = self.scripts.take_parked.prepare_invoke();
        inv.key(self.parked_key());
        inv.invoke_async(&mut self.conn.clone()).await.map_err(err)
    }

    async fn ping(&self) -> StoreResult<()> {
        ::redis::cmd("PING").query_async::<String>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn claim_poll(&self, id: &str, holder: &str, now: Ms, lease: Duration) -> StoreResult<bool> {
        let mut inv = self.scripts.claim_poll.prepare_invoke();
        inv.key(self.poll_key(id)).arg(holder).arg(now.0).arg(ms(lease));
        Ok(inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)? == 1)
    }

    async fn release_poll(&self, id: &str, holder: &str) -> StoreResult<()> {
        let mut inv = self.scripts.release_poll.prepare_invoke();
        inv.key(self.poll_key(id)).key(self.published_key(id)).arg(holder);
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn publish_status(&self, id: &str, text: &str, now: Ms, ttl: Duration) -> StoreResult<()> {
        let mut inv = self.scripts.publish_status.prepare_invoke();
        inv.key(self.published_key(id)).arg(now.0).arg(ms(ttl)).arg(text);
        inv.invoke_async::<i64>(&mut self.conn.clone()).await.map_err(err)?;
        Ok(())
    }

    async fn latest_status(&self, id: &str, now: Ms) -> StoreResult<Option<Published>> {
        let (at, until, text): (Option<u64>, Option<u64>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.published_key(id))
            .arg("at")
            .arg("until")
            .arg("text")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        let stored = match (at, until, text) {
            (Some(at), Some(until), Some(text)) => Some(Published { at: Ms(at), until: Ms(until), text }),
            _ => None,
        };
        Ok(Published::fresh(stored.as_ref(), now).cloned())
    }
}

/// An AUTHORIZE (or RESUME_AUTHORIZE) script's answer `f` for `session` and stream `id`.
fn access(session: &SessionId, id: &str, f: Vec<String>) -> StoreResult<Access> {
    let record = || -> StoreResult<StreamRecord> {
        let bad = || StoreError("Redis holds a malformed stream record".into());
        let whip_url = f.get(2).and_then(|u| parse_url(u)).ok_or_else(bad)?;
        Ok(StreamRecord {
            id: id.to_string(),
            owner: session.clone(),
            model_id: f.get(1).cloned().ok_or_else(bad)?,
            whip_url,
            whip_resource: f.get(3).and_then(|u| parse_url(u)),
            whep_url: f.get(4).and_then(|u| parse_url(u)),
            whep_resource: f.get(5).and_then(|u| parse_url(u)),
        })
    };
    Ok(match f.first().map(String::as_str) {
        Some("live") => Access::Live(record()?),
        Some("deleting") => Access::Deleting(record()?),
        Some("gone") => Access::Gone,
        _ => Access::NotOwned,
    })
}
