//! Fault injection: make the engine misbehave the way Daydream sometimes does.
//!
//! A [`Faults`] spec is a comma-separated list of `knob=value` pairs, all off by default:
//!
//! | knob | effect |
//! |---|---|
//! | `warmup=5s` | for that long after a stream is created, its status, PATCH and WHIP calls answer "not ready" errors (body code `STREAMS/NOT_READY`): 404 during the first third, 409 during the second, 503 during the last |
//! | `patch=405` | `PATCH /v1/streams/{id}` always answers that status (400-599) |
//! | `trickle=405` | WHIP trickle `PATCH` always answers that status (400-599) |
//! | `burst=3` | the next 3 authenticated `/v1/streams` calls answer 503 |
//! | `slow=2s` | every answer of the engine is delayed by that long |
//! | `stall=3s` | once a stream is live ([`STALL_AFTER`] after its first output frame), its output stops for that long, then resumes (once per stream) |
//! | `load=5s` | each ingest session's pipeline stays LOADING for that long after its first input frame; meanwhile the WHEP output shows a rendered warm-up frame (the input dimmed, with a progress bar) |
//! | `whep_hold=8s` | a WHEP POST before the stream's first output frame is held until that frame (at most that long, then 404) instead of answering 404 at once, as Livepeer's native WHEP may |
//! | `viewers=2` | WHEP viewers per stream (429 beyond); without the knob [`DEFAULT_VIEWERS`], Livepeer's default of 5 |
//! | `status_shape=public` | the status is answered in Daydream's public reference shape: `inference_status.input_fps` / `output_fps`, no `state`, no `input_status`, no `inference_status.fps` (`runner`, the default, is the runner's shape) |
//! | `drop_field=output_stream_url` | that top-level field is left out of every stream body (create, get, update, list): a deviation for conformance tests |
//! | `ice_disconnect=1` | the engine ends a WHIP session as soon as its ICE reports "disconnected", as Livepeer does; and the first N sessions of each stream lose their return path [`ICE_CUT_AFTER`] after their first frame (the engine stops sending anything to the publisher, whose ICE then reports "disconnected"; the engine ends the session [`ICE_CUT_END`] later), so a client must POST a new offer |
//!
//! Durations take `ms`, `s` or `m` (a bare number is seconds).
//!
//! ```
//! use dreamgate_engine::Faults;
//!
//! let f: Faults = "warmup=5s,patch=405,trickle=405,burst=3,slow=250ms".parse().unwrap();
//! assert_eq!(f.patch, Some(405));
//! assert_eq!(f.to_string(), "warmup=5s,patch=405,trickle=405,burst=3,slow=250ms");
//! assert!("warmup=soon".parse::<Faults>().is_err());
//! ```
//!
//! The decisions are pure ([`FaultState::on_call`] takes the stream's age and updates a counter),
//! so they are tested without sleeping.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The fault knobs. `Faults::default()` injects nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// "Not ready" window after each stream's creation.
    pub warmup: Option<Duration>,
    /// Status answered by every `PATCH /v1/streams/{id}`.
    pub patch: Option<u16>,
    /// Status answered by every WHIP trickle `PATCH`.
    pub trickle: Option<u16>,
    /// Number of upcoming API calls that answer 503.
    pub burst: u32,
    /// Delay added before every answer.
    pub slow: Option<Duration>,
    /// Output stall once live (see [`MediaFaults`]).
    pub stall: Option<Duration>,
    /// Pipeline load time, with a warm-up frame as output (see [`MediaFaults`]).
    pub load: Option<Duration>,
    // Livepeer behaviours (issue 9): whep_hold, viewers, status_shape, drop_field, ice_disconnect.
    /// How long a WHEP POST before the first output frame is held (instead of a 404 at once).
    pub whep_hold: Option<Duration>,
    /// WHEP viewers per stream (default [`DEFAULT_VIEWERS`]).
    pub viewers: Option<u32>,
    /// The shape of the status answer.
    pub status_shape: StatusShape,
    /// A top-level field left out of stream bodies.
    pub drop_field: Option<String>,
    /// WHIP sessions per stream whose network path is cut; any value above 0 also ends a
    /// session as soon as its ICE reports "disconnected".
    pub ice_disconnect: u32,
}

