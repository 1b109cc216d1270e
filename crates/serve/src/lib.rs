//! # dreamgate-serve
//!
//! Serves an HTTP/1 service (an axum `Router`, or any tower service) on a
//! [`TcpListener`] the way a server facing the internet must, which
//! `axum::serve` does not:
//!
//! * **header-read timeout**: a request head must be complete within
//!   [`ServeLimits::header_timeout`] of the connection's start (or of its
//!   first byte after an idle keep-alive pause), however its bytes trickle
//!   in: a silent connection, half a request line and a header every few
//!   seconds (slowloris) are all closed then;
//! * **idle timeout**: a keep-alive connection with no request is closed
//!   after [`ServeLimits::idle_timeout`];
//! * **body timeout**: a request body must arrive in full within
//!   [`ServeLimits::body_timeout`] of its head; one that trickles in is cut
//!   off and answered `408 {"error": "Request timeout", "message": ...}`
//!   (`Connection: close`);
//! * **connection caps**: at most [`ServeLimits::max_connections`] open
//!   connections (and never more than three quarters of the open-file
//!   limit), at most [`ServeLimits::max_connections_per_ip`] per peer (an
//!   IPv4 address or an IPv6 /64). A connection beyond a cap is closed at
//!   once; accepting never stops;
//! * **accept errors** (`EMFILE`, `ENFILE`, `ENOBUFS`...) pause accepting
//!   for 100 ms (no busy loop) and never end the server;
//! * **graceful shutdown**: once the shutdown future resolves, accepting
//!   stops; idle connections, half-sent heads and half-sent bodies are
//!   closed at once; requests in flight finish within
//!   [`ServeLimits::shutdown_grace`], then their connections are closed too.
//!   Dropping the serve future closes every connection.
//! * **memory after floods**: when open connections fall to a quarter of
//!   their peak, free memory is handed back to the system ([`trim`]), so a
//!   connection flood that went away leaves no high RSS behind.
//!
//! The timers are the pure [`clock::ConnClock`] machine; [`raise_nofile_limit`]
//! raises the soft open-file limit at start.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! dreamgate_serve::serve(listener, app, dreamgate_serve::ServeLimits::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};
use tower_service::Service;

pub mod admit;
mod body;
pub mod clock;
mod rlimit;
pub mod trim;

pub use body::{BodyError, BoxError, RequestBody, ResponseBody};
pub use rlimit::{nofile_limit, raise_nofile_limit, NofileLimit};

use admit::{Refused, Slot, Slots};
use clock::{ConnClock, OnShutdown};

/// How long accepting pauses after an error such as `EMFILE`.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one warning per this period about refused connections or accept errors.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connection limits. The defaults suit a server facing browsers directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request head must be complete within this time of the connection's
    /// start, or of the first byte of a new request on a keep-alive
    /// connection. Default 10 s: a browser sends its head in one packet, so
    /// this leaves a very slow link ample room while a silent or trickling
    /// connection is gone quickly.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after
    /// this. Default 60 s: the Dream page polls every second or so and keeps
    /// its connections warm; an abandoned one is freed within a minute.
    pub idle_timeout: Duration,
    /// A request body must arrive in full within this time of the request
    /// head (else 408). Default 30 s: the largest body the gateway takes is
    /// 100 KiB, so this asks for at least about 3.4 KB/s.
    pub body_timeout: Duration,
    /// Open connections at most (further ones are closed at once). Never more
    /// than three quarters of the soft open-file limit either, so that the
    /// process keeps descriptors for its own upstream calls and media. Default 10,000.
    pub max_connections: usize,
    /// Open connections per peer (IPv4 address or IPv6 /64) at most. Default
    /// 256: a browser opens at most 6 connections per host, so about 40
    /// browsers behind one NAT fit, while one peer holds at most 2.6 % of
    /// `max_connections`. Behind a reverse proxy every connection comes from
    /// the proxy: raise it to `max_connections` there.
    pub max_connections_per_ip: usize,
    /// On shutdown, how long requests in flight may take to finish. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A [`ServeLimits`] value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLimits(pub &'static str);

impl std::error::Error for InvalidLimits {}

impl std::fmt::Display for InvalidLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} must be greater than zero", self.0)
    }
}

