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
use ::redis::{RedisError, Script};
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

/// Lua helpers shared by the scripts (a macro so `concat!` can prepend them).
macro_rules! lua_lib {
    () => {
        r#"
local function expire_session(ks, now, idle)
  local seen = tonumber(redis.call('hget', ks, 'seen') or '0')
  local ttl = seen + idle - now
  if ttl <= 0 then redis.call('del', ks) else redis.call('pexpire', ks, ttl) end
end
local function release(prefix, owner, id, now, idle)
  if not owner then return end
  local ks = prefix .. 's:' .. owner
  if redis.call('hget', ks, 'slot') == 'stream' and redis.call('hget', ks, 'stream') == id then
    redis.call('hset', ks, 'slot', 'none')
    redis.call('hdel', ks, 'stream')
    expire_session(ks, now, idle)
  end
end
local function start_attempt(kt, due, id, now, lease)
  local phase = redis.call('hget', kt, 'phase')
  if phase == 'live' then
    redis.call('hset', kt, 'phase', 'deleting', 'attempts', 1, 'inflight', 1, 'at', now + lease)
  elseif phase == 'deleting' then
    redis.call('hincrby', kt, 'attempts', 1)
    redis.call('hset', kt, 'inflight', 1, 'at', now + lease)
  else
    return 0
  end
  redis.call('zadd', due, now + lease, id)
  return tonumber(redis.call('hget', kt, 'attempts'))
end
"#
    };
}

