//! The stream state machine: what `GET /v1/streams/{id}/status` reports, as a pure function of
//! recorded media events and the current time (every method takes `now`).
//!
//! Rules (from Daydream's runner, see `daydream-api.md`):
//! - no input yet: `LOADING`; `OFFLINE` once nothing arrived for [`NO_INPUT_STOP`] (60 s)
//!   since the ingest session started (or since creation when none did);
//! - input stopped for [`NO_INPUT_STOP`]: `OFFLINE`, and an open ingest session must be closed;
//! - input but no output since the pipeline (re)started: `LOADING`, `ERROR` after the load
//!   timeout ([`LOAD_TIMEOUT`] 120 s, [`LOAD_TIMEOUT_AFTER_UPDATE`] 30 s after a params update);
//! - output flowing: during the loading grace ([`LOADING_GRACE`] 10 s,
//!   [`LOADING_GRACE_AFTER_UPDATE`] 2 s after an update) `ONLINE`; after it
//!   `DEGRADED_INPUT` when no input for more than [`INPUT_STALL`] (2 s) or input fps under
//!   [`MIN_INPUT_FPS`] (15); `DEGRADED_INFERENCE` when output fps < min(10, 0.8 x input fps),
//!   an error in the last 15 s or a restart in the last 60 s; otherwise `ONLINE`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dreamgate_engine::status::{Activity, StreamState};
//!
//! let t0 = Instant::now();
//! let mut a = Activity::new(t0);
//! assert_eq!(a.evaluate(t0).state, StreamState::Loading);
//! a.ingest_started(t0);
//! for i in 0..30 * 12 {
//!     let t = t0 + Duration::from_millis(i * 33);
//!     a.record_input(t, 1000);
//!     a.record_output(t, 900);
//! }
//! assert_eq!(a.evaluate(t0 + Duration::from_secs(12)).state, StreamState::Online);
//! assert_eq!(a.evaluate(t0 + Duration::from_secs(15)).state, StreamState::DegradedInput);
//! let v = a.evaluate(t0 + Duration::from_secs(72));
//! assert_eq!(v.state, StreamState::Offline);
//! assert!(v.close_ingest);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Loading grace after the pipeline starts: no degraded verdicts yet.
pub const LOADING_GRACE: Duration = Duration::from_secs(10);
/// Loading grace after a params update.
pub const LOADING_GRACE_AFTER_UPDATE: Duration = Duration::from_secs(2);
/// No output this long after the pipeline starts: `ERROR`.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// No output this long after a params update: `ERROR`.
pub const LOAD_TIMEOUT_AFTER_UPDATE: Duration = Duration::from_secs(30);
/// No input for longer than this: `DEGRADED_INPUT`.
pub const INPUT_STALL: Duration = Duration::from_secs(2);
/// Input fps under this: `DEGRADED_INPUT`.
pub const MIN_INPUT_FPS: f64 = 15.0;
/// No input for this long: `OFFLINE`, ingest session closed.
pub const NO_INPUT_STOP: Duration = Duration::from_secs(60);
/// An error this recent: `DEGRADED_INFERENCE`.
pub const RECENT_ERROR: Duration = Duration::from_secs(15);
/// A restart this recent: `DEGRADED_INFERENCE`.
pub const RECENT_RESTART: Duration = Duration::from_secs(60);
/// Width of the sliding window fps are measured over.
pub const FPS_WINDOW: Duration = Duration::from_secs(2);

/// The `state` field of a stream status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamState {
    /// Waiting for media or for the first output.
    Loading,
    /// No ingest.
    Offline,
    /// Input and output flowing.
    Online,
    /// Input stalled or too slow.
    DegradedInput,
    /// Output too slow, or a recent error/restart.
    DegradedInference,
    /// The pipeline never produced output.
    Error,
}

impl StreamState {
    /// The wire name (`"ONLINE"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Loading => "LOADING",
            StreamState::Offline => "OFFLINE",
            StreamState::Online => "ONLINE",
            StreamState::DegradedInput => "DEGRADED_INPUT",
            StreamState::DegradedInference => "DEGRADED_INFERENCE",
            StreamState::Error => "ERROR",
        }
    }
}

