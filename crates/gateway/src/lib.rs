//! # dreamgate-gateway
//!
//! The browser-facing server. It holds the Daydream API key, gives each
//! browser a random session, lets a session touch only the stream it created,
//! proxies WHIP ingest and WHEP playback to allowlisted upstream URLs, deletes
//! streams whose session went away, and serves the embedded Dream page with a
//! strict Content-Security-Policy.
//!
//! ## Routes
//!
//! | route | what |
//! |---|---|
//! | `GET /api/daydream/config` | `{ "configured", "mode", "playback": { "iframeBase": "https://lvpr.tv/" } }` |
//! | `POST /api/daydream/streams` | validate (400 `Invalid stream configuration` + `details`), create upstream, 201 + stream object; 409 + `activeStreamId` if the session already has a stream |
//! | `GET /api/daydream/streams/:id/status` | upstream status body, as sent |
//! | `GET /api/daydream/streams/:id/events` | the status pushed as Server-Sent Events by the stream's one watcher ([`watcher`]) |
//! | `PATCH /api/daydream/streams/:id/parameters` | `{pipeline, params}`, `{params}`, `{pipeline_params}` or flat params -> upstream `{ "pipeline": "streamdiffusion", "params": { "model_id", ... } }` |
//! | `DELETE /api/daydream/streams/:id` | upstream `DELETE /v1/streams?id=` (404/405 = already gone = success) |
//! | `POST\|PATCH\|DELETE /api/daydream/streams/:id/whip` | WHIP proxy to the stream's stored `whip_url` / session resource |
//! | `POST\|DELETE /api/daydream/streams/:id/whep` | WHEP proxy to the stream's playback URL |
//! | `POST /api/daydream/streams/end` | `navigator.sendBeacon` body `{streamId}` (text/plain JSON): ends and deletes the stream |
//! | `GET /`, `GET /<file>` | the embedded `web/static` files |
//!
//! `configured` is true when the gateway can create streams: a key is set
//! (`daydream` mode) or an engine is running (`local` mode).
//!
//! Errors are always JSON `{ "error", "message" }`: 400 malformed JSON, 413
//! bodies over 100 KiB (SDP over 64 KiB), upstream 4xx with their status and
//! `details`, 502 when upstream fails or is unreachable, 504 on timeout.
//!
//! ### Which stream ids answer 403 and which 404
//!
//! The gateway decides from its own registry only; it never asks upstream
//! about an id, so it cannot tell (and never reveals) whether an id it did
//! not create for this session exists upstream:
//!
//! * **404 `Unknown stream`**: the id is malformed (not `[A-Za-z0-9_-]{1,128}`).
//! * **403 `Stream not owned by active session`**: any well-formed id that is
//!   not owned by this session — another session's stream, a stream created
//!   upstream by no session, an id that exists nowhere, and this session's
//!   own stream once its tombstone has expired (`tombstone_ttl`, 10 min by default).
//! * **404 `Stream not found`**: this session's own stream after it ended
//!   (deleted by its owner, by the end beacon or by the reaper, or being
//!   deleted), on every stream route except `DELETE` and the end beacon,
//!   which answer 200 (ending is idempotent).

