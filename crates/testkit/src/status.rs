//! Polling a stream's status (`GET /v1/streams/{id}/status`) through the Daydream client.

use std::time::{Duration, Instant};

use dreamgate_client::DaydreamClient;
use serde_json::Value;

/// How often the status is asked.
pub const POLL: Duration = Duration::from_millis(200);

/// Polls the stream's status (every [`POLL`], at most `wait`) until `ok(data)`; returns
/// the last `data` object (so a test asserts on it and prints it when it is not what it
/// wanted).
///
/// # Panics
///
/// When a status request fails.
pub async fn wait_status(c: &DaydreamClient, id: &str, wait: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + wait;
    loop {
        let data = c.stream_status(id).await.expect("status")["data"].clone();
        if ok(&data) || Instant::now() >= until {
            return data;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls the stream's status until its `state` is `state` (or gives up after `wait`);
/// returns the last `data` object.
pub async fn wait_state(c: &DaydreamClient, id: &str, state: &str, wait: Duration) -> Value {
    wait_status(c, id, wait, |data| data["state"] == state).await
}
