//! # dreamgate-engine
//!
//! A local server that speaks Daydream's API: the same `/v1/streams` routes, bodies and status
//! codes (see `daydream-api.md`), plus WHIP ingest and WHEP output endpoints. The gateway embeds
//! it in-process when no Daydream key is configured; tests start it on `127.0.0.1:0`.
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/streams` | 201 stream object (`id` `str_…`, `stream_key` `stk_…`, `whip_url`, `output_playback_id`, `created_at`, `pipeline`, `params`, `output_stream_url` (null without `output_rtmp_url`), …) |
//! | `GET /v1/streams` | 200 `{success:true, data:[stream, ...]}`: the caller's streams (by bearer token), oldest first |
//! | `GET /v1/streams/{id}` | 200 stream object |
//! | `PATCH /v1/streams/{id}` | params merged (top level) into the stored ones, validated, 200 stream object |
//! | `DELETE /v1/streams?id={id}` | 200 `{success:true, data:{}}` |
//! | `GET /v1/streams/{id}/status` | 200 `{success, error, data:{state, input_status, inference_status, gateway_status…}}` |
//! | `POST {base}/live/video-to-video/{stream_key}/whip` | WHIP offer (`application/sdp`), 201 answer |
//! | `PATCH\|DELETE {whip_url}/{session}` | trickle ICE / end ingest |
//! | `POST {base}/live/video-to-video/{stream_id}/whep` | WHEP viewer offer, 201 answer |
//! | `DELETE {whep_url}/{viewer}` | end viewer |
//!
//! Errors are Daydream-shaped: `{success:false, error, code, status, details, requestId, traceId}` (e.g. 404
//! `STREAMS/NOT_FOUND`, 400 `STREAMS/INVALID_PARAMS` with `details:[{field, message}]`, 401
//! `AUTH/UNAUTHORIZED`). `/v1` calls need `Authorization: Bearer <key>`: the configured key, or
//! any non-empty token when none is configured. WHIP/WHEP URLs are pre-signed (no header) and
//! answer CORS for any origin (preflight `OPTIONS` 204; `Access-Control-Allow-Origin: *` on
//! every answer). Params are closed like Daydream's published schema: a key outside it (at any
//! level, or a field the model's family lacks) is a 400 naming its path, so nothing outside
//! the schema is stored or echoed. A DELETE of a session or viewer the engine ended within the
//! last minute succeeds ([`ended`]).
//!
//! Stream states come from the pure [`status`] machine. Each stream's record owns its
//! [`streams::ActivityCell`]; media events reach it through a [`streams::StreamActivity`]
//! handle, handed to the [`backend::MediaBackend`] with each offer (no engine-wide lock per
//! frame). [`Engine::status`] returns a typed [`StatusSnapshot`] that the HTTP layer renders.
//! Params are typed ([`dreamgate_model::StreamParams`]) from the HTTP edge to the frame. The
//! default backend is [`media::WebRtcMedia`]: real WHIP ingest, a per-frame transform on a
//! thread per stream, and WHEP output.
//!
//! ## Fault injection
//!
//! `EngineConfig::faults` (`dreamgate engine --faults SPEC`) makes the engine misbehave like a
//! warming-up or flaky Daydream: `warmup=5s,patch=405,trickle=405,burst=3,slow=2s`, and the Livepeer behaviours `whep_hold=8s,viewers=5,status_shape=public,drop_field=NAME,ice_disconnect=1`. See
//! [`faults`] for each knob.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use dreamgate_engine::{start, EngineConfig};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let cfg = EngineConfig { faults: "warmup=3s".parse().unwrap(), ..Default::default() };
//! let engine = start(listener, cfg).await;
//! println!("Daydream-compatible API at {}", engine.base_url());
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod api;
pub mod backend;
pub mod ended;
pub mod faults;
pub mod media;
mod snapshot;
pub mod status;
pub mod streams;

pub use api::router;
pub use backend::{MediaBackend, NoMedia};
pub use dreamgate_rtc::RtcConfig;
pub use faults::{Faults, FaultsParseError, StatusShape};
pub use media::WebRtcMedia;
pub use snapshot::{MediaFigures, StatusSnapshot};

use crate::faults::{Call, FaultState, Injected};
use crate::streams::{StreamRecord, Streams};

/// Engine settings. `EngineConfig::default()` is a fault-free engine accepting any bearer token.
#[derive(Clone)]
pub struct EngineConfig {
    /// The API key `/v1` calls must present; `None` accepts any non-empty bearer token.
    pub api_key: Option<String>,
    /// Base URL written into `whip_url`/WHEP URLs (default `http://<listen address>`).
    pub public_base: Option<String>,
    /// WebRTC settings for the media side.
    pub rtc: RtcConfig,
    /// Fault injection (all off by default).
    pub faults: Faults,
    /// The media side (default: [`WebRtcMedia`], real WebRTC ingest, transform and output on
    /// `rtc.bind_ip`; [`NoMedia`] answers every media call with 503 "media not available").
    pub media: Option<Arc<dyn MediaBackend>>,
    /// Ingest (WHIP) sessions the default media side runs at once, over all streams; one
    /// more is answered 503 `MEDIA/BUSY` (`--max-ingest`, default [`media::DEFAULT_MAX_INGEST`]).
    pub max_ingest: usize,
    /// How often the status machine is run for every stream (closing idle ingests). Default 1 s.
    pub tick: Duration,
    /// Connection timeouts and caps (see [`dreamgate_serve::ServeLimits`]).
    pub limits: dreamgate_serve::ServeLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            api_key: None,
            public_base: None,
            rtc: RtcConfig::default(),
            faults: Faults::default(),
            media: None,
            max_ingest: media::DEFAULT_MAX_INGEST,
            tick: Duration::from_secs(1),
            limits: dreamgate_serve::ServeLimits::default(),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "(redacted)"))
            .field("public_base", &self.public_base)
            .field("rtc", &self.rtc)
            .field("faults", &self.faults.to_string())
            .field("media", &self.media.as_ref().map(|_| "custom"))
            .field("tick", &self.tick)
            .field("limits", &self.limits)
            .finish()
    }
}