//! ## Where each job lives
//!
//! | module | job |
//! |---|---|
//! | [`routes`] | the router and its thin handlers |
//! | [`middleware`] | Host check and client address ([`edge`]), session cookie, Origin check, security headers ([`headers`]) |
//! | [`edge`] | which `Host` names the gateway (421 otherwise), the client address behind trusted proxies |
//! | [`limits`] | per-client limits (live streams, creates per minute; 429): pure decisions, counters behind a trait |
//! | [`scrub`] | upstream text made safe to relay or log (no key, no credentials, no internals; bounded `details`) |
//! | [`extract`] | parsing at the edge: stream id, owned stream, WHIP/WHEP leg, bodies |
//! | [`state`] | the stream service: the one code applying the store's decisions (create, end, delete, shutdown) and the reaper driver |
//! | [`store`] | everything the gateway remembers, behind one seam: in-process ([`store::memory`]) or Redis ([`store::redis`]) |
//! | [`registry`] | pure ownership + reaper machine (one stream per session, delete attempts, leases and retries, tombstones) |
//! | [`session`] | random cookie sessions and the pure issued-session book |
//! | [`clock`] | wall-clock milliseconds, the time every pure machine takes |
//! | [`proxy`] | the WHIP/WHEP legs and how upstream answers are relayed |
//! | [`upstream`] | the Daydream API client and the WHIP/WHEP signalling client |
//! | [`watcher`] | one status watcher per watched stream (polls once per interval, pushes Server-Sent Events; one instance polls by lease) |
//! | [`poll_lease`] | pure rules of the poll lease and the published status |
//! | [`whip_policy`] | which upstream URLs may be contacted |
//! | [`error`] | every error the gateway answers, named once |
//! | [`assets`] | the embedded `web/static` files |
//! | [`health`] | the operator's routes: `/healthz`, `/readyz`, `/metrics` |
//! | [`metrics`] | the Prometheus metrics and the hooks that update them |
//!
//! The gateway knows no codec: in `local` mode its upstream is an engine
//! started by the caller (the `dreamgate serve` command), reached over HTTP
//! at [`GatewayConfig::api_base`] with [`GatewayConfig::api_key`].
//!
//! ## Several instances
//!
//! With [`GatewayConfig::store`] set to Redis, any number of gateways share
//! one state: any instance serves any request of any session, a session's
//! single stream slot is reserved atomically, and the reaper's delete of a
//! silent stream is leased to one instance at a time. Shutdown then leaves
//! the streams running (another instance, or the restarted one, carries
//! on); with the in-process store it deletes them (see
//! [`GatewayHandle::shutdown`]).
//!
//! ## Sessions, ownership, origin
//!
//! See [`session`] (cookie, issued sessions), [`registry`] (ownership, one
//! stream per session, reaper) and [`middleware`]. Every mutating request
//! (POST, PATCH, DELETE) must carry an `Origin` equal to the gateway's own
//! origin (`http://<Host>`, or `https://` when [`GatewayConfig::https`] is
//! set or a trusted `X-Forwarded-Proto: https` says so) or one of
//! [`GatewayConfig::allowed_origins`]; otherwise 403.
//!
//! ## Host, client address, per-client limits
//!
//! See [`edge`]: on `/api/` routes `Host` must be the listen address, a
//! loopback name or [`GatewayConfig::public_url`] (421 otherwise: DNS
//! rebinding). See [`limits`]: live streams per client address and creates
//! per minute per session and per address (429 + `Retry-After`), the
//! client address being the peer unless it is one of
//! [`GatewayConfig::trusted_proxies`].
//!
//! ## WHIP / WHEP
//!
//! See [`whip_policy`] (which URLs may be contacted) and [`proxy`]: the
//! browser never names an upstream URL; the gateway answers with its own
//! paths in `Location` and `Livepeer-Playback-URL`.
//!
//! ## Example
//!
//! In front of an engine already listening on `127.0.0.1:4000` with key
//! `engine-key` (for Daydream: [`Mode::Daydream`], `https://api.daydream.live`
//! and the Daydream key):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dreamgate_client::ApiKey;
//! use dreamgate_gateway::{start, GatewayConfig, Mode};
//! use dreamgate_gateway::whip_policy::WhipPolicy;
//!
//! let policy = WhipPolicy::with_defaults(Vec::<String>::new(), true)?;
//! let engine = "http://127.0.0.1:4000".parse()?;
//! let cfg = GatewayConfig::new(Mode::Local, engine, ApiKey::new("engine-key"), policy);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let gateway = start(listener, cfg).await?;
//! println!("listening on {}", gateway.base_url());
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

pub mod assets;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod edge;
pub mod error;
pub mod extract;
pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod poll_lease;
pub mod proxy;
pub mod record;
pub mod registry;
pub mod routes;
pub mod scrub;
pub mod session;
pub mod state;
pub mod store;
pub mod sweep;
pub mod upstream;
pub mod watcher;
pub mod whip_policy;