/// KEYS: session. ARGV: now, idle.
const ISSUE: &str = r#"
redis.call('del', KEYS[1])
redis.call('hset', KEYS[1], 'slot', 'none', 'seen', ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: session. ARGV: now, idle.
const RESUME: &str = concat!(
    lua_lib!(),
    r#"
local ks = KEYS[1]
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = redis.call('hget', ks, 'slot')
if not slot then return 0 end
local seen = tonumber(redis.call('hget', ks, 'seen') or '0')
if slot == 'none' and now - seen >= idle then
  redis.call('del', ks)
  return 0
end
if now > seen then redis.call('hset', ks, 'seen', now) end
if slot == 'none' then expire_session(ks, now, idle) end
return 1
"#
);

/// KEYS: session. ARGV: now, create_lease, idle.
const BEGIN_CREATE: &str = r#"
local ks = KEYS[1]
local now, lease, idle = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = redis.call('hget', ks, 'slot')
if slot == 'stream' then return {'stream', redis.call('hget', ks, 'stream')} end
if (slot == 'creating' or slot == 'ended') and tonumber(redis.call('hget', ks, 'since') or '0') + lease > now then
  return {'creating'}
end
redis.call('hset', ks, 'slot', 'creating', 'since', now)
if not redis.call('hget', ks, 'seen') then redis.call('hset', ks, 'seen', now) end
redis.call('pexpire', ks, lease + idle)
return {'ok'}
"#;

/// KEYS: session. ARGV: now, idle.
const ABORT_CREATE: &str = concat!(
    lua_lib!(),
    r#"
local ks = KEYS[1]
local slot = redis.call('hget', ks, 'slot')
if slot == 'creating' or slot == 'ended' then
  redis.call('hset', ks, 'slot', 'none')
  redis.call('hdel', ks, 'since')
  expire_session(ks, tonumber(ARGV[1]), tonumber(ARGV[2]))
end
return 1
"#
);

/// KEYS: session.
const END_PENDING: &str = r#"
local slot = redis.call('hget', KEYS[1], 'slot')
if slot == 'creating' then redis.call('hset', KEYS[1], 'slot', 'ended') return 1 end
if slot == 'ended' then return 1 end
return 0
"#;

/// KEYS: session, stream, due. ARGV: now, id, owner, model, whip, reap_after, lease, idle, prefix.
const FINISH_CREATE: &str = concat!(
    lua_lib!(),
    r#"
local ks, kt, due = KEYS[1], KEYS[2], KEYS[3]
local now, id, owner = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local ended = redis.call('hget', ks, 'slot') == 'ended'
redis.call('hset', ks, 'slot', 'stream', 'stream', id)
redis.call('hdel', ks, 'since')
if not redis.call('hget', ks, 'seen') then redis.call('hset', ks, 'seen', now) end
redis.call('persist', ks)
redis.call('del', kt)
redis.call('hset', kt, 'owner', owner, 'model', ARGV[4], 'whip', ARGV[5], 'phase', 'live', 'seen', now, 'attempts', 0)
redis.call('zadd', due, now + tonumber(ARGV[6]), id)
if ended then
  local n = start_attempt(kt, due, id, now, tonumber(ARGV[7]))
  release(ARGV[9], owner, id, now, tonumber(ARGV[8]))
  return n
end
return 0
"#
);

/// KEYS: stream, due. ARGV: session, id, touch now ('' for none), reap_after.
const AUTHORIZE: &str = r#"
local kt, due = KEYS[1], KEYS[2]
local f = redis.call('hmget', kt, 'owner', 'phase', 'seen', 'model', 'whip', 'whip_res', 'whep', 'whep_res')
if f[1] ~= ARGV[1] then return {'notowned'} end
local phase = f[2]
if phase == 'live' and ARGV[3] ~= '' then
  local now = tonumber(ARGV[3])
  if now > tonumber(f[3] or '0') then
    redis.call('hset', kt, 'seen', now)
    redis.call('zadd', due, now + tonumber(ARGV[4]), ARGV[2])
  end
end
if phase == 'live' or phase == 'deleting' then
  return {phase, f[4] or '', f[5] or '', f[6] or '', f[7] or '', f[8] or ''}
end
return {'gone'}
"#;

/// KEYS: stream. ARGV: field, value pairs ('' deletes the field).
const UPDATE_RECORD: &str = r#"
if redis.call('exists', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('hdel', KEYS[1], ARGV[i]) else redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"#;

/// KEYS: stream, due. ARGV: id, now, lease, idle, prefix.
const BEGIN_DELETE: &str = concat!(
    lua_lib!(),
    r#"
local kt, due = KEYS[1], KEYS[2]
local id, now = ARGV[1], tonumber(ARGV[2])
local phase = redis.call('hget', kt, 'phase')
if not phase then return 0 end
local n = 0
local in_flight = phase == 'deleting' and redis.call('hget', kt, 'inflight') == '1'
  and tonumber(redis.call('hget', kt, 'at') or '0') > now
if not in_flight then n = start_attempt(kt, due, id, now, tonumber(ARGV[3])) end
release(ARGV[5], redis.call('hget', kt, 'owner'), id, now, tonumber(ARGV[4]))
return n
"#
);

/// KEYS: stream, due. ARGV: id, now, tombstone_ttl, idle, prefix.
const DELETE_SUCCEEDED: &str = concat!(
    lua_lib!(),
    r#"
local kt, due = KEYS[1], KEYS[2]
local id, now = ARGV[1], tonumber(ARGV[2])
if redis.call('exists', kt) == 0 then return 0 end
redis.call('hset', kt, 'phase', 'gone')
redis.call('hdel', kt, 'inflight', 'at')
redis.call('zrem', due, id)
redis.call('pexpire', kt, ARGV[3])
release(ARGV[5], redis.call('hget', kt, 'owner'), id, now, tonumber(ARGV[4]))
return 1
"#
);

/// KEYS: stream, due, parked. ARGV: id, attempt, now, retry_base, retry_max, max_attempts, tombstone_ttl.
const DELETE_FAILED: &str = r#"
local kt, due, parked = KEYS[1], KEYS[2], KEYS[3]
local id, now = ARGV[1], tonumber(ARGV[3])
if redis.call('hget', kt, 'phase') ~= 'deleting' then return 'ignored' end
local attempts = tonumber(redis.call('hget', kt, 'attempts'))
if attempts ~= tonumber(ARGV[2]) then return 'ignored' end
if attempts >= tonumber(ARGV[6]) then
  redis.call('hset', kt, 'phase', 'gone')
  redis.call('hdel', kt, 'inflight', 'at')
  redis.call('zrem', due, id)
  redis.call('pexpire', kt, ARGV[7])
  redis.call('sadd', parked, id)
  return 'gaveup'
end
local shift = math.min(math.max(attempts - 1, 0), 16)
local delay = math.min(tonumber(ARGV[4]) * (2 ^ shift), tonumber(ARGV[5]))
redis.call('hset', kt, 'inflight', 0, 'at', now + delay)
redis.call('zadd', due, now + delay, id)
return 'retry'
"#;

/// KEYS: due. ARGV: now, limit (-1: all), lease, idle, prefix, max score, drain ('1' or '0').
const CLAIM_DUE: &str = concat!(
    lua_lib!(),
    r#"
local due = KEYS[1]
local now, lease, idle, prefix = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local drain = ARGV[7] == '1'
local ids = redis.call('zrangebyscore', due, '-inf', ARGV[6], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local kt = prefix .. 't:' .. id
  local phase = redis.call('hget', kt, 'phase')
  local reason = nil
  if phase == 'live' then
    reason = 'silent'
  elseif phase == 'deleting' then
    if redis.call('hget', kt, 'inflight') == '1' then reason = 'lease_expired' else reason = 'retry' end
  end
  if reason then
    if drain then reason = 'shutdown' end
    local n = start_attempt(kt, due, id, now, lease)
    release(prefix, redis.call('hget', kt, 'owner'), id, now, idle)
    table.insert(out, id)
    table.insert(out, reason)
    table.insert(out, tostring(n))
  else
    redis.call('zrem', due, id)
  end
end
return out
"#
);

/// KEYS: parked.
const TAKE_PARKED: &str = r#"
local ids = redis.call('smembers', KEYS[1])
redis.call('del', KEYS[1])
return ids
"#;

/// KEYS: lease. ARGV: holder, now, lease. The rule of [`crate::poll_lease::PollLease::claim`].
const CLAIM_POLL: &str = r#"
local holder = redis.call('hget', KEYS[1], 'holder')
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
if holder and holder ~= ARGV[1] and tonumber(redis.call('hget', KEYS[1], 'until') or '0') > now then
  return 0
end
redis.call('hset', KEYS[1], 'holder', ARGV[1], 'until', now + lease)
redis.call('pexpire', KEYS[1], lease * 10)
return 1
"#;

/// KEYS: lease, published. ARGV: holder.
const RELEASE_POLL: &str = r#"
if redis.call('hget', KEYS[1], 'holder') == ARGV[1] then
  redis.call('del', KEYS[1], KEYS[2])
end
return 1
"#;

/// KEYS: published. ARGV: now, ttl, text.
const PUBLISH_STATUS: &str = r#"
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('hset', KEYS[1], 'at', now, 'until', now + ttl, 'text', ARGV[3])
redis.call('pexpire', KEYS[1], ttl * 10)
return 1
"#;

#[derive(Debug)]
struct Scripts {
    issue: Script,
    resume: Script,
    begin_create: Script,
    abort_create: Script,
    end_pending: Script,
    finish_create: Script,
    authorize: Script,
    update_record: Script,
    begin_delete: Script,
    delete_succeeded: Script,
    delete_failed: Script,
    claim_due: Script,
    take_parked: Script,
    claim_poll: Script,
    release_poll: Script,
    publish_status: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            issue: Script::new(ISSUE),
            resume: Script::new(RESUME),
            begin_create: Script::new(BEGIN_CREATE),
            abort_create: Script::new(ABORT_CREATE),
            end_pending: Script::new(END_PENDING),
            finish_create: Script::new(FINISH_CREATE),
            authorize: Script::new(AUTHORIZE),
            update_record: Script::new(UPDATE_RECORD),
            begin_delete: Script::new(BEGIN_DELETE),
            delete_succeeded: Script::new(DELETE_SUCCEEDED),
            delete_failed: Script::new(DELETE_FAILED),
            claim_due: Script::new(CLAIM_DUE),
            take_parked: Script::new(TAKE_PARKED),
            claim_poll: Script::new(CLAIM_POLL),
            release_poll: Script::new(RELEASE_POLL),
            publish_status: Script::new(PUBLISH_STATUS),
        }
    }
}

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
        let f: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(err)?;
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
