//! Request and response bodies as the served service sees them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::ConnState;

/// Boxed error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why reading a request body failed.
#[derive(Debug)]
pub enum BodyError {
    /// The body was not received in full within
    /// [`ServeLimits::body_timeout`](crate::ServeLimits::body_timeout) of the request head;
    /// the client is answered 408 and the connection closed.
    TimedOut(Duration),
    /// The connection failed while the body was read.
    Read(hyper::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TimedOut(limit) => write!(f, "request body not received within {}", crate::human(*limit)),
            BodyError::Read(e) => write!(f, "cannot read the request body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::TimedOut(_) => None,
            BodyError::Read(e) => Some(e),
        }
    }
}

/// A request body that must arrive in full within the body timeout. Data
/// already received is always handed out; only waiting for more is cut.
pub struct RequestBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
    conn: Arc<ConnState>,
    seq: u64,
    finished: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").field("limit", &self.limit).field("finished", &self.finished).finish()
    }
}

impl RequestBody {
    pub(crate) fn new(
        inner: Incoming,
        start: Instant,
        limit: Duration,
        timed_out: Arc<AtomicBool>,
        conn: Arc<ConnState>,
        seq: u64,
    ) -> Self {
        let mut body = Self { inner, deadline: None, limit, timed_out, conn, seq, finished: false };
        if body.inner.is_end_stream() {
            body.finish();
        } else {
            body.deadline = Some(Box::pin(tokio::time::sleep_until(start + limit)));
        }
        body
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.deadline = None;
            let seq = self.seq;
            self.conn.update(|c| c.body_done(seq));
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                this.deadline = None;
                Poll::Ready(Some(Err(BodyError::Read(e))))
            }
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    this.finished = true;
                    this.deadline = None;
                    this.timed_out.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(BodyError::TimedOut(this.limit))))
                }
                _ => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Marks the response of request `seq` as sent when dropped (hyper drops the
/// body once it is written, or when the connection goes away).
pub(crate) struct ResponseDone {
    pub(crate) conn: Arc<ConnState>,
    pub(crate) seq: u64,
}

impl Drop for ResponseDone {
    fn drop(&mut self) {
        let seq = self.seq;
        self.conn.update(|c| c.response_done(Instant::now(), seq));
    }
}

enum Kind<B> {
    Inner(Pin<Box<B>>),
    Full(Option<Bytes>),
}

/// The response body sent to the client: the service's, or one of ours (408).
pub struct ResponseBody<B> {
    kind: Kind<B>,
    _done: ResponseDone,
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, done: ResponseDone) -> Self {
        Self { kind: Kind::Inner(Box::pin(body)), _done: done }
    }

    pub(crate) fn full(bytes: Bytes, done: ResponseDone) -> Self {
        Self { kind: Kind::Full(Some(bytes)), _done: done }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // no field is structurally pinned: the inner body is boxed
        match &mut self.get_mut().kind {
            Kind::Inner(b) => b.as_mut().poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into))),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner(b) => b.is_end_stream(),
            Kind::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner(b) => b.size_hint(),
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
        }
    }
}
