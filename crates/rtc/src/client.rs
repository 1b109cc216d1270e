//! Client side peers (full ICE, controlling offerers): WHIP publisher and WHEP viewer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::Candidate;
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Command, Counters, RecvSide, SendSide, FRAME_QUEUE};
use crate::peer::{HasLink, PeerLink};
use crate::setup::{self, Flow, Prepared};
use crate::{stun, IngestStats, MediaFrame, Peer, PeerState, RtcConfig, RtcError};

/// How long the offer waits for STUN answers when gathering server-reflexive candidates
/// (the official browser client gathers for at most about 1 s before sending its offer).
const GATHER_TIMEOUT: Duration = Duration::from_millis(900);

/// Offer/answer bookkeeping shared by [`Publisher`] and [`Viewer`]: until the answer the
/// peer (with its media half) waits parked in the link.
struct ClientPeer {
    cfg: RtcConfig,
    link: PeerLink,
}

impl ClientPeer {
    /// Binds, gathers and creates the offer for one video m-line with the given media half.
    async fn offer(
        cfg: &RtcConfig,
        ice_servers: &[String],
        recv: Option<RecvSide>,
        send: Option<SendSide>,
    ) -> Result<(ClientPeer, String), RtcError> {
        let flow = if send.is_some() { Flow::Send } else { Flow::Receive };
        let mut prepared = setup::prepare(cfg, flow, false).await?;
        gather_reflexive(&mut prepared, ice_servers).await;

        let mut api = prepared.rtc.sdp_api();
        let direction = match flow {
            Flow::Send => Direction::SendOnly,
            Flow::Receive => Direction::RecvOnly,
        };
        let mid = api.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = api.apply().ok_or(RtcError::InvalidState("no change to offer"))?;
        let link = PeerLink::parked(prepared.into_io(mid, recv, send), pending);
        Ok((ClientPeer { cfg: cfg.clone(), link }, offer.to_sdp_string()))
    }

    /// Applies the answer and starts the peer task. A rejected answer closes the peer.
    fn answer(&mut self, answer_sdp: &str) -> Result<(), RtcError> {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| RtcError::BadSdp(e.to_string()))?;
        let mut parked =
            *self.link.unpark().ok_or(RtcError::InvalidState("the answer was already set, or the peer is closed"))?;
        let accepted = parked.io.rtc.sdp_api().accept_answer(parked.pending, answer);
        let checked = match accepted {
            Err(e) => Err(RtcError::BadSdp(e.to_string())),
            Ok(()) if !setup::has_h264(&parked.io.rtc, parked.io.mid) => Err(RtcError::NoH264),
            Ok(()) => Ok(()),
        };
        if let Err(e) = checked {
            parked.ends.state.send_replace(PeerState::Closed);
            return Err(e);
        }
        crate::driver::spawn(parked.io, &self.cfg, parked.ends);
        Ok(())
    }
}

/// Learns our server-reflexive address from each `stun:` server and adds it as a local
/// candidate. Unreachable servers are skipped; other URL schemes (turn:) are ignored.
async fn gather_reflexive(prepared: &mut Prepared, ice_servers: &[String]) {
    for server in resolve_stun(ice_servers, prepared.local_addr).await {
        match stun::query(&prepared.socket, server, GATHER_TIMEOUT).await {
            Some(mapped) if mapped != prepared.local_addr => {
                match Candidate::server_reflexive(mapped, prepared.local_addr, "udp") {
                    Ok(c) => {
                        prepared.rtc.add_local_candidate(c);
                    }
                    Err(e) => tracing::debug!("srflx candidate {mapped}: {e}"),
                }
            }
            Some(_) => tracing::debug!("stun server {server}: mapped address is our host address"),
            None => tracing::debug!("stun server {server}: no STUN answer"),
        }
    }
}

/// The addresses of the `stun:` URLs in `ice_servers`, in the address family of `local`.
/// Other schemes (turn:) and names that do not resolve are skipped.
async fn resolve_stun(ice_servers: &[String], local: SocketAddr) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for url in ice_servers {
        let Some(host_port) = stun_host_port(url) else {
            tracing::debug!("ice server {url}: not a stun: URL, skipped");
            continue;
        };
        match tokio::net::lookup_host(host_port.as_str()).await {
            Ok(mut addrs) => out.extend(addrs.find(|a| a.is_ipv4() == local.is_ipv4())),
            Err(e) => tracing::debug!("ice server {url}: {e}"),
        };
    }
    out
}

/// `stun:host[:port][?transport=udp]` -> `host:port` (default port 3478).
fn stun_host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("stun:")?;
    let rest = rest.split('?').next()?;
    if rest.is_empty() {
        return None;
    }
    let has_port = if let Some(v6) = rest.strip_prefix('[') { v6.contains("]:") } else { rest.contains(':') };
    Some(if has_port { rest.to_string() } else { format!("{rest}:3478") })
}

/// A WHIP publisher: offers one sendonly H.264 video m-line and sends access units.
///
/// ```no_run
/// # async fn demo(post_offer: impl AsyncFn(String) -> String) -> Result<(), dreamgate_rtc::RtcError> {
/// use dreamgate_rtc::{MediaFrame, Publisher, RtcConfig};
/// let (mut publisher, offer) = Publisher::new(&RtcConfig::default(), &[]).await?;
/// let answer = post_offer(offer).await; // the WHIP POST
/// publisher.set_answer(&answer)?;
/// publisher.send(MediaFrame { data: bytes::Bytes::new(), keyframe: true, rtp_time: 0 });
/// # Ok(())
/// # }
/// ```
pub struct Publisher {
    /// Keyframe requests from the receiver (PLI/FIR), or the connection just came up.
    /// Several requests in a row are coalesced.
    pub keyframe_requests: mpsc::Receiver<()>,
    peer: ClientPeer,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("local_addr", &self.local_addr()).field("state", &self.state()).finish()
    }
}

