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
use std::time::Duration;

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
                _ => return Err(err("unknown knob (known: warmup, patch, trickle, burst, slow)")),
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
        for bad in
            ["warmup", "warmup=soon", "patch=200", "patch=abc", "burst=-1", "slow=-1s", "jitter=1", "trickle=600"]
        {
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
}
