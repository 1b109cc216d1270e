//! The moving test pattern as H.264 access units.

use dreamgate_media::{H264Encoder, TestPattern};
use dreamgate_rtc::MediaFrame;

/// Encodes `dreamgate-media`'s moving [`TestPattern`] frame by frame into
/// [`MediaFrame`]s (Annex-B access units, RTP time on the 90 kHz clock).
///
/// ```
/// let mut frames = dreamgate_testkit::PatternFrames::new(64, 64, 30);
/// let first = frames.next(false);
/// assert!(first.keyframe, "the first access unit is an IDR");
/// assert_eq!(frames.next(false).rtp_time, 3000);
/// assert_eq!(frames.index(), 2);
/// ```
pub struct PatternFrames {
    pattern: TestPattern,
    encoder: H264Encoder,
    fps: u32,
    index: u64,
}

impl PatternFrames {
    /// A `width` x `height` pattern encoded for `fps` frames per second.
    ///
    /// # Panics
    ///
    /// When the encoder cannot be created (odd or zero sizes).
    pub fn new(width: u32, height: u32, fps: u32) -> PatternFrames {
        PatternFrames {
            pattern: TestPattern::new(width, height),
            encoder: H264Encoder::new(width, height, fps).expect("H.264 encoder"),
            fps: fps.max(1),
            index: 0,
        }
    }

    /// The next access unit; an IDR when `keyframe` (or when it is the first). Frame `n`
    /// has RTP time `n * 90000 / fps` (wrapping).
    pub fn next(&mut self, keyframe: bool) -> MediaFrame {
        let frame = self.pattern.frame(self.index);
        let encoded = self.encoder.encode(&frame, keyframe).expect("encode the test pattern");
        let out = MediaFrame {
            data: encoded.data.into(),
            keyframe: encoded.keyframe,
            rtp_time: (self.index as u32).wrapping_mul(90_000 / self.fps),
        };
        self.index += 1;
        out
    }

    /// How many access units were produced so far (the index of the next one).
    pub fn index(&self) -> u64 {
        self.index
    }
}
