//! The IO task of one peer: drives a `str0m::Rtc` with its UDP socket, a command channel
//! and timers, following str0m's run loop contract (one mutation, then drain
//! `poll_output` until `Output::Timeout`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::monitor::{ConnectionMonitor, KeyframeGate, LinkEvent};
use crate::stun::ReflexiveProbe;
use crate::{IngestStats, MediaFrame, PeerState, RtcConfig};

/// How often a receiving peer re-asks for a keyframe while it waits for one.
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// Upper bound of one wait, so a far-away str0m timeout never starves the monitor.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Received access units buffered for the consumer.
pub(crate) const FRAME_QUEUE: usize = 64;

/// Requests from a handle to its peer task.
#[derive(Debug)]
pub(crate) enum Command {
    Send(MediaFrame),
    RequestKeyframe,
    AddRemoteCandidates(Vec<Candidate>),
    /// Ask these STUN servers for our reflexive address (from the peer's own socket), add
    /// what they answer as server-reflexive local candidates and reply with their
    /// `a=candidate:` lines.
    GatherReflexive {
        servers: Vec<SocketAddr>,
        timeout: Duration,
        reply: oneshot::Sender<Vec<String>>,
    },
    Close,
    /// Stop sending anything to the remote (STUN answers, RTCP, media), still receiving: a lost
    /// return path.
    Mute,
}

