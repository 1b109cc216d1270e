//! H.264 encoding and decoding with OpenH264 (Cisco's codec, built from the
//! bundled source). The encoder uses the constrained baseline profile: no
//! B-frames, every access unit decodes as soon as it arrives.

use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile, RateControlMode, UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};
use openh264::{OpenH264API, Timestamp};

use crate::frame::chroma_size;
use crate::{Frame, MediaError};

/// One encoded picture: an Annex-B access unit (start-code delimited NAL
/// units; keyframes carry SPS and PPS in front of the IDR slice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Annex-B bytes, ready for RTP packetisation or a `.h264` file.
    pub data: Vec<u8>,
    /// True when the access unit holds an IDR picture (decodable on its own).
    pub keyframe: bool,
}

/// Encoder settings; [`EncoderSettings::new`] picks real-time defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderSettings {
    /// Picture width (even, 16..=3840).
    pub width: u32,
    /// Picture height (even, 16..=2160).
    pub height: u32,
    /// Nominal frame rate, used by rate control.
    pub fps: u32,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// A keyframe every this many frames (0: only the first one and on request).
    pub keyframe_interval: u32,
}

impl EncoderSettings {
    /// Defaults for live video: about 0.2 bits per pixel per frame (1.6 Mbit/s at
    /// 512x512, 30 fps), clamped to 300 kbit/s..8 Mbit/s, and a keyframe every
    /// 4 seconds so a viewer that missed one recovers even without PLI.
    pub fn new(width: u32, height: u32, fps: u32) -> EncoderSettings {
        let fps = fps.clamp(1, 120);
        let bits = (width as u64 * height as u64 * fps as u64) / 5;
        EncoderSettings {
            width,
            height,
            fps,
            bitrate_bps: bits.clamp(300_000, 8_000_000) as u32,
            keyframe_interval: fps * 4,
        }
    }
}

/// Checks a size H.264 in I420 can carry with OpenH264.
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), MediaError> {
    let reason = if width % 2 != 0 || height % 2 != 0 {
        "width and height must be even for 4:2:0 H.264"
    } else if width < 16 || height < 16 {
        "width and height must be at least 16"
    } else if width.max(height) > 3840 || width.min(height) > 2160 {
        "OpenH264 encodes at most 3840x2160"
    } else {
        return Ok(());
    };
    Err(MediaError::InvalidSize { width, height, reason })
}

/// Real-time H.264 encoder (OpenH264, baseline profile, one thread).
///
/// ```
/// use dreamgate_media::{Frame, H264Encoder};
/// let mut enc = H264Encoder::new(64, 64, 30).unwrap();
/// let first = enc.encode(&Frame::new(64, 64), false).unwrap();
/// assert!(first.keyframe);
/// assert!(H264Encoder::new(63, 64, 30).is_err());
/// ```
pub struct H264Encoder {
    inner: Encoder,
    settings: EncoderSettings,
    frames: u64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder").field("settings", &self.settings).field("frames", &self.frames).finish()
    }
}

impl H264Encoder {
    /// An encoder with [`EncoderSettings::new`] defaults. Odd, tiny or huge
    /// sizes are rejected with [`MediaError::InvalidSize`].
    pub fn new(width: u32, height: u32, fps: u32) -> Result<H264Encoder, MediaError> {
        H264Encoder::with_settings(EncoderSettings::new(width, height, fps))
    }

    /// An encoder with explicit settings.
    pub fn with_settings(settings: EncoderSettings) -> Result<H264Encoder, MediaError> {
        check_size(settings.width, settings.height)?;
        let fps = settings.fps.clamp(1, 120);
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate_bps.max(50_000)))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            // Every input picture must produce output: the engine relies on
            // one access unit per frame (and on forced keyframes appearing).
            .skip_frames(false)
            .complexity(Complexity::Low)
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.keyframe_interval))
            .num_threads(1);
        let mut inner = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        // OpenH264 initialises lazily on the first frame and logs a warning to
        // stderr about frame skipping being off (deliberate here: one output
        // per input). The trace level may be set before initialisation.
        let mut quiet = openh264_sys2::WELS_LOG_QUIET as std::os::raw::c_int;
        // SAFETY: TRACE_LEVEL is accepted before initialisation and only reads
        // the int behind the pointer during the call.
        unsafe {
            inner.raw_api().set_option(openh264_sys2::ENCODER_OPTION_TRACE_LEVEL, (&raw mut quiet).cast());
        }
        Ok(H264Encoder { inner, settings: EncoderSettings { fps, ..settings }, frames: 0 })
    }

    /// The settings in use.
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Encodes one frame (which must have the encoder's size). The first frame
    /// is always a keyframe; `force_keyframe` makes this one an IDR too (e.g.
    /// on a viewer's PLI).
    pub fn encode(&mut self, frame: &Frame, force_keyframe: bool) -> Result<Encoded, MediaError> {
        frame.validate()?;
        if (frame.width, frame.height) != (self.settings.width, self.settings.height) {
            return Err(MediaError::MalformedFrame(format!(
                "frame is {}x{} but the encoder is {}x{}",
                frame.width, frame.height, self.settings.width, self.settings.height
            )));
        }
        // Before the first encode OpenH264 is not initialised yet; the first
        // picture is an IDR anyway.
        if force_keyframe && self.frames > 0 {
            self.inner.force_intra_frame();
        }
        let (w, h) = (frame.width as usize, frame.height as usize);
        let source = YUVSlices::new((&frame.y, &frame.u, &frame.v), (w, h), (w, w / 2, w / 2));
        debug_assert_eq!(source.dimensions(), (w, h));
        let millis = self.frames * 1000 / self.settings.fps as u64;
        let stream = self
            .inner
            .encode_at(&source, Timestamp::from_millis(millis))
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        let mut data = Vec::with_capacity(16 * 1024);
        stream.write_vec(&mut data);
        self.frames += 1;
        let keyframe = contains_idr(&data);
        Ok(Encoded { data, keyframe })
    }
}

