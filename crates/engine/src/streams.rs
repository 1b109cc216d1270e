//! The engine's stream records, each owning its [`ActivityCell`], and [`StreamActivity`]:
//! the handle the media side uses to report what happens to a stream.
//!
//! Locks: the stream table ([`Streams`]) has one lock, taken per API call; each stream's
//! activity has its own, taken per media event. The media side only ever takes its
//! stream's cell lock (never the table's), so no frame waits on another stream or on the
//! HTTP side. The table's lock may be held while taking a cell's lock, never the other way
//! round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dreamgate_model::StreamParams;
use serde_json::{Map, Value};

use crate::ended::RecentlyEnded;
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
    /// The current params (as created, with every PATCH merged in; unknown fields kept).
    pub params: StreamParams,
    /// Display name.
    pub name: String,
    /// Optional RTMP output given at creation.
    pub output_stream_url: Option<String>,
    /// The params the transform runs with: the create params, then the params object of
    /// the last update applied, as the client gave it (echoed in the status as
    /// `inference_status.last_params`).
    pub last_params: Option<Map<String, Value>>,
    /// The params object of a PATCH the transform has not switched to yet, with the hash of
    /// the merged params it asked for: it becomes `last_params` once applied.
    pub pending_params: Option<(String, Map<String, Value>)>,
    /// Media events and status state, shared with the media side.
    pub activity: Arc<ActivityCell>,
    /// Fingerprint of the bearer token that created the stream: `GET /v1/streams` lists the
    /// caller's streams only.
    pub owner: u64,
    /// WHIP offers accepted so far (the next session's number, for the `ice_disconnect` knob).
    pub whip_offers: u32,
}

impl StreamRecord {
    /// The media-side handle of this stream's activity.
    pub fn activity(&self) -> StreamActivity {
        StreamActivity { id: Arc::from(self.id.as_str()), cell: Arc::clone(&self.activity) }
    }
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

    /// Runs `f` on the stream owning `stream_key`, if it exists.
    pub fn with_key<R>(&self, stream_key: &str, f: impl FnOnce(&mut StreamRecord) -> R) -> Option<R> {
        let mut inner = self.lock();
        let Inner { by_id, by_key } = &mut *inner;
        by_key.get(stream_key).and_then(|id| by_id.get_mut(id)).map(f)
    }

    /// Removes a stream; its media side learns it from its [`StreamActivity`] (every
    /// method answers `false` from now on).
    pub fn remove(&self, id: &str) -> Option<StreamRecord> {
        let mut inner = self.lock();
        let record = inner.by_id.remove(id)?;
        inner.by_key.remove(&record.stream_key);
        record.activity.deleted.store(true, Ordering::SeqCst);
        Some(record)
    }

    /// Runs `f` on every stream of `owner`, oldest first.
    pub fn list<R>(&self, owner: u64, mut f: impl FnMut(&StreamRecord) -> R) -> Vec<R> {
        let inner = self.lock();
        let mut mine: Vec<&StreamRecord> = inner.by_id.values().filter(|r| r.owner == owner).collect();
        mine.sort_by_key(|r| r.activity.created());
        mine.into_iter().map(&mut f).collect()
    }

    /// Ids of every stream.
    pub fn ids(&self) -> Vec<String> {
        self.lock().by_id.keys().cloned().collect()
    }

    /// The activity handle of every stream.
    pub fn activities(&self) -> Vec<StreamActivity> {
        self.lock().by_id.values().map(StreamRecord::activity).collect()
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether there are no streams.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The media-side handle of stream `id` (`None` for an unknown stream).
    pub fn activity(&self, id: &str) -> Option<StreamActivity> {
        self.with(id, |r| r.activity())
    }
}

/// One stream's media activity: the status machine ([`Activity`]) behind its own lock,
/// owned by the stream's record and shared with its media session.
#[derive(Debug)]
pub struct ActivityCell {
    created: Instant,
    activity: Mutex<Activity>,
    deleted: AtomicBool,
    ended: Mutex<RecentlyEnded>,
}

impl ActivityCell {
    /// The activity of a stream created at `created`.
    pub fn new(created: Instant) -> Self {
        ActivityCell {
            created,
            activity: Mutex::new(Activity::new(created)),
            deleted: AtomicBool::new(false),
            ended: Mutex::new(RecentlyEnded::default()),
        }
    }

