//! The engine's real media side: WebRTC ingest (WHIP), a per-frame transform on a dedicated
//! thread per stream, and WebRTC output to viewers (WHEP).
//!
//! ```text
//!  publisher ──WHIP──▶ rtc::Ingest ──▶ pump (tokio task) ──bounded queue──▶ transform thread
//!                          ▲              │ IngestGate: drop when behind,      │ Pipeline: decode →
//!                          └── PLI ───────┘ keyframe requests, transport 1/s    │ Stylizer → encode
//!                                                                               ▼
//!  viewers ◀──WHEP── rtc::Egress ◀──────────── Hub (fan-out, forced IDR on join / PLI)
//! ```
//!
//! - One ingest session per stream: a second WHIP POST replaces the first (its pump and
//!   thread stop, the new session gets a fresh pipeline; viewers stay connected).
//! - The stream's typed params are applied when the session starts and on every PATCH
//!   ([`MediaBackend::params_updated`]), before the next frame.
//! - Media events reach the status machine through [`StreamActivity`] (the stream's own
//!   activity cell, no engine-wide lock): `ingest_started` when a session is accepted,
//!   `record_frame` per decoded/produced frame, `record_transport` once a second,
//!   `ingest_closed` when the peer goes away or the session is ended by request. A `false`
//!   answer (stream deleted) stops it all.
//! - WHEP answers 404 until the stream produced its first frame, 429 above the offer's
//!   `max_viewers` (Livepeer's 5 by default, [`crate::faults::DEFAULT_VIEWERS`]).
//! - With the `ice_disconnect` knob ([`crate::faults::IcePolicy`] in the offer) a session ends as soon as its
//!   ICE reports "disconnected", and a cut session's peer stops sending (a lost return path) after its first frames.
//!
//! [`WebRtcMedia::stats`] exposes per-stream figures (pipeline timings, drops, viewers) for
//! benchmarks and diagnostics.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use dreamgate_engine::media::WebRtcMedia;
//! use dreamgate_engine::{start, EngineConfig, RtcConfig};
//!
//! let media = WebRtcMedia::new(RtcConfig::default());
//! let cfg = EngineConfig { media: Some(media.clone()), ..Default::default() };
//! let engine = start(tokio::net::TcpListener::bind("127.0.0.1:0").await?, cfg).await;
//! // ... publish to a stream's whip_url, then:
//! if let Some(stats) = media.stats("str_...") {
//!     println!("p95 per frame: {:?}", stats.pipeline.recent.total_p95);
//! }
//! # engine.shutdown().await;
//! # Ok(()) }
//! ```

pub mod gate;
mod hub;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use dreamgate_media::PipelineStats;
use dreamgate_model::StreamParams;
use dreamgate_rtc::{accept_egress, accept_ingest, Ingest, IngestStats, Peer, RtcConfig, RtcError, StunServer};
use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::{mpsc, OnceCell};
use tokio::task::JoinHandle;

use crate::backend::{BoxFuture, IngestOffer, MediaBackend, MediaError, SdpAnswer, ViewerOffer};
use crate::streams::StreamActivity;
use hub::Hub;
use worker::{PumpEnd, SessionShared, Transform, WorkerEvent};

/// Viewers per stream; one more gets 429.
pub const MAX_VIEWERS: usize = 8;
/// Ingest sessions at once over all streams, by default (each runs a codec thread once its
/// first media arrives); one more gets 503.
pub const DEFAULT_MAX_INGEST: usize = 16;
/// Access units queued for the transform thread; when it is full the transform is behind
/// and units are dropped (see [`gate`]).
pub const TRANSFORM_QUEUE: usize = 2;

/// Figures of one stream's media (see [`WebRtcMedia::stats`]).
#[derive(Debug, Clone, Default)]
pub struct MediaStats {
    /// The current ingest session, if any.
    pub session_id: Option<String>,
    /// The session's pipeline: counters and per-frame decode/transform/encode timings.
    pub pipeline: PipelineStats,
    /// Access units received from the publisher in this session.
    pub frames_received: u64,
    /// Access units dropped before the transform (it was behind, or a keyframe was awaited).
    pub frames_dropped: u64,
    /// The ingest peer's counters.
    pub ingest: IngestStats,
    /// Connected (or connecting) viewers.
    pub viewers: usize,
    /// When the stream produced its first output frame.
    pub first_output: Option<Instant>,
    /// Whether the session's codec thread runs (it starts with the first media).
    pub transform_running: bool,
}

