//! One watcher per watched stream: it polls the stream's upstream status once
//! per interval however many tabs watch it, keeps the latest, and pushes it
//! to every tab as Server-Sent Events (`GET /api/daydream/streams/:id/events`).
//!
//! * **Messages**: `event: status`, `data: {"phase", "reason", "status"}`,
//!   where `status` is the status route's body (scrubbed like it), `phase` one
//!   of [`Phase`] and `reason` plain words ([`phase_of_status`],
//!   [`phase_of_error`]: pure functions of what upstream answered). One per
//!   new status (about once per interval); the last one again after
//!   [`HEARTBEAT`] without a new one.
//! * **Lifetime**: the watcher starts with the stream's first event stream
//!   and stops when nobody listens any more, when the stream ends (a last
//!   `ended` message, then the event streams end) or when the gateway shuts
//!   down (every event stream ends, so that browsers notice at once).
//! * **Activity**: each interval a watcher with listeners records the owner's
//!   activity on the stream (as a status poll does), so the reaper leaves a
//!   stream alone while a tab holds its event stream open.
//! * **Several instances**: each interval the watcher claims the stream's
//!   poll lease in the store ([`crate::poll_lease`]); the holder polls
//!   upstream and publishes the message in the store, the other instances'
//!   watchers relay what it published. One instance polls a stream however
//!   many instances have tabs on it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use dreamgate_client::ApiError;

use crate::clock::Ms;
use crate::registry::{Access, StreamRecord};
use crate::state::AppState;
use crate::store::StoreApi;

/// Without a new status for this long, the last message is sent again (the
/// page gives an event stream up after 35 s of silence).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// How long the browser waits before reconnecting a dropped event stream
/// (the SSE `retry` field), in milliseconds.
pub const RETRY_MS: u64 = 1000;

/// A stream's phase, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The stream exists; no video from the camera yet.
    Creating,
    /// Video arrives; the pipeline is starting (or upstream says "not ready").
    Warming,
    /// Output flowing.
    Live,
    /// Output flowing, but degraded (input too slow, inference too slow, recent error).
    Degraded,
    /// The camera's video stopped; waiting for it to come back.
    Reconnecting,
    /// The stream is gone.
    Ended,
    /// The pipeline failed, or upstream cannot be read.
    Error,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "creating",
            Phase::Warming => "warming",
            Phase::Live => "live",
            Phase::Degraded => "degraded",
            Phase::Reconnecting => "reconnecting",
            Phase::Ended => "ended",
            Phase::Error => "error",
        }
    }
}

fn obj<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| v.get(key)).filter(|v| v.is_object())
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n > 0.0),
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        Some(_) => true,
    }
}

/// The phase a status body (`{success, data}` or a bare `data`) says, with
/// its reason in plain words. Both upstream shapes: the runner's (`state`)
/// and the public reference's (`inference_status.output_fps`, no `state`).
pub fn phase_of_status(body: &Value) -> (Phase, &'static str) {
    if body.get("success") == Some(&Value::Bool(false)) {
        return (Phase::Error, "the stream's server reports a failure");
    }
    let data = obj(Some(body), "data").unwrap_or(body);
    let inference = obj(Some(data), "inference_status");
    let input_seen = present(obj(Some(data), "input_status").and_then(|i| i.get("last_input_time")))
        || present(inference.and_then(|i| i.get("last_output_time")));
    let Some(state) = data.get("state").and_then(Value::as_str) else {
        let fps = inference.and_then(|i| i.get("output_fps")).and_then(Value::as_f64).unwrap_or(0.0);
        return if fps > 0.0 {
            (Phase::Live, "the stream is live")
        } else if input_seen {
            (Phase::Warming, "the stream is starting its pipeline")
        } else {
            (Phase::Creating, "waiting for the camera's video")
        };
    };
    match state.to_ascii_uppercase().as_str() {
        "ONLINE" => (Phase::Live, "the stream is live"),
        "DEGRADED_INPUT" => (Phase::Degraded, "the stream receives too little video from the camera"),
        "DEGRADED_INFERENCE" => (Phase::Degraded, "the stream produces fewer frames than it should"),
        s if s.starts_with("DEGRADED") => (Phase::Degraded, "the stream reports it is degraded"),
        "LOADING" if input_seen => (Phase::Warming, "the stream is starting its pipeline"),
        "LOADING" => (Phase::Creating, "waiting for the camera's video"),
        "OFFLINE" if input_seen => (Phase::Reconnecting, "no video from the camera: waiting for it to come back"),
        "OFFLINE" => (Phase::Creating, "waiting for the camera's video"),
        "ERROR" => (Phase::Error, "the stream's pipeline failed"),
        _ => (Phase::Warming, "the stream is starting"),
    }
}

