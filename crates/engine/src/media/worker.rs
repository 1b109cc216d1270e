//! One ingest session's moving parts: the async pump (peer -> bounded queue, keyframe
//! requests, transport figures) and the transform thread (decode -> stylise -> encode ->
//! viewers), which owns the codec work so the tokio reactor never runs it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dreamgate_media::{output_size, MediaError, Pipeline, PipelineStats, Stylizer};
use dreamgate_model::StreamParams;
use dreamgate_rtc::{Ingest, MediaFrame, Peer as _, PeerState};
use tokio::sync::mpsc;

use super::gate::{Admit, IngestGate};
use super::hub::Hub;
use crate::backend::IcePolicy;
use crate::faults::ICE_CUT_END;
use crate::faults::{FrameFault, MediaFaults};
use crate::status::TransportStats;
use crate::streams::StreamActivity;

/// Nominal frame rate of the output encoder (the Dream page captures at 30 fps).
pub(crate) const OUTPUT_FPS: u32 = 30;
/// How often the pump wakes up to check its timers.
const PUMP_TICK: Duration = Duration::from_millis(250);
/// The transform thread publishes its pipeline stats every this many frames.
const STATS_EVERY: u64 = 10;

/// State one session shares between its pump, its transform thread and the backend.
#[derive(Debug)]
pub(crate) struct SessionShared {
    /// Cleared when the session ends; held while the thread records media events, so no
    /// event is recorded once [`SessionShared::end`] has returned.
    live: Mutex<bool>,
    /// Params to apply before the next frame (set by `params_updated`).
    pending_params: Mutex<Option<StreamParams>>,
    /// The transform pipeline's latest stats.
    pipeline: Mutex<PipelineStats>,
    /// Access units received from the peer.
    pub(crate) frames_received: AtomicU64,
    /// Access units dropped before the transform (behind, or waiting for a keyframe).
    pub(crate) frames_dropped: AtomicU64,
    /// The transform thread was started (by the first media).
    pub(crate) transform_started: AtomicBool,
}

impl Default for SessionShared {
    fn default() -> Self {
        SessionShared {
            live: Mutex::new(true),
            pending_params: Mutex::default(),
            pipeline: Mutex::default(),
            frames_received: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            transform_started: AtomicBool::new(false),
        }
    }
}

impl SessionShared {
    /// Ends the session: the transform thread records nothing more and stops.
    pub(crate) fn end(&self) {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    fn is_live(&self) -> bool {
        *self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_params(&self, params: StreamParams) {
        *self.pending_params.lock().unwrap_or_else(|e| e.into_inner()) = Some(params);
    }

    fn take_params(&self) -> Option<StreamParams> {
        self.pending_params.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(crate) fn pipeline_stats(&self) -> PipelineStats {
        self.pipeline.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn publish(&self, stats: PipelineStats) {
        *self.pipeline.lock().unwrap_or_else(|e| e.into_inner()) = stats;
    }
}

/// What the transform thread tells the pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerEvent {
    /// A unit did not decode: the decoder needs a keyframe.
    DecodeError,
}

/// Why a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PumpEnd {
    /// The peer went away (closed, failed, timed out).
    PeerGone,
    /// The stream was deleted, or the transform thread stopped.
    Stopped,
}

fn build_pipeline(params: &StreamParams) -> Result<Pipeline, MediaError> {
    let (w, h) = output_size(params);
    let mut pipeline = Pipeline::new(w, h, OUTPUT_FPS, Box::new(Stylizer::new()))?;
    pipeline.set_params(params);
    Ok(pipeline)
}

/// Everything the transform thread owns.
pub(crate) struct Transform {
    pub(crate) params: StreamParams,
    pub(crate) queue: Receiver<MediaFrame>,
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) activity: StreamActivity,
    pub(crate) events: mpsc::UnboundedSender<WorkerEvent>,
    pub(crate) faults: MediaFaults,
}

impl Transform {
    /// Starts the thread. It ends when the queue's sender is dropped (session ended) or when
    /// the stream is gone.
    pub(crate) fn spawn(self) -> std::io::Result<()> {
        let name = format!("media-{}", self.activity.stream_id());
        std::thread::Builder::new().name(name).spawn(move || self.run()).map(drop)
    }

