//! The seam between the HTTP control plane and the media side (WebRTC ingest, per-frame
//! transform, WHEP output).
//!
//! The control plane does every HTTP-level check itself (stream lookup, faults, content type,
//! SDP sanity) and then hands the offer, with the stream's typed params, to a [`MediaBackend`].
//! The backend reports media events back through the [`StreamActivity`] it receives
//! (`ingest_started`, `record_frame`, `ingest_closed`...), which feed the status state machine
//! ([`crate::status`]). The backend is the one layer that records an ingest's start and close.
//!
//! [`NoMedia`] answers every media call with 503 "media not available".

use std::future::Future;
use std::pin::Pin;

use dreamgate_model::StreamParams;

pub use crate::faults::IcePolicy;
use crate::streams::StreamActivity;

/// A boxed, sendable future (the trait must stay object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A WHIP offer for a stream, already checked by the control plane.
#[derive(Debug, Clone)]
pub struct IngestOffer {
    /// The stream (`str_...`).
    pub stream_id: String,
    /// Its current params.
    pub params: StreamParams,
    /// The SDP offer (starts with `v=0`).
    pub offer_sdp: String,
    /// Where to record media events for this stream.
    pub activity: StreamActivity,
    /// The per-frame fault knobs (`stall`, `load`).
    pub faults: crate::faults::MediaFaults,
    /// What to do with the session's ICE (the `ice_disconnect` fault knob; default: nothing).
    pub ice: IcePolicy,
}

/// A WHEP (viewer) offer for a stream's output, already checked by the control plane.
#[derive(Debug, Clone)]
pub struct ViewerOffer {
    /// The stream (`str_...`).
    pub stream_id: String,
    /// The SDP offer (starts with `v=0`).
    pub offer_sdp: String,
    /// The stream's activity (read-only use expected).
    pub activity: StreamActivity,
    /// Viewers allowed on this stream (429 beyond): Livepeer's 5, or the `viewers` knob.
    pub max_viewers: usize,
}

/// An accepted offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAnswer {
    /// The SDP answer (with all candidates: no trickle needed).
    pub sdp: String,
    /// The session/viewer id; the resource URL is `{whip_url}/{id}` or `{whep_url}/{id}`.
    pub resource_id: String,
    /// ICE server URLs for `Link: <url>; rel="ice-server"` (e.g. `stun:127.0.0.1:3478`).
    pub ice_servers: Vec<String>,
}

/// Why the media side refused a call. Each maps to an HTTP status (see [`MediaError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// 503: no media support, or it cannot take the call now.
    #[error("{0}")]
    Unavailable(String),
    /// 400: the offer is unusable (e.g. "offer has no H.264 video").
    #[error("{0}")]
    BadOffer(String),
    /// 404: no such session/viewer, or no output yet.
    #[error("{0}")]
    NotFound(String),
    /// 429: too many viewers.
    #[error("{0}")]
    TooMany(String),
    /// 503: the engine runs as many ingest sessions as it may (`--max-ingest`).
    #[error("{0}")]
    Busy(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

impl MediaError {
    /// The HTTP status the engine answers.
    pub fn status(&self) -> u16 {
        match self {
            MediaError::Unavailable(_) => 503,
            MediaError::BadOffer(_) => 400,
            MediaError::NotFound(_) => 404,
            MediaError::TooMany(_) => 429,
            MediaError::Busy(_) => 503,
            MediaError::Internal(_) => 500,
        }
    }

    /// The Daydream-style error code.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Unavailable(_) => "MEDIA/UNAVAILABLE",
            MediaError::BadOffer(_) => "MEDIA/BAD_OFFER",
            MediaError::NotFound(_) => "MEDIA/NOT_FOUND",
            MediaError::TooMany(_) => "MEDIA/TOO_MANY_VIEWERS",
            MediaError::Busy(_) => "MEDIA/BUSY",
            MediaError::Internal(_) => "MEDIA/INTERNAL",
        }
    }
}

/// The media side of the engine.
///
/// Contract: the backend calls `activity.ingest_started(now)` when it accepts an ingest offer
/// (before [`MediaBackend::ingest`] returns its answer), `record_frame(now, in, out)` (or
/// `record_input` / `record_output`) per decoded and produced frame, `record_transport(..)`
/// now and then, and `ingest_closed(now)` when the session ends (the peer went away, or
/// [`MediaBackend::end_ingest`] ended it). The control plane records neither. A `false`
/// return from those methods means the stream was deleted: stop.
pub trait MediaBackend: Send + Sync + 'static {
    /// Accepts a WHIP offer (one active ingest per stream: a new one replaces the old).
    fn ingest(&self, offer: IngestOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>>;

    /// Trickle ICE: adds remote candidates (`application/trickle-ice-sdpfrag`) to a session.
    fn trickle(&self, stream_id: &str, session_id: &str, sdpfrag: &str) -> Result<(), MediaError>;

    /// Ends one ingest session (`Some`), or every ingest session of the stream (`None`: the
    /// status machine saw no input for 60 s).
    fn end_ingest(&self, stream_id: &str, session_id: Option<&str>) -> Result<(), MediaError>;

    /// Accepts a WHEP viewer offer for the stream's output.
    fn view(&self, offer: ViewerOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>>;

    /// Ends one viewer.
    fn end_view(&self, stream_id: &str, viewer_id: &str) -> Result<(), MediaError>;

    /// The stream's params changed (PATCH): apply them (the whole merged params) to the
    /// running pipeline. `true`: a running pipeline will switch to them, and reports
    /// `activity.params_applied(now, hash)` once it has (the status's `last_params_hash`
    /// moves then); `false` (the default): nothing runs, the control plane counts them
    /// applied at once (the next pipeline starts with them).
    fn params_updated(&self, _stream_id: &str, _params: &StreamParams) -> bool {
        false
    }

    /// The stream was deleted: drop everything it owns.
    fn stream_deleted(&self, _stream_id: &str) {}
}

/// A backend without media: every media call answers 503 "media not available".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMedia;

const NO_MEDIA: &str = "media not available";

impl MediaBackend for NoMedia {
    fn ingest(&self, _offer: IngestOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(async { Err(MediaError::Unavailable(NO_MEDIA.into())) })
    }
    fn trickle(&self, _: &str, _: &str, _: &str) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(NO_MEDIA.into()))
    }
    fn end_ingest(&self, _: &str, _: Option<&str>) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(NO_MEDIA.into()))
    }
    fn view(&self, _offer: ViewerOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(async { Err(MediaError::Unavailable(NO_MEDIA.into())) })
    }
    fn end_view(&self, _: &str, _: &str) -> Result<(), MediaError> {
        Err(MediaError::Unavailable(NO_MEDIA.into()))
    }
}
