//! Building blocks shared by every peer kind: the socket, the str0m instance and its
//! codec list.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;

use crate::driver::{PeerIo, RecvSide, SendSide};
use crate::{RtcConfig, RtcError};

/// One H.264 payload format we are willing to negotiate.
struct H264 {
    pt: u8,
    rtx: u8,
    packetization_mode_1: bool,
    profile_level_id: u32,
}

const fn h264(pt: u8, rtx: u8, packetization_mode_1: bool, profile_level_id: u32) -> H264 {
    H264 { pt, rtx, packetization_mode_1, profile_level_id }
}

/// Formats we can receive, best first: constrained baseline / baseline in
/// packetization-mode 1, then mode 0, then main and high as a last resort. The first one
/// the offer also has is the one the browser will send.
const RECEIVE_H264: &[H264] = &[
    h264(108, 109, true, 0x42e01f),
    h264(127, 121, true, 0x42001f),
    h264(124, 120, false, 0x42e01f),
    h264(125, 107, false, 0x42001f),
    h264(123, 119, true, 0x4d001f),
    h264(114, 115, true, 0x64001f),
];

/// Formats we send (our packetizer fragments with FU-A, so mode 1 only).
const SEND_H264: &[H264] = &[h264(108, 109, true, 0x42e01f), h264(127, 121, true, 0x42001f)];

/// Which side of the media flow a peer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Receive,
    Send,
}

/// A bound socket and a fresh `Rtc` with the socket's host candidate added.
pub(crate) struct Prepared {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local_addr: SocketAddr,
}

impl Prepared {
    /// Everything the peer task needs, once `mid` is negotiated.
    pub fn into_io(self, mid: Mid, recv: Option<RecvSide>, send: Option<SendSide>) -> PeerIo {
        PeerIo { rtc: self.rtc, socket: self.socket, local_addr: self.local_addr, mid, recv, send }
    }
}

/// Binds `cfg.bind_ip:0` and builds an `Rtc` for `flow` (`ice_lite` for the server side).
pub(crate) async fn prepare(cfg: &RtcConfig, flow: Flow, ice_lite: bool) -> Result<Prepared, RtcError> {
    let socket = UdpSocket::bind(SocketAddr::new(cfg.bind_ip, 0)).await?;
    let local_addr = socket.local_addr()?;

    let mut builder = Rtc::builder()
        .set_ice_lite(ice_lite)
        .clear_codecs()
        // Only so that offered audio m-lines can be answered (inactive) with a valid
        // format list; we never send or keep audio.
        .enable_opus(true, false);
    let formats = match flow {
        Flow::Receive => RECEIVE_H264,
        Flow::Send => SEND_H264,
    };
    for f in formats {
        builder.codec_config().add_h264(f.pt.into(), Some(f.rtx.into()), f.packetization_mode_1, f.profile_level_id);
    }
    let mut rtc = builder.build(Instant::now());

    let candidate = Candidate::host(local_addr, "udp")
        .map_err(|e| RtcError::Stack(format!("cannot use {local_addr} as a host candidate: {e}")))?;
    rtc.add_local_candidate(candidate);
    Ok(Prepared { rtc, socket, local_addr })
}

/// Checks that `mid` is negotiated as video with an H.264 payload type.
pub(crate) fn has_h264(rtc: &Rtc, mid: Mid) -> bool {
    let Some(media) = rtc.media(mid) else {
        return false;
    };
    media.kind() == MediaKind::Video
        && media
            .remote_pts()
            .iter()
            .any(|pt| rtc.codec_config().find(|p| p.pt() == *pt && p.spec().codec == Codec::H264).is_some())
}