    fn run(self) {
        let Transform { params, queue, shared, hub, activity, events, faults } = self;
        let mut pipeline = match build_pipeline(&params) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(stream_id = %activity.stream_id(), "cannot start the pipeline: {e}");
                activity.record_error(Instant::now(), format!("cannot start the pipeline: {e}"));
                return;
            }
        };
        // a PATCH that an earlier session never applied takes effect with this pipeline
        activity.params_applied(Instant::now(), crate::snapshot::params_hash(&params));
        let mut produced = 0u64;
        let mut first_input: Option<Instant> = None;
        let mut stalled = false;
        while let Ok(unit) = queue.recv() {
            if !shared.is_live() {
                break; // ended: skip what is still queued
            }
            if let Some(params) = shared.take_params() {
                let switched = if output_size(&params) == pipeline.size() {
                    pipeline.set_params(&params);
                    true
                } else {
                    // a new size needs a new encoder (its first frame is an IDR)
                    match build_pipeline(&params) {
                        Ok(p) => {
                            pipeline = p;
                            true
                        }
                        Err(e) => {
                            activity.record_error(Instant::now(), format!("cannot resize the pipeline: {e}"));
                            false
                        }
                    }
                };
                // the frame about to be transformed is the first with the new params
                if switched {
                    activity.params_applied(Instant::now(), crate::snapshot::params_hash(&params));
                }
            }
            if hub.take_keyframe_request() {
                pipeline.request_keyframe();
            }
            let now = Instant::now();
            let since_input = now.saturating_duration_since(*first_input.get_or_insert(now));
            let since_output = hub.first_output().map(|t| now.saturating_duration_since(t));
            let fault = faults.frame(since_input, since_output);
            if fault == FrameFault::Stall {
                stalled = true;
            } else if std::mem::take(&mut stalled) {
                // the viewers missed the stalled frames: resume on an IDR
                pipeline.request_keyframe();
            }
            if fault != FrameFault::Normal {
                // loading (the warm-up frame goes out) or stalled (nothing does): input only
                let result = match fault {
                    FrameFault::Warmup(progress) => pipeline.push_warmup(&unit.data, progress),
                    _ => pipeline.push(&unit.data).map(|_| None),
                };
                match result {
                    Ok(out) => {
                        let now = Instant::now();
                        {
                            let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
                            if !*live || !activity.record_input(now, unit.data.len()) {
                                break;
                            }
                        }
                        if let Some(out) = out {
                            hub.broadcast(out, now);
                        }
                    }
                    Err(MediaError::Decode(_)) => {
                        let _ = events.send(WorkerEvent::DecodeError);
                    }
                    Err(e) => {
                        if !activity.record_error(Instant::now(), e.to_string()) {
                            break;
                        }
                    }
                }
                continue;
            }
            match pipeline.push(&unit.data) {
                Ok(Some(out)) => {
                    let now = Instant::now();
                    {
                        let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
                        if !*live {
                            break; // the session ended while this frame was transformed
                        }
                        if !activity.record_frame(now, unit.data.len(), out.data.len()) {
                            break; // stream deleted
                        }
                    }
                    hub.broadcast(out, now);
                    produced += 1;
                    if produced % STATS_EVERY == 1 {
                        shared.publish(pipeline.stats());
                    }
                }
                Ok(None) => {}
                Err(MediaError::Decode(e)) => {
                    tracing::debug!(stream_id = %activity.stream_id(), "decode failed, waiting for a keyframe: {e}");
                    let _ = events.send(WorkerEvent::DecodeError);
                }
                Err(e) => {
                    tracing::warn!(stream_id = %activity.stream_id(), "transform failed: {e}");
                    if !activity.record_error(Instant::now(), e.to_string()) {
                        break;
                    }
                }
            }
        }
        shared.publish(pipeline.stats());
        tracing::debug!(stream_id = %activity.stream_id(), frames = produced, "transform thread ends");
    }
}

