//! One stream's output: the encoded frames fanned out to every WHEP viewer, and the
//! "next frame must be an IDR" flag viewers raise (joining, PLI/FIR).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use dreamgate_media::Encoded;
use dreamgate_rtc::{Egress, MediaFrame, Peer};

struct Viewer {
    id: String,
    egress: Egress,
}

#[derive(Default)]
struct State {
    viewers: Vec<Viewer>,
    first_output: Option<Instant>,
}

/// The fan-out of one stream (shared by its transform thread and the HTTP side).
pub(crate) struct Hub {
    epoch: Instant,
    force_idr: AtomicBool,
    state: Mutex<State>,
}

impl Hub {
    pub(crate) fn new() -> Self {
        Hub { epoch: Instant::now(), force_idr: AtomicBool::new(false), state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one encoded frame to every viewer (dropping viewers whose peer has ended).
    /// The RTP time is the production time on a 90 kHz clock, so it stays monotonic across
    /// ingest sessions.
    pub(crate) fn broadcast(&self, encoded: Encoded, now: Instant) {
        let ticks = now.saturating_duration_since(self.epoch).as_micros() * 9 / 100;
        let frame = MediaFrame { data: Bytes::from(encoded.data), keyframe: encoded.keyframe, rtp_time: ticks as u32 };
        let mut state = self.lock();
        state.first_output.get_or_insert(now);
        state.viewers.retain(|v| !v.egress.state().is_terminal());
        for v in &state.viewers {
            // The egress drops non-key frames until the viewer has had a keyframe.
            v.egress.send(frame.clone());
        }
    }

    /// When the first output frame was produced (`None`: no output yet, WHEP answers 404).
    pub(crate) fn first_output(&self) -> Option<Instant> {
        self.lock().first_output
    }

    /// Makes the next encoded frame an IDR.
    pub(crate) fn request_keyframe(&self) {
        self.force_idr.store(true, Ordering::Relaxed);
    }

    /// Takes the pending IDR request (the transform thread, before each frame).
    pub(crate) fn take_keyframe_request(&self) -> bool {
        self.force_idr.swap(false, Ordering::Relaxed)
    }

    /// Adds a viewer unless `cap` viewers are already there (then the egress is handed back).
    pub(crate) fn add_viewer(&self, id: String, egress: Egress, cap: usize) -> Result<(), Egress> {
        let mut state = self.lock();
        state.viewers.retain(|v| !v.egress.state().is_terminal());
        if state.viewers.len() >= cap {
            return Err(egress);
        }
        state.viewers.push(Viewer { id, egress });
        Ok(())
    }

    /// Removes (and so closes) a viewer; whether it was there.
    pub(crate) fn remove_viewer(&self, id: &str) -> bool {
        // Bound outside the block: the egress is dropped (closed) after the lock is released.
        let removed = {
            let mut state = self.lock();
            let at = state.viewers.iter().position(|v| v.id == id);
            at.map(|i| state.viewers.swap_remove(i))
        };
        removed.is_some()
    }

    /// Viewers whose peer has not ended.
    pub(crate) fn viewer_count(&self) -> usize {
        self.lock().viewers.iter().filter(|v| !v.egress.state().is_terminal()).count()
    }
}