impl ServeLimits {
    /// Checks that every duration and cap is positive.
    ///
    /// # Errors
    /// Names the first value that is zero.
    pub fn validate(&self) -> Result<(), InvalidLimits> {
        for (name, d) in [
            ("header timeout", self.header_timeout),
            ("idle timeout", self.idle_timeout),
            ("body timeout", self.body_timeout),
            ("shutdown grace", self.shutdown_grace),
        ] {
            if d.is_zero() {
                return Err(InvalidLimits(name));
            }
        }
        if self.max_connections == 0 {
            return Err(InvalidLimits("max connections"));
        }
        if self.max_connections_per_ip == 0 {
            return Err(InvalidLimits("max connections per IP"));
        }
        Ok(())
    }

    /// The overall cap given a soft open-file limit: `max_connections`, but
    /// at most three quarters of the limit (at least 1).
    pub fn effective_max_connections(&self, nofile: Option<u64>) -> usize {
        match nofile {
            Some(n) => {
                let share = usize::try_from(n - n / 4).unwrap_or(usize::MAX).max(1);
                self.max_connections.min(share)
            }
            None => self.max_connections,
        }
    }
}

/// `10 s`, `300 ms`, `1.5 s`.
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Counts events and says when to report them: at the first one, then at
/// most once per `every` (pure: time is passed in).
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl Throttle {
    /// Reports at most once per `every`.
    pub fn new(every: Duration) -> Self {
        Self { every, last: None, pending: 0 }
    }

    /// One event at `now`: `Some(n)` when it is time to report the `n`
    /// events since the last report (this one included).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        if self.last.is_some_and(|last| now < last + self.every) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// Errors from `accept()` that concern one connection only (the peer gave up
/// before it was accepted): accepting goes on at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serves `service` on `listener` within `limits` until `shutdown` resolves,
/// then shuts down gracefully (see the [crate docs](crate)) and returns.
///
/// # Errors
/// Only for invalid `limits` (see [`ServeLimits::validate`]); accept errors
/// are logged and survived.
pub async fn serve<S, B, F>(listener: TcpListener, service: S, limits: ServeLimits, shutdown: F) -> io::Result<()>
where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send,
{
    limits.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let nofile = nofile_limit();
    let max_total = limits.effective_max_connections(nofile);
    if max_total < limits.max_connections {
        tracing::info!(
            max_connections = max_total,
            nofile = nofile.unwrap_or(0),
            "connection cap lowered to three quarters of the open-file limit"
        );
    }
    let slots = Slots::new(max_total, limits.max_connections_per_ip);
    let mut conns = JoinSet::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut refusals = Throttle::new(WARN_EVERY);
    let mut failures = Throttle::new(WARN_EVERY);
    let mut trims = trim::TrimPolicy::default();

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {
                if trims.on_open(slots.total()) {
                    tracing::debug!(open = slots.total(), "connections went away: giving free memory back");
                    tokio::task::spawn_blocking(trim::trim);
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.take(peer.ip()) {
                    Ok(slot) => {
                        trims.on_open(slots.total());
                        conns.spawn(connection(stream, slot, service.clone(), limits.clone(), stop_rx.clone()));
                    }
                    Err(why) => {
                        drop(stream);
                        tracing::debug!(%peer, ?why, "connection refused");
                        if let Some(n) = refusals.hit(Instant::now()) {
                            let (cap, value) = match why {
                                Refused::Total => ("max connections", max_total),
                                Refused::PerPeer => ("max connections per IP", limits.max_connections_per_ip),
                            };
                            tracing::warn!(%peer, refused = n, "connection cap reached ({cap} = {value}): closing new connections");
                        }
                    }
                },
                Err(e) if is_connection_error(&e) => tracing::debug!(error = %e, "accept: connection gone"),
                Err(e) => {
                    if let Some(n) = failures.hit(Instant::now()) {
                        tracing::warn!(error = %e, errors = n, "accept failed; pausing {}", human(ACCEPT_BACKOFF));
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
    }

    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// One connection's timer state, shared by its task, its IO and its requests.
pub(crate) struct ConnState {
    clock: Mutex<ConnClock>,
    wake: Notify,
}

impl ConnState {
    fn clock(&self) -> MutexGuard<'_, ConnClock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the clock and wakes the connection task to look at it again.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut ConnClock) -> R) -> R {
        let r = f(&mut self.clock());
        self.wake.notify_one();
        r
    }
}

async fn connection<S, B>(
    stream: TcpStream,
    slot: Slot,
    service: S,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let _slot = slot;
    let state = Arc::new(ConnState { clock: Mutex::new(ConnClock::new(Instant::now(), &limits)), wake: Notify::new() });
    let peer = stream.peer_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let io = TokioIo::new(Observed { stream, conn: state.clone() });
    let svc = ConnService { inner: service, peer, conn: state.clone(), body_timeout: limits.body_timeout };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // our clock keeps the head deadline (hyper's would also cut idle keep-alive at the same time)
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, svc));
    let mut stopping = false;
    loop {
        let deadline = {
            let clock = state.clock();
            if clock.is_closed() {
                tracing::debug!("closing connection: {:?}", clock.phase());
                return;
            }
            clock.deadline()
        };
        let expiry = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            () = expiry => state.update(|c| c.tick(Instant::now())),
            () = state.wake.notified() => {}
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if state.update(|c| c.shutdown(Instant::now())) == OnShutdown::Drain {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The socket, telling the clock when bytes arrive.
struct Observed {
    stream: TcpStream,
    conn: Arc<ConnState>,
}

impl AsyncRead for Observed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let changed = self.conn.clock().bytes_read(Instant::now());
            if changed {
                self.conn.wake.notify_one();
            }
        }
        polled
    }
}

impl AsyncWrite for Observed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The user's service, with the body timeout and the clock events around each request.
struct ConnService<S> {
    inner: S,
    /// The peer's address, put in every request's extensions (`SocketAddr`).
    peer: std::net::SocketAddr,
    conn: Arc<ConnState>,
    body_timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let now = Instant::now();
        let seq = self.conn.update(|c| c.request_started(now));
        let timed_out = Arc::new(AtomicBool::new(false));
        let limit = self.body_timeout;
        let mut req = req.map(|b| RequestBody::new(b, now, limit, timed_out.clone(), self.conn.clone(), seq));
        req.extensions_mut().insert(self.peer);
        let mut inner = self.inner.clone();
        let conn = self.conn.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(req).await?;
            conn.update(|c| c.response_started(seq));
            let done = body::ResponseDone { conn, seq };
            if timed_out.load(Ordering::SeqCst) {
                return Ok(body_timeout_response(response, limit, done));
            }
            Ok(response.map(|b| ResponseBody::inner(b, done)))
        })
    }
}