/// Whether a status counts as "live": ONLINE or DEGRADED_* with inference fps above 0.
pub fn is_live(state: StreamState, inference_fps: f64) -> bool {
    matches!(state, StreamState::Online | StreamState::DegradedInput | StreamState::DegradedInference)
        && inference_fps > 0.0
}

/// `conn_quality`: "bad" above 50 ms jitter or 2 % packet loss, else "good".
pub fn conn_quality(jitter_ms: f64, packet_loss_pct: f64) -> &'static str {
    if jitter_ms > 50.0 || packet_loss_pct > 2.0 {
        "bad"
    } else {
        "good"
    }
}

/// Packet loss in percent of packets expected.
pub fn packet_loss_pct(received: u64, lost: u64) -> f64 {
    let total = received + lost;
    if total == 0 {
        0.0
    } else {
        lost as f64 * 100.0 / total as f64
    }
}

/// Events per second over the last [`FPS_WINDOW`].
#[derive(Debug, Clone, Default)]
pub struct FpsWindow {
    events: VecDeque<Instant>,
}

impl FpsWindow {
    const MAX_EVENTS: usize = 1024;

    /// Records one event (a frame) at `now`.
    pub fn record(&mut self, now: Instant) {
        self.trim(now);
        if self.events.len() == Self::MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(now);
    }

    /// Frames per second at `now`.
    pub fn fps(&self, now: Instant) -> f64 {
        let from = now.checked_sub(FPS_WINDOW);
        let n = self.events.iter().filter(|t| from.is_none_or(|f| **t > f) && **t <= now).count();
        n as f64 / FPS_WINDOW.as_secs_f64()
    }

    fn trim(&mut self, now: Instant) {
        if let Some(from) = now.checked_sub(FPS_WINDOW) {
            while self.events.front().is_some_and(|t| *t <= from) {
                self.events.pop_front();
            }
        }
    }
}

/// Transport figures reported by the media side (for `ingest_metrics.track_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TransportStats {
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP packets lost.
    pub packets_lost: u64,
    /// Interarrival jitter in ms.
    pub jitter_ms: f64,
    /// Round-trip time in ms.
    pub rtt_ms: f64,
}

/// The outcome of [`Activity::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// The state to report.
    pub state: StreamState,
    /// When the reported state last changed.
    pub since: Instant,
    /// The open ingest session must be closed (no input for [`NO_INPUT_STOP`]). Reported
    /// once: from then on the machine counts the ingest as closed.
    pub close_ingest: bool,
    /// Input fps.
    pub input_fps: f64,
    /// Output (inference) fps.
    pub output_fps: f64,
}

/// Everything recorded about one stream's media, plus its last reported state.
#[derive(Debug, Clone)]
pub struct Activity {
    created: Instant,
    ingest_open: bool,
    ingest_started: Option<Instant>,
    first_input: Option<Instant>,
    last_input: Option<Instant>,
    last_output: Option<Instant>,
    input: FpsWindow,
    output: FpsWindow,
    /// Total bytes received from the ingest peers.
    pub bytes_received: u64,
    /// Total bytes of output produced.
    pub bytes_sent: u64,
    last_params_update: Option<Instant>,
    /// The params hash the transform runs with, and since when (`None`: since creation).
    applied: Option<(String, Option<Instant>)>,
    /// Last error, with when it happened.
    pub last_error: Option<(Instant, String)>,
    last_restart: Option<Instant>,
    /// Logs of the last restart.
    pub restart_logs: Vec<String>,
    /// Number of restarts.
    pub restart_count: u32,
    /// Last transport figures.
    pub transport: TransportStats,
    reported: Option<(StreamState, Instant)>,
}

impl Activity {
    /// A stream created at `created`, with no media yet.
    pub fn new(created: Instant) -> Self {
        Activity {
            created,
            ingest_open: false,
            ingest_started: None,
            first_input: None,
            last_input: None,
            last_output: None,
            input: FpsWindow::default(),
            output: FpsWindow::default(),
            bytes_received: 0,
            bytes_sent: 0,
            last_params_update: None,
            applied: None,
            last_error: None,
            last_restart: None,
            restart_logs: Vec::new(),
            restart_count: 0,
            transport: TransportStats::default(),
            reported: None,
        }
    }