/// One live ingest session. Dropping it stops its pump (and so its transform thread) and
/// closes the peer.
struct Session {
    id: String,
    ingest: Arc<Ingest>,
    shared: Arc<SessionShared>,
    pump: JoinHandle<()>,
    activity: StreamActivity,
    _slot: IngestSlot,
}

/// One of the `max_ingest` ingest places, held by a session (freed when it is dropped).
struct IngestSlot(Arc<AtomicUsize>);

impl IngestSlot {
    /// Takes a place when fewer than `max` are taken, or always when `replacing` (a stream's
    /// new session replaces its old one, which frees its place right after).
    fn take(open: &Arc<AtomicUsize>, max: usize, replacing: bool) -> Option<IngestSlot> {
        open.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (replacing || n < max).then_some(n + 1))
            .ok()
            .map(|_| IngestSlot(Arc::clone(open)))
    }
}

impl Drop for IngestSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.end();
        self.pump.abort();
        self.ingest.close();
    }
}

/// A stream's media: its output hub (lives as long as the stream) and its ingest session.
struct StreamMedia {
    hub: Arc<Hub>,
    session: Option<Session>,
}

#[derive(Default)]
struct Inner {
    streams: Mutex<HashMap<String, StreamMedia>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, StreamMedia>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the session `session_id` of `stream_id` if it is still the current one.
    fn end_session(&self, stream_id: &str, session_id: &str) -> Option<Session> {
        let mut streams = self.lock();
        streams.get_mut(stream_id)?.session.take_if(|s| s.id == session_id)
    }
}

/// The real [`MediaBackend`]: WebRTC in and out, with the transform in between.
///
/// Cheap to share (`Arc`); the engine uses it when `EngineConfig::media` is `None`.
pub struct WebRtcMedia {
    rtc: RtcConfig,
    inner: Arc<Inner>,
    stun: OnceCell<Option<StunServer>>,
    max_ingest: usize,
    open_ingest: Arc<AtomicUsize>,
}

impl std::fmt::Debug for WebRtcMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcMedia").field("rtc", &self.rtc).field("streams", &self.inner.lock().len()).finish()
    }
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), 16))
}

fn rtc_error(e: RtcError) -> MediaError {
    match e {
        RtcError::NoH264 | RtcError::BadSdp(_) | RtcError::BadCandidate(_) => MediaError::BadOffer(e.to_string()),
        RtcError::Io(_) => MediaError::Unavailable(e.to_string()),
        other => MediaError::Internal(other.to_string()),
    }
}

impl WebRtcMedia {
    /// A backend whose peers (and STUN responder) bind `rtc.bind_ip`.
    pub fn new(rtc: RtcConfig) -> Arc<Self> {
        Self::with_max_ingest(rtc, DEFAULT_MAX_INGEST)
    }

    /// A backend running at most `max_ingest` ingest sessions at once (one more: 503).
    pub fn with_max_ingest(rtc: RtcConfig, max_ingest: usize) -> Arc<Self> {
        Arc::new(WebRtcMedia {
            rtc,
            inner: Arc::default(),
            stun: OnceCell::new(),
            max_ingest,
            open_ingest: Arc::default(),
        })
    }

    /// Ingest sessions running now (over all streams).
    pub fn ingest_sessions(&self) -> usize {
        self.open_ingest.load(Ordering::SeqCst)
    }

    /// ICE servers to advertise (`Link: <stun:...>; rel="ice-server"`): this engine's own
    /// STUN responder, started on first use.
    async fn ice_servers(&self) -> Vec<String> {
        let ip = self.rtc.bind_ip;
        let stun = self
            .stun
            .get_or_init(|| async move {
                StunServer::bind(ip).await.map_err(|e| tracing::warn!("no STUN responder on {ip}: {e}")).ok()
            })
            .await;
        stun.iter().map(StunServer::url).collect()
    }

