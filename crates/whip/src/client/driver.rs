//! The client's task: owns the [`WhipMachine`], the peer and the pump; executes the
//! machine's actions and feeds back what happened.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dreamgate_media::Encoded;
use dreamgate_rtc::{MediaFrame, Peer, Publisher, RtcConfig};
use http::header::{self, HeaderMap};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::pump::{next_frame, Pump};
use super::request::send;
use super::types::{ClientStatus, RetryStatus};
use crate::error::WhipError;
use crate::link::IceServer;
use crate::machine::{
    Action, ConnectionState, Event, IceTransportPolicy, PeerState, RequestId, WhipConnectionState, WhipMachine,
    WhipOptions,
};
use crate::source::FrameSource;

/// Requests from the handle to the task.
pub(super) enum Command {
    Connect { source: Box<dyn FrameSource>, reply: oneshot::Sender<Result<(), WhipError>> },
    Disconnect { reply: oneshot::Sender<()> },
}

/// The handle's ends of a started task.
pub(super) struct Started {
    pub commands: mpsc::UnboundedSender<Command>,
    pub status: watch::Receiver<ClientStatus>,
    pub frames_sent: Arc<AtomicU64>,
    pub task: JoinHandle<()>,
}

/// Starts the task of an idle client (state `disconnected`).
pub(super) fn start(whip: WhipOptions, http: reqwest::Client, headers: HeaderMap, rtc: RtcConfig) -> Started {
    let initial = ClientStatus {
        state: WhipConnectionState { state: ConnectionState::Disconnected, error: None },
        retry: None,
        link_ice_servers: Vec::new(),
        source_ended: false,
    };
    let (status_tx, status) = watch::channel(initial);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let frames_sent = Arc::new(AtomicU64::new(0));
    let driver = Driver {
        machine: WhipMachine::new(whip),
        http,
        headers,
        rtc,
        status: status_tx,
        events_tx,
        events_rx,
        publisher: None,
        keyframe_requests: None,
        peer_watch: None,
        gather: None,
        source: None,
        pump: None,
        frames_sent: frames_sent.clone(),
        deletes: Vec::new(),
    };
    let task = tokio::spawn(driver.run(commands_rx));
    Started { commands, status, frames_sent, task }
}