pub use config::{normalize_origin, parse_public_url, GatewayConfig, GatewayError, Mode};
pub use error::{HttpError, NOT_OWNED};
pub use registry::RegistryConfig;
pub use store::{StoreConfig, StoreError};
pub use upstream::Upstream;

use state::{run_reaper, AppState};
use store::{Store, StoreApi};

/// Largest JSON request body.
pub const MAX_JSON_BODY: usize = 100 * 1024;
/// Largest SDP (offer or trickle fragment) request body.
pub const MAX_SDP_BODY: usize = 64 * 1024;

/// What [`GatewayHandle::shutdown`] did with the streams still open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Streams deleted upstream (or already gone there), sorted.
    pub deleted: Vec<String>,
    /// Streams whose upstream delete failed or did not finish in time, sorted.
    pub not_deleted: Vec<String>,
}

/// A running gateway.
///
/// Call [`shutdown`](Self::shutdown) to stop it: with the in-process store
/// that also deletes the streams still running upstream. Dropping the handle
/// only stops the server and the reaper (without waiting, and without
/// deleting anything: like a crash).
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    ops: Option<JoinHandle<()>>,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
}

impl GatewayHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address of the separate metrics listener, if configured
    /// ([`GatewayConfig::metrics_listen`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Streams still live or being deleted, in the store (diagnostics and
    /// tests; 0 when the store cannot be reached).
    pub async fn open_streams(&self) -> usize {
        self.state.open_streams().await.unwrap_or(0)
    }

    /// The stream service (its store, configuration).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops the gateway:
    ///
    /// 1. stops accepting connections and lets in-flight requests finish
    ///    (at most [`GatewayConfig::shutdown_timeout`], then they are dropped);
    /// 2. stops the reaper;
    /// 3. waits (at most [`GatewayConfig::shutdown_timeout`]) for creates
    ///    still awaited in the background, so their streams are recorded;
    /// 4. with a durable store (Redis): deletes nothing — the streams live
    ///    on, recorded in the store, for the other instances (or this one,
    ///    restarted) to serve and reap;
    /// 5. with the in-process store: deletes every stream still live or
    ///    being deleted upstream, concurrently, within
    ///    [`GatewayConfig::shutdown_timeout`] — paid streams must not outlive
    ///    the only gateway that knows them. What was and was not deleted is
    ///    logged and returned; what was not is parked (the pending-deletes
    ///    file, when configured) and retried at the next start.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let limit = self.state.config().shutdown_timeout;
        // Event streams end first, so that browsers notice at once (and they hold no drain).
        self.state.watchers().stop();
        let _ = self.stop.send(true);
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(limit, &mut server).await.is_err() {
                tracing::warn!("open connections did not close within {limit:?}; dropping them");
                server.abort();
            }
        }
        if let Some(reaper) = self.reaper.take() {
            reaper.abort();
            let _ = reaper.await;
        }
        if let Some(ops) = self.ops.take() {
            ops.abort();
            let _ = ops.await;
        }
        if !self.state.wait_in_flight(limit).await {
            tracing::warn!("creates still in flight after {limit:?}: their streams may be left unrecorded");
        }
        if self.state.store().durable() {
            tracing::info!(store = self.state.store().kind(), "stopped; streams stay recorded in the store");
            return ShutdownReport::default();
        }
        self.state.delete_all(limit).await
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.state.watchers().stop();
        let _ = self.stop.send(true);
        if let Some(reaper) = &self.reaper {
            reaper.abort();
        }
        if let Some(ops) = &self.ops {
            ops.abort();
        }
    }
}