/// Moves access units from the peer to the transform thread, through the [`IngestGate`],
/// and records transport figures. Returns when the peer or the stream is gone (the caller
/// cleans up); dropping the future (session replaced or ended) stops it, and with it the
/// transform thread.
pub(crate) async fn pump(
    mut frames: mpsc::Receiver<MediaFrame>,
    ingest: Arc<Ingest>,
    queue: SyncSender<MediaFrame>,
    mut events: mpsc::UnboundedReceiver<WorkerEvent>,
    transform: Transform,
    activity: StreamActivity,
    shared: Arc<SessionShared>,
    ice: IcePolicy,
) -> PumpEnd {
    // started by the first access unit: a peer that never sends media costs no codec thread
    let mut transform = Some(transform);
    let mut gate = IngestGate::new(Instant::now());
    // `ice_disconnect`: watch the peer's ICE; cut the path once, after the first frame
    let mut states = ingest.state_changes();
    let mut watching = ice.end_on_disconnect;
    let mut cut_after = ice.cut_after_first_frame;
    let mut cut_at: Option<Instant> = None;
    let mut muted = false;
    let mut tick = tokio::time::interval(PUMP_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            unit = frames.recv() => {
                let Some(unit) = unit else { return PumpEnd::PeerGone };
                if let Some(t) = transform.take() {
                    if let Err(e) = t.spawn() {
                        tracing::error!(stream_id = %activity.stream_id(), "cannot start the media thread: {e}");
                        activity.record_error(Instant::now(), "cannot start the media thread");
                        return PumpEnd::Stopped;
                    }
                    shared.transform_started.store(true, Ordering::SeqCst);
                }
                shared.frames_received.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(after) = cut_after.take() {
                    cut_at = Some(now + after);
                }
                let request = match gate.admit(now, unit.keyframe) {
                    Admit::Forward => match queue.try_send(unit) {
                        Ok(()) => false,
                        Err(TrySendError::Full(_)) => gate.on_overflow(now),
                        Err(TrySendError::Disconnected(_)) => return PumpEnd::Stopped,
                    },
                    Admit::Drop { request_keyframe } => request_keyframe,
                };
                shared.frames_dropped.store(gate.dropped(), Ordering::Relaxed);
                if request {
                    ingest.request_keyframe();
                }
            }
            event = events.recv() => match event {
                Some(WorkerEvent::DecodeError) => {
                    if gate.on_decode_error(Instant::now()) {
                        ingest.request_keyframe();
                    }
                }
                None => return PumpEnd::Stopped, // the transform thread ended
            },
            changed = states.changed(), if watching => match changed {
                // Livepeer ends a WHIP session as soon as ICE reports "disconnected"
                Ok(()) if *states.borrow() == PeerState::Disconnected => {
                    tracing::info!(stream_id = %activity.stream_id(), "ICE disconnected: ending the WHIP session");
                    return PumpEnd::PeerGone;
                }
                Ok(()) => {}
                Err(_) => watching = false,
            },
            _ = sleep_until(cut_at), if cut_at.is_some() => {
                if muted {
                    // the publisher's ICE has long reported "disconnected": the session is over
                    tracing::info!(stream_id = %activity.stream_id(), "ice_disconnect: ending the cut WHIP session");
                    return PumpEnd::PeerGone;
                }
                tracing::info!(stream_id = %activity.stream_id(), "ice_disconnect: cutting the WHIP session's return path");
                ingest.mute();
                muted = true;
                cut_at = Some(Instant::now() + ICE_CUT_END);
            }
            _ = tick.tick() => {
                if gate.transport_due(Instant::now()) {
                    let s = ingest.stats();
                    let figures = TransportStats { packets_received: s.packets_received, packets_lost: s.packets_lost, ..Default::default() };
                    if !activity.record_transport(figures) {
                        return PumpEnd::Stopped;
                    }
                }
            }
        }
    }
}

/// Sleeps until `at` (forever when `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