/// The task behind a [`WhipClient`](super::WhipClient): owns the machine, the peer and
/// the pump, and executes the machine's actions.
struct Driver {
    machine: WhipMachine,
    http: reqwest::Client,
    headers: HeaderMap,
    rtc: RtcConfig,
    status: watch::Sender<ClientStatus>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    publisher: Option<Publisher>,
    keyframe_requests: Option<mpsc::Receiver<()>>,
    peer_watch: Option<JoinHandle<()>>,
    /// Trickle gathering from `Link` STUN servers in progress.
    gather: Option<JoinHandle<()>>,
    source: Option<Box<dyn FrameSource>>,
    pump: Option<Pump>,
    frames_sent: Arc<AtomicU64>,
    deletes: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.machine.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Connect { source, reply }) => {
                        let result = self.connect(source).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Disconnect { reply }) => {
                        self.disconnect().await;
                        let _ = reply.send(());
                    }
                    None => {
                        self.disconnect().await;
                        return;
                    }
                },
                Some(event) = self.events_rx.recv() => { let _ = self.feed(event).await; }
                _ = sleep_until(deadline), if deadline.is_some() => { let _ = self.feed(Event::Timeout).await; }
                frame = next_frame(&mut self.pump) => match frame {
                    Some(frame) => self.send_frame(frame),
                    None => {
                        self.pump = None;
                        self.status.send_modify(|s| s.source_ended = true);
                    }
                },
                request = next_keyframe_request(&mut self.keyframe_requests) => match (request, &self.pump) {
                    (Some(()), Some(pump)) => pump.force_keyframe.store(true, Ordering::Relaxed),
                    (Some(()), None) => {}
                    (None, _) => self.keyframe_requests = None,
                },
            }
        }
    }

    async fn connect(&mut self, source: Box<dyn FrameSource>) -> Result<(), WhipError> {
        if self.machine.is_active() {
            return Err(WhipError::AlreadyConnected);
        }
        if !source.has_video() {
            return Err(WhipError::NoTracks);
        }
        if !source.is_live() {
            return Err(WhipError::TrackNotLive);
        }
        self.source = Some(source);
        self.status.send_modify(|s| {
            s.source_ended = false;
            s.link_ice_servers.clear();
        });
        self.feed(Event::Connect).await
    }

    async fn disconnect(&mut self) {
        let _ = self.feed(Event::Disconnect).await;
        // DELETEs are bounded by the request timeout; their results are ignored.
        for delete in self.deletes.drain(..) {
            let _ = delete.await;
        }
    }

    /// Runs `event` and everything it leads to through the machine.
    async fn feed(&mut self, event: Event) -> Result<(), WhipError> {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let connect = matches!(event, Event::Connect);
            let actions = match self.machine.handle(Instant::now(), event) {
                Ok(actions) => actions,
                Err(e) if connect => return Err(e),
                Err(_) => continue,
            };
            for action in actions {
                self.execute(action, &mut queue).await;
            }
        }
        Ok(())
    }

    async fn execute(&mut self, action: Action, queue: &mut VecDeque<Event>) {
        match action {
            Action::CreatePeer { ice_servers, policy } => self.create_peer(&ice_servers, policy, queue).await,
            Action::SendOffer { request, url, sdp } => {
                let req = self.http.post(url).header(header::CONTENT_TYPE, "application/sdp").body(sdp);
                self.spawn_request(request, req);
            }
            Action::SendCandidates { request, url, etag, sdpfrag } => {
                let mut req =
                    self.http.patch(url).header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag").body(sdpfrag);
                if let Some(etag) = etag {
                    req = req.header(header::IF_MATCH, etag);
                }
                self.spawn_request(request, req);
            }
            Action::SendDelete { request, url } => {
                let req = self.http.delete(url);
                let handle = self.spawn_request(request, req);
                self.deletes.retain(|h| !h.is_finished());
                self.deletes.push(handle);
            }
            Action::ApplyAnswer { sdp } => {
                let applied = match self.publisher.as_mut() {
                    Some(publisher) => publisher.set_answer(&sdp).map_err(|e| e.to_string()),
                    None => Err("no peer".to_owned()),
                };
                if let Err(e) = applied {
                    tracing::warn!("the WHIP answer was refused: {e}");
                    queue.push_back(Event::AnswerRejected);
                }
            }
            Action::SetIceServers(servers) => {
                tracing::debug!(count = servers.len(), "the WHIP endpoint announced ICE servers");
                self.status.send_modify(|s| s.link_ice_servers = servers);
            }
            Action::GatherFrom(servers) => {
                let urls: Vec<String> = servers.into_iter().map(|s| s.url).collect();
                let Some(publisher) = &self.publisher else {
                    queue.push_back(Event::CandidatesGathered { candidates: Vec::new() });
                    return;
                };
                let gathering = publisher.gather_reflexive(&urls);
                let events = self.events_tx.clone();
                self.gather = Some(tokio::spawn(async move {
                    let candidates = gathering.await;
                    tracing::debug!(count = candidates.len(), "server-reflexive candidates from the Link ICE servers");
                    let _ = events.send(Event::CandidatesGathered { candidates });
                }));
            }
            Action::RetryScheduled { retry, at, error } => {
                tracing::debug!(retry, "WHIP endpoint warming up ({error}), retrying");
                self.status.send_modify(|s| s.retry = Some(RetryStatus { retry, at, error }));
            }
            Action::ClosePeer => self.close_peer(),
            Action::DropPeer => self.drop_peer(),
            Action::EmitState(state) => {
                if state.state == ConnectionState::Connected {
                    match (&self.pump, self.source.take()) {
                        (Some(pump), _) => pump.force_keyframe.store(true, Ordering::Relaxed),
                        (None, Some(source)) => self.pump = Some(Pump::start(source)),
                        (None, None) => {}
                    }
                }
                self.status.send_modify(|s| {
                    if state.state != ConnectionState::Connecting {
                        s.retry = None;
                    }
                    s.state = state;
                });
            }
        }
    }

    async fn create_peer(&mut self, servers: &[IceServer], policy: IceTransportPolicy, queue: &mut VecDeque<Event>) {
        // The native peer gathers host and STUN (server-reflexive) candidates;
        // with a relay-only policy only TURN URLs are passed (it cannot relay).
        let urls: Vec<String> = servers
            .iter()
            .filter(|s| policy == IceTransportPolicy::All || s.is_turn())
            .map(|s| s.url.clone())
            .collect();
        let mut rtc = self.rtc.clone();
        // The machine owns the timers: keep the peer's own limits out of its way.
        let opts = self.machine.options();
        rtc.connect_timeout = rtc.connect_timeout.max(opts.warmup_budget + opts.connection_timeout);
        rtc.disconnect_timeout = rtc.disconnect_timeout.max(opts.disconnected_grace * 2);
        // the server answers STUN and sends RTCP steadily: a silence is a lost path (the
        // browser's consent check says "disconnected" the same way)
        if opts.max_reconnects > 0 {
            rtc.silence_timeout = Some(rtc.silence_timeout.unwrap_or(PUBLISHER_SILENCE));
        }
        match Publisher::new(&rtc, &urls).await {
            Ok((mut publisher, offer)) => {
                let (_, empty) = mpsc::channel(1);
                self.keyframe_requests = Some(std::mem::replace(&mut publisher.keyframe_requests, empty));
                let mut states = publisher.state_changes();
                let events = self.events_tx.clone();
                self.peer_watch = Some(tokio::spawn(async move {
                    while states.changed().await.is_ok() {
                        let state = *states.borrow_and_update();
                        if events.send(Event::PeerStateChanged(state)).is_err() {
                            break;
                        }
                    }
                }));
                self.publisher = Some(publisher);
                // Candidates are gathered before the offer is returned.
                queue.push_back(Event::OfferReady { sdp: offer });
                queue.push_back(Event::GatheringComplete { sdp: None });
            }
            Err(e) => {
                tracing::warn!("cannot create the WebRTC peer: {e}");
                queue.push_back(Event::PeerStateChanged(PeerState::Failed));
            }
        }
    }

    fn close_peer(&mut self) {
        self.drop_peer();
        self.pump = None;
        self.source = None;
    }

    /// Closes the peer, keeping the media source for the next one (a reconnect).
    fn drop_peer(&mut self) {
        if let Some(watch) = self.peer_watch.take() {
            watch.abort();
        }
        if let Some(gather) = self.gather.take() {
            gather.abort();
        }
        if let Some(publisher) = self.publisher.take() {
            publisher.close();
        }
        self.keyframe_requests = None;
    }

    fn send_frame(&mut self, frame: Encoded) {
        let (Some(publisher), Some(pump)) = (&self.publisher, &mut self.pump) else { return };
        // 90 kHz RTP clock.
        let rtp_time = (pump.sent * 90_000 / u64::from(pump.fps)) as u32;
        pump.sent += 1;
        publisher.send(MediaFrame { data: frame.data.into(), keyframe: frame.keyframe, rtp_time });
        if self.machine.state() == ConnectionState::Connected {
            self.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn spawn_request(&self, request: RequestId, builder: reqwest::RequestBuilder) -> JoinHandle<()> {
        let builder = self.headers.iter().fold(builder, |b, (name, value)| b.header(name, value));
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let event = match send(builder).await {
                Ok(reply) => Event::HttpResponse { request, reply },
                Err(error) => Event::HttpError { request, error },
            };
            let _ = events.send(event);
        })
    }
}

/// With reconnects on: a connected publisher that hears nothing from the server this long is
/// "disconnected".
const PUBLISHER_SILENCE: std::time::Duration = std::time::Duration::from_secs(4);

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_keyframe_request(requests: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