/// Livepeer's default WHEP viewer cap per stream (one more gets 429).
pub const DEFAULT_VIEWERS: usize = 5;
/// With `ice_disconnect`, how long after its first frame a session's return path is cut.
pub const ICE_CUT_AFTER: Duration = Duration::from_secs(3);
/// With `ice_disconnect`, how long after the cut the engine ends the session (the publisher's
/// ICE reported "disconnected" well before; a client that publishes again replaces it sooner).
pub const ICE_CUT_END: Duration = Duration::from_secs(10);
/// How often a held WHEP POST looks for the first output frame.
pub const WHEP_HOLD_POLL: Duration = Duration::from_millis(100);

/// The two documented shapes of the status answer's `data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusShape {
    /// The runner's: `state`, `input_status.fps`, `inference_status.fps`.
    #[default]
    Runner,
    /// Daydream's public reference: `inference_status.input_fps` / `output_fps` only.
    Public,
}

/// What the media side does with one WHIP session's ICE (from `ice_disconnect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcePolicy {
    /// End the session as soon as its ICE reports "disconnected" (Livepeer).
    pub end_on_disconnect: bool,
    /// Cut the session's network path this long after its first frame (silently).
    pub cut_after_first_frame: Option<Duration>,
}

/// A fault spec that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec {item:?}: {reason} (expected e.g. \"warmup=5s,patch=405,trickle=405,burst=3,slow=2s\")")]
pub struct FaultsParseError {
    /// The offending `knob=value` item.
    pub item: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Faults {
    /// Whether no knob is set.
    pub fn is_off(&self) -> bool {
        *self == Faults::default()
    }
}

impl FromStr for Faults {
    type Err = FaultsParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |reason: &str| FaultsParseError { item: item.to_owned(), reason: reason.to_owned() };
            let (knob, value) = item.split_once('=').ok_or_else(|| err("missing '='"))?;
            let value = value.trim();
            match knob.trim().to_ascii_lowercase().as_str() {
                "warmup" => faults.warmup = Some(parse_duration(value).map_err(|r| err(&r))?),
                "slow" => faults.slow = Some(parse_duration(value).map_err(|r| err(&r))?),
                "patch" => faults.patch = Some(parse_status(value).map_err(|r| err(&r))?),
                "trickle" => faults.trickle = Some(parse_status(value).map_err(|r| err(&r))?),
                "burst" => faults.burst = value.parse().map_err(|_| err("burst takes a whole number of calls"))?,
                "stall" => faults.stall = Some(parse_duration(value).map_err(|r| err(&r))?),
                "load" => faults.load = Some(parse_duration(value).map_err(|r| err(&r))?),
                "whep_hold" => faults.whep_hold = Some(parse_duration(value).map_err(|r| err(&r))?),
                "viewers" => {
                    faults.viewers = Some(value.parse().ok().filter(|n| *n > 0).ok_or_else(|| err("viewers takes a whole number above 0"))?)
                }
                "status_shape" => {
                    faults.status_shape = match value {
                        "public" => StatusShape::Public,
                        "runner" => StatusShape::Runner,
                        _ => return Err(err("status_shape is public or runner")),
                    }
                }
                "drop_field" => {
                    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    faults.drop_field =
                        Some(Some(value.to_owned()).filter(|_| ok).ok_or_else(|| err("drop_field takes a field name"))?)
                }
                "ice_disconnect" => {
                    faults.ice_disconnect =
                        value.parse().map_err(|_| err("ice_disconnect takes a whole number of sessions"))?
                }
                _ => return Err(err(
                    "unknown knob (known: warmup, patch, trickle, burst, slow, stall, load, whep_hold, viewers, status_shape, drop_field, ice_disconnect)",
                )),
            }
        }
        Ok(faults)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.warmup {
            parts.push(format!("warmup={}", fmt_duration(d)));
        }
        if let Some(s) = self.patch {
            parts.push(format!("patch={s}"));
        }
        if let Some(s) = self.trickle {
            parts.push(format!("trickle={s}"));
        }
        if self.burst > 0 {
            parts.push(format!("burst={}", self.burst));
        }
        if let Some(d) = self.slow {
            parts.push(format!("slow={}", fmt_duration(d)));
        }
        if let Some(d) = self.stall {
            parts.push(format!("stall={}", fmt_duration(d)));
        }
        if let Some(d) = self.load {
            parts.push(format!("load={}", fmt_duration(d)));
        }
        if let Some(d) = self.whep_hold {
            parts.push(format!("whep_hold={}", fmt_duration(d)));
        }
        if let Some(n) = self.viewers {
            parts.push(format!("viewers={n}"));
        }
        if self.status_shape == StatusShape::Public {
            parts.push("status_shape=public".into());
        }
        if let Some(f) = &self.drop_field {
            parts.push(format!("drop_field={f}"));
        }
        if self.ice_disconnect > 0 {
            parts.push(format!("ice_disconnect={}", self.ice_disconnect));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    let (num, unit_ms) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (v, 1000.0)
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{v:?} is not a duration (use e.g. 500ms, 5s, 1m)"))?;
    if !n.is_finite() || n < 0.0 || n * unit_ms > 86_400_000.0 {
        return Err(format!("{v:?} is out of range (0 to 24 h)"));
    }
    Ok(Duration::from_millis((n * unit_ms).round() as u64))
}

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn parse_status(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(s) if (400..=599).contains(&s) => Ok(s),
        _ => Err(format!("{v:?} is not an HTTP error status (400-599)")),
    }
}

