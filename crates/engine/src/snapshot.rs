//! [`StatusSnapshot`]: one stream's status at one instant, as the engine computed it; the
//! HTTP layer (`api/status.rs`) renders it as Daydream's status JSON.

use std::time::Instant;

use dreamgate_model::StreamParams;
use serde_json::{Map, Value};

use crate::status::{Activity, Evaluation, TransportStats};

/// What the status machine has recorded about a stream's media, copied at evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFigures {
    /// When the stream was created.
    pub created: Instant,
    /// Last input frame.
    pub last_input: Option<Instant>,
    /// Last output frame.
    pub last_output: Option<Instant>,
    /// Last params update.
    pub last_params_update: Option<Instant>,
    /// Last error, with when it happened.
    pub last_error: Option<(Instant, String)>,
    /// Last restart.
    pub last_restart: Option<Instant>,
    /// Logs of the last restart.
    pub restart_logs: Vec<String>,
    /// Number of restarts.
    pub restart_count: u32,
    /// Total bytes received from the ingest peers.
    pub bytes_received: u64,
    /// Total bytes of output produced.
    pub bytes_sent: u64,
    /// Last transport figures.
    pub transport: TransportStats,
}

impl From<&Activity> for MediaFigures {
    fn from(a: &Activity) -> Self {
        MediaFigures {
            created: a.created(),
            last_input: a.last_input(),
            last_output: a.last_output(),
            last_params_update: a.last_params_update(),
            last_error: a.last_error.clone(),
            last_restart: a.last_restart(),
            restart_logs: a.restart_logs.clone(),
            restart_count: a.restart_count,
            bytes_received: a.bytes_received,
            bytes_sent: a.bytes_sent,
            transport: a.transport,
        }
    }
}

/// One stream's status at `now` (see [`crate::Engine::status`]).
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    /// The stream (`str_...`).
    pub stream_id: String,
    /// `"streamdiffusion"`.
    pub pipeline: String,
    /// The stream's current params.
    pub params: StreamParams,
    /// The params object of the last update as given (`None` before the first PATCH).
    pub last_params: Option<Map<String, Value>>,
    /// The status machine's verdict.
    pub evaluation: Evaluation,
    /// The recorded media figures.
    pub media: MediaFigures,
    /// When the snapshot was taken.
    pub now: Instant,
}
