//! A publisher fed by a task: the test pattern at 30 fps.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dreamgate_rtc::Publisher;
use tokio::task::JoinHandle;

use crate::PatternFrames;

/// A connected publisher's feed: the moving test pattern, H.264 at 30 fps (one frame
/// every 33 ms), until stopped or until its frame limit. An IDR goes out whenever the
/// remote asked for a keyframe.
///
/// ```no_run
/// # async fn demo(publisher: dreamgate_rtc::Publisher) {
/// let feed = dreamgate_testkit::Feed::start(publisher, 512, 512);
/// // ... the stream goes ONLINE ...
/// assert!(feed.sent() > 0);
/// let publisher = feed.stop().await; // the publisher comes back, still connected
/// # drop(publisher);
/// # }
/// ```
pub struct Feed {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    task: JoinHandle<Publisher>,
}

impl Feed {
    /// Frames a [`Feed::start`]ed feed sends at most: 60 s at 30 fps.
    pub const DEFAULT_LIMIT: u64 = 30 * 60;

    /// Feeds `publisher` a `width` x `height` pattern for at most [`Feed::DEFAULT_LIMIT`]
    /// frames. Needs a tokio runtime.
    pub fn start(publisher: Publisher, width: u32, height: u32) -> Feed {
        Feed::start_limited(publisher, width, height, Feed::DEFAULT_LIMIT)
    }

    /// Feeds `publisher` for at most `max_frames` frames.
    pub fn start_limited(mut publisher: Publisher, width: u32, height: u32, max_frames: u64) -> Feed {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (flag, counter) = (stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut frames = PatternFrames::new(width, height, 30);
            let mut tick = tokio::time::interval(Duration::from_millis(33));
            for _ in 0..max_frames {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let force = publisher.keyframe_requests.try_recv().is_ok();
                publisher.send(frames.next(force));
                counter.fetch_add(1, Ordering::Relaxed);
            }
            publisher
        });
        Feed { stop, sent, task }
    }

    /// Frames handed to the publisher so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops feeding; returns the publisher (not closed).
    pub async fn stop(self) -> Publisher {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the feed task")
    }
}
