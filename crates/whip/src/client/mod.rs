//! The async driver: runs a [`WhipMachine`](crate::WhipMachine) over HTTP (`reqwest`),
//! tokio timers and a `dreamgate-rtc` [`Publisher`](dreamgate_rtc::Publisher), and feeds
//! it frames from a [`FrameSource`].
//!
//! All timing decisions are the machine's; this module only performs the
//! actions it returns and reports what happened.
//!
//! * `types.rs`: [`ClientOptions`] and what the client reports ([`ClientStatus`]).
//! * `pump.rs`: the frame source on its own thread, paced at its frame rate.
//! * `request.rs`: one WHIP request and the parts of its reply the machine reads.
//! * `driver.rs`: the task that owns the machine, the peer and the pump, and executes
//!   the machine's actions.
//! * here: [`WhipClient`], the handle that talks to that task.

mod driver;
mod pump;
mod request;
mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::driver::{Command, Started};
use crate::error::WhipError;
use crate::machine::ConnectionState;
use crate::source::FrameSource;

pub use self::types::{ClientOptions, ClientStatus, RetryStatus};

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
        let Started { commands, status, frames_sent, task } = driver::start(options.whip, http, headers, options.rtc);
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
