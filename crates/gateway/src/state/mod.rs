//! The stream service: the one code that applies the store's decisions, and
//! the driver of its reaper.
//!
//! [`AppState`] holds the configuration, the upstream clients and the
//! [`Store`] (in-process or Redis, see [`crate::store`]): every session,
//! ownership record, slot, tombstone and delete lease lives there, changed
//! only through the store's atomic transitions, called from here (and from
//! the WHIP/WHEP answers in [`crate::proxy`], through
//! [`AppState::update_record`]). The service asks the store what to do, does
//! the upstream IO (create, delete) and reports the outcomes back.
//!
//! Upstream work that changes the store (create, delete, and the WHIP/WHEP
//! answers in [`crate::proxy`]) runs in its own task ([`detached`]), so a
//! browser that disconnects mid-request cannot leave a created stream
//! unrecorded (and thus never reaped).
//!
//! # Creates that outlive the request
//!
//! A create answers 504 after [`GatewayConfig::api_timeout`], but the
//! upstream call goes on in the background (up to
//! [`GatewayConfig::create_timeout`]): the session's slot stays reserved
//! meanwhile (a retry gets 409, never a second stream), and the stream, once
//! made, is recorded for the session (or deleted, if the session ended it).
//! Shutdown waits (bounded) for these. Every stream is created with a
//! `name` starting with [`STREAM_TAG`], so the gateway's streams can be
//! recognised upstream.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use dreamgate_client::ApiError as UpstreamError;
use dreamgate_model::CreatePayload;

use crate::clock::Ms;
use crate::coalesce::SingleFlight;
use crate::error::HttpError;
use crate::registry::{valid_stream_id, Access, FailOutcome, RecordUpdate, StreamRecord};
use crate::session::SessionId;
use crate::store::{Store, StoreApi, StoreError};
use crate::sweep::OrphanBook;
use crate::upstream::Upstream;
use crate::watcher::Watchers;
use crate::{GatewayConfig, ShutdownReport};

mod background;
pub use background::run_reaper;

/// A stream's status as the status route relays it ([`AppState::stream_status`]).
#[derive(Debug, Clone)]
pub struct StatusAnswer {
    /// The upstream body, JSON, scrubbed.
    pub body: Bytes,
    /// The WHEP URL it names (`/data/gateway_status/whep_url`), as sent.
    pub whep: Option<Arc<str>>,
}

/// The `name` prefix of every stream the gateway creates.
pub const STREAM_TAG: &str = "dreamgate-";

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store call failed");
        HttpError::store_unavailable()
    }
}