/// The kind of call the engine is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /v1/streams`
    Create,
    /// `GET /v1/streams/{id}`
    Get,
    /// `GET /v1/streams` (the caller's streams)
    List,
    /// `GET /v1/streams/{id}/status`
    Status,
    /// `PATCH /v1/streams/{id}`
    Update,
    /// `DELETE /v1/streams?id=`
    Delete,
    /// WHIP `POST` (offer)
    WhipOffer,
    /// WHIP `PATCH` (trickle ICE)
    WhipTrickle,
    /// WHIP resource `DELETE`
    WhipDelete,
    /// WHEP `POST` (viewer offer)
    WhepOffer,
    /// WHEP resource `DELETE`
    WhepDelete,
}

impl Call {
    /// Whether this is a `/v1/streams` API call (the ones `burst` counts).
    pub fn is_api(self) -> bool {
        matches!(self, Call::Create | Call::Get | Call::List | Call::Status | Call::Update | Call::Delete)
    }

    /// Whether this call answers "not ready" during a stream's warm-up.
    pub fn warms_up(self) -> bool {
        matches!(self, Call::Status | Call::Update | Call::WhipOffer | Call::WhipTrickle)
    }
}

/// A failure the engine must answer instead of doing the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// `burst`: 503 "service unavailable".
    Burst,
    /// `warmup`: a "not ready" answer with this status.
    NotReady(u16),
    /// `patch` / `trickle`: this status.
    Status(u16),
}

impl Injected {
    /// The HTTP status to answer.
    pub fn status(self) -> u16 {
        match self {
            Injected::Burst => 503,
            Injected::NotReady(s) | Injected::Status(s) => s,
        }
    }
}

/// The fault knobs plus the `burst` counter: the pure decision maker.
#[derive(Debug, Clone)]
pub struct FaultState {
    faults: Faults,
    burst_left: u32,
}

impl FaultState {
    /// Starts with the whole `burst` budget.
    pub fn new(faults: Faults) -> Self {
        FaultState { burst_left: faults.burst, faults }
    }

    /// The configured knobs.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Delay to add before answering any call.
    pub fn delay(&self) -> Option<Duration> {
        self.faults.slow.filter(|d| !d.is_zero())
    }

    /// The WHEP viewer cap per stream.
    pub fn max_viewers(&self) -> usize {
        self.faults.viewers.map_or(DEFAULT_VIEWERS, |n| n as usize)
    }

    /// A WHEP POST that found no output yet, first tried at `started`: how long to wait before
    /// looking again (`None`: answer 404 now).
    pub fn whep_hold_wait(&self, started: Instant, now: Instant) -> Option<Duration> {
        let end = started + self.faults.whep_hold?;
        (now < end).then(|| WHEP_HOLD_POLL.min(end - now))
    }

