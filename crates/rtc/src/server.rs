//! Server side peers (ICE-lite answerers): WHIP ingest and WHEP egress.

use std::sync::Arc;

use str0m::change::SdpOffer;
use str0m::media::Mid;
use tokio::sync::mpsc;

use crate::driver::{Command, Counters, RecvSide, SendSide, FRAME_QUEUE};
use crate::peer::{HasLink, PeerLink};
use crate::setup::{self, Flow};
use crate::{sdp, IngestStats, MediaFrame, RtcConfig, RtcError};

/// A WHIP ingest peer: receives H.264 from a publisher (browser or native client).
///
/// Connection state, trickle ICE and close come with the [`Peer`](crate::Peer) trait;
/// dropping it closes the connection and ends its task.
#[derive(Debug)]
pub struct Ingest {
    /// Received access units (Annex-B), starting with a keyframe; after a loss, frames are
    /// held back until the next keyframe. Ends (`None`) when the peer task ends.
    pub frames: mpsc::Receiver<MediaFrame>,
    link: PeerLink,
    counters: Arc<Counters>,
}

impl Ingest {
    /// Asks the publisher for a keyframe (RTCP PLI, or FIR if only that was negotiated).
    pub fn request_keyframe(&self) {
        self.link.send(Command::RequestKeyframe);
    }

    /// Receive counters.
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }
}

impl HasLink for Ingest {
    fn link(&self) -> &PeerLink {
        &self.link
    }
}

/// A WHEP egress peer: sends H.264 to one viewer.
///
/// Connection state, trickle ICE and close come with the [`Peer`](crate::Peer) trait;
/// dropping it closes the connection and ends its task.
#[derive(Debug)]
pub struct Egress {
    /// Keyframe requests: the viewer sent a PLI/FIR, or the connection just came up and the
    /// stream must start with a keyframe. Several requests in a row are coalesced.
    pub keyframe_requests: mpsc::Receiver<()>,
    link: PeerLink,
}

impl Egress {
    /// Queues one access unit for sending. Until the viewer is connected, and after that
    /// until a keyframe is sent, frames are dropped (a viewer can only start on a keyframe).
    pub fn send(&self, frame: MediaFrame) {
        self.link.send(Command::Send(frame));
    }
}

impl HasLink for Egress {
    fn link(&self) -> &PeerLink {
        &self.link
    }
}

/// Answers a WHIP offer: returns the ingest peer and the answer SDP (ICE-lite, DTLS
/// passive, our host candidate, H.264 video only; offered audio is answered inactive).
///
/// Errors: [`RtcError::BadSdp`] for unparseable or unacceptable SDP, [`RtcError::NoH264`]
/// when no video m-line offers H.264 we can receive.
pub async fn accept_ingest(cfg: &RtcConfig, offer_sdp: &str) -> Result<(Ingest, String), RtcError> {
    let (frames_tx, frames) = mpsc::channel(FRAME_QUEUE);
    let counters = Arc::new(Counters::default());
    let recv = RecvSide::new(frames_tx, counters.clone());
    let (link, answer) = accept(cfg, offer_sdp, Flow::Receive, Some(recv), None).await?;
    Ok((Ingest { frames, link, counters }, answer))
}

/// Answers a WHEP offer (the viewer offers to receive video): returns the egress peer and
/// the answer SDP (ICE-lite, sendonly H.264).
///
/// Errors as for [`accept_ingest`].
pub async fn accept_egress(cfg: &RtcConfig, offer_sdp: &str) -> Result<(Egress, String), RtcError> {
    let (kf_tx, keyframe_requests) = mpsc::channel(1);
    let (link, answer) = accept(cfg, offer_sdp, Flow::Send, None, Some(SendSide::new(kf_tx))).await?;
    Ok((Egress { keyframe_requests, link }, answer))
}

/// Validates the offer, builds an ICE-lite `Rtc`, lets str0m answer it and starts the peer
/// task with the given media halves.
async fn accept(
    cfg: &RtcConfig,
    offer_sdp: &str,
    flow: Flow,
    recv: Option<RecvSide>,
    send: Option<SendSide>,
) -> Result<(PeerLink, String), RtcError> {
    // Parse before anything else: garbage is BadSdp, whatever it contains.
    // str0m's parse error names a heap address (`PointerOffset(0x7f…)`): never relay it.
    SdpOffer::from_sdp_string(offer_sdp).map_err(|_| RtcError::BadSdp("the offer is not parseable SDP".into()))?;
    let sections = sdp::sections(offer_sdp)?;
    let video = sections.iter().find(|s| s.is_h264_video() && s.port != 0).ok_or(RtcError::NoH264)?;
    let mid: Mid = video.mid.as_deref().ok_or_else(|| RtcError::BadSdp("video m-line has no a=mid".into()))?.into();
    let offer = SdpOffer::from_sdp_string(&sdp::deactivate_audio(offer_sdp))
        .map_err(|_| RtcError::BadSdp("the offer is not parseable SDP".into()))?;

    let mut prepared = setup::prepare(cfg, flow, true).await?;
    let answer = prepared.rtc.sdp_api().accept_offer(offer).map_err(|e| RtcError::BadSdp(e.to_string()))?;
    if !setup::has_h264(&prepared.rtc, mid) {
        return Err(RtcError::NoH264);
    }
    let direction = prepared.rtc.media(mid).map(|m| m.direction());
    let fits = match flow {
        Flow::Receive => direction.is_some_and(|d| d.is_receiving()),
        Flow::Send => direction.is_some_and(|d| d.is_sending()),
    };
    if !fits {
        return Err(RtcError::BadSdp(match flow {
            Flow::Receive => "the video m-line must be sendonly or sendrecv".into(),
            Flow::Send => "the video m-line must be recvonly or sendrecv".into(),
        }));
    }
    Ok((PeerLink::spawn(prepared.into_io(mid, recv, send), cfg), answer.to_sdp_string()))
}