    /// Figures of stream `stream_id`'s media; `None` when it never had any.
    pub fn stats(&self, stream_id: &str) -> Option<MediaStats> {
        let streams = self.inner.lock();
        let media = streams.get(stream_id)?;
        let mut stats = MediaStats {
            viewers: media.hub.viewer_count(),
            first_output: media.hub.first_output(),
            ..Default::default()
        };
        if let Some(s) = &media.session {
            stats.session_id = Some(s.id.clone());
            stats.pipeline = s.shared.pipeline_stats();
            stats.frames_received = s.shared.frames_received.load(Ordering::Relaxed);
            stats.frames_dropped = s.shared.frames_dropped.load(Ordering::Relaxed);
            stats.ingest = s.ingest.stats();
            stats.transform_running = s.shared.transform_started.load(Ordering::SeqCst);
        }
        Some(stats)
    }

    async fn start_ingest(&self, offer: IngestOffer) -> Result<SdpAnswer, MediaError> {
        // Refused before any work: no peer, no pipeline, no thread beyond the cap.
        let replacing = self.inner.lock().get(&offer.stream_id).is_some_and(|m| m.session.is_some());
        let slot = IngestSlot::take(&self.open_ingest, self.max_ingest, replacing).ok_or_else(|| {
            MediaError::Busy(format!(
                "Too many ingest sessions: this engine runs at most {} at once; try again later",
                self.max_ingest
            ))
        })?;
        let (mut ingest, answer) = accept_ingest(&self.rtc, &offer.offer_sdp).await.map_err(rtc_error)?;
        let frames = std::mem::replace(&mut ingest.frames, mpsc::channel(1).1);
        let ingest = Arc::new(ingest);
        let stream_id = offer.stream_id;
        let session_id = random_id("ses_");
        let hub = Arc::clone(
            &self
                .inner
                .lock()
                .entry(stream_id.clone())
                .or_insert_with(|| StreamMedia { hub: Arc::new(Hub::new()), session: None })
                .hub,
        );

        let (queue_tx, queue_rx) = std::sync::mpsc::sync_channel(TRANSFORM_QUEUE);
        let (events_tx, events_rx) = mpsc::unbounded_channel::<WorkerEvent>();
        let shared = Arc::new(SessionShared::default());
        // The codec thread (and its pipeline) starts with the first media, not on the offer.
        let transform = Transform {
            params: offer.params,
            queue: queue_rx,
            shared: shared.clone(),
            hub,
            activity: offer.activity.clone(),
            events: events_tx,
            faults: offer.faults,
        };

        let pump = tokio::spawn(run_pump(
            Arc::downgrade(&self.inner),
            stream_id.clone(),
            session_id.clone(),
            worker::pump(
                frames,
                ingest.clone(),
                queue_tx,
                events_rx,
                transform,
                offer.activity.clone(),
                shared.clone(),
                offer.ice,
            ),
            offer.activity.clone(),
        ));
        let session =
            Session { id: session_id.clone(), ingest, shared, pump, activity: offer.activity.clone(), _slot: slot };
        let replaced = {
            let mut streams = self.inner.lock();
            match streams.get_mut(&stream_id) {
                Some(media) => media.session.replace(session),
                None => return Err(MediaError::NotFound("Stream not found".into())), // deleted meanwhile
            }
        };
        if let Some(old) = replaced {
            tracing::info!(stream_id = %stream_id, old = %old.id, new = %session_id, "WHIP session replaced");
            old.activity.resource_ended(&old.id, Instant::now());
        }
        if !offer.activity.exists() {
            self.stream_deleted(&stream_id);
            return Err(MediaError::NotFound("Stream not found".into()));
        }
        offer.activity.ingest_started(Instant::now());
        Ok(SdpAnswer { sdp: answer, resource_id: session_id, ice_servers: self.ice_servers().await })
    }