/// The phase a failed status call says: "not ready" answers are a warming
/// stream; a bare 404 (or 410) is a stream gone upstream; anything else
/// (other statuses, no answer, an invalid one) an error the page may retry.
pub fn phase_of_error(e: &ApiError) -> (Phase, &'static str) {
    match e {
        ApiError::Upstream { body, .. } if dreamgate_client::body_says_not_ready(body) => {
            (Phase::Warming, "the stream is starting")
        }
        ApiError::Upstream { status: 404 | 410, .. } => (Phase::Ended, "the stream no longer exists"),
        ApiError::Upstream { status: 409 | 429 | 503, .. } => (Phase::Warming, "the stream is starting"),
        ApiError::Upstream { .. } => (Phase::Error, "the stream's server answered with an error"),
        ApiError::Timeout => (Phase::Error, "the stream's server is too slow to answer"),
        ApiError::Unreachable(_) => (Phase::Error, "the stream's server cannot be reached"),
        ApiError::InvalidResponse(_) => (Phase::Error, "the stream's server sent an invalid status"),
    }
}

/// One event stream message's `data`: `{"phase", "reason", "status"}`, on one line.
pub fn message(phase: Phase, reason: &str, status: Option<&Value>) -> String {
    json!({ "phase": phase.as_str(), "reason": reason, "status": status }).to_string()
}

/// The message that ends every event stream of a stream that ended.
fn ended_message() -> String {
    message(Phase::Ended, "the stream has ended", None)
}

/// What a watcher hands its listeners: the latest message, if any yet.
type Latest = Option<Arc<str>>;

/// The watchers of one gateway instance (see the module docs).
#[derive(Debug)]
pub struct Watchers {
    /// This instance's name as a poll lease holder (random per process).
    instance: String,
    interval: Duration,
    running: Mutex<HashMap<String, watch::Sender<Latest>>>,
    stopping: watch::Sender<bool>,
}

impl Watchers {
    /// No watcher yet; each will poll every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            instance: crate::session::SessionId::generate().as_str().to_string(),
            interval,
            running: Mutex::new(HashMap::new()),
            stopping: watch::channel(false).0,
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Latest>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This instance's name as a lease holder (random per process).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Streams watched by this instance now.
    pub fn count(&self) -> usize {
        self.running().len()
    }

    /// The poll lease lasts this long (three intervals: one missed renewal is no takeover).
    fn lease(&self) -> Duration {
        self.interval * 3
    }

    /// Shutdown: every watcher stops and every event stream ends now.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// A listener of stream `record`'s watcher (started when it has none).
    fn subscribe(&self, st: &Arc<AppState>, record: &StreamRecord) -> watch::Receiver<Latest> {
        let mut running = self.running();
        if let Some(tx) = running.get(&record.id) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        running.insert(record.id.clone(), tx.clone());
        tokio::spawn(run(st.clone(), record.clone(), tx));
        rx
    }

    /// Forgets `tx` as stream `id`'s watcher when nobody listens (or
    /// `always`): whether it was forgotten (the watcher then stops).
    fn forget(&self, id: &str, tx: &watch::Sender<Latest>, always: bool) -> bool {
        let mut running = self.running();
        if !always && tx.receiver_count() > 0 {
            return false;
        }
        if running.get(id).is_some_and(|t| t.same_channel(tx)) {
            running.remove(id);
        }
        true
    }
}

