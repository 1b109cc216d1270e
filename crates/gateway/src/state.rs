//! The stream service: the one owner of the gateway's state, and the driver
//! of its reaper.
//!
//! [`AppState`] holds the configuration, the upstream clients and the
//! [`Ledger`]: the ownership registry ([`Registry`], pure decisions about
//! streams) and the issued-session book ([`SessionBook`], pure decisions
//! about sessions), behind one lock. The service asks them what to do, does
//! the upstream IO (create, delete) and reports the outcomes back; nothing
//! else in the crate changes them except through the methods here.
//!
//! Upstream work that changes the ledger (create, delete, and the WHIP/WHEP
//! answers in [`crate::proxy`]) runs in its own task ([`detached`]), so a
//! browser that disconnects mid-request cannot leave a created stream
//! unrecorded (and thus never reaped).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use dreamgate_client::ApiError as UpstreamError;
use dreamgate_model::CreatePayload;

use crate::error::HttpError;
use crate::registry::{valid_stream_id, Access, ReapAction, Registry, RegistryConfig, StreamRecord};
use crate::session::{SessionBook, SessionId};
use crate::upstream::Upstream;
use crate::{GatewayConfig, ShutdownReport};

/// Everything the gateway remembers about sessions and streams: the pure
/// machines the [`AppState`] applies, kept together because a session's
/// expiry depends on whether it holds a stream.
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

    /// The session of a request whose cookie names `cookie`: that one when
    /// this gateway issued it and still remembers it (its activity recorded),
    /// else a fresh one from `fresh`, issued now. `true` when fresh.
    pub fn resume_or_issue(
        &mut self,
        cookie: Option<SessionId>,
        now: Instant,
        fresh: impl FnOnce() -> SessionId,
    ) -> (SessionId, bool) {
        let (registry, sessions) = (&self.registry, &mut self.sessions);
        let holds = |s: &SessionId| registry.has_slot(s);
        match cookie.filter(|id| sessions.resume(id, now, holds)) {
            Some(id) => (id, false),
            None => {
                let id = fresh();
                sessions.issue(id.clone(), now, holds);
                (id, true)
            }
        }
    }

    /// Advances time: the deletes to perform now (see [`Registry::tick`]);
    /// idle sessions holding nothing are forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<ReapAction> {
        let actions = self.registry.tick(now);
        let registry = &self.registry;
        self.sessions.forget_idle(now, |s| registry.has_slot(s));
        actions
    }
}

/// The stream service shared by the handlers (see the module docs).
#[derive(Debug)]
pub struct AppState {
    cfg: GatewayConfig,
    upstream: Upstream,
    ledger: Mutex<Ledger>,
}