/// 408 for a body that did not arrive in time, in place of what the service
/// answered to its failed read (keeping its headers: cookies, security
/// headers); the connection is closed after it.
fn body_timeout_response<B>(
    answered: Response<B>,
    limit: Duration,
    done: body::ResponseDone,
) -> Response<ResponseBody<B>> {
    let json = format!(
        r#"{{"error":"Request timeout","message":"The request body was not received within {}"}}"#,
        human(limit)
    );
    let (mut parts, _) = answered.into_parts();
    parts.status = StatusCode::REQUEST_TIMEOUT;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Response::from_parts(parts, ResponseBody::full(Bytes::from(json), done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        let d = ServeLimits::default();
        assert_eq!(d.validate(), Ok(()));
        assert_eq!(
            (d.header_timeout, d.idle_timeout, d.body_timeout, d.max_connections, d.max_connections_per_ip),
            (Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(30), 10_000, 256)
        );
        let zero = ServeLimits { body_timeout: Duration::ZERO, ..ServeLimits::default() };
        assert_eq!(zero.validate(), Err(InvalidLimits("body timeout")));
        assert_eq!(zero.validate().unwrap_err().to_string(), "body timeout must be greater than zero");
        let zero = ServeLimits { max_connections_per_ip: 0, ..ServeLimits::default() };
        assert_eq!(zero.validate(), Err(InvalidLimits("max connections per IP")));
    }

    #[test]
    fn the_cap_keeps_a_quarter_of_the_file_limit_free() {
        let d = ServeLimits::default();
        assert_eq!(d.effective_max_connections(None), 10_000);
        assert_eq!(d.effective_max_connections(Some(1_048_576)), 10_000);
        assert_eq!(d.effective_max_connections(Some(1024)), 768);
        assert_eq!(d.effective_max_connections(Some(1)), 1);
        assert_eq!(d.effective_max_connections(Some(u64::MAX)), 10_000);
    }

    #[test]
    fn throttle_reports_the_first_event_then_at_most_once_per_period() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.hit(t0), Some(1));
        assert_eq!(t.hit(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(10)), Some(3));
        assert_eq!(t.hit(t0 + Duration::from_secs(30)), Some(1));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(30)), "30 s");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn only_per_connection_accept_errors_skip_the_pause() {
        assert!(is_connection_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(libc::ENFILE)));
    }
}