    /// When the stream was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Runs `f` on the status machine.
    pub fn with<R>(&self, f: impl FnOnce(&mut Activity) -> R) -> R {
        f(&mut self.activity.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the stream was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }
}

/// What the media side calls to report a stream's media events (cheap to clone, `Send`).
/// It reaches the stream's own [`ActivityCell`], never the engine's stream table.
///
/// Every method returns `false` when the stream no longer exists (deleted): the caller should
/// stop its work for that stream.
///
/// ```
/// use dreamgate_engine::streams::Streams;
///
/// let streams = Streams::default();
/// assert!(streams.activity("str_unknown").is_none());
/// ```
#[derive(Clone)]
pub struct StreamActivity {
    id: Arc<str>,
    cell: Arc<ActivityCell>,
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

    /// How long ago the stream was created.
    pub fn age(&self) -> Duration {
        self.cell.created().elapsed()
    }

    fn on(&self, f: impl FnOnce(&mut Activity)) -> bool {
        if self.cell.is_deleted() {
            return false;
        }
        self.cell.with(f);
        true
    }

    /// One input frame was decoded (`bytes` of encoded media received).
    pub fn record_input(&self, now: Instant, bytes: usize) -> bool {
        self.on(|a| a.record_input(now, bytes))
    }

    /// One output frame was produced (`bytes` of encoded media).
    pub fn record_output(&self, now: Instant, bytes: usize) -> bool {
        self.on(|a| a.record_output(now, bytes))
    }

    /// One input frame (`input_bytes`) was decoded and turned into one output frame
    /// (`output_bytes`): [`record_input`](Self::record_input) and
    /// [`record_output`](Self::record_output) under one lock.
    pub fn record_frame(&self, now: Instant, input_bytes: usize, output_bytes: usize) -> bool {
        self.on(|a| {
            a.record_input(now, input_bytes);
            a.record_output(now, output_bytes);
        })
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

    /// The transform switched to the params hashed `hash` ([`crate::snapshot::params_hash`]):
    /// the status reports it as `last_params_hash` / `last_params_update_time`.
    pub fn params_applied(&self, now: Instant, hash: String) -> bool {
        self.on(|a| a.params_applied(Some(now), hash))
    }

    /// Latest transport figures of the ingest peer.
    pub fn record_transport(&self, stats: TransportStats) -> bool {
        self.on(|a| a.record_transport(stats))
    }

    /// An ingest session started (the media backend calls this when it accepts a WHIP offer).
    pub fn ingest_started(&self, now: Instant) -> bool {
        self.on(|a| a.ingest_started(now))
    }

    /// The ingest session ended (the media backend: peer gone, or ended by request).
    pub fn ingest_closed(&self, now: Instant) -> bool {
        self.on(|a| a.ingest_closed(now))
    }

    /// A WHIP session or WHEP viewer of this stream ended (the media backend: peer gone,
    /// replaced, or ended by request): a DELETE of it shortly after still succeeds.
    pub fn resource_ended(&self, resource_id: &str, now: Instant) {
        self.cell.ended.lock().unwrap_or_else(|e| e.into_inner()).record(resource_id, now);
    }

    /// Whether the session or viewer `resource_id` ended within [`RecentlyEnded::KEEP`].
    pub fn recently_ended(&self, resource_id: &str, now: Instant) -> bool {
        self.cell.ended.lock().unwrap_or_else(|e| e.into_inner()).contains(resource_id, now)
    }

    /// Runs the status machine at `now` (`None` when the stream was deleted).
    pub(crate) fn evaluate(&self, now: Instant) -> Option<crate::status::Evaluation> {
        (!self.cell.is_deleted()).then(|| self.cell.with(|a| a.evaluate(now)))
    }

    /// Whether the stream still exists.
    pub fn exists(&self) -> bool {
        !self.cell.is_deleted()
    }
}