/// Resolves once the gateway shuts down.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The watcher of one stream (see the module docs).
async fn run(st: Arc<AppState>, record: StreamRecord, tx: watch::Sender<Latest>) {
    let w = st.watchers();
    let id = record.id.as_str();
    let mut stopping = w.stopping.subscribe();
    let mut tick = tokio::time::interval(w.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut relayed: Option<Ms> = None;
    let mut holding = false;
    tracing::debug!(stream_id = %id, "watcher started");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stopping) => break,
        }
        if w.forget(id, &tx, false) {
            break;
        }
        let now = Ms::now();
        // The listening tabs are the owner's activity (the reaper waits), and the stream must be live.
        match st.store().authorize(&record.owner, id, Some(now)).await {
            Ok(Access::Live(_)) => {}
            Ok(_) => {
                tx.send_replace(Some(ended_message().into()));
                break;
            }
            Err(e) => {
                tracing::warn!(stream_id = %id, error = %e, "watcher: store unavailable");
                continue;
            }
        }
        match st.store().claim_poll(id, &w.instance, now, w.lease()).await {
            Ok(true) => {
                holding = true;
                let (phase, text) = poll(&st, &record).await;
                if let Err(e) = st.store().publish_status(id, &text, Ms::now(), w.lease()).await {
                    tracing::warn!(stream_id = %id, error = %e, "watcher: cannot publish the status");
                }
                tx.send_replace(Some(text.into()));
                if phase == Phase::Ended {
                    break;
                }
            }
            Ok(false) => {
                holding = false;
                match st.store().latest_status(id, now).await {
                    Ok(Some(p)) if relayed != Some(p.at) => {
                        relayed = Some(p.at);
                        let ended =
                            serde_json::from_str::<Value>(&p.text).is_ok_and(|v| v["phase"] == Phase::Ended.as_str());
                        tx.send_replace(Some(p.text.into()));
                        if ended {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(stream_id = %id, error = %e, "watcher: cannot read the published status"),
                }
            }
            Err(e) => tracing::warn!(stream_id = %id, error = %e, "watcher: store unavailable"),
        }
    }
    w.forget(id, &tx, true);
    if holding {
        if let Err(e) = st.store().release_poll(id, &w.instance).await {
            tracing::debug!(stream_id = %id, error = %e, "watcher: cannot release the poll lease");
        }
    }
    tracing::debug!(stream_id = %id, "watcher stopped");
}

/// One upstream status call: the message to push, and its phase.
async fn poll(st: &AppState, record: &StreamRecord) -> (Phase, String) {
    crate::metrics::status_call(crate::metrics::StatusCaller::Watcher);
    match st.upstream().api().stream_status_raw(&record.id).await {
        Ok((_, body)) => {
            if let Some(Some(raw)) = crate::proxy::whep_url_in_status(&body) {
                crate::proxy::learn_whep_url(st, record, &raw).await;
            }
            let body = st.upstream().scrubber().json_bytes(body);
            match serde_json::from_slice::<Value>(&body) {
                Ok(status) => {
                    let (phase, reason) = phase_of_status(&status);
                    (phase, message(phase, reason, Some(&status)))
                }
                Err(_) => {
                    let (phase, reason) = phase_of_error(&ApiError::not_json(200));
                    (phase, message(phase, reason, None))
                }
            }
        }
        Err(e) => {
            let (phase, reason) = phase_of_error(&e);
            tracing::debug!(stream_id = %record.id, error = %st.upstream().log_text(&e), "watcher: status call failed");
            (phase, message(phase, reason, None))
        }
    }
}

/// The body of an event stream: `retry`, then each message of the stream's
/// watcher (the last one again after [`HEARTBEAT`] of silence), until the
/// watcher stops (the stream ended) or the gateway shuts down.
pub(crate) fn event_stream(st: &Arc<AppState>, record: &StreamRecord) -> axum::body::Body {
    let w = st.watchers();
    let mut latest = w.subscribe(st, record);
    let mut stopping = w.stopping.subscribe();
    let (out, body) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let frame = |data: &str| Bytes::from(format!("event: status\ndata: {data}\n\n"));
        if out.send(Bytes::from(format!("retry: {RETRY_MS}\n\n"))).await.is_err() {
            return;
        }
        if *stopping.borrow() {
            return;
        }
        // A message already there (another tab watches the stream) goes out at once.
        let mut last: Latest = latest.borrow_and_update().clone();
        if let Some(data) = &last {
            if out.send(frame(data)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    last = latest.borrow_and_update().clone();
                    let Some(data) = &last else { continue };
                    if out.send(frame(data)).await.is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep(HEARTBEAT) => {
                    if let Some(data) = &last {
                        if out.send(frame(data)).await.is_err() {
                            break;
                        }
                    }
                }
                () = stopped(&mut stopping) => break,
                _ = out.closed() => break,
            }
        }
    });
    axum::body::Body::new(EventBody(body))
}

