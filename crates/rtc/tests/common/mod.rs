//! Helpers of the rtc suites: the test size, a decoding sink. (The pattern source and the
//! state waits are `dreamgate-testkit`'s.)

#![allow(dead_code)]

use dreamgate_media::H264Decoder;
use dreamgate_rtc::MediaFrame;
use dreamgate_testkit::PatternFrames;

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
pub const FPS: u32 = 30;

/// The moving test pattern at the test size, as H.264 access units.
pub fn source() -> PatternFrames {
    PatternFrames::new(WIDTH, HEIGHT, FPS)
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

/// Whether a keyframe request is pending on `rx` (consumes it).
pub fn take_request(rx: &mut tokio::sync::mpsc::Receiver<()>) -> bool {
    rx.try_recv().is_ok()
}