    /// The ICE policy of a stream's WHIP session number `index` (0 for its first).
    pub fn ice_policy(&self, index: u32) -> IcePolicy {
        let n = self.faults.ice_disconnect;
        IcePolicy { end_on_disconnect: n > 0, cut_after_first_frame: (index < n).then_some(ICE_CUT_AFTER) }
    }

    /// Decides whether `call` fails. `stream_age` is the time since the target stream was
    /// created (`None` when the call has no known stream). Consumes one `burst` call when it
    /// fires.
    pub fn on_call(&mut self, call: Call, stream_age: Option<Duration>) -> Option<Injected> {
        if call.is_api() && self.burst_left > 0 {
            self.burst_left -= 1;
            return Some(Injected::Burst);
        }
        if call == Call::Update {
            if let Some(s) = self.faults.patch {
                return Some(Injected::Status(s));
            }
        }
        if call == Call::WhipTrickle {
            if let Some(s) = self.faults.trickle {
                return Some(Injected::Status(s));
            }
        }
        if let (true, Some(window), Some(age)) = (call.warms_up(), self.faults.warmup, stream_age) {
            if age < window {
                let third = window.as_secs_f64() / 3.0;
                let status = match age.as_secs_f64() {
                    a if a < third => 404,
                    a if a < 2.0 * third => 409,
                    _ => 503,
                };
                return Some(Injected::NotReady(status));
            }
        }
        None
    }
}

/// How long after a stream's first output frame the `stall` knob stops its output.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// The knobs the media side applies per frame (`stall`, `load`), handed to it with each
/// ingest offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaFaults {
    /// Output stall once live.
    pub stall: Option<Duration>,
    /// Pipeline load time (warm-up frames as output).
    pub load: Option<Duration>,
}

impl From<&Faults> for MediaFaults {
    fn from(f: &Faults) -> Self {
        MediaFaults { stall: f.stall.filter(|d| !d.is_zero()), load: f.load.filter(|d| !d.is_zero()) }
    }
}

/// What the transform does with one decoded input frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameFault {
    /// Transform it and send it out.
    Normal,
    /// Still loading: send the warm-up frame instead, at this progress (0 to 1); no output
    /// is recorded (the status stays LOADING).
    Warmup(f64),
    /// Stalled: nothing goes out.
    Stall,
}

