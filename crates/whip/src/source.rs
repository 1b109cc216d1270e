//! What the client publishes: encoded H.264 access units at a fixed rate.

use std::path::Path;

use dreamgate_media::{Encoded, Frame, H264Encoder, MediaError, TestPattern, Y4mReader};

/// A video source for [`WhipClient`](crate::WhipClient): yields encoded H.264
/// access units (Annex-B), `fps()` of them per second. It runs on its own
/// thread, paced by the client.
pub trait FrameSource: Send + 'static {
    /// Frames per second.
    fn fps(&self) -> u32;

    /// Whether there is a video track at all (`MediaStream has no tracks` otherwise).
    fn has_video(&self) -> bool {
        true
    }

    /// Whether the source can still produce frames (`Video track is not live` otherwise).
    fn is_live(&self) -> bool {
        true
    }

    /// The next access unit (an IDR when `force_keyframe`), or `None` when the
    /// source has ended.
    fn next_frame(&mut self, force_keyframe: bool) -> Option<Encoded>;
}

type Frames = Box<dyn Iterator<Item = Result<Frame, MediaError>> + Send>;

/// Raw I420 frames encoded with [`H264Encoder`]: the moving test pattern or a
/// Y4M file.
///
/// ```no_run
/// use dreamgate_whip::{EncodingSource, FrameSource};
///
/// let mut source = EncodingSource::test_pattern(512, 512, 30)?;
/// let first = source.next_frame(false).unwrap();
/// assert!(first.keyframe);
/// # Ok::<(), dreamgate_media::MediaError>(())
/// ```
pub struct EncodingSource {
    frames: Frames,
    encoder: H264Encoder,
    fps: u32,
    ended: bool,
}

impl std::fmt::Debug for EncodingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodingSource").field("fps", &self.fps).field("ended", &self.ended).finish()
    }
}

impl EncodingSource {
    /// Encodes `frames` (all `width` x `height`) at `fps`.
    pub fn new(
        frames: impl Iterator<Item = Result<Frame, MediaError>> + Send + 'static,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, MediaError> {
        let fps = fps.max(1);
        Ok(Self { frames: Box::new(frames), encoder: H264Encoder::new(width, height, fps)?, fps, ended: false })
    }

    /// The endless moving test pattern.
    pub fn test_pattern(width: u32, height: u32, fps: u32) -> Result<Self, MediaError> {
        let pattern = TestPattern::new(width, height);
        Self::new((0..).map(move |i| Ok(pattern.frame(i))), width, height, fps)
    }

    /// A Y4M file, at `fps` or else the file's own rate (30 when it has none).
    pub fn y4m(path: impl AsRef<Path>, fps: Option<u32>) -> Result<Self, MediaError> {
        Self::y4m_reader(Y4mReader::open(path)?, fps)
    }

    /// A Y4M stream from any reader, e.g. standard input fed by
    /// `ffmpeg -f v4l2 -i /dev/video0 -f yuv4mpegpipe -pix_fmt yuv420p -` (a camera).
    pub fn y4m_reader<R: std::io::BufRead + Send + 'static>(
        reader: Y4mReader<R>,
        fps: Option<u32>,
    ) -> Result<Self, MediaError> {
        let (width, height) = (reader.width(), reader.height());
        let file_fps = reader.fps().map(|(num, den)| (num / den.max(1)).max(1));
        Self::new(reader, width, height, fps.or(file_fps).unwrap_or(30))
    }
}

impl FrameSource for EncodingSource {
    fn fps(&self) -> u32 {
        self.fps
    }

    fn is_live(&self) -> bool {
        !self.ended
    }

    fn next_frame(&mut self, force_keyframe: bool) -> Option<Encoded> {
        if self.ended {
            return None;
        }
        let encoded = self.frames.next().and_then(|frame| {
            frame
                .and_then(|f| self.encoder.encode(&f, force_keyframe))
                .map_err(|e| tracing::warn!("video source: {e}"))
                .ok()
        });
        self.ended = encoded.is_none();
        encoded
    }
}
