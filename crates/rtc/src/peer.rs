//! What every peer kind shares: the [`PeerLink`] to its task, and the [`Peer`] trait that
//! exposes it on [`Ingest`](crate::Ingest), [`Egress`](crate::Egress),
//! [`Publisher`](crate::Publisher) and [`Viewer`](crate::Viewer).

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};

use crate::driver::{self, Command, PeerIo, TaskEnds};
use crate::{sdp, PeerState, RtcConfig, RtcError};

/// A peer whose task has not started yet (client side, before the answer).
pub(crate) struct Parked {
    pub io: PeerIo,
    pub pending: str0m::change::SdpPendingOffer,
    pub ends: TaskEnds,
}

/// The handle side of one peer: commands to its task, its state, its address. Dropping it
/// closes the peer.
#[derive(Debug)]
pub struct PeerLink {
    cmd: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<PeerState>,
    local_addr: SocketAddr,
    /// Set while a client peer waits for its answer; its task starts when it is taken.
    /// Boxed: the `Rtc` inside is large, and server peers never park.
    parked: Mutex<Option<Box<Parked>>>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parked")
    }
}

impl PeerLink {
    /// Starts the task of `io` now (server side).
    pub(crate) fn spawn(io: PeerIo, cfg: &RtcConfig) -> PeerLink {
        let (link, ends) = PeerLink::channels(io.local_addr);
        driver::spawn(io, cfg, ends);
        link
    }

    /// Keeps `io` until [`PeerLink::unpark`] (client side, waiting for the answer).
    pub(crate) fn parked(io: PeerIo, pending: str0m::change::SdpPendingOffer) -> PeerLink {
        let (link, ends) = PeerLink::channels(io.local_addr);
        *link.parked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(Parked { io, pending, ends }));
        link
    }

    /// Takes the parked peer out (once); `None` once started or closed.
    pub(crate) fn unpark(&self) -> Option<Box<Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn channels(local_addr: SocketAddr) -> (PeerLink, TaskEnds) {
        let (cmd_tx, cmd) = mpsc::unbounded_channel();
        let (state, state_rx) = watch::channel(PeerState::New);
        let link = PeerLink { cmd: cmd_tx, state: state_rx, local_addr, parked: Mutex::new(None) };
        (link, TaskEnds { cmd, state })
    }

    /// Sends a command to the task. Before the task starts, commands wait for it.
    pub(crate) fn send(&self, command: Command) {
        // A closed channel means the task ended: nothing left to do.
        let _ = self.cmd.send(command);
    }

    /// A sender of commands to the task, for requests answered later (e.g. a reply channel).
    pub(crate) fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.cmd.clone()
    }

    fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    fn close(&self) {
        match self.unpark() {
            // Never started: dropping the socket and the `Rtc` is the whole close.
            Some(parked) => {
                parked.ends.state.send_replace(PeerState::Closed);
            }
            None => self.send(Command::Close),
        }
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.close();
    }
}

mod sealed {
    /// Gives the [`Peer`](super::Peer) methods their link; implemented by the four peer kinds.
    pub trait HasLink {
        fn link(&self) -> &super::PeerLink;
    }
}

pub(crate) use sealed::HasLink;

/// Connection state, trickle ICE, local address and close: the part every peer kind
/// ([`Ingest`](crate::Ingest), [`Egress`](crate::Egress), [`Publisher`](crate::Publisher),
/// [`Viewer`](crate::Viewer)) has in common. Dropping a peer closes it too.
///
/// ```no_run
/// # async fn demo(offer: &str) -> Result<(), dreamgate_rtc::RtcError> {
/// use dreamgate_rtc::{accept_ingest, Peer, PeerState, RtcConfig};
///
/// let (ingest, _answer) = accept_ingest(&RtcConfig::default(), offer).await?;
/// let mut states = ingest.state_changes();
/// states.wait_for(|s| *s == PeerState::Connected).await.ok();
/// ingest.close();
/// # Ok(())
/// # }
/// ```
pub trait Peer: sealed::HasLink {
    /// Current connection state.
    fn state(&self) -> PeerState {
        self.link().state()
    }

    /// A receiver of state changes (errors once the peer task has ended).
    fn state_changes(&self) -> watch::Receiver<PeerState> {
        self.link().state.clone()
    }

    /// Adds the `a=candidate:` lines of a trickle-ICE SDP fragment (WHIP/WHEP PATCH body).
    fn add_remote_candidates(&self, sdpfrag: &str) -> Result<(), RtcError> {
        let list = sdp::candidates(sdpfrag)?;
        if !list.is_empty() {
            self.link().send(Command::AddRemoteCandidates(list));
        }
        Ok(())
    }

    /// The local UDP address (our host candidate).
    fn local_addr(&self) -> SocketAddr {
        self.link().local_addr
    }

    /// Closes the connection (RTCP BYE, DTLS close_notify) and ends the task. A client peer
    /// closed before its answer is `Closed` at once and releases its port.
    fn close(&self) {
        self.link().close();
    }

    /// Stops sending anything to the remote (STUN answers, RTCP, media) while still
    /// receiving, as when the return path is lost: the remote's ICE then reports
    /// "disconnected" (its consent checks go unanswered). For fault injection (the engine's
    /// `ice_disconnect` knob).
    fn mute(&self) {
        self.link().send(Command::Mute);
    }
}

impl<T: sealed::HasLink> Peer for T {}