    /// A WHIP session was accepted: the pipeline (re)starts and waits for input.
    pub fn ingest_started(&mut self, now: Instant) {
        self.ingest_open = true;
        self.ingest_started = Some(now);
        self.first_input = None;
    }

    /// The WHIP session ended.
    pub fn ingest_closed(&mut self, _now: Instant) {
        self.ingest_open = false;
    }

    /// Whether a WHIP session is open.
    pub fn ingest_open(&self) -> bool {
        self.ingest_open
    }

    /// One input frame was decoded (`bytes` of encoded media).
    pub fn record_input(&mut self, now: Instant, bytes: usize) {
        self.first_input.get_or_insert(now);
        self.last_input = Some(now);
        self.input.record(now);
        self.bytes_received = self.bytes_received.saturating_add(bytes as u64);
    }

    /// One output frame was produced (`bytes` of encoded media).
    pub fn record_output(&mut self, now: Instant, bytes: usize) {
        self.last_output = Some(now);
        self.output.record(now);
        self.bytes_sent = self.bytes_sent.saturating_add(bytes as u64);
    }

    /// The params were updated (PATCH).
    pub fn record_params_update(&mut self, now: Instant) {
        self.last_params_update = Some(now);
    }

    /// The transform now runs with the params hashed `hash` (since `now`; `None`: since the
    /// stream's creation). The same hash again changes nothing (its time stays).
    pub fn params_applied(&mut self, now: Option<Instant>, hash: String) {
        if self.applied.as_ref().is_none_or(|(h, _)| *h != hash) {
            self.applied = Some((hash, now));
        }
    }

    /// The params hash the transform runs with, and since when (`None`: since creation).
    pub fn applied_params(&self) -> Option<(&str, Option<Instant>)> {
        self.applied.as_ref().map(|(h, at)| (h.as_str(), *at))
    }

    /// The pipeline reported an error.
    pub fn record_error(&mut self, now: Instant, message: impl Into<String>) {
        self.last_error = Some((now, message.into()));
    }

    /// The pipeline restarted.
    pub fn record_restart(&mut self, now: Instant, logs: Vec<String>) {
        self.last_restart = Some(now);
        self.restart_logs = logs;
        self.restart_count = self.restart_count.saturating_add(1);
    }

    /// Replaces the transport figures.
    pub fn record_transport(&mut self, stats: TransportStats) {
        self.transport = stats;
    }

    /// When the stream was created.
    pub fn created(&self) -> Instant {
        self.created
    }
    /// Last input frame.
    pub fn last_input(&self) -> Option<Instant> {
        self.last_input
    }
    /// Last output frame.
    pub fn last_output(&self) -> Option<Instant> {
        self.last_output
    }
    /// Last params update.
    pub fn last_params_update(&self) -> Option<Instant> {
        self.last_params_update
    }
    /// Last restart.
    pub fn last_restart(&self) -> Option<Instant> {
        self.last_restart
    }

    /// The state at `now` (remembering when it last changed).
    pub fn evaluate(&mut self, now: Instant) -> Evaluation {
        let input_fps = self.input.fps(now);
        let output_fps = self.output.fps(now);
        let (state, close_ingest) = self.decide(now, input_fps, output_fps);
        if close_ingest {
            self.ingest_open = false;
        }
        let since = match self.reported {
            Some((prev, since)) if prev == state => since,
            _ => {
                self.reported = Some((state, now));
                now
            }
        };
        Evaluation { state, since, close_ingest, input_fps, output_fps }
    }

