//! Helpers shared by the integration tests: real H.264 from dreamgate-media, state waits.

#![allow(dead_code)]

use std::time::Duration;

use dreamgate_media::{H264Decoder, H264Encoder, TestPattern};
use dreamgate_rtc::{MediaFrame, PeerState};
use tokio::sync::watch;

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
pub const FPS: u32 = 30;

/// Encodes the moving test pattern, frame by frame.
pub struct Source {
    pattern: TestPattern,
    encoder: H264Encoder,
    index: u64,
}

impl Source {
    pub fn new() -> Source {
        Source {
            pattern: TestPattern::new(WIDTH, HEIGHT),
            encoder: H264Encoder::new(WIDTH, HEIGHT, FPS).expect("encoder"),
            index: 0,
        }
    }

    /// The next access unit; an IDR when `keyframe` (or when it is the first).
    pub fn next(&mut self, keyframe: bool) -> MediaFrame {
        let frame = self.pattern.frame(self.index);
        let encoded = self.encoder.encode(&frame, keyframe).expect("encode");
        let out = MediaFrame {
            data: encoded.data.into(),
            keyframe: encoded.keyframe,
            rtp_time: (self.index as u32).wrapping_mul(90_000 / FPS),
        };
        self.index += 1;
        out
    }
}

/// Decodes access units and checks every picture has the test size.
pub struct Sink {
    decoder: H264Decoder,
    pub pictures: usize,
}

impl Sink {
    pub fn new() -> Sink {
        Sink { decoder: H264Decoder::new().expect("decoder"), pictures: 0 }
    }

    pub fn push(&mut self, frame: &MediaFrame) {
        let picture =
            self.decoder.decode(&frame.data).unwrap_or_else(|e| panic!("undecodable access unit {frame:?}: {e}"));
        if let Some(p) = picture {
            assert_eq!((p.width, p.height), (WIDTH, HEIGHT));
            self.pictures += 1;
        }
    }
}

/// Waits (at most 10 s) until the watched state is `want`.
pub async fn wait_state(rx: &watch::Receiver<PeerState>, want: PeerState) {
    let mut rx = rx.clone();
    let waited = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| *s == want)).await.map(|r| r.is_ok());
    let last = *rx.borrow();
    match waited {
        Ok(true) => {}
        Ok(false) => panic!("peer task ended in {last:?} while waiting for {want:?}"),
        Err(_) => panic!("timed out in {last:?} waiting for {want:?}"),
    }
}

/// Waits (at most 10 s) until the peer task behind `rx` has ended; returns its last state.
pub async fn wait_ended(rx: &watch::Receiver<PeerState>) -> PeerState {
    let mut rx = rx.clone();
    let ended = tokio::time::timeout(Duration::from_secs(10), async { while rx.changed().await.is_ok() {} }).await;
    assert!(ended.is_ok(), "peer task still running in {:?}", *rx.borrow());
    let last = *rx.borrow();
    last
}

/// Whether a keyframe request is pending on `rx` (consumes it).
pub fn take_request(rx: &mut tokio::sync::mpsc::Receiver<()>) -> bool {
    rx.try_recv().is_ok()
}
