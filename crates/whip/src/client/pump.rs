//! The frame source on its own thread, paced at its frame rate (media clock: frame `n`
//! is due at `start + n / fps`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamgate_media::Encoded;
use tokio::sync::mpsc;

use crate::source::FrameSource;

/// The source on its own thread, paced at its frame rate.
pub(super) struct Pump {
    pub(super) frames: mpsc::Receiver<Encoded>,
    pub(super) force_keyframe: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    pub(super) fps: u32,
    pub(super) sent: u64,
}

impl Pump {
    pub(super) fn start(mut source: Box<dyn FrameSource>) -> Self {
        let fps = source.fps().max(1);
        let (tx, frames) = mpsc::channel(4);
        let force_keyframe = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (force, halt) = (force_keyframe.clone(), stop.clone());
        std::thread::spawn(move || {
            let interval = Duration::from_secs(1) / fps;
            let start = Instant::now();
            for n in 0u32.. {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                // Media clock: frame n is due at start + n / fps.
                let due = start + interval * n;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let Some(frame) = source.next_frame(force.swap(false, Ordering::Relaxed)) else { break };
                if tx.blocking_send(frame).is_err() {
                    break;
                }
            }
        });
        Self { frames, force_keyframe, stop, fps, sent: 0 }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The pump's next frame; pending forever without a pump.
pub(super) async fn next_frame(pump: &mut Option<Pump>) -> Option<Encoded> {
    match pump {
        Some(pump) => pump.frames.recv().await,
        None => std::future::pending().await,
    }
}
