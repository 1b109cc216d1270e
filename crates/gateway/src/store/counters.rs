//! The per-client limits' counters in Redis ([`crate::limits::Counters`]), so
//! that every gateway instance on one Redis counts the same creates and live
//! streams per client: one client cannot multiply its allowance by the number
//! of instances behind the load balancer.
//!
//! Keys, under the store's prefix: `lim:<key>` (the limiter's key, e.g.
//! `create:a:192.0.2.1`), a counter (`INCR`, expiring with the window) or a
//! sorted set of sessions scored by admission time (milliseconds). Each
//! operation is one Lua script, atomic in Redis. Windows expire on Redis'
//! clock; set members carry the caller's `now`.

use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::Script;

use crate::limits::{CounterError, CounterFuture, Counters};

/// KEYS: counter. ARGV: ttl (ms). Returns `{count, ttl left (ms)}`; a new
/// counter (or one that somehow lost its expiry) expires `ttl` from now,
/// incrementing does not extend it.
const INCR: &str = r#"
local n = redis.call('incr', KEYS[1])
if n == 1 or redis.call('pttl', KEYS[1]) < 0 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return {n, redis.call('pttl', KEYS[1])}
"#;

/// KEYS: set. ARGV: now (ms), member, ttl (ms). Returns every member and its
/// time, flattened.
const ADD_MEMBER: &str = r#"
redis.call('zadd', KEYS[1], ARGV[1], ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[3])
return redis.call('zrange', KEYS[1], 0, -1, 'WITHSCORES')
"#;

/// [`Counters`] kept in the Redis store (see the module docs).
#[derive(Clone)]
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    incr: Script,
    add_member: Script,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Counters on `conn`, keys under `prefix` (the store's prefix).
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, prefix: format!("{prefix}lim:"), incr: Script::new(INCR), add_member: Script::new(ADD_MEMBER) }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn failed(e: ::redis::RedisError) -> CounterError {
    CounterError(e.to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Counters for RedisCounters {
    fn incr<'a>(&'a self, key: &'a str, ttl: Duration, _now: Duration) -> CounterFuture<'a, (u64, Duration)> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (n, left): (u64, i64) =
                self.incr.key(self.key(key)).arg(ms(ttl).max(1)).invoke_async(&mut conn).await.map_err(failed)?;
            Ok((n, Duration::from_millis(left.max(0) as u64)))
        })
    }

    fn add_member<'a>(
        &'a self,
        key: &'a str,
        member: &'a str,
        ttl: Duration,
        now: Duration,
    ) -> CounterFuture<'a, Vec<(String, Duration)>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let flat: Vec<String> = self
                .add_member
                .key(self.key(key))
                .arg(ms(now))
                .arg(member)
                .arg(ms(ttl).max(1))
                .invoke_async(&mut conn)
                .await
                .map_err(failed)?;
            let mut members = Vec::with_capacity(flat.len() / 2);
            for pair in flat.chunks_exact(2) {
                let at: f64 = pair[1].parse().map_err(|_| CounterError(format!("bad score {:?}", pair[1])))?;
                members.push((pair[0].clone(), Duration::from_millis(at.max(0.0) as u64)));
            }
            Ok(members)
        })
    }

    fn remove_member<'a>(&'a self, key: &'a str, member: &'a str) -> CounterFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            ::redis::cmd("ZREM").arg(self.key(key)).arg(member).query_async::<()>(&mut conn).await.map_err(failed)
        })
    }
}