/// Lock-free counters shared between the task and the handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    bytes_received: AtomicU64,
    packets_received: AtomicU64,
    packets_lost: AtomicU64,
    frames_received: AtomicU64,
    frames_delivered: AtomicU64,
    keyframe_requests_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> IngestStats {
        IngestStats {
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            packets_received: self.packets_received.load(Ordering::Relaxed),
            packets_lost: self.packets_lost.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
            frames_delivered: self.frames_delivered.load(Ordering::Relaxed),
            keyframe_requests_sent: self.keyframe_requests_sent.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Receiving half of a peer (ingest, viewer).
pub(crate) struct RecvSide {
    frames: mpsc::Sender<MediaFrame>,
    counters: Arc<Counters>,
    gate: KeyframeGate,
    /// Highest extended RTP sequence number seen in a delivered frame.
    last_seq: Option<u64>,
}

impl RecvSide {
    pub(crate) fn new(frames: mpsc::Sender<MediaFrame>, counters: Arc<Counters>) -> Self {
        RecvSide { frames, counters, gate: KeyframeGate::new(KEYFRAME_RETRY), last_seq: None }
    }
}

/// Sending half of a peer (egress, publisher).
pub(crate) struct SendSide {
    keyframe_requests: mpsc::Sender<()>,
    /// A keyframe was written since the connection came up: deltas may follow.
    started: bool,
    pt: Option<Pt>,
    /// 64-bit unwrapped RTP time of the last written frame.
    last_rtp: Option<(u32, u64)>,
}

impl SendSide {
    pub(crate) fn new(keyframe_requests: mpsc::Sender<()>) -> Self {
        SendSide { keyframe_requests, started: false, pt: None, last_rtp: None }
    }

    fn ask_keyframe(&self) {
        // A pending request already covers this one.
        let _ = self.keyframe_requests.try_send(());
    }

    fn unwrap_rtp(&mut self, rtp: u32) -> u64 {
        let ext = match self.last_rtp {
            None => u64::from(rtp),
            Some((prev, prev_ext)) => {
                let delta = i64::from(rtp.wrapping_sub(prev) as i32);
                prev_ext.saturating_add_signed(delta)
            }
        };
        self.last_rtp = Some((rtp, ext));
        ext
    }
}

/// Everything a peer task owns.
pub(crate) struct PeerIo {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local_addr: SocketAddr,
    pub mid: Mid,
    pub recv: Option<RecvSide>,
    pub send: Option<SendSide>,
}

/// The task's ends of a link's channels (the handle side, `PeerLink`, holds the others).
/// Owned here so that the driver depends on nothing of the handle's module.
pub(crate) struct TaskEnds {
    pub cmd: mpsc::UnboundedReceiver<Command>,
    pub state: watch::Sender<PeerState>,
}

/// Starts the task of `io`, driven through the link whose task ends are `ends`.
pub(crate) fn spawn(io: PeerIo, cfg: &RtcConfig, ends: TaskEnds) {
    let task = Task {
        monitor: ConnectionMonitor::new(Instant::now(), cfg.connect_timeout, cfg.disconnect_timeout)
            .with_silence_timeout(cfg.silence_timeout),
        peer: io,
        cmd: ends.cmd,
        state: ends.state,
        pending_pli: false,
        probes: Vec::new(),
        muted: false,
    };
    tokio::spawn(task.run());
}

struct Task {
    peer: PeerIo,
    cmd: mpsc::UnboundedReceiver<Command>,
    state: watch::Sender<PeerState>,
    monitor: ConnectionMonitor,
    /// A keyframe request decided by a timer, sent as its own mutation.
    pending_pli: bool,
    /// Reflexive-address probes in progress, with who waits for their candidates.
    probes: Vec<(ReflexiveProbe, oneshot::Sender<Vec<String>>)>,
    /// Nothing is sent any more (fault injection: a lost return path).
    muted: bool,
}

enum Wake {
    Datagram(usize, SocketAddr),
    Command(Option<Command>),
    Timer,
}

impl Task {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            let rtc_deadline = match self.drain().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(addr = %self.peer.local_addr, "webrtc peer failed: {e}");
                    self.link(LinkEvent::Fatal);
                    break;
                }
            };
            if self.monitor.state().is_terminal() || !self.peer.rtc.is_alive() {
                break;
            }
            if std::mem::take(&mut self.pending_pli) {
                self.request_keyframe();
                continue;
            }
            if self.service_probes(Instant::now()).await {
                // Candidates were added: a mutation, drain first.
                continue;
            }

            let now = Instant::now();
            let mut wake_at = rtc_deadline.min(now + MAX_WAIT);
            for (probe, _) in &self.probes {
                wake_at = wake_at.min(probe.next_wake());
            }
            if let Some(t) = self.monitor.deadline() {
                wake_at = wake_at.min(t);
            }
            if let Some(t) = self.peer.recv.as_ref().and_then(|r| r.gate.deadline()) {
                wake_at = wake_at.min(t);
            }

            let wake = tokio::select! {
                r = self.peer.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => Wake::Datagram(n, from),
                    Err(e) => {
                        // UDP errors (e.g. ICMP port unreachable) are not fatal.
                        tracing::debug!("udp recv error: {e}");
                        Wake::Timer
                    }
                },
                c = self.cmd.recv() => Wake::Command(c),
                _ = tokio::time::sleep_until(wake_at.into()) => Wake::Timer,
            };

            match wake {
                Wake::Datagram(n, from) => self.receive(&buf[..n], from),
                Wake::Command(Some(c)) => self.command(c),
                // Every handle is gone: close.
                Wake::Command(None) => self.close(),
                Wake::Timer => self.tick(Instant::now()),
            }
        }
        if !self.monitor.state().is_terminal() {
            self.link(LinkEvent::LocalClose);
        }
        tracing::debug!(addr = %self.peer.local_addr, state = ?self.monitor.state(), "webrtc peer task ends");
        // Release the port before announcing the end (the watch sender drops last).
        let Task { peer, state, .. } = self;
        drop(peer);
        drop(state);
    }

    /// Polls str0m until it only has a timeout left; returns that deadline.
    async fn drain(&mut self) -> Result<Instant, str0m::RtcError> {
        loop {
            match self.peer.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(_) if self.muted => {}
                Output::Transmit(t) => {
                    if let Err(e) = self.peer.socket.send_to(&t.contents, t.destination).await {
                        tracing::debug!("udp send to {} failed: {e}", t.destination);
                    }
                }
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn link(&mut self, event: LinkEvent) {
        if let Some(state) = self.monitor.handle(Instant::now(), event) {
            self.publish(state);
        }
    }

    fn publish(&mut self, state: PeerState) {
        tracing::debug!(addr = %self.peer.local_addr, ?state, "webrtc peer state");
        self.state.send_replace(state);
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::IceConnectionStateChange(s) => {
                let ev = match s {
                    IceConnectionState::New => return,
                    IceConnectionState::Checking => LinkEvent::IceChecking,
                    IceConnectionState::Connected | IceConnectionState::Completed => LinkEvent::IceConnected,
                    IceConnectionState::Disconnected => LinkEvent::IceDisconnected,
                };
                self.link(ev);
            }
            Event::Connected => {
                self.link(LinkEvent::TransportConnected);
                if let Some(send) = &mut self.peer.send {
                    // Start the stream on a keyframe: ask the producer for one.
                    send.started = false;
                    send.ask_keyframe();
                }
            }
            Event::MediaData(data) => self.media(data),
            Event::KeyframeRequest(req) if req.mid == self.peer.mid => {
                if let Some(send) = &self.peer.send {
                    tracing::debug!(kind = ?req.kind, "keyframe requested by remote");
                    send.ask_keyframe();
                }
            }
            Event::Closed => self.link(LinkEvent::RemoteClosed),
            _ => {}
        }
    }

    fn media(&mut self, data: MediaData) {
        let now = Instant::now();
        if data.mid != self.peer.mid || data.params.spec().codec != Codec::H264 {
            return;
        }
        let Some(recv) = &mut self.peer.recv else {
            return;
        };
        let c = &recv.counters;
        let first = **data.seq_range.start();
        let last = **data.seq_range.end();
        bump(&c.frames_received, 1);
        bump(&c.bytes_received, data.data.len() as u64);
        bump(&c.packets_received, last.saturating_sub(first) + 1);
        // A gap str0m calls discontinuous is loss; a gap filled by padding is not.
        if let Some(prev) = recv.last_seq.filter(|_| !data.contiguous) {
            if first > prev + 1 {
                bump(&c.packets_lost, first - prev - 1);
            }
        }
        recv.last_seq = Some(recv.last_seq.map_or(last, |p| p.max(last)));

        let keyframe = data.is_keyframe();
        let verdict = recv.gate.on_frame(now, keyframe, data.contiguous);
        let mut request = verdict.request_keyframe;
        if verdict.deliver {
            let frame = MediaFrame { data: Bytes::from_owner(data.data), keyframe, rtp_time: data.time.numer() as u32 };
            // Counted before the hand-over so a reader never sees a frame it cannot count.
            bump(&recv.counters.frames_delivered, 1);
            let sent = recv.frames.try_send(frame);
            if sent.is_err() {
                recv.counters.frames_delivered.fetch_sub(1, Ordering::Relaxed);
            }
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!("frame queue full: dropping until the next keyframe");
                    request |= recv.gate.on_dropped(now);
                }
                // Nobody reads the frames any more; keep the connection going.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if request {
            // A mutation from inside the drain loop: allowed by str0m's contract.
            self.request_keyframe();
        }
    }

    fn request_keyframe(&mut self) {
        let Some(mut writer) = self.peer.rtc.writer(self.peer.mid) else {
            return;
        };
        let kind = [KeyframeRequestKind::Pli, KeyframeRequestKind::Fir]
            .into_iter()
            .find(|k| writer.is_request_keyframe_possible(*k));
        let Some(kind) = kind else {
            tracing::debug!("keyframe requests were not negotiated");
            return;
        };
        match writer.request_keyframe(None, kind) {
            Ok(()) => {
                if let Some(recv) = &self.peer.recv {
                    bump(&recv.counters.keyframe_requests_sent, 1);
                }
            }
            // Typically: no packet received yet, so no receive stream to send it for.
            Err(e) => tracing::debug!("keyframe request not sent: {e}"),
        }
    }

    /// Sends the STUN requests that are due and finishes the probes that are done (adding
    /// their candidates). Returns whether candidates were added.
    async fn service_probes(&mut self, now: Instant) -> bool {
        let mut added = false;
        let mut i = 0;
        while i < self.probes.len() {
            for (to, request) in self.probes[i].0.poll_transmit(now) {
                if let Err(e) = self.peer.socket.send_to(&request, to).await {
                    tracing::debug!("stun request to {to} failed: {e}");
                }
            }
            if !self.probes[i].0.is_done(now) {
                i += 1;
                continue;
            }
            let (probe, reply) = self.probes.swap_remove(i);
            let mut lines = Vec::new();
            for &mapped in probe.mapped() {
                if mapped == self.peer.local_addr {
                    tracing::debug!("stun: the mapped address is our host address");
                    continue;
                }
                match Candidate::server_reflexive(mapped, self.peer.local_addr, "udp") {
                    Ok(c) => {
                        if let Some(c) = self.peer.rtc.add_local_candidate(c) {
                            lines.push(format!("a={}", c.to_sdp_string()));
                            added = true;
                        }
                    }
                    Err(e) => tracing::debug!("srflx candidate {mapped}: {e}"),
                }
            }
            let _ = reply.send(lines);
        }
        added
    }

    fn receive(&mut self, datagram: &[u8], source: SocketAddr) {
        if self.probes.iter_mut().any(|(probe, _)| probe.on_datagram(source, datagram)) {
            return;
        }
        if let Some(state) = self.monitor.heard(Instant::now()) {
            self.publish(state);
        }
        // Anything str0m cannot classify (not STUN/DTLS/RTP/RTCP) is dropped here.
        let Ok(contents) = datagram.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive { proto: Protocol::Udp, source, destination: self.peer.local_addr, contents },
        );
        if let Err(e) = self.peer.rtc.handle_input(input) {
            tracing::debug!("input from {source} rejected: {e}");
            if !self.peer.rtc.is_alive() {
                self.link(LinkEvent::Fatal);
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Err(e) = self.peer.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!("timeout handling failed: {e}");
            if !self.peer.rtc.is_alive() {
                self.link(LinkEvent::Fatal);
                return;
            }
        }
        if let Some(state) = self.monitor.poll(now) {
            self.publish(state);
        }
        if self.monitor.state() == PeerState::Connected {
            if let Some(recv) = &mut self.peer.recv {
                self.pending_pli |= recv.gate.poll(now);
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Send(frame) => self.write(frame),
            Command::RequestKeyframe => self.request_keyframe(),
            Command::AddRemoteCandidates(list) => {
                // Each one is a mutation; the loop drains right after the last, and
                // adding candidates yields no output before the next timeout anyway.
                for c in list {
                    self.peer.rtc.add_remote_candidate(c);
                }
            }
            Command::GatherReflexive { servers, timeout, reply } => {
                self.probes.push((ReflexiveProbe::new(Instant::now(), &servers, timeout), reply));
            }
            Command::Close => self.close(),
            Command::Mute => self.muted = true,
        }
    }

    fn close(&mut self) {
        // Queues RTCP BYE and DTLS close_notify; the next drain sends them, then the
        // loop ends because the monitor is terminal.
        if let Err(e) = self.peer.rtc.close() {
            tracing::debug!("close: {e}");
        }
        self.link(LinkEvent::LocalClose);
    }

    fn write(&mut self, frame: MediaFrame) {
        let connected = self.monitor.state() == PeerState::Connected;
        let Some(send) = &mut self.peer.send else {
            return;
        };
        if !connected || (!send.started && !frame.keyframe) {
            return;
        }
        let Some(writer) = self.peer.rtc.writer(self.peer.mid) else {
            return;
        };
        let pt = match send.pt {
            Some(pt) => pt,
            None => {
                let Some(pt) = writer.payload_params().find(|p| p.spec().codec == Codec::H264).map(|p| p.pt()) else {
                    tracing::warn!("no negotiated H.264 payload type to send with");
                    return;
                };
                send.pt = Some(pt);
                pt
            }
        };
        let rtp = MediaTime::from_90khz(send.unwrap_rtp(frame.rtp_time));
        let data: Arc<[u8]> = Arc::from(&frame.data[..]);
        match writer.write(pt, Instant::now(), rtp, data) {
            Ok(()) => send.started |= frame.keyframe,
            Err(e) => tracing::debug!("write failed: {e}"),
        }
    }
}