impl AppState {
    /// State for a gateway with this configuration and upstream.
    pub fn new(cfg: GatewayConfig, upstream: Upstream) -> Self {
        let ledger = Mutex::new(Ledger::new(cfg.registry));
        Self { cfg, upstream, ledger }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is never left half-updated, so a poisoned lock is still usable.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// The upstream clients (API and WHIP/WHEP).
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Streams still live or being deleted.
    pub fn open_streams(&self) -> usize {
        self.ledger().registry.open_streams()
    }

    /// The request's session: the cookie's if this gateway issued it, else a
    /// fresh one (`true`: set its cookie).
    pub(crate) fn session(&self, cookie: Option<SessionId>) -> (SessionId, bool) {
        self.ledger().resume_or_issue(cookie, Instant::now(), SessionId::generate)
    }

    /// The live stream `id` if `session` owns it (and records the activity).
    pub(crate) fn owned(&self, session: &SessionId, id: &str) -> Result<StreamRecord, HttpError> {
        let mut ledger = self.ledger();
        match ledger.registry.authorize(session, id) {
            Access::Live(record) => {
                ledger.registry.touch(id, Instant::now());
                Ok(record)
            }
            Access::Deleting(_) | Access::Gone => Err(HttpError::stream_gone(id)),
            Access::NotOwned => Err(HttpError::not_owned()),
        }
    }

    /// Whether `session` holds a stream or a create in flight (for the per-client limits).
    pub(crate) fn holds_stream(&self, session: &SessionId) -> bool {
        self.ledger().registry.has_slot(session)
    }

    /// Updates the stored upstream URLs of stream `id` (after a WHIP/WHEP answer).
    pub(crate) fn update_record(&self, id: &str, update: impl FnOnce(&mut StreamRecord)) {
        self.ledger().registry.update_record(id, update);
    }

    /// Creates a stream for `session`: 409 when it already has one, else the
    /// upstream create (detached) and the stream object.
    pub(crate) async fn create(
        self: Arc<Self>,
        session: SessionId,
        payload: CreatePayload,
    ) -> Result<Value, HttpError> {
        if let Err(conflict) = self.ledger().registry.begin_create(&session) {
            return Err(HttpError::stream_active(conflict.active_stream_id));
        }
        detached(self.create_reserved(session, payload)).await
    }

    /// Creates the stream upstream and records it (the session's slot is
    /// reserved; any failure releases it).
    async fn create_reserved(self: Arc<Self>, session: SessionId, payload: CreatePayload) -> Result<Value, HttpError> {
        let (stream, record) = match self.create_upstream(&session, &payload).await {
            Ok(created) => created,
            Err(e) => {
                self.ledger().registry.abort_create(&session);
                return Err(e);
            }
        };
        let id = record.id.clone();
        let ended = self.ledger().registry.finish_create(record, Instant::now());
        tracing::info!(stream_id = %id, "stream created");
        if ended {
            tracing::info!(stream_id = %id, "session ended during the create: deleting the stream");
            let _ = self.delete_upstream(&id).await;
        }
        Ok(stream)
    }

    /// The upstream create: the stream object and the record to keep. A
    /// stream whose WHIP URL the policy refuses is deleted again at once.
    async fn create_upstream(
        &self,
        session: &SessionId,
        payload: &CreatePayload,
    ) -> Result<(Value, StreamRecord), HttpError> {
        let body = serde_json::to_value(payload).map_err(HttpError::internal)?;
        let stream = self.upstream.api().create_stream(&body).await.map_err(|e| {
            tracing::warn!(error = %self.upstream.log_text(&e), "stream create failed upstream");
            self.upstream.api_error(&e)
        })?;
        let Some(id) = stream.get("id").and_then(Value::as_str).filter(|id| valid_stream_id(id)) else {
            return Err(HttpError::no_stream_id());
        };
        let id = id.to_string();
        let whip = match stream.get("whip_url").and_then(Value::as_str) {
            Some(raw) => self.upstream.policy().check(raw).map_err(|r| r.to_string()),
            None => Err("the stream object has no whip_url".to_string()),
        };
        let whip_url = match whip {
            Ok(url) => url,
            Err(why) => {
                tracing::warn!(stream_id = %id, reason = %why, "refusing created stream: WHIP URL not allowed; deleting it");
                if let Err(e) = self.upstream.api().delete_stream(&id).await {
                    let error = self.upstream.log_text(&e);
                    tracing::warn!(stream_id = %id, %error, "could not delete the refused stream");
                }
                return Err(HttpError::whip_url_refused(&why));
            }
        };
        let model_id = [&stream, &body]
            .into_iter()
            .find_map(|v| v.pointer("/params/model_id").and_then(Value::as_str))
            .unwrap_or(dreamgate_model::catalog::DEFAULT_MODEL_ID)
            .to_string();
        let record = StreamRecord {
            id,
            owner: session.clone(),
            model_id,
            whip_url,
            whip_resource: None,
            whep_url: None,
            whep_resource: None,
        };
        Ok((stream, record))
    }

    /// Deletes upstream and records the outcome (404/405 = already gone).
    async fn delete_upstream(&self, id: &str) -> Result<(), HttpError> {
        let result = self.upstream.api().delete_stream(id).await;
        let now = Instant::now();
        match result {
            Ok(()) | Err(UpstreamError::Upstream { status: 404 | 405, .. }) => {
                self.ledger().registry.delete_succeeded(id, now);
                tracing::info!(stream_id = %id, "stream deleted upstream");
                Ok(())
            }
            Err(e) => {
                let retry = self.ledger().registry.delete_failed(id, now);
                tracing::warn!(stream_id = %id, error = %self.upstream.log_text(&e), retry, "stream delete failed");
                Err(self.upstream.api_error(&e))
            }
        }
    }

    /// The session ends stream `id` (DELETE route, end beacon): deletes it
    /// upstream unless it is already gone. Idempotent.
    pub(crate) async fn end_owned(self: Arc<Self>, session: &SessionId, id: String) -> Result<Value, HttpError> {
        let access = self.ledger().registry.authorize(session, &id);
        match access {
            Access::NotOwned => Err(HttpError::not_owned()),
            Access::Gone => Ok(json!({ "success": true, "id": id })),
            Access::Live(_) | Access::Deleting(_) => {
                tracing::info!(stream_id = %id, "owner ends the stream");
                detached(self.end_stream(id)).await
            }
        }
    }

    /// The session ends its active stream (end beacon without an id); a
    /// create still in flight is deleted as soon as it completes (`pending`).
    pub(crate) async fn end_active(self: Arc<Self>, session: &SessionId) -> Result<Value, HttpError> {
        let id = {
            let mut ledger = self.ledger();
            match ledger.registry.active_stream(session) {
                Some(id) => id.to_string(),
                None => {
                    let pending = ledger.registry.end_pending_create(session);
                    return Ok(json!({ "success": true, "id": null, "pending": pending }));
                }
            }
        };
        self.end_owned(session, id).await
    }

    async fn end_stream(self: Arc<Self>, id: String) -> Result<Value, HttpError> {
        if !self.ledger().registry.begin_delete(&id) {
            return Ok(json!({ "success": true, "id": id, "pending": true }));
        }
        self.delete_upstream(&id).await?;
        Ok(json!({ "success": true, "id": id }))
    }

    /// Deletes every stream still live or being deleted upstream, all at once,
    /// waiting at most `limit`; logs and reports what was deleted and what was not.
    pub async fn delete_all(self: &Arc<Self>, limit: Duration) -> ShutdownReport {
        let ids = self.ledger().registry.drain();
        let mut report = ShutdownReport::default();
        if ids.is_empty() {
            return report;
        }
        tracing::info!(streams = ids.len(), "deleting the remaining streams upstream");
        let mut tasks = tokio::task::JoinSet::new();
        for id in &ids {
            let (st, id) = (self.clone(), id.clone());
            tasks.spawn(async move {
                let ok = st.delete_upstream(&id).await.is_ok();
                (id, ok)
            });
        }
        let collect = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok((id, true)) = done {
                    report.deleted.push(id);
                }
            }
        };
        let timed_out = tokio::time::timeout(limit, collect).await.is_err();
        tasks.abort_all();
        report.deleted.sort();
        report.not_deleted = ids.into_iter().filter(|id| !report.deleted.contains(id)).collect();
        if !report.deleted.is_empty() {
            tracing::info!(deleted = ?report.deleted, "streams deleted upstream on shutdown");
        }
        if !report.not_deleted.is_empty() {
            tracing::warn!(
                not_deleted = ?report.not_deleted,
                timed_out,
                "could not delete these streams upstream on shutdown: they may still be running (and billed)"
            );
        }
        report
    }
}

