//! The async driver: runs a [`WhipMachine`] over HTTP (`reqwest`), tokio
//! timers and a `dreamgate-rtc` [`Publisher`], and feeds it frames from a
//! [`FrameSource`].
//!
//! All timing decisions are the machine's; this module only performs the
//! actions it returns and reports what happened.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamgate_media::Encoded;
use dreamgate_rtc::{MediaFrame, Peer, Publisher, RtcConfig};
use http::header::{self, HeaderMap};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use url::Url;

use crate::machine::{
    Action, ConnectionState, Event, HttpFailure, HttpReply, IceTransportPolicy, PeerState, RequestId,
    WhipConnectionState, WhipMachine, WhipOptions,
};
use crate::{FrameSource, IceServer, WhipError};

/// Everything a [`WhipClient`] needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The WHIPClient options and retry policy.
    pub whip: WhipOptions,
    /// Extra headers on every WHIP request (the gateway path needs `Origin`
    /// and its session `Cookie`). An `Authorization` header is never sent.
    pub headers: HeaderMap,
    /// Per-request HTTP timeout (default 10 s, like the official client).
    pub request_timeout: Duration,
    /// Local peer settings.
    pub rtc: RtcConfig,
}

impl ClientOptions {
    /// Defaults for `whip_url`.
    pub fn new(whip_url: Url) -> Self {
        Self {
            whip: WhipOptions::new(whip_url),
            headers: HeaderMap::new(),
            request_timeout: Duration::from_secs(10),
            rtc: RtcConfig::default(),
        }
    }
}

/// A warm-up retry waiting to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryStatus {
    /// Retry number (1 for the first).
    pub retry: u32,
    /// When the offer is sent again.
    pub at: Instant,
    /// What the last attempt got.
    pub error: WhipError,
}

/// What a [`WhipClient`] is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// The last connection state.
    pub state: WhipConnectionState,
    /// The pending warm-up retry, while connecting.
    pub retry: Option<RetryStatus>,
    /// ICE servers announced by the endpoint (`Link` headers).
    pub link_ice_servers: Vec<IceServer>,
    /// The source has no more frames.
    pub source_ended: bool,
}

enum Command {
    Connect { source: Box<dyn FrameSource>, reply: oneshot::Sender<Result<(), WhipError>> },
    Disconnect { reply: oneshot::Sender<()> },
}

/// A native WHIP client, the counterpart of the spec's `WHIPClient`.
///
/// ```no_run
/// use dreamgate_whip::{ClientOptions, EncodingSource, WhipClient};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let options = ClientOptions::new("http://127.0.0.1:3000/live/video-to-video/stk_x/whip".parse()?);
/// let client = WhipClient::new(options)?;
/// client.connect(Box::new(EncodingSource::test_pattern(512, 512, 30)?)).await?;
/// client.wait_connected().await?;
/// println!("live, {} frames sent", client.frames_sent());
/// client.disconnect().await; // closes the peer and DELETEs the WHIP resource
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WhipClient {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<ClientStatus>,
    frames_sent: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl WhipClient {
    /// Starts an idle client (state `disconnected`). Needs a tokio runtime.
    pub fn new(options: ClientOptions) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.request_timeout)
            .build()?;
        let mut headers = options.headers;
        if headers.remove(header::AUTHORIZATION).is_some() {
            tracing::warn!("WHIP URLs are pre-signed: the Authorization header was dropped");
        }
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
            machine: WhipMachine::new(options.whip),
            http,
            headers,
            rtc: options.rtc,
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
        Ok(Self { commands, status, frames_sent, task })
    }

    /// Starts connecting with `source` (returns once the attempt has started;
    /// follow [`status`](Self::status) or [`wait_connected`](Self::wait_connected)).
    ///
    /// Fails with `WHIP client already has an active connection` while a
    /// session is active, `MediaStream has no tracks` / `Video track is not
    /// live` for an unusable source.
    pub async fn connect(&self, source: Box<dyn FrameSource>) -> Result<(), WhipError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Connect { source, reply }).map_err(|_| WhipError::PeerFailed)?;
        rx.await.unwrap_or(Err(WhipError::PeerFailed))
    }

    /// Waits until the session is connected, or returns why it failed or closed.
    pub async fn wait_connected(&self) -> Result<(), WhipError> {
        let mut rx = self.status.clone();
        loop {
            let state = rx.borrow_and_update().state.clone();
            match state.state {
                ConnectionState::Connected => return Ok(()),
                ConnectionState::Failed => return Err(state.error.unwrap_or(WhipError::PeerFailed)),
                ConnectionState::Closed => return Err(WhipError::PeerFailed),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(WhipError::PeerFailed);
            }
        }
    }

    /// Closes the peer and DELETEs the WHIP resource; returns once the DELETE
    /// was answered (or timed out). The client can connect again afterwards.
    pub async fn disconnect(&self) {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Disconnect { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// A receiver of status changes (state, warm-up retries, Link ICE servers).
    pub fn status(&self) -> watch::Receiver<ClientStatus> {
        self.status.clone()
    }

    /// Access units handed to the connected peer so far.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::Relaxed)
    }

    /// Disconnects and stops the driver task.
    pub async fn shutdown(self) {
        self.disconnect().await;
        drop(self.commands);
        let _ = self.task.await;
    }
}

/// The source on its own thread, paced at its frame rate.
struct Pump {
    frames: mpsc::Receiver<Encoded>,
    force_keyframe: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    fps: u32,
    sent: u64,
}

impl Pump {
    fn start(mut source: Box<dyn FrameSource>) -> Self {
        let fps = source.fps().max(1);
        let (tx, frames) = mpsc::channel(4);
        let force_keyframe = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (force, halt) = (force_keyframe.clone(), stop.clone());
        std::thread::spawn(move || {
            let interval = Duration::from_secs(1) / fps;
            let start = Instant::now();
            for n in 0u32.. {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                // Media clock: frame n is due at start + n / fps.
                let due = start + interval * n;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let Some(frame) = source.next_frame(force.swap(false, Ordering::Relaxed)) else { break };
                if tx.blocking_send(frame).is_err() {
                    break;
                }
            }
        });
        Self { frames, force_keyframe, stop, fps, sent: 0 }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

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
        self.pump = None;
        self.source = None;
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

/// Sends a request and collects the parts the machine reads. Errors never
/// carry the URL (WHIP URLs hold a pre-signed token).
async fn send(builder: reqwest::RequestBuilder) -> Result<HttpReply, HttpFailure> {
    let failure = |e: reqwest::Error| {
        if e.is_timeout() {
            HttpFailure::Timeout
        } else {
            HttpFailure::Unreachable(e.without_url().to_string())
        }
    };
    let response = builder.send().await.map_err(failure)?;
    let headers = response.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut reply = HttpReply {
        status: response.status().as_u16(),
        location: text(header::LOCATION),
        link: headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect(),
        etag: text(header::ETAG),
        content_type: text(header::CONTENT_TYPE),
        body: String::new(),
    };
    reply.body = response.text().await.map_err(failure)?;
    Ok(reply)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The pump's next frame; pending forever without a pump.
async fn next_frame(pump: &mut Option<Pump>) -> Option<Encoded> {
    match pump {
        Some(pump) => pump.frames.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_keyframe_request(requests: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