/// Starts the gateway on `listener` and its reaper task.
pub async fn start(listener: tokio::net::TcpListener, mut cfg: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
    cfg.validate()?;
    let addr = listener.local_addr()?;
    cfg.create_timeout = cfg.create_timeout.max(cfg.api_timeout);
    // a delete attempt is leased beyond its own timeout; a create's slot beyond the create's
    cfg.registry.delete_lease = cfg.api_timeout + Duration::from_secs(10);
    cfg.registry.create_lease = cfg.create_timeout + Duration::from_secs(30);
    let upstream = Upstream::new(
        cfg.api_base.clone(),
        cfg.api_key.clone(),
        cfg.whip_policy.clone(),
        cfg.api_timeout,
        cfg.whip_timeout,
    )
    .and_then(|u| u.with_create_timeout(cfg.api_base.clone(), cfg.api_key.clone(), cfg.create_timeout))
    .map_err(GatewayError::Client)?;
    let store = Store::open(&cfg.store, cfg.registry, cfg.api_base.as_str()).await?;
    tracing::info!(
        mode = cfg.mode.as_str(),
        api = %cfg.api_base,
        whip_allowlist = %cfg.whip_policy,
        allowed_origins = ?cfg.allowed_origins,
        public_url = cfg.public_url.as_ref().map(Url::as_str).unwrap_or("-"),
        trusted_proxies = ?cfg.trusted_proxies,
        limits = ?cfg.client_limits,
        reap_after_s = cfg.registry.reap_after.as_secs_f64(),
        store = ?cfg.store,
        listen = %addr,
        "dreamgate gateway listening on http://{addr}"
    );
    let limits = cfg.limits.clone();
    let ops_listener = match cfg.metrics_listen {
        Some(at) => Some(tokio::net::TcpListener::bind(at).await?),
        None => None,
    };
    let metrics_addr = ops_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    if let Some(at) = metrics_addr {
        tracing::info!(metrics_listen = %at, "metrics on http://{at}/metrics");
    }
    let edge = Arc::new(edge::Edge {
        hosts: edge::HostPolicy::new(addr, cfg.public_url.as_ref()),
        trusted_proxies: cfg.trusted_proxies.clone(),
        limiter: limits::Limiter::new(cfg.client_limits, store.counters()),
    });
    let state = Arc::new(AppState::new(cfg, upstream, store));
    let app = routes::router(state.clone(), edge);
    let (stop, mut stopped) = watch::channel(false);
    let ops_limits = limits.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = dreamgate_serve::serve(listener, app, limits, shutdown).await {
            tracing::error!(error = %e, "gateway server stopped");
        }
    });
    let ops = ops_listener.map(|listener| {
        let ops_app = health::router(state.clone(), true).fallback(routes::not_found);
        tokio::spawn(async move {
            // same timeouts and caps as the main listener; ends when the handle aborts it
            if let Err(e) = dreamgate_serve::serve(listener, ops_app, ops_limits, std::future::pending()).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        })
    });
    let reaper = tokio::spawn(run_reaper(state.clone()));
    Ok(GatewayHandle { addr, metrics_addr, ops, state, stop, server: Some(server), reaper: Some(reaper) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dreamgate_client::ApiKey;

    #[test]
    fn origins_are_normalised_or_refused() {
        assert_eq!(normalize_origin("HTTPS://App.Example:443/").unwrap(), "https://app.example");
        assert_eq!(normalize_origin("http://127.0.0.1:3000").unwrap(), "http://127.0.0.1:3000");
        for bad in ["app.example", "ftp://a.example", "https://a.example/path", "https://u@a.example", "null", ""] {
            assert!(normalize_origin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = "daydream_live_supersecret123";
        let cfg = GatewayConfig::new(
            Mode::Daydream,
            Url::parse("https://api.daydream.live").unwrap(),
            ApiKey::new(key),
            whip_policy::WhipPolicy::with_defaults(Vec::<String>::new(), false).unwrap(),
        );
        assert!(!format!("{cfg:?}").contains("supersecret"));
    }

    #[test]
    fn zero_durations_are_refused() {
        let mut cfg = GatewayConfig::new(
            Mode::Local,
            Url::parse("http://127.0.0.1:1").unwrap(),
            ApiKey::new("k"),
            whip_policy::WhipPolicy::with_defaults(Vec::<String>::new(), true).unwrap(),
        );
        assert!(cfg.validate().is_ok());
        cfg.registry.reap_after = Duration::ZERO;
        assert!(matches!(cfg.validate(), Err(GatewayError::ZeroDuration(_))));
    }
}