/// Upstream work in flight that shutdown waits for (creates, parked deletes).
#[derive(Debug)]
struct InFlight(watch::Sender<usize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The stream service shared by the handlers (see the module docs).
#[derive(Debug)]
pub struct AppState {
    cfg: GatewayConfig,
    upstream: Upstream,
    store: Store,
    in_flight: watch::Sender<usize>,
    watchers: Watchers,
    status_flight: SingleFlight<Result<StatusAnswer, UpstreamError>>,
    orphans: std::sync::Mutex<OrphanBook>,
}

impl AppState {
    /// State for a gateway with this configuration, upstream and store.
    pub fn new(cfg: GatewayConfig, upstream: Upstream, store: Store) -> Self {
        let watchers = Watchers::new(cfg.watch_interval);
        Self {
            cfg,
            upstream,
            store,
            in_flight: watch::channel(0).0,
            watchers,
            status_flight: SingleFlight::default(),
            orphans: std::sync::Mutex::new(OrphanBook::default()),
        }
    }

    /// A stream's status from upstream, checked to be JSON, its WHEP URL read and its body
    /// scrubbed: polls of one stream that arrive while a call for it is in flight share that
    /// call and that work ([`crate::coalesce`]).
    pub async fn stream_status(&self, id: &str) -> Result<StatusAnswer, UpstreamError> {
        let (answer, _) = self
            .status_flight
            .run(id, || async {
                crate::metrics::status_call(crate::metrics::StatusCaller::Route);
                // Checked to be JSON and its WHEP URL read in one pass, without building a
                // JSON tree (the hot path of a polling page); scrubbed only when it may
                // carry a secret.
                let (code, body) = self.upstream.api().stream_status_raw(id).await?;
                let whep = crate::proxy::whep_url_in_status(&body).ok_or_else(|| UpstreamError::not_json(code))?;
                let body = self.upstream.scrubber().json_bytes(body);
                Ok(StatusAnswer { body, whep: whep.map(Arc::from) })
            })
            .await;
        answer
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The status watchers of the streams watched through this instance.
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    /// The upstream clients (API and WHIP/WHEP).
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn enter(&self) -> InFlight {
        self.in_flight.send_modify(|n| *n += 1);
        InFlight(self.in_flight.clone())
    }

    /// Sessions the gateway remembers (the `dreamgate_sessions` gauge): known
    /// with the in-process store only (a shared store is not scanned).
    pub fn live_sessions(&self) -> Option<usize> {
        self.store.session_count()
    }

    /// Waits (at most `limit`) until no create or parked delete is in flight;
    /// `false` if some still are.
    pub async fn wait_in_flight(&self, limit: Duration) -> bool {
        let mut rx = self.in_flight.subscribe();
        let idle = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await.is_ok();
        idle
    }

    /// Streams still live or being deleted.
    pub async fn open_streams(&self) -> Result<usize, StoreError> {
        self.store.open_streams().await
    }

    /// The session named by a request's cookie, if the store still remembers
    /// it (its activity recorded).
    pub(crate) async fn resume(&self, cookie: Option<SessionId>) -> Result<Option<SessionId>, HttpError> {
        let Some(id) = cookie else { return Ok(None) };
        Ok(self.store.resume_session(&id, Ms::now()).await?.then_some(id))
    }

    /// Issues a fresh session (its cookie is set on the response).
    pub(crate) async fn issue_session(&self) -> Result<SessionId, HttpError> {
        let id = SessionId::generate();
        self.store.issue_session(&id, Ms::now()).await?;
        Ok(id)
    }

    /// The live stream `id` if the session named by a request's `cookie` is one the store
    /// remembers and owns it (the session's and the stream's activity recorded, in one store
    /// transition).
    pub(crate) async fn owned(&self, cookie: Option<&SessionId>, id: &str) -> Result<StreamRecord, HttpError> {
        let Some(session) = cookie else { return Err(HttpError::not_owned()) };
        match self.store.resume_and_authorize(session, id, Ms::now()).await? {
            Access::Live(record) => Ok(record),
            Access::Deleting(_) | Access::Gone => Err(HttpError::stream_gone(id)),
            Access::NotOwned => Err(HttpError::not_owned()),
        }
    }

    /// Whether `session` holds a stream (for the per-client limits).
    pub(crate) async fn holds_stream(&self, session: &SessionId) -> bool {
        matches!(self.store.active_stream(session).await, Ok(Some(_)))
    }

    /// Updates the stored upstream URLs of stream `id` (after a WHIP/WHEP
    /// answer); a store failure is logged (the answer is still relayed).
    pub(crate) async fn update_record(&self, id: &str, update: RecordUpdate) {
        if let Err(e) = self.store.update_record(id, &update).await {
            tracing::warn!(stream_id = %id, error = %e, "could not store the stream's new upstream URLs");
        }
    }

    /// Creates a stream for `session`: 409 when it already has one, else the
    /// upstream create and the stream object; 504 after the API timeout (the
    /// create goes on in the background, see the module docs).
    pub(crate) async fn create(
        self: Arc<Self>,
        session: SessionId,
        payload: CreatePayload,
    ) -> Result<Value, HttpError> {
        if let Err(conflict) = self.store.begin_create(&session, Ms::now()).await? {
            return Err(HttpError::stream_active(conflict.active_stream_id));
        }
        let guard = self.enter();
        let st = self.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            st.create_reserved(session, payload).await
        });
        match tokio::time::timeout(self.cfg.api_timeout, task).await {
            Ok(joined) => joined.unwrap_or_else(|e| {
                tracing::error!(error = %e, "create task failed");
                Err(HttpError::task_failed())
            }),
            Err(_) => {
                tracing::warn!("stream create outlived the API timeout: answering 504, still awaiting it");
                Err(HttpError::upstream_timeout())
            }
        }
    }

    /// Creates the stream upstream and records it (the session's slot is
    /// reserved; any failure releases it).
    async fn create_reserved(self: Arc<Self>, session: SessionId, payload: CreatePayload) -> Result<Value, HttpError> {
        let (stream, record) = match self.create_upstream(&session, &payload).await {
            Ok(created) => created,
            Err(e) => {
                if let Err(se) = self.store.abort_create(&session, Ms::now()).await {
                    tracing::warn!(error = %se, "could not release the session's slot after a failed create");
                }
                return Err(e);
            }
        };
        let id = record.id.clone();
        let ended = match self.store.finish_create(&record, Ms::now()).await {
            Ok(ended) => ended,
            Err(e) => {
                tracing::warn!(stream_id = %id, error = %e, "cannot record the created stream: deleting it");
                if let Err(e) = self.upstream.api().delete_stream(&id).await {
                    tracing::warn!(stream_id = %id, error = %self.upstream.log_text(&e), "could not delete it; parking it");
                    let _ = self.store.park(std::slice::from_ref(&id)).await;
                }
                return Err(e.into());
            }
        };
        tracing::info!(stream_id = %id, "stream created");
        if let Some(attempt) = ended {
            tracing::info!(stream_id = %id, "session ended during the create: deleting the stream");
            let _ = self.delete_upstream(&id, attempt).await;
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
        let mut body = serde_json::to_value(payload).map_err(HttpError::internal)?;
        tag(&mut body);
        let stream = self.upstream.create_api().create_stream(&body).await.map_err(|e| {
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

    /// Delete attempt `attempt` of stream `id`, upstream; the outcome goes
    /// back to the store (404/405 = already gone = success).
    async fn delete_upstream(&self, id: &str, attempt: u32) -> Result<(), HttpError> {
        let result = self.upstream.api().delete_stream(id).await;
        let now = Ms::now();
        match result {
            Ok(()) | Err(UpstreamError::Upstream { status: 404 | 405, .. }) => {
                self.store.delete_succeeded(id, now).await?;
                tracing::info!(stream_id = %id, "stream deleted upstream");
                Ok(())
            }
            Err(e) => {
                let outcome = self.store.delete_failed(id, attempt, now).await;
                match outcome {
                    Ok(FailOutcome::GaveUp) => tracing::warn!(
                        stream_id = %id, error = %self.upstream.log_text(&e),
                        "stream delete failed; retries exhausted: parked, retried at the next start"
                    ),
                    Ok(o) => {
                        tracing::warn!(stream_id = %id, error = %self.upstream.log_text(&e), retry = o == FailOutcome::Retry, "stream delete failed")
                    }
                    Err(se) => {
                        tracing::warn!(stream_id = %id, error = %self.upstream.log_text(&e), store = %se, "stream delete failed (and the store did not answer)")
                    }
                }
                Err(self.upstream.api_error(&e))
            }
        }
    }

    /// The session ends stream `id` (DELETE route, end beacon): deletes it
    /// upstream unless it is already gone. Idempotent.
    pub(crate) async fn end_owned(
        self: Arc<Self>,
        session: Option<&SessionId>,
        id: String,
    ) -> Result<Value, HttpError> {
        let Some(session) = session else { return Err(HttpError::not_owned()) };
        match self.store.authorize(session, &id, None).await? {
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
    pub(crate) async fn end_active(self: Arc<Self>, session: Option<&SessionId>) -> Result<Value, HttpError> {
        let Some(session) = session else {
            return Ok(json!({ "success": true, "id": null, "pending": false }));
        };
        let Some(id) = self.store.active_stream(session).await? else {
            let pending = self.store.end_pending_create(session).await?;
            return Ok(json!({ "success": true, "id": null, "pending": pending }));
        };
        self.end_owned(Some(session), id).await
    }

    async fn end_stream(self: Arc<Self>, id: String) -> Result<Value, HttpError> {
        let Some(attempt) = self.store.begin_delete(&id, Ms::now()).await? else {
            return Ok(json!({ "success": true, "id": id, "pending": true }));
        };
        self.delete_upstream(&id, attempt).await?;
        Ok(json!({ "success": true, "id": id }))
    }

    /// Deletes every stream still live or being deleted upstream, all at once,
    /// waiting at most `limit`; logs and reports what was deleted and what
    /// was not, and parks the latter (retried at the next start).
    pub async fn delete_all(self: &Arc<Self>, limit: Duration) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let actions = match self.store.drain(Ms::now()).await {
            Ok(actions) => actions,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the remaining streams: none deleted");
                return report;
            }
        };
        if actions.is_empty() {
            return report;
        }
        tracing::info!(streams = actions.len(), "deleting the remaining streams upstream");
        let ids: Vec<String> = actions.iter().map(|a| a.stream_id.clone()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for action in actions {
            let st = self.clone();
            tasks.spawn(async move {
                let ok = st.delete_upstream(&action.stream_id, action.attempt).await.is_ok();
                (action.stream_id, ok)
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
            let parked = self.store.park(&report.not_deleted).await;
            tracing::warn!(
                not_deleted = ?report.not_deleted,
                timed_out,
                parked = parked.is_ok(),
                "could not delete these streams upstream on shutdown: they may still be running (and billed); \
                 parked for the next start"
            );
        }
        report
    }
}

/// Tags a create body: its `name` starts with [`STREAM_TAG`].
fn tag(body: &mut Value) {
    let Some(obj) = body.as_object_mut() else { return };
    let name = match obj.get("name").and_then(Value::as_str) {
        Some(n) if n.starts_with(STREAM_TAG) => n.to_string(),
        Some(n) if !n.is_empty() => format!("{STREAM_TAG}{n}"),
        _ => format!("{STREAM_TAG}stream"),
    };
    obj.insert("name".into(), Value::String(name));
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

    #[test]
    fn creates_are_tagged() {
        for (given, want) in [
            (json!({"pipeline": "p"}), "dreamgate-stream"),
            (json!({"name": "my show"}), "dreamgate-my show"),
            (json!({"name": "dreamgate-x"}), "dreamgate-x"),
            (json!({"name": 7}), "dreamgate-stream"),
        ] {
            let mut body = given;
            tag(&mut body);
            assert_eq!(body["name"], want);
        }
    }
}
