//! The engine's stream records, and [`StreamActivity`]: the handle the media side uses to
//! report what happens to a stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::status::{Activity, TransportStats};

/// One stream, as stored by the engine.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// `str_...`
    pub id: String,
    /// `stk_...` (the secret part of the WHIP URL).
    pub stream_key: String,
    /// Playback id of the output.
    pub output_playback_id: String,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// `"streamdiffusion"`.
    pub pipeline: String,
    /// The current params object.
    pub params: Map<String, Value>,
    /// Display name.
    pub name: String,
    /// Optional RTMP output given at creation.
    pub output_stream_url: Option<String>,
    /// Media events and status state.
    pub activity: Activity,
    /// Params of the last update (`None` before the first PATCH).
    pub last_params: Option<Value>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, StreamRecord>,
    by_key: HashMap<String, String>,
}

/// All streams of one engine.
#[derive(Debug, Default)]
pub struct Streams {
    inner: Mutex<Inner>,
}

impl Streams {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // a panic elsewhere must not lose every stream
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new stream.
    pub fn insert(&self, record: StreamRecord) {
        let mut inner = self.lock();
        inner.by_key.insert(record.stream_key.clone(), record.id.clone());
        inner.by_id.insert(record.id.clone(), record);
    }

    /// Runs `f` on the stream `id`, if it exists.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut StreamRecord) -> R) -> Option<R> {
        self.lock().by_id.get_mut(id).map(f)
    }

    /// The stream id owning `stream_key`.
    pub fn id_for_key(&self, stream_key: &str) -> Option<String> {
        self.lock().by_key.get(stream_key).cloned()
    }

    /// Removes a stream.
    pub fn remove(&self, id: &str) -> Option<StreamRecord> {
        let mut inner = self.lock();
        let record = inner.by_id.remove(id)?;
        inner.by_key.remove(&record.stream_key);
        Some(record)
    }

    /// Ids of every stream.
    pub fn ids(&self) -> Vec<String> {
        self.lock().by_id.keys().cloned().collect()
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether there are no streams.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The media-side handle of stream `id`.
    pub fn activity(self: &Arc<Self>, id: &str) -> StreamActivity {
        StreamActivity { streams: Arc::clone(self), id: id.to_owned() }
    }
}

/// What the media side calls to report a stream's media events (cheap to clone, `Send`).
///
/// Every method returns `false` when the stream no longer exists (deleted): the caller should
/// stop its work for that stream.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use dreamgate_engine::streams::Streams;
///
/// let streams = Arc::new(Streams::default());
/// let activity = streams.activity("str_unknown");
/// assert!(!activity.record_input(Instant::now(), 1200));
/// ```
#[derive(Clone)]
pub struct StreamActivity {
    streams: Arc<Streams>,
    id: String,
}

impl std::fmt::Debug for StreamActivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamActivity").field("id", &self.id).finish()
    }
}

impl StreamActivity {
    /// The stream id.
    pub fn stream_id(&self) -> &str {
        &self.id
    }

    fn on(&self, f: impl FnOnce(&mut Activity)) -> bool {
        self.streams.with(&self.id, |r| f(&mut r.activity)).is_some()
    }

    /// One input frame was decoded (`bytes` of encoded media received).
    pub fn record_input(&self, now: Instant, bytes: usize) -> bool {
        self.on(|a| a.record_input(now, bytes))
    }

    /// One output frame was produced (`bytes` of encoded media).
    pub fn record_output(&self, now: Instant, bytes: usize) -> bool {
        self.on(|a| a.record_output(now, bytes))
    }

    /// The pipeline hit an error.
    pub fn record_error(&self, now: Instant, message: impl Into<String>) -> bool {
        let message = message.into();
        self.on(|a| a.record_error(now, message))
    }

    /// The pipeline restarted.
    pub fn record_restart(&self, now: Instant, logs: Vec<String>) -> bool {
        self.on(|a| a.record_restart(now, logs))
    }

    /// Latest transport figures of the ingest peer.
    pub fn record_transport(&self, stats: TransportStats) -> bool {
        self.on(|a| a.record_transport(stats))
    }

    /// An ingest session started (the control plane calls this after a successful WHIP POST).
    pub fn ingest_started(&self, now: Instant) -> bool {
        self.on(|a| a.ingest_started(now))
    }

    /// The ingest session ended (peer gone or DELETE).
    pub fn ingest_closed(&self, now: Instant) -> bool {
        self.on(|a| a.ingest_closed(now))
    }

    /// The stream's current params object (`None` when deleted).
    pub fn params(&self) -> Option<Value> {
        self.streams.with(&self.id, |r| Value::Object(r.params.clone()))
    }

    /// Whether the stream still exists.
    pub fn exists(&self) -> bool {
        self.streams.with(&self.id, |_| ()).is_some()
    }
}