struct Inner {
    api_key: Option<String>,
    base: String,
    gateway_host: String,
    rtc: RtcConfig,
    faults: Mutex<FaultState>,
    streams: Arc<Streams>,
    media: Arc<dyn MediaBackend>,
    anchor: (Instant, u64),
}

/// The engine's shared state (cheap to clone); [`router`] serves it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("base", &self.inner.base).field("streams", &self.inner.streams.len()).finish()
    }
}

impl Engine {
    /// Builds the state for an engine reachable at `base_url` (e.g. `http://127.0.0.1:8787`).
    pub fn new(cfg: EngineConfig, base_url: &str) -> Self {
        let base = cfg.public_base.as_deref().unwrap_or(base_url).trim_end_matches('/').to_owned();
        let gateway_host = base.split("://").nth(1).unwrap_or(&base).split('/').next().unwrap_or("").to_owned();
        let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Engine {
            inner: Arc::new(Inner {
                api_key: cfg.api_key.filter(|k| !k.trim().is_empty()).map(|k| k.trim().to_owned()),
                base,
                gateway_host,
                media: cfg.media.unwrap_or_else(|| WebRtcMedia::with_max_ingest(cfg.rtc.clone(), cfg.max_ingest)),
                rtc: cfg.rtc,
                faults: Mutex::new(FaultState::new(cfg.faults)),
                streams: Arc::new(Streams::default()),
                anchor: (Instant::now(), epoch_ms),
            }),
        }
    }

    /// The engine's base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// `{base}/live/video-to-video/{stream_key}/whip`
    pub fn whip_url(&self, stream_key: &str) -> String {
        format!("{}/live/video-to-video/{stream_key}/whip", self.inner.base)
    }

    /// `{base}/live/video-to-video/{stream_id}/whep`
    pub fn whep_url(&self, stream_id: &str) -> String {
        format!("{}/live/video-to-video/{stream_id}/whep", self.inner.base)
    }

    /// WebRTC settings for the media side.
    pub fn rtc(&self) -> &RtcConfig {
        &self.inner.rtc
    }

    /// The stream store.
    pub fn streams(&self) -> &Arc<Streams> {
        &self.inner.streams
    }

