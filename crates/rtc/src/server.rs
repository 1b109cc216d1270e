//! Server side peers (ICE-lite answerers): WHIP ingest and WHEP egress.

use std::net::SocketAddr;
use std::sync::Arc;

use str0m::change::SdpOffer;
use str0m::media::Mid;
use tokio::sync::{mpsc, watch};

use crate::driver::{self, Command, Counters, Peer, PeerHandle, RecvSide, SendSide, FRAME_QUEUE};
use crate::setup::{self, Flow};
use crate::{sdp, IngestStats, MediaFrame, PeerState, RtcConfig, RtcError};

/// A WHIP ingest peer: receives H.264 from a publisher (browser or native client).
///
/// Dropping it closes the connection and ends its task.
#[derive(Debug)]
pub struct Ingest {
    /// Received access units (Annex-B), starting with a keyframe; after a loss, frames are
    /// held back until the next keyframe. Ends (`None`) when the peer task ends.
    pub frames: mpsc::Receiver<MediaFrame>,
    handle: PeerHandle,
    counters: Arc<Counters>,
}

impl Ingest {
    /// Asks the publisher for a keyframe (RTCP PLI, or FIR if only that was negotiated).
    pub fn request_keyframe(&self) {
        self.handle.send(Command::RequestKeyframe);
    }

    /// Receive counters.
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }

    /// Current connection state.
    pub fn state(&self) -> PeerState {
        self.handle.state()
    }

    /// A receiver of state changes (errors once the peer task has ended).
    pub fn state_changes(&self) -> watch::Receiver<PeerState> {
        self.handle.state.clone()
    }

    /// Adds the `a=candidate:` lines of a trickle-ICE SDP fragment (WHIP PATCH body).
    pub fn add_remote_candidates(&self, sdpfrag: &str) -> Result<(), RtcError> {
        let list = sdp::candidates(sdpfrag)?;
        if !list.is_empty() {
            self.handle.send(Command::AddRemoteCandidates(list));
        }
        Ok(())
    }

    /// The local UDP address (our host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Closes the connection (DTLS close_notify) and ends the task.
    pub fn close(&self) {
        self.handle.send(Command::Close);
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.close();
    }
}

/// A WHEP egress peer: sends H.264 to one viewer.
///
/// Dropping it closes the connection and ends its task.
#[derive(Debug)]
pub struct Egress {
    /// Keyframe requests: the viewer sent a PLI/FIR, or the connection just came up and the
    /// stream must start with a keyframe. Several requests in a row are coalesced.
    pub keyframe_requests: mpsc::Receiver<()>,
    handle: PeerHandle,
}

impl Egress {
    /// Queues one access unit for sending. Until the viewer is connected, and after that
    /// until a keyframe is sent, frames are dropped (a viewer can only start on a keyframe).
    pub fn send(&self, frame: MediaFrame) {
        self.handle.send(Command::Send(frame));
    }

    /// Current connection state.
    pub fn state(&self) -> PeerState {
        self.handle.state()
    }

    /// A receiver of state changes (errors once the peer task has ended).
    pub fn state_changes(&self) -> watch::Receiver<PeerState> {
        self.handle.state.clone()
    }

    /// Adds the `a=candidate:` lines of a trickle-ICE SDP fragment.
    pub fn add_remote_candidates(&self, sdpfrag: &str) -> Result<(), RtcError> {
        let list = sdp::candidates(sdpfrag)?;
        if !list.is_empty() {
            self.handle.send(Command::AddRemoteCandidates(list));
        }
        Ok(())
    }

    /// The local UDP address (our host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Closes the connection and ends the task.
    pub fn close(&self) {
        self.handle.send(Command::Close);
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.close();
    }
}

/// Answers a WHIP offer: returns the ingest peer and the answer SDP (ICE-lite, DTLS
/// passive, our host candidate, H.264 video only; offered audio is answered inactive).
///
/// Errors: [`RtcError::BadSdp`] for unparseable or unacceptable SDP, [`RtcError::NoH264`]
/// when no video m-line offers H.264 we can receive.
pub async fn accept_ingest(cfg: &RtcConfig, offer_sdp: &str) -> Result<(Ingest, String), RtcError> {
    let (prepared, mid, answer) = answer_offer(cfg, offer_sdp, Flow::Receive).await?;
    let (frames_tx, frames) = mpsc::channel(FRAME_QUEUE);
    let counters = Arc::new(Counters::default());
    let (state_tx, _) = watch::channel(PeerState::New);
    let peer = Peer {
        rtc: prepared.rtc,
        socket: prepared.socket,
        local_addr: prepared.local_addr,
        mid,
        recv: Some(RecvSide::new(frames_tx, counters.clone())),
        send: None,
    };
    let handle = driver::spawn(peer, cfg, state_tx);
    Ok((Ingest { frames, handle, counters }, answer))
}

/// Answers a WHEP offer (the viewer offers to receive video): returns the egress peer and
/// the answer SDP (ICE-lite, sendonly H.264).
///
/// Errors as for [`accept_ingest`].
pub async fn accept_egress(cfg: &RtcConfig, offer_sdp: &str) -> Result<(Egress, String), RtcError> {
    let (prepared, mid, answer) = answer_offer(cfg, offer_sdp, Flow::Send).await?;
    let (kf_tx, keyframe_requests) = mpsc::channel(1);
    let (state_tx, _) = watch::channel(PeerState::New);
    let peer = Peer {
        rtc: prepared.rtc,
        socket: prepared.socket,
        local_addr: prepared.local_addr,
        mid,
        recv: None,
        send: Some(SendSide::new(kf_tx)),
    };
    let handle = driver::spawn(peer, cfg, state_tx);
    Ok((Egress { keyframe_requests, handle }, answer))
}

/// Validates the offer, builds an ICE-lite `Rtc` and lets str0m answer it.
async fn answer_offer(
    cfg: &RtcConfig,
    offer_sdp: &str,
    flow: Flow,
) -> Result<(setup::Prepared, Mid, String), RtcError> {
    // Parse before anything else: garbage is BadSdp, whatever it contains.
    SdpOffer::from_sdp_string(offer_sdp).map_err(|e| RtcError::BadSdp(e.to_string()))?;
    let sections = sdp::sections(offer_sdp)?;
    let video = sections.iter().find(|s| s.is_h264_video() && s.port != 0).ok_or(RtcError::NoH264)?;
    let mid: Mid = video.mid.as_deref().ok_or_else(|| RtcError::BadSdp("video m-line has no a=mid".into()))?.into();
    let offer =
        SdpOffer::from_sdp_string(&sdp::deactivate_audio(offer_sdp)).map_err(|e| RtcError::BadSdp(e.to_string()))?;

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
    Ok((prepared, mid, answer.to_sdp_string()))
}
