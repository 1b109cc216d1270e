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
    /// Last params update (PATCH accepted).
    pub last_params_update: Option<Instant>,
    /// The params hash the transform runs with, and since when (`None`: since creation).
    pub applied_params: Option<(String, Option<Instant>)>,
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
            applied_params: a.applied_params().map(|(h, at)| (h.to_string(), at)),
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

/// The hash of a stream's params as the status reports it (`last_params_hash`): FNV-1a of
/// the params JSON, hex, stable across runs. It changes when the transform switches to
/// different params.
pub fn params_hash(params: &StreamParams) -> String {
    fnv1a_hex(&serde_json::to_string(params).unwrap_or_default())
}

fn fnv1a_hex(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_hash_is_the_hash_of_the_params_json_object() {
        let mut p = dreamgate_model::default_params();
        p.extra.insert("future_knob".into(), json!({"b": 1.5, "a": [1, "x"]}));
        p.guidance_scale = Some(1.0);
        let as_object = Value::Object(p.to_map()).to_string();
        assert_eq!(params_hash(&p), fnv1a_hex(&as_object));
        assert_eq!(params_hash(&p).len(), 16);
        let mut q = p.clone();
        q.prompt = Some(dreamgate_model::Prompt::Text("another".into()));
        assert_ne!(params_hash(&p), params_hash(&q));
    }
}