    /// The per-frame fault knobs the media side applies (`stall`, `load`).
    pub fn media_faults(&self) -> faults::MediaFaults {
        faults::MediaFaults::from(self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()).faults())
    }

    /// The media side.
    pub fn media(&self) -> &dyn MediaBackend {
        self.inner.media.as_ref()
    }

    fn api_key(&self) -> Option<&str> {
        self.inner.api_key.as_deref()
    }

    fn fault(&self, call: Call, stream_age: Option<Duration>) -> Option<Injected> {
        self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()).on_call(call, stream_age)
    }

    /// Reads the fault knobs' decisions (viewer cap, WHEP hold, ICE policy, shapes).
    fn faults<R>(&self, f: impl FnOnce(&FaultState) -> R) -> R {
        f(&self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn fault_delay(&self) -> Option<Duration> {
        self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()).delay()
    }

    fn stream_age(&self, id: &str) -> Option<Duration> {
        self.inner.streams.with(id, |r| r.activity.created().elapsed())
    }

    /// Wall-clock milliseconds since the Unix epoch of a monotonic instant.
    fn epoch_ms(&self, t: Instant) -> u64 {
        let (anchor, epoch) = self.inner.anchor;
        match t.checked_duration_since(anchor) {
            Some(d) => epoch + d.as_millis() as u64,
            None => epoch.saturating_sub(anchor.duration_since(t).as_millis() as u64),
        }
    }

    fn stream_object(&self, r: &StreamRecord) -> Value {
        let mut o = json!({
            "id": r.id,
            "stream_key": r.stream_key,
            "whip_url": self.whip_url(&r.stream_key),
            "output_playback_id": r.output_playback_id,
            "created_at": r.created_at,
            "pipeline": r.pipeline,
            "params": r.params,
            "name": r.name,
            "author": "dreamgate-engine",
            "from_playground": false,
            "gateway_host": self.inner.gateway_host,
            "is_smoke_test": false,
        });
        // always present (the official SDK needs the key): the RTMP output, or null
        o["output_stream_url"] = json!(r.output_stream_url);
        if let (Some(field), Some(map)) = (self.faults(|f| f.faults().drop_field.clone()), o.as_object_mut()) {
            map.remove(&field);
        }
        o
    }

    /// Runs the status machine of stream `id` at `now`: its status, or `None` for an unknown
    /// stream. Closes the ingest when the machine says so.
    pub fn status(&self, id: &str, now: Instant) -> Option<StatusSnapshot> {
        let (stream_id, pipeline, params, last_params, cell) = self.inner.streams.with(id, |r| {
            // a PATCH's params object is reported once the transform has switched to it
            let applied = r.activity.with(|a| a.applied_params().map(|(h, _)| h.to_string()));
            if r.pending_params.as_ref().is_some_and(|(h, _)| Some(h) == applied.as_ref()) {
                r.last_params = r.pending_params.take().map(|(_, given)| given);
            }
            (r.id.clone(), r.pipeline.clone(), r.params.clone(), r.last_params.clone(), Arc::clone(&r.activity))
        })?;
        let (evaluation, media) = cell.with(|a| (a.evaluate(now), MediaFigures::from(&*a)));
        if evaluation.close_ingest {
            self.close_idle_ingest(id);
        }
        Some(StatusSnapshot { stream_id, pipeline, params, last_params, evaluation, media, now })
    }

    /// Runs the status machine of every stream at `now` (closing ingests idle for 60 s).
    pub fn tick(&self, now: Instant) {
        for activity in self.inner.streams.activities() {
            if activity.evaluate(now).is_some_and(|ev| ev.close_ingest) {
                self.close_idle_ingest(activity.stream_id());
            }
        }
    }

    /// The status machine saw no input for 60 s: the media side ends the ingest session.
    fn close_idle_ingest(&self, id: &str) {
        tracing::info!(stream_id = %id, "no input for 60 s: closing the ingest session");
        let _ = self.media().end_ingest(id, None);
    }
}

/// A running engine. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct EngineHandle {
    engine: Engine,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// The base URL clients use (e.g. `http://127.0.0.1:41234`).
    pub fn base_url(&self) -> &str {
        self.engine.base_url()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine's state (streams, media seam).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.await;
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut server).await.is_err() {
                server.abort();
            }
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the engine on `listener` until [`EngineHandle::shutdown`].
///
/// # Panics
/// If the listener has no local address (it always has once bound).
pub async fn start(listener: TcpListener, cfg: EngineConfig) -> EngineHandle {
    let addr = listener.local_addr().expect("a bound listener has a local address");
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let tick = cfg.tick.max(Duration::from_millis(10));
    let limits = cfg.limits.clone();
    let engine = Engine::new(cfg, &format!("http://{host}"));
    let (stop, stopped) = watch::channel(false);

    let app = router(engine.clone());
    let mut rx = stopped.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = dreamgate_serve::serve(listener, app, limits, shutdown).await {
            tracing::error!("engine server failed: {e}");
        }
    });

    let ticking = engine.clone();
    let mut rx = stopped;
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => ticking.tick(Instant::now()),
                _ = rx.wait_for(|s| *s) => break,
            }
        }
    });

    tracing::debug!(base = %engine.base_url(), "engine listening");
    EngineHandle { engine, addr, stop, server: Some(server), ticker: Some(ticker) }
}