/// H.264 decoder for Annex-B access units (OpenH264).
///
/// Feed whole access units as they arrive; parameter sets alone, or pictures
/// whose references are missing, yield `Ok(None)` or an error, never a panic.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    /// A fresh decoder.
    pub fn new() -> Result<H264Decoder, MediaError> {
        let inner = Decoder::new().map_err(|e| MediaError::Decode(e.to_string()))?;
        Ok(H264Decoder { inner })
    }

    /// Decodes one access unit; `Ok(None)` when it produced no picture (for
    /// example SPS/PPS only).
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Frame>, MediaError> {
        let mut frame = Frame { width: 0, height: 0, y: Vec::new(), u: Vec::new(), v: Vec::new() };
        Ok(self.decode_into(annexb, &mut frame)?.then_some(frame))
    }

    /// Like [`decode`](Self::decode) but writes the picture into `out`
    /// (reusing its buffers); returns whether a picture was produced.
    pub fn decode_into(&mut self, annexb: &[u8], out: &mut Frame) -> Result<bool, MediaError> {
        if annexb.is_empty() {
            return Ok(false);
        }
        let decoded = match self.inner.decode(annexb) {
            Ok(Some(yuv)) => yuv,
            Ok(None) => return Ok(false),
            Err(e) => return Err(MediaError::Decode(e.to_string())),
        };
        let (w, h) = decoded.dimensions();
        let (sy, su, sv) = decoded.strides();
        if w == 0 || h == 0 || sy < w {
            return Err(MediaError::Decode(format!("decoder returned an unusable picture {w}x{h}")));
        }
        out.reshape(w as u32, h as u32);
        copy_plane(decoded.y(), sy, &mut out.y, w, h);
        let (cw, ch) = chroma_size(w as u32, h as u32);
        copy_plane(decoded.u(), su, &mut out.u, cw, ch);
        copy_plane(decoded.v(), sv, &mut out.v, cw, ch);
        Ok(true)
    }
}

/// Copies a strided plane into a packed one; rows the source lacks (OpenH264
/// rounds chroma rows down for odd heights) repeat the last available row.
fn copy_plane(src: &[u8], stride: usize, dst: &mut [u8], w: usize, h: usize) {
    let stride = stride.max(w);
    let mut last = 0usize;
    for (row, out) in dst.chunks_exact_mut(w).take(h).enumerate() {
        let start = row * stride;
        if start + w <= src.len() {
            out.copy_from_slice(&src[start..start + w]);
            last = start;
        } else if last + w <= src.len() {
            out.copy_from_slice(&src[last..last + w]);
        } else {
            out.fill(128);
        }
    }
}

/// NAL unit types (`nal_unit_type`, 0..=31) of an Annex-B buffer, in order.
pub fn nal_types(annexb: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < annexb.len() {
        if annexb[i] == 0 && annexb[i + 1] == 0 && annexb[i + 2] == 1 {
            types.push(annexb[i + 3] & 0x1f);
            i += 4;
        } else {
            i += 1;
        }
    }
    types
}

/// True when the Annex-B buffer contains an IDR slice (NAL type 5).
pub fn contains_idr(annexb: &[u8]) -> bool {
    nal_types(annexb).contains(&5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_type_scan() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 9, 0, 0, 0, 1, 0x65, 7, 7];
        assert_eq!(nal_types(&data), vec![7, 8, 5]);
        assert!(contains_idr(&data));
        assert!(!contains_idr(&[0, 0, 1, 0x41, 3]));
        assert!(nal_types(&[0, 0, 1]).is_empty());
    }

    #[test]
    fn sizes_are_checked() {
        for (w, h) in [(511, 512), (512, 3), (0, 0), (8, 8), (4096, 4096)] {
            let err = H264Encoder::new(w, h, 30).unwrap_err();
            assert!(matches!(err, MediaError::InvalidSize { .. }), "{w}x{h}: {err}");
        }
        let err = H264Encoder::new(511, 512, 30).unwrap_err().to_string();
        assert!(err.contains("511x512") && err.contains("even"), "{err}");
    }

    #[test]
    fn garbage_input_errors_without_panicking() {
        let mut dec = H264Decoder::new().unwrap();
        let mut saw = 0;
        for junk in [&[0u8, 0, 0, 1, 0x65, 0xff, 0x00, 0x12][..], &[1, 2, 3, 4, 5], &[0, 0, 1, 0x41, 0x9a, 0x01]] {
            match dec.decode(junk) {
                Ok(None) | Err(MediaError::Decode(_)) => saw += 1,
                Ok(Some(f)) => panic!("picture from garbage: {f:?}"),
                Err(e) => panic!("unexpected error kind: {e}"),
            }
        }
        assert_eq!(saw, 3);
        assert!(matches!(dec.decode(&[]), Ok(None)));
    }
}