    async fn start_view(&self, offer: ViewerOffer) -> Result<SdpAnswer, MediaError> {
        let hub = self.inner.lock().get(&offer.stream_id).map(|m| Arc::clone(&m.hub));
        let hub = hub
            .filter(|h| h.first_output().is_some())
            .ok_or_else(|| MediaError::NotFound("No output yet: the stream has not produced a frame".into()))?;
        let cap = offer.max_viewers;
        if hub.viewer_count() >= cap {
            return Err(too_many(cap));
        }
        let (mut egress, answer) = accept_egress(&self.rtc, &offer.offer_sdp).await.map_err(rtc_error)?;
        let mut requests = std::mem::replace(&mut egress.keyframe_requests, mpsc::channel(1).1);
        let viewer_id = random_id("vwr_");
        hub.add_viewer(viewer_id.clone(), egress, cap).map_err(|_| too_many(cap))?;
        // a late joiner starts on a fresh IDR rather than waiting for the next one
        hub.request_keyframe();
        let weak = Arc::downgrade(&hub);
        let id = viewer_id.clone();
        let activity = offer.activity.clone();
        tokio::spawn(async move {
            // PLI/FIR from the viewer (and "connected, start on a keyframe"); ends with its peer
            while requests.recv().await.is_some() {
                match weak.upgrade() {
                    Some(hub) => hub.request_keyframe(),
                    None => return,
                }
            }
            if let Some(hub) = weak.upgrade() {
                hub.remove_viewer(&id);
            }
            activity.resource_ended(&id, Instant::now());
        });
        tracing::info!(stream_id = %offer.stream_id, viewer = %viewer_id, "WHEP viewer accepted");
        Ok(SdpAnswer { sdp: answer, resource_id: viewer_id, ice_servers: self.ice_servers().await })
    }
}

fn too_many(cap: usize) -> MediaError {
    MediaError::TooMany(format!("Too many viewers (at most {cap} per stream)"))
}

/// Runs a session's pump; when the peer goes away on its own, ends the session and tells
/// the status machine (a replaced or deleted session is aborted before it gets here).
async fn run_pump(
    inner: Weak<Inner>,
    stream_id: String,
    session_id: String,
    pump: impl std::future::Future<Output = PumpEnd>,
    activity: StreamActivity,
) {
    let end = pump.await;
    tracing::info!(stream_id = %stream_id, session = %session_id, ?end, "WHIP session ended");
    let Some(inner) = inner.upgrade() else { return };
    if let Some(session) = inner.end_session(&stream_id, &session_id) {
        if end == PumpEnd::PeerGone {
            activity.ingest_closed(Instant::now());
        }
        activity.resource_ended(&session_id, Instant::now());
        // Dropping the session aborts this very task: nothing may follow.
        drop(session);
    }
}

impl MediaBackend for WebRtcMedia {
    fn ingest(&self, offer: IngestOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(self.start_ingest(offer))
    }

    fn trickle(&self, stream_id: &str, session_id: &str, sdpfrag: &str) -> Result<(), MediaError> {
        let streams = self.inner.lock();
        let session = streams
            .get(stream_id)
            .and_then(|m| m.session.as_ref())
            .filter(|s| s.id == session_id)
            .ok_or_else(|| MediaError::NotFound("No such WHIP session".into()))?;
        session.ingest.add_remote_candidates(sdpfrag).map_err(rtc_error)
    }

    fn end_ingest(&self, stream_id: &str, session_id: Option<&str>) -> Result<(), MediaError> {
        let ended = {
            let mut streams = self.inner.lock();
            let media = streams.get_mut(stream_id);
            match (media, session_id) {
                (Some(m), Some(id)) if m.session.as_ref().is_some_and(|s| s.id == id) => m.session.take(),
                (_, Some(_)) => return Err(MediaError::NotFound("No such WHIP session".into())),
                (Some(m), None) => m.session.take(),
                (None, None) => None,
            }
        };
        if let Some(session) = ended {
            tracing::info!(stream_id = %stream_id, session = %session.id, "WHIP session ended by request");
            session.activity.ingest_closed(Instant::now());
            session.activity.resource_ended(&session.id, Instant::now());
        }
        Ok(())
    }

    fn view(&self, offer: ViewerOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(self.start_view(offer))
    }

    fn end_view(&self, stream_id: &str, viewer_id: &str) -> Result<(), MediaError> {
        let hub = self.inner.lock().get(stream_id).map(|m| Arc::clone(&m.hub));
        match hub {
            Some(hub) if hub.remove_viewer(viewer_id) => Ok(()),
            _ => Err(MediaError::NotFound("No such WHEP viewer".into())),
        }
    }

    fn params_updated(&self, stream_id: &str, params: &StreamParams) -> bool {
        match self.inner.lock().get(stream_id).and_then(|m| m.session.as_ref()) {
            Some(session) => {
                session.shared.set_params(params.clone());
                true
            }
            None => false,
        }
    }

    fn stream_deleted(&self, stream_id: &str) {
        let removed = self.inner.lock().remove(stream_id);
        drop(removed); // outside the lock: closes the session and every viewer
    }
}