/// A response body fed by a channel: it ends when the sender is dropped.
struct EventBody(mpsc::Receiver<Bytes>);

impl http_body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|next| next.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(state: &str, last_input: Option<u64>) -> Value {
        json!({ "success": true, "data": {
            "state": state,
            "input_status": { "fps": 30.0, "last_input_time": last_input },
            "inference_status": { "fps": 0.0, "last_output_time": null },
        }})
    }

    #[test]
    fn the_runner_shape_maps_each_state_to_a_phase() {
        let cases = [
            ("ONLINE", Some(1), Phase::Live),
            ("DEGRADED_INPUT", Some(1), Phase::Degraded),
            ("DEGRADED_INFERENCE", Some(1), Phase::Degraded),
            ("LOADING", None, Phase::Creating),
            ("LOADING", Some(1), Phase::Warming),
            ("OFFLINE", None, Phase::Creating),
            ("OFFLINE", Some(1_700_000_000_000), Phase::Reconnecting),
            ("ERROR", Some(1), Phase::Error),
            ("SOMETHING_NEW", None, Phase::Warming),
        ];
        for (state, input, want) in cases {
            let (phase, reason) = phase_of_status(&runner(state, input));
            assert_eq!(phase, want, "{state} {input:?}");
            assert!(!reason.is_empty());
        }
        // a bare `data` object reads the same
        assert_eq!(phase_of_status(&runner("ONLINE", Some(1))["data"]).0, Phase::Live);
    }

    #[test]
    fn the_public_shape_is_live_when_output_flows() {
        let live =
            json!({ "success": true, "data": { "inference_status": { "output_fps": 24.5, "last_output_time": 5 } } });
        assert_eq!(phase_of_status(&live).0, Phase::Live);
        let waiting = json!({ "data": { "inference_status": { "output_fps": 0, "last_output_time": null } } });
        assert_eq!(phase_of_status(&waiting).0, Phase::Creating);
        let starting = json!({ "data": { "inference_status": { "output_fps": 0, "last_output_time": 5 } } });
        assert_eq!(phase_of_status(&starting).0, Phase::Warming);
    }

    #[test]
    fn a_failure_body_is_an_error() {
        assert_eq!(phase_of_status(&json!({ "success": false, "error": "boom" })).0, Phase::Error);
    }

    #[test]
    fn failed_calls_map_to_warming_ended_or_error() {
        let up = |status: u16, body: Value| ApiError::Upstream { status, body };
        assert_eq!(phase_of_error(&up(404, json!({"code": "STREAMS/NOT_READY"}))).0, Phase::Warming);
        assert_eq!(phase_of_error(&up(404, json!({"error": "Stream not found"}))).0, Phase::Ended);
        assert_eq!(phase_of_error(&up(503, json!(null))).0, Phase::Warming);
        assert_eq!(phase_of_error(&up(500, json!(null))).0, Phase::Error);
        assert_eq!(phase_of_error(&ApiError::Timeout).0, Phase::Error);
        assert_eq!(phase_of_error(&ApiError::Unreachable("x".into())).0, Phase::Error);
    }

    #[test]
    fn a_message_is_one_line_of_json_in_the_pages_format() {
        let status = json!({ "success": true, "data": { "state": "ONLINE", "note": "a\nb" } });
        let text = message(Phase::Live, "the stream is live", Some(&status));
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["phase"], "live");
        assert_eq!(back["reason"], "the stream is live");
        assert_eq!(back["status"], status);
        let ended: Value = serde_json::from_str(&ended_message()).unwrap();
        assert_eq!((ended["phase"].as_str(), ended["status"].is_null()), (Some("ended"), true));
    }
}
