//! [`StreamStatus`]: the figures a client needs from `GET /v1/streams/{id}/status`, read from
//! either documented shape of its `data`:
//!
//! - the runner's: `state`, `input_status.fps`, `inference_status.fps` (output);
//! - Daydream's public reference: `inference_status.input_fps` and `output_fps`, no `state`,
//!   no `input_status`.
//!
//! Parsed once at the edge; absent or mistyped values are `None`, never an error.

use serde_json::Value;

/// One status answer's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStatus {
    /// `LOADING`, `ONLINE`, ... (runner shape only).
    pub state: Option<String>,
    /// Input frames per second.
    pub input_fps: Option<f64>,
    /// Output (inference) frames per second.
    pub output_fps: Option<f64>,
    /// `inference_status.last_params_hash`: changes once new params are applied.
    pub last_params_hash: Option<String>,
    /// `gateway_status.whep_url`.
    pub whep_url: Option<String>,
}

impl StreamStatus {
    /// Reads a status answer: the whole body `{success, error, data}` or its `data`.
    ///
    /// ```
    /// use dreamgate_client::StreamStatus;
    /// let runner = serde_json::json!({"data": {"state": "ONLINE", "input_status": {"fps": 30.0},
    ///     "inference_status": {"fps": 29.5}}});
    /// let public = serde_json::json!({"data": {"inference_status": {"input_fps": 30.0, "output_fps": 29.5}}});
    /// let (a, b) = (StreamStatus::from_json(&runner), StreamStatus::from_json(&public));
    /// assert_eq!((a.input_fps, a.output_fps), (Some(30.0), Some(29.5)));
    /// assert_eq!((b.input_fps, b.output_fps), (Some(30.0), Some(29.5)));
    /// assert_eq!((a.state.as_deref(), b.state), (Some("ONLINE"), None));
    /// ```
    pub fn from_json(body: &Value) -> Self {
        let data = body.get("data").filter(|d| d.is_object()).unwrap_or(body);
        let inference = &data["inference_status"];
        StreamStatus {
            state: data["state"].as_str().map(str::to_owned),
            input_fps: data["input_status"]["fps"].as_f64().or_else(|| inference["input_fps"].as_f64()),
            output_fps: inference["fps"].as_f64().or_else(|| inference["output_fps"].as_f64()),
            last_params_hash: inference["last_params_hash"].as_str().map(str::to_owned),
            whep_url: data["gateway_status"]["whep_url"].as_str().map(str::to_owned),
        }
    }

    /// One line for people: `state ONLINE, input 30.0 fps, output 29.5 fps` (the parts known).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.state {
            parts.push(format!("state {s}"));
        }
        let fps = |v: Option<f64>| v.map_or_else(|| "? fps".to_owned(), |f| format!("{f:.1} fps"));
        parts.push(format!("input {}", fps(self.input_fps)));
        parts.push(format!("output {}", fps(self.output_fps)));
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_runner_shape() {
        let s = StreamStatus::from_json(&json!({"success": true, "error": null, "data": {
            "state": "DEGRADED_INPUT", "input_status": {"fps": 12.5, "last_input_time": 1},
            "inference_status": {"fps": 11.0, "last_params_hash": "abc"},
            "gateway_status": {"whep_url": "http://x/whep"}
        }}));
        assert_eq!(
            s,
            StreamStatus {
                state: Some("DEGRADED_INPUT".into()),
                input_fps: Some(12.5),
                output_fps: Some(11.0),
                last_params_hash: Some("abc".into()),
                whep_url: Some("http://x/whep".into()),
            }
        );
        assert_eq!(s.summary(), "state DEGRADED_INPUT, input 12.5 fps, output 11.0 fps");
    }

    #[test]
    fn reads_the_public_reference_shape() {
        let s = StreamStatus::from_json(&json!({"data": {
            "inference_status": {"input_fps": 30, "output_fps": 29.7, "last_params_hash": "h"}
        }}));
        assert_eq!((s.state.clone(), s.input_fps, s.output_fps), (None, Some(30.0), Some(29.7)));
        assert_eq!(s.last_params_hash.as_deref(), Some("h"));
        assert_eq!(s.summary(), "input 30.0 fps, output 29.7 fps");
    }

    #[test]
    fn bare_data_and_garbage_never_fail() {
        let s = StreamStatus::from_json(&json!({"state": "ONLINE", "inference_status": {"fps": "fast"}}));
        assert_eq!((s.state.as_deref(), s.output_fps), (Some("ONLINE"), None));
        assert_eq!(StreamStatus::from_json(&json!(null)), StreamStatus::default());
        assert_eq!(StreamStatus::default().summary(), "input ? fps, output ? fps");
    }
}