impl MediaFaults {
    /// The decision for a frame: `since_input` is the time since the session's first input
    /// frame, `since_output` the time since the stream's first output frame (`None`: none
    /// yet). Loading comes first; the stall starts [`STALL_AFTER`] after the first output
    /// (plus the load time) and lasts `stall`.
    pub fn frame(&self, since_input: Duration, since_output: Option<Duration>) -> FrameFault {
        let load = self.load.unwrap_or_default();
        if since_input < load {
            return FrameFault::Warmup(since_input.as_secs_f64() / load.as_secs_f64());
        }
        if let (Some(stall), Some(out)) = (self.stall, since_output) {
            let start = load + STALL_AFTER;
            if out >= start && out < start + stall {
                return FrameFault::Stall;
            }
        }
        FrameFault::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(s))
    }

    #[test]
    fn parses_every_knob_and_round_trips() {
        let f: Faults = " warmup=1.5s , patch=405,trickle=409,burst=3,slow=2s,".parse().unwrap();
        assert_eq!(
            f,
            Faults {
                warmup: Some(Duration::from_millis(1500)),
                patch: Some(405),
                trickle: Some(409),
                burst: 3,
                slow: Some(Duration::from_secs(2)),
                ..Faults::default()
            }
        );
        assert_eq!(f.to_string(), "warmup=1500ms,patch=405,trickle=409,burst=3,slow=2s");
        assert_eq!(f.to_string().parse::<Faults>().unwrap(), f);
        assert_eq!("slow=1m".parse::<Faults>().unwrap().slow, Some(Duration::from_secs(60)));
        assert_eq!("warmup=7".parse::<Faults>().unwrap().warmup, Some(Duration::from_secs(7)));
        assert!("".parse::<Faults>().unwrap().is_off());
        assert_eq!(Faults::default().to_string(), "none");
    }

    #[test]
    fn rejects_bad_specs_with_the_item() {
        for bad in [
            "warmup",
            "warmup=soon",
            "patch=200",
            "patch=abc",
            "burst=-1",
            "slow=-1s",
            "jitter=1",
            "trickle=600",
            "viewers=0",
            "viewers=x",
            "status_shape=odd",
            "drop_field=",
            "drop_field=a.b",
            "ice_disconnect=yes",
            "whep_hold=later",
        ] {
            let err = bad.parse::<Faults>().unwrap_err();
            assert_eq!(err.item, bad, "{bad}");
            assert!(err.to_string().contains("invalid fault spec"), "{err}");
        }
    }

    #[test]
    fn nothing_fires_by_default() {
        let mut s = FaultState::new(Faults::default());
        for call in [Call::Create, Call::Status, Call::Update, Call::WhipOffer, Call::WhipTrickle] {
            assert_eq!(s.on_call(call, secs(0.0)), None);
        }
        assert_eq!(s.delay(), None);
    }

    #[test]
    fn burst_counts_api_calls_only_then_stops() {
        let mut s = FaultState::new("burst=2".parse().unwrap());
        assert_eq!(s.on_call(Call::WhipOffer, secs(0.0)), None, "WHIP is not an API call");
        assert_eq!(s.on_call(Call::Create, None), Some(Injected::Burst));
        assert_eq!(s.on_call(Call::Get, secs(1.0)), Some(Injected::Burst));
        assert_eq!(s.on_call(Call::Get, secs(1.0)), None);
        assert_eq!(Injected::Burst.status(), 503);
    }

    #[test]
    fn warmup_walks_404_409_503_then_clears() {
        let mut s = FaultState::new("warmup=3s".parse().unwrap());
        assert_eq!(s.on_call(Call::Status, secs(0.0)), Some(Injected::NotReady(404)));
        assert_eq!(s.on_call(Call::Update, secs(1.5)), Some(Injected::NotReady(409)));
        assert_eq!(s.on_call(Call::WhipOffer, secs(2.9)), Some(Injected::NotReady(503)));
        assert_eq!(s.on_call(Call::WhipTrickle, secs(1.9)), Some(Injected::NotReady(409)));
        assert_eq!(s.on_call(Call::Status, secs(3.0)), None);
        // not affected: get, delete, create, WHEP, unknown streams
        assert_eq!(s.on_call(Call::Get, secs(0.0)), None);
        assert_eq!(s.on_call(Call::Delete, secs(0.0)), None);
        assert_eq!(s.on_call(Call::WhepOffer, secs(0.0)), None);
        assert_eq!(s.on_call(Call::Status, None), None);
    }

    #[test]
    fn patch_and_trickle_statuses() {
        let mut s = FaultState::new("patch=405,trickle=409".parse().unwrap());
        assert_eq!(s.on_call(Call::Update, secs(100.0)), Some(Injected::Status(405)));
        assert_eq!(s.on_call(Call::WhipTrickle, secs(100.0)), Some(Injected::Status(409)));
        assert_eq!(s.on_call(Call::Status, secs(100.0)), None);
        assert_eq!(s.on_call(Call::WhipOffer, secs(100.0)), None);
    }

    #[test]
    fn burst_takes_precedence_and_slow_is_a_delay() {
        let mut s = FaultState::new("burst=1,patch=405,slow=250ms".parse().unwrap());
        assert_eq!(s.on_call(Call::Update, secs(0.0)), Some(Injected::Burst));
        assert_eq!(s.on_call(Call::Update, secs(0.0)), Some(Injected::Status(405)));
        assert_eq!(s.delay(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn stall_and_load_parse_and_round_trip() {
        let f: Faults = "stall=3s,load=1500ms".parse().unwrap();
        assert_eq!((f.stall, f.load), (Some(Duration::from_secs(3)), Some(Duration::from_millis(1500))));
        assert_eq!(f.to_string(), "stall=3s,load=1500ms");
        assert!("stall=soon".parse::<Faults>().is_err());
    }

    #[test]
    fn load_shows_the_warmup_frame_with_its_progress_then_the_output() {
        let m = MediaFaults::from(&"load=4s".parse::<Faults>().unwrap());
        assert_eq!(m.frame(Duration::ZERO, None), FrameFault::Warmup(0.0));
        assert_eq!(m.frame(Duration::from_secs(1), None), FrameFault::Warmup(0.25));
        assert_eq!(m.frame(Duration::from_secs(4), None), FrameFault::Normal);
        assert_eq!(MediaFaults::default().frame(Duration::ZERO, None), FrameFault::Normal);
    }

    #[test]
    fn stall_stops_the_output_once_for_its_length_after_going_live() {
        let m = MediaFaults::from(&"stall=3s".parse::<Faults>().unwrap());
        let at = |input: u64, out: Option<u64>| m.frame(Duration::from_secs(input), out.map(Duration::from_secs));
        assert_eq!(at(1, None), FrameFault::Normal, "no output yet");
        assert_eq!(at(10, Some(4)), FrameFault::Normal, "live, before the stall");
        assert_eq!(at(10, Some(5)), FrameFault::Stall);
        assert_eq!(at(10, Some(7)), FrameFault::Stall);
        assert_eq!(at(10, Some(8)), FrameFault::Normal, "resumed");
        assert_eq!(at(100, Some(100)), FrameFault::Normal, "once");
        // with a load time, the stall comes after it
        let both = MediaFaults { load: Some(Duration::from_secs(2)), ..m };
        assert_eq!(both.frame(Duration::from_secs(8), Some(Duration::from_secs(6))), FrameFault::Normal);
        assert_eq!(both.frame(Duration::from_secs(9), Some(Duration::from_secs(7))), FrameFault::Stall);
        assert_eq!(MediaFaults::from(&"stall=0s".parse::<Faults>().unwrap()), MediaFaults::default());
    }

    #[test]
    fn livepeer_knobs_parse_and_round_trip() {
        let spec = "whep_hold=8s,viewers=2,status_shape=public,drop_field=output_stream_url,ice_disconnect=1";
        let f: Faults = spec.parse().unwrap();
        assert_eq!(f.whep_hold, Some(Duration::from_secs(8)));
        assert_eq!(f.viewers, Some(2));
        assert_eq!(f.status_shape, StatusShape::Public);
        assert_eq!(f.drop_field.as_deref(), Some("output_stream_url"));
        assert_eq!(f.ice_disconnect, 1);
        assert_eq!(f.to_string(), spec);
        assert_eq!("status_shape=runner".parse::<Faults>().unwrap(), Faults::default());
    }

    #[test]
    fn viewer_cap_is_livepeers_five_unless_set() {
        assert_eq!(FaultState::new(Faults::default()).max_viewers(), 5);
        assert_eq!(FaultState::new("viewers=2".parse().unwrap()).max_viewers(), 2);
    }

    #[test]
    fn whep_hold_waits_in_short_steps_until_its_end() {
        let t0 = Instant::now();
        assert_eq!(FaultState::new(Faults::default()).whep_hold_wait(t0, t0), None, "no knob: 404 at once");
        let s = FaultState::new("whep_hold=1s".parse().unwrap());
        assert_eq!(s.whep_hold_wait(t0, t0), Some(WHEP_HOLD_POLL));
        assert_eq!(s.whep_hold_wait(t0, t0 + Duration::from_millis(950)), Some(Duration::from_millis(50)));
        assert_eq!(s.whep_hold_wait(t0, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn ice_disconnect_cuts_the_first_n_sessions_and_ends_any_on_disconnect() {
        assert_eq!(FaultState::new(Faults::default()).ice_policy(0), IcePolicy::default());
        let s = FaultState::new("ice_disconnect=2".parse().unwrap());
        let cut = IcePolicy { end_on_disconnect: true, cut_after_first_frame: Some(ICE_CUT_AFTER) };
        assert_eq!(s.ice_policy(0), cut);
        assert_eq!(s.ice_policy(1), cut);
        assert_eq!(s.ice_policy(2), IcePolicy { end_on_disconnect: true, cut_after_first_frame: None });
    }
}
