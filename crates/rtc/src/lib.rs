//! dreamgate-rtc: WebRTC peers for Dreamgate, built on the sans-IO [`str0m`] stack.
//!
//! Every peer is one tokio task that owns a `str0m::Rtc` and its own UDP socket bound to
//! `RtcConfig::bind_ip:0` (that address is the peer's only host candidate). Media goes in
//! and out through channels as whole H.264 access units ([`MediaFrame`], Annex-B), and the
//! task reports its [`PeerState`] through a watch channel. The task ends on `close()`, when
//! its handle is dropped, when the remote closes, or when the connection fails; the UDP
//! port is released at that point.
//!
//! Four peer kinds:
//!
//! * [`accept_ingest`]: WHIP server side (ICE-lite, DTLS passive), receives H.264.
//! * [`accept_egress`]: WHEP server side (ICE-lite), sends H.264 to a viewer.
//! * [`Publisher`]: WHIP client side (full ICE, controlling), sends H.264.
//! * [`Viewer`]: WHEP client side (full ICE, controlling), receives H.264.
//!
//! What they have in common (state, state changes, trickle ICE, local address, close) is
//! the [`Peer`] trait, implemented by all four.
//!
//! Plus [`StunServer`], a tiny STUN Binding responder that an HTTP server can advertise as
//! `Link: <stun:127.0.0.1:PORT>; rel="ice-server"`.
//!
//! Connection timeouts (no connection within [`RtcConfig::connect_timeout`], disconnected
//! for longer than [`RtcConfig::disconnect_timeout`]) are decided by the pure
//! [`monitor::ConnectionMonitor`]; the IO task only feeds it events and the current time.
//!
//! ```no_run
//! # async fn demo(offer: &str) -> Result<(), dreamgate_rtc::RtcError> {
//! use dreamgate_rtc::{accept_ingest, RtcConfig};
//!
//! let (mut ingest, answer_sdp) = accept_ingest(&RtcConfig::default(), offer).await?;
//! // ... send `answer_sdp` back as the WHIP 201 body ...
//! while let Some(frame) = ingest.frames.recv().await {
//!     println!("access unit: {} bytes, keyframe: {}", frame.data.len(), frame.keyframe);
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

mod client;
mod driver;
pub mod monitor;
mod peer;
mod sdp;
mod server;
mod setup;
pub mod stun;

pub use client::{Publisher, Viewer};
pub use peer::Peer;
pub use server::{accept_egress, accept_ingest, Egress, Ingest};
pub use stun::StunServer;

/// One encoded H.264 access unit (Annex-B byte stream: every NAL unit, SPS and PPS
/// included, is preceded by a `00 00 00 01` start code).
#[derive(Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// The access unit, Annex-B.
    pub data: bytes::Bytes,
    /// Whether the access unit holds an IDR picture.
    pub keyframe: bool,
    /// RTP timestamp, 90 kHz clock.
    pub rtp_time: u32,
}

impl fmt::Debug for MediaFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaFrame")
            .field("len", &self.data.len())
            .field("keyframe", &self.keyframe)
            .field("rtp_time", &self.rtp_time)
            .finish()
    }
}

/// Settings shared by every peer.
///
/// Build it with [`RtcConfig::default()`] (loopback) or [`RtcConfig::new`] and adjust fields:
///
/// ```
/// use std::time::Duration;
/// let cfg = dreamgate_rtc::RtcConfig {
///     connect_timeout: Duration::from_secs(5),
///     ..Default::default()
/// };
/// assert!(cfg.bind_ip.is_loopback());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcConfig {
    /// Address the peer's UDP socket binds to (port chosen by the OS). It is also the
    /// advertised host candidate, so it must be a concrete address (not `0.0.0.0`).
    /// Default `127.0.0.1`.
    pub bind_ip: IpAddr,
    /// A peer that is not connected this long after it was created fails. Default 20 s.
    pub connect_timeout: Duration,
    /// A connected peer that stays disconnected this long fails. Default 10 s.
    pub disconnect_timeout: Duration,
    /// A connected peer that hears nothing from the remote (no STUN, DTLS, RTP or RTCP) for
    /// this long is "disconnected" (until it hears from it again), as a browser's consent
    /// check says when the remote went silent. `None` (the default): only the ICE agent's
    /// own verdict counts. For publishers, whose remote sends RTCP and STUN answers steadily.
    pub silence_timeout: Option<Duration>,
}

impl RtcConfig {
    /// A config binding `bind_ip` with the default timeouts.
    pub fn new(bind_ip: IpAddr) -> Self {
        RtcConfig { bind_ip, ..Default::default() }
    }
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            connect_timeout: Duration::from_secs(20),
            disconnect_timeout: Duration::from_secs(10),
            silence_timeout: None,
        }
    }
}

/// Connection state of a peer, in the spirit of `RTCPeerConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Created; no connectivity check seen yet.
    New,
    /// ICE checks and/or the DTLS handshake are in progress.
    Connecting,
    /// ICE and DTLS are up: media flows.
    Connected,
    /// Connectivity was lost; may come back before the disconnect timeout.
    Disconnected,
    /// Timed out or hit a fatal error. Terminal: the peer task has ended.
    Failed,
    /// Closed locally or by the remote. Terminal: the peer task has ended.
    Closed,
}

impl PeerState {
    /// `Failed` or `Closed`: the peer will never carry media again.
    pub fn is_terminal(self) -> bool {
        matches!(self, PeerState::Failed | PeerState::Closed)
    }
}

/// Counters of an [`Ingest`] (or [`Viewer`]) receiving side.
///
/// Accounting is done on the depacketized frames str0m delivers: `packets_received` counts
/// the RTP packets that made up delivered frames, `packets_lost` counts the RTP sequence
/// numbers that never made it into a delivered frame (lost, or part of a frame that could
/// not be completed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// H.264 payload bytes received (depacketized access units).
    pub bytes_received: u64,
    /// RTP packets received in delivered frames.
    pub packets_received: u64,
    /// RTP packets missing between delivered frames.
    pub packets_lost: u64,
    /// Access units received from the network (delivered or not).
    pub frames_received: u64,
    /// Access units handed to the `frames` channel.
    pub frames_delivered: u64,
    /// Keyframe requests (PLI/FIR) sent to the remote sender.
    pub keyframe_requests_sent: u64,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// The offer carries no H.264 video we can negotiate.
    #[error("offer has no H.264 video")]
    NoH264,
    /// The SDP could not be parsed or is not acceptable.
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    /// A trickled ICE candidate could not be parsed.
    #[error("invalid ICE candidate: {0}")]
    BadCandidate(String),
    /// The operation does not fit the peer's current state (e.g. a second answer).
    #[error("{0}")]
    InvalidState(&'static str),
    /// The peer task has ended.
    #[error("peer connection is closed")]
    Closed,
    /// Socket error.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// Error reported by the WebRTC stack.
    #[error("webrtc error: {0}")]
    Stack(String),
}

impl From<str0m::RtcError> for RtcError {
    fn from(e: str0m::RtcError) -> Self {
        RtcError::Stack(e.to_string())
    }
}