/// Drives the reaper: every `reap_interval`, asks the ledger what to delete
/// and deletes it upstream (outcomes go back to the registry).
pub async fn run_reaper(st: Arc<AppState>) {
    let mut interval = tokio::time::interval(st.cfg.reap_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let actions = st.ledger().tick(Instant::now());
        for action in actions {
            let st = st.clone();
            tracing::info!(stream_id = %action.stream_id, reason = ?action.reason, "reaping stream");
            tokio::spawn(async move {
                let _ = st.delete_upstream(&action.stream_id).await;
            });
        }
    }
}

/// Runs `fut` in its own task so that a client disconnect cannot cancel it.
pub(crate) async fn detached<T: Send + 'static>(
    fut: impl Future<Output = Result<T, HttpError>> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::spawn(fut).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "request task failed");
        Err(HttpError::task_failed())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    #[test]
    fn only_an_issued_cookie_is_resumed_and_a_reaped_session_is_then_forgotten() {
        let t0 = Instant::now();
        let cfg = RegistryConfig { session_idle: Duration::from_secs(1800), ..RegistryConfig::default() };
        let mut ledger = Ledger::new(cfg);
        let (s, fresh) = ledger.resume_or_issue(None, t0, || sid(1));
        assert_eq!((s.clone(), fresh), (sid(1), true));
        assert_eq!(ledger.resume_or_issue(Some(sid(1)), t0, || sid(2)), (sid(1), false));
        assert_eq!(ledger.resume_or_issue(Some(sid(9)), t0, || sid(3)), (sid(3), true), "not issued here");
        // the session holds a stream: kept while it lives, however idle
        ledger.registry.begin_create(&s).unwrap();
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
        assert_eq!(ledger.resume_or_issue(Some(s), t0 + Duration::from_secs(1801), || sid(4)), (sid(4), true));
    }
}