impl Publisher {
    /// Binds a socket, gathers candidates (host, plus server-reflexive from the `stun:`
    /// URLs in `ice_servers`, at most about a second) and creates the offer.
    pub async fn new(cfg: &RtcConfig, ice_servers: &[String]) -> Result<(Publisher, String), RtcError> {
        let (kf_tx, keyframe_requests) = mpsc::channel(1);
        let (peer, offer) = ClientPeer::offer(cfg, ice_servers, None, Some(SendSide::new(kf_tx))).await?;
        Ok((Publisher { keyframe_requests, peer }, offer))
    }

    /// Applies the answer SDP and starts connecting.
    pub fn set_answer(&mut self, answer_sdp: &str) -> Result<(), RtcError> {
        self.peer.answer(answer_sdp)
    }

    /// Trickle ICE gathering after the offer: asks the `stun:` servers among `ice_servers`
    /// (e.g. the ones a WHIP endpoint announced with `Link` headers) for our reflexive
    /// address, from the peer's own socket, adds each new address as a server-reflexive
    /// local candidate and resolves to their `a=candidate:` lines, ready for a trickle
    /// PATCH. Waits at most about a second; unreachable servers, other schemes and an
    /// address equal to our host address give no candidate.
    ///
    /// The returned future does not borrow the publisher. Before [`set_answer`](Self::set_answer)
    /// the request waits for the peer to start; if the peer closes first it resolves to no
    /// candidates.
    ///
    /// ```no_run
    /// # async fn demo(publisher: &dreamgate_rtc::Publisher) {
    /// let lines = publisher.gather_reflexive(&["stun:127.0.0.1:3478".to_owned()]).await;
    /// assert!(lines.iter().all(|l| l.starts_with("a=candidate:") && l.contains(" typ srflx")));
    /// # }
    /// ```
    pub fn gather_reflexive(&self, ice_servers: &[String]) -> impl Future<Output = Vec<String>> + Send + 'static {
        let commands = self.peer.link.commands();
        let local = self.local_addr();
        let ice_servers = ice_servers.to_vec();
        async move {
            let servers = resolve_stun(&ice_servers, local).await;
            if servers.is_empty() {
                return Vec::new();
            }
            let (reply, lines) = oneshot::channel();
            if commands.send(Command::GatherReflexive { servers, timeout: GATHER_TIMEOUT, reply }).is_err() {
                return Vec::new();
            }
            lines.await.unwrap_or_default()
        }
    }

    /// Queues one access unit. Dropped until connected, then until the first keyframe.
    pub fn send(&self, frame: MediaFrame) {
        self.peer.link.send(Command::Send(frame));
    }
}

impl HasLink for Publisher {
    fn link(&self) -> &PeerLink {
        &self.peer.link
    }
}

/// A WHEP viewer: offers one recvonly H.264 video m-line and receives access units.
pub struct Viewer {
    /// Received access units (Annex-B), starting with a keyframe. Ends when the peer ends.
    pub frames: mpsc::Receiver<MediaFrame>,
    peer: ClientPeer,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer").field("local_addr", &self.local_addr()).field("state", &self.state()).finish()
    }
}

impl Viewer {
    /// Binds a socket and creates the offer.
    pub async fn new(cfg: &RtcConfig) -> Result<(Viewer, String), RtcError> {
        let (frames_tx, frames) = mpsc::channel(FRAME_QUEUE);
        let counters = Arc::new(Counters::default());
        // The peer holds the only sender: `frames` ends when the peer ends.
        let recv = RecvSide::new(frames_tx, counters.clone());
        let (peer, offer) = ClientPeer::offer(cfg, &[], Some(recv), None).await?;
        Ok((Viewer { frames, peer, counters }, offer))
    }

    /// Applies the answer SDP and starts connecting.
    pub fn set_answer(&mut self, answer_sdp: &str) -> Result<(), RtcError> {
        self.peer.answer(answer_sdp)
    }

    /// Asks the sender for a keyframe (PLI).
    pub fn request_keyframe(&self) {
        self.peer.link.send(Command::RequestKeyframe);
    }

    /// Receive counters.
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }
}

impl HasLink for Viewer {
    fn link(&self) -> &PeerLink {
        &self.peer.link
    }
}

#[cfg(test)]
mod tests {
    use super::stun_host_port;

    #[test]
    fn stun_urls() {
        assert_eq!(stun_host_port("stun:127.0.0.1:3478").as_deref(), Some("127.0.0.1:3478"));
        assert_eq!(
            stun_host_port("stun:stun.l.google.com:19302?transport=udp").as_deref(),
            Some("stun.l.google.com:19302")
        );
        assert_eq!(stun_host_port("stun:example.org").as_deref(), Some("example.org:3478"));
        assert_eq!(stun_host_port("stun:[::1]:5000").as_deref(), Some("[::1]:5000"));
        assert_eq!(stun_host_port("stun:[::1]").as_deref(), Some("[::1]:3478"));
        assert_eq!(stun_host_port("turn:example.org"), None);
        assert_eq!(stun_host_port("stun:"), None);
    }
}
