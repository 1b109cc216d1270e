//! The Redis store's Lua scripts: one per transition of [`crate::registry`]'s
//! rules, each run atomically by Redis (see [`super::redis`] for the keys).

use ::redis::Script;

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
local function resume_session(ks, now, idle)
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
end
local function authorize_stream(kt, due, owner, id, touch, reap_after)
  local f = redis.call('hmget', kt, 'owner', 'phase', 'seen', 'model', 'whip', 'whip_res', 'whep', 'whep_res')
  if f[1] ~= owner then return {'notowned'} end
  local phase = f[2]
  if phase == 'live' and touch ~= '' then
    local now = tonumber(touch)
    if now > tonumber(f[3] or '0') then
      redis.call('hset', kt, 'seen', now)
      redis.call('zadd', due, now + tonumber(reap_after), id)
    end
  end
  if phase == 'live' or phase == 'deleting' then
    return {phase, f[4] or '', f[5] or '', f[6] or '', f[7] or '', f[8] or ''}
  end
  return {'gone'}
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
return resume_session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
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
const AUTHORIZE: &str = concat!(
    lua_lib!(),
    r#"
return authorize_stream(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"#
);

/// RESUME then AUTHORIZE in one round trip (a stream route's request); an unknown session
/// owns nothing. KEYS: session, stream, due. ARGV: now, idle, session, id, reap_after.
const RESUME_AUTHORIZE: &str = concat!(
    lua_lib!(),
    r#"
if resume_session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])) == 0 then return {'notowned'} end
return authorize_stream(KEYS[2], KEYS[3], ARGV[3], ARGV[4], ARGV[1], ARGV[5])
"#
);

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
pub(super) struct Scripts {
    pub(super) issue: Script,
    pub(super) resume: Script,
    pub(super) begin_create: Script,
    pub(super) abort_create: Script,
    pub(super) end_pending: Script,
    pub(super) finish_create: Script,
    pub(super) authorize: Script,
    pub(super) resume_authorize: Script,
    pub(super) update_record: Script,
    pub(super) begin_delete: Script,
    pub(super) delete_succeeded: Script,
    pub(super) delete_failed: Script,
    pub(super) claim_due: Script,
    pub(super) take_parked: Script,
    pub(super) claim_poll: Script,
    pub(super) release_poll: Script,
    pub(super) publish_status: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            issue: Script::new(ISSUE),
            resume: Script::new(RESUME),
            begin_create: Script::new(BEGIN_CREATE),
            abort_create: Script::new(ABORT_CREATE),
            end_pending: Script::new(END_PENDING),
            finish_create: Script::new(FINISH_CREATE),
            authorize: Script::new(AUTHORIZE),
            resume_authorize: Script::new(RESUME_AUTHORIZE),
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