    fn decide(&self, now: Instant, input_fps: f64, output_fps: f64) -> (StreamState, bool) {
        let elapsed = |t: Instant| now.saturating_duration_since(t);
        let within = |t: Option<Instant>, d: Duration| t.is_some_and(|t| elapsed(t) < d);

        // no input: waiting (LOADING) until NO_INPUT_STOP, then OFFLINE
        let waiting_since = match (self.first_input, self.last_input) {
            (Some(_), Some(last)) => last,
            _ => self.ingest_started.unwrap_or(self.created),
        };
        if elapsed(waiting_since) >= NO_INPUT_STOP {
            return (StreamState::Offline, self.ingest_open);
        }
        let (Some(first_input), Some(last_input)) = (self.first_input, self.last_input) else {
            return (StreamState::Loading, false);
        };

        // the pipeline (re)started at the first input, or at a later params update
        let (started, grace, timeout) = match self.last_params_update {
            Some(u) if u > first_input => (u, LOADING_GRACE_AFTER_UPDATE, LOAD_TIMEOUT_AFTER_UPDATE),
            _ => (first_input, LOADING_GRACE, LOAD_TIMEOUT),
        };
        let output_since_start = self.last_output.is_some_and(|o| o >= started);
        if !output_since_start {
            // after an update, the previous output keeps the stream up during the grace
            let had_output = self.last_output.is_some_and(|o| o >= first_input);
            if had_output && elapsed(started) < grace {
                return (StreamState::Online, false);
            }
            let state = if elapsed(started) >= timeout { StreamState::Error } else { StreamState::Loading };
            return (state, false);
        }
        if elapsed(started) < grace {
            return (StreamState::Online, false);
        }
        if elapsed(last_input) > INPUT_STALL || input_fps < MIN_INPUT_FPS {
            return (StreamState::DegradedInput, false);
        }
        if output_fps < (10.0f64).min(0.8 * input_fps)
            || within(self.last_error.as_ref().map(|e| e.0), RECENT_ERROR)
            || within(self.last_restart, RECENT_RESTART)
        {
            return (StreamState::DegradedInference, false);
        }
        (StreamState::Online, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamState::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Feeds frames every `every_ms` from `from_ms` (inclusive) to `to_ms` (exclusive).
    fn feed(a: &mut Activity, t0: Instant, from_ms: u64, to_ms: u64, every_ms: u64, output: bool) {
        let mut t = from_ms;
        while t < to_ms {
            a.record_input(ms(t0, t), 1200);
            if output {
                a.record_output(ms(t0, t), 1000);
            }
            t += every_ms;
        }
    }

    #[test]
    fn loading_until_media_then_offline_after_a_minute_without_input() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        assert_eq!(a.evaluate(t0).state, Loading);
        assert_eq!(a.evaluate(ms(t0, 59_999)).state, Loading);
        let v = a.evaluate(ms(t0, 60_000));
        assert_eq!((v.state, v.close_ingest), (Offline, false), "no session to close");
        // a WHIP session restarts the wait
        a.ingest_started(ms(t0, 70_000));
        assert_eq!(a.evaluate(ms(t0, 70_001)).state, Loading);
        let v = a.evaluate(ms(t0, 130_000));
        assert_eq!((v.state, v.close_ingest), (Offline, true));
    }

    #[test]
    fn online_once_input_decoded_and_output_produced() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        feed(&mut a, t0, 0, 1000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 1000)).state, Loading, "input but no output yet");
        feed(&mut a, t0, 1000, 12_000, 33, true);
        let v = a.evaluate(ms(t0, 12_000));
        assert_eq!(v.state, Online);
        assert!((v.input_fps - 30.0).abs() < 1.5, "{}", v.input_fps);
        assert!((v.output_fps - 30.0).abs() < 1.5, "{}", v.output_fps);
        assert!(is_live(v.state, v.output_fps));
    }

    #[test]
    fn grace_hides_low_fps_then_degraded_input() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        // 10 fps: too slow, but within the 10 s loading grace
        feed(&mut a, t0, 0, 20_000, 100, true);
        assert_eq!(a.evaluate(ms(t0, 5_000)).state, Online);
        assert_eq!(a.evaluate(ms(t0, 9_999)).state, Online);
        assert_eq!(a.evaluate(ms(t0, 10_000)).state, DegradedInput);
    }

    #[test]
    fn input_stall_over_two_seconds_is_degraded_input() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        feed(&mut a, t0, 0, 15_000, 33, true);
        let last = 15_000 - 15_000 % 33;
        assert_eq!(a.evaluate(ms(t0, 15_000)).state, Online);
        assert_eq!(a.evaluate(ms(t0, last + 2_001)).state, DegradedInput);
        let v = a.evaluate(ms(t0, last + 59_999));
        assert_eq!((v.state, v.close_ingest), (DegradedInput, false));
        let v = a.evaluate(ms(t0, last + 60_000));
        assert_eq!((v.state, v.close_ingest), (Offline, true));
        assert!(!a.ingest_open(), "the machine closed it");
        let v = a.evaluate(ms(t0, last + 61_000));
        assert_eq!((v.state, v.close_ingest), (Offline, false), "closed only once");
    }

    #[test]
    fn slow_output_error_and_restart_are_degraded_inference() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        // 30 fps in, output every 4th frame (7.5 fps < min(10, 24))
        let mut t = 0;
        while t < 15_000 {
            a.record_input(ms(t0, t), 100);
            if (t / 33) % 4 == 0 {
                a.record_output(ms(t0, t), 100);
            }
            t += 33;
        }
        assert_eq!(a.evaluate(ms(t0, 15_000)).state, DegradedInference);

        let mut b = Activity::new(t0);
        b.ingest_started(t0);
        feed(&mut b, t0, 0, 12_000, 25, true);
        assert_eq!(b.evaluate(ms(t0, 12_000)).state, Online);
        b.record_error(ms(t0, 12_000), "boom");
        feed(&mut b, t0, 12_000, 26_900, 25, true);
        assert_eq!(b.evaluate(ms(t0, 26_900)).state, DegradedInference);
        feed(&mut b, t0, 26_900, 27_025, 25, true);
        assert_eq!(b.evaluate(ms(t0, 27_025)).state, Online);
        b.record_restart(ms(t0, 28_000), vec!["restarted".into()]);
        feed(&mut b, t0, 27_025, 39_000, 25, true);
        assert_eq!(b.evaluate(ms(t0, 39_000)).state, DegradedInference);
        assert_eq!(b.restart_count, 1);
    }

    #[test]
    fn load_timeout_is_error() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        feed(&mut a, t0, 0, 130_000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 119_000)).state, Loading);
        assert_eq!(a.evaluate(ms(t0, 120_000)).state, Error);
    }

    #[test]
    fn params_update_has_short_grace_and_timeout() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        a.ingest_started(t0);
        feed(&mut a, t0, 0, 20_000, 33, true);
        a.record_params_update(ms(t0, 20_000));
        // input continues, output stops (reloading)
        feed(&mut a, t0, 20_000, 21_000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 21_000)).state, Online, "grace after update");
        feed(&mut a, t0, 21_000, 23_000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 23_000)).state, Loading);
        feed(&mut a, t0, 23_000, 49_000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 49_000)).state, Loading);
        feed(&mut a, t0, 49_000, 50_000, 33, false);
        assert_eq!(a.evaluate(ms(t0, 50_000)).state, Error, "30 s after the update");

        // output resumes quickly after an update: the 2 s grace, then normal rules
        let mut b = Activity::new(t0);
        b.ingest_started(t0);
        feed(&mut b, t0, 0, 20_000, 33, true);
        b.record_params_update(ms(t0, 20_000));
        feed(&mut b, t0, 20_000, 25_000, 33, true);
        assert_eq!(b.evaluate(ms(t0, 25_000)).state, Online);
    }

    #[test]
    fn state_change_time_is_remembered() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        assert_eq!(a.evaluate(ms(t0, 10)).since, ms(t0, 10));
        assert_eq!(a.evaluate(ms(t0, 500)).since, ms(t0, 10));
        assert_eq!(a.evaluate(ms(t0, 60_000)).since, ms(t0, 60_000));
    }

    #[test]
    fn fps_window_slides() {
        let t0 = Instant::now();
        let mut w = FpsWindow::default();
        for i in 0..60 {
            w.record(ms(t0, i * 50));
        }
        assert_eq!(w.fps(ms(t0, 2_950)), 20.0);
        assert_eq!(w.fps(ms(t0, 3_950)), 10.0);
        assert_eq!(w.fps(ms(t0, 10_000)), 0.0);
    }

    #[test]
    fn conn_quality_thresholds() {
        assert_eq!(conn_quality(10.0, 0.5), "good");
        assert_eq!(conn_quality(50.1, 0.0), "bad");
        assert_eq!(conn_quality(0.0, 2.1), "bad");
        assert_eq!(packet_loss_pct(98, 2), 2.0);
        assert_eq!(packet_loss_pct(0, 0), 0.0);
    }
}
