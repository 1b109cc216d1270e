//! The gateway's configuration: [`GatewayConfig`] (every option, validated by
//! [`GatewayConfig::validate`]), the upstream [`Mode`], and the checks of the
//! public URL and allowed origins. Parsed by the CLI, passed to [`crate::start`].

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use dreamgate_client::ApiKey;

use crate::store::{StoreConfig, StoreError};
use crate::{limits, registry::RegistryConfig, sweep, whip_policy};

/// Which upstream the gateway fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Daydream's API (`DAYDREAM_API_KEY` set).
    Daydream,
    /// An engine on loopback (offline default; `dreamgate serve` starts it in-process).
    Local,
}

impl Mode {
    /// `"daydream"` or `"local"` (as reported by the config route).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Daydream => "daydream",
            Mode::Local => "local",
        }
    }
}

/// Gateway configuration. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Daydream or the local engine.
    pub mode: Mode,
    /// API base URL (`https://api.daydream.live` or the engine's).
    pub api_base: Url,
    /// The API key (sent only to `api_base`).
    pub api_key: ApiKey,
    /// Which WHIP/WHEP URLs may be contacted.
    pub whip_policy: whip_policy::WhipPolicy,
    /// Extra origins allowed on mutating routes (`https://app.example`).
    pub allowed_origins: Vec<String>,
    /// Where browsers reach the gateway from outside (`--public-url
    /// https://dream.example.com`, env `DREAMGATE_PUBLIC_URL`): its host is
    /// accepted in `Host` and its origin in `Origin`. `None`: only the listen
    /// address and loopback names.
    pub public_url: Option<Url>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxy
    /// CIDR`, env `DREAMGATE_TRUSTED_PROXIES`); none by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-client limits (live streams, creates per minute).
    pub client_limits: limits::LimitsConfig,
    /// The gateway is served over https (behind a TLS terminator): Secure
    /// cookies and an `https://` own origin.
    pub https: bool,
    /// Trust `X-Forwarded-Proto: https` from a reverse proxy (off by default:
    /// any client can send it).
    pub trust_forwarded_proto: bool,
    /// Timeout of one API call (default 20 s). A create answers 504 after
    /// it, but is still awaited in the background up to `create_timeout`.
    pub api_timeout: Duration,
    /// How long a create is awaited in all, answered or not (default 2 min;
    /// at least `api_timeout`).
    pub create_timeout: Duration,
    /// Where sessions, streams and the reaper's schedule are kept (default in-process).
    pub store: StoreConfig,
    /// Timeout of one WHIP/WHEP request (default 10 s).
    pub whip_timeout: Duration,
    /// How long a WHEP offer is held while the upstream answers it 404 (no output yet), sent
    /// again every [`WhepHold::POLL`](crate::proxy::WhepHold::POLL) (default zero: the 404 is
    /// relayed at once). Lets players that POST once and attach once (the official browser
    /// SDK's snippet) start on a stream that is still warming up.
    pub whep_hold: Duration,
    /// Ownership and reaper timing (`reap_after` default 2 min).
    pub registry: RegistryConfig,
    /// How often the reaper runs (default 1 s).
    pub reap_interval: Duration,
    /// How often the deletes parked in the store (given up after their
    /// retries, or left by a shutdown) are retried while running; also once
    /// at start (default 5 min).
    pub parked_retry: Duration,
    /// What the orphan sweep does with tagged streams upstream the store does not know
    /// (default here `off`; `dreamgate serve` defaults to `report`; see [`sweep`]).
    pub orphans: sweep::OrphanMode,
    /// How often the orphan sweep lists the key's streams: at start, then this often
    /// (default 10 min).
    pub orphan_sweep: Duration,
    /// How long an orphan stays unknown before `delete` mode deletes it (default 10 min).
    pub orphan_grace: Duration,
    /// How often a watched stream's status is polled upstream, once for
    /// every tab and instance watching it (default 1 s; see [`watcher`]).
    pub watch_interval: Duration,
    /// On [`GatewayHandle::shutdown`]: how long in-flight requests may take,
    /// then creates still awaited, then (in-process store) deleting the
    /// remaining streams upstream (default 10 s each).
    pub shutdown_timeout: Duration,
    /// Connection timeouts and caps (see [`dreamgate_serve::ServeLimits`]).
    pub limits: dreamgate_serve::ServeLimits,
    /// Serve `/metrics` (and `/healthz`, `/readyz`) on this address of its
    /// own, e.g. a loopback one, instead of on the main listener (default:
    /// none, `/metrics` is on the main listener).
    pub metrics_listen: Option<SocketAddr>,
}

/// Invalid configuration or a failed start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An `--allowed-origin` value is not an origin.
    #[error("invalid allowed origin {0:?}: expected scheme://host[:port] with http or https and no path")]
    InvalidOrigin(String),
    /// The public URL is not an http(s) URL with a host and nothing else.
    #[error("invalid public URL {0:?}: expected http(s)://host[:port][/path] with no user, query or fragment")]
    InvalidPublicUrl(String),
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The upstream clients could not be built.
    #[error("cannot build the upstream client: {0}")]
    Client(String),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened (e.g. Redis unreachable).
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl GatewayConfig {
    /// A configuration with the defaults for everything but the upstream.
    pub fn new(mode: Mode, api_base: Url, api_key: ApiKey, whip_policy: whip_policy::WhipPolicy) -> Self {
        Self {
            mode,
            api_base,
            api_key,
            whip_policy,
            allowed_origins: Vec::new(),
            public_url: None,
            trusted_proxies: Vec::new(),
            client_limits: limits::LimitsConfig::default(),
            https: false,
            trust_forwarded_proto: false,
            api_timeout: Duration::from_secs(20),
            create_timeout: Duration::from_secs(120),
            store: StoreConfig::Memory,
            whip_timeout: Duration::from_secs(10),
            whep_hold: Duration::ZERO,
            registry: RegistryConfig::default(),
            reap_interval: Duration::from_secs(1),
            parked_retry: Duration::from_secs(300),
            orphans: sweep::OrphanMode::Off,
            orphan_sweep: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(600),
            watch_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            limits: dreamgate_serve::ServeLimits::default(),
            metrics_listen: None,
        }
    }

    /// Checks values that would make the gateway misbehave.
    pub fn validate(&self) -> Result<(), GatewayError> {
        for (name, d) in [
            ("api timeout", self.api_timeout),
            ("create timeout", self.create_timeout),
            ("WHIP timeout", self.whip_timeout),
            ("reap-after", self.registry.reap_after),
            ("session idle", self.registry.session_idle),
            ("reap interval", self.reap_interval),
            ("parked retry", self.parked_retry),
            ("orphan sweep", self.orphan_sweep),
            ("watch interval", self.watch_interval),
            ("shutdown timeout", self.shutdown_timeout),
            ("limits window", self.client_limits.window),
        ] {
            if d.is_zero() {
                return Err(GatewayError::ZeroDuration(name));
            }
        }
        for o in &self.allowed_origins {
            if normalize_origin(o)? != *o {
                return Err(GatewayError::InvalidOrigin(o.clone()));
            }
        }
        if let Some(u) = &self.public_url {
            check_public_url(u)?;
        }
        Ok(())
    }
}

/// Parses a public URL (`--public-url`): http(s), a host, no user, query or fragment.
pub fn parse_public_url(raw: &str) -> Result<Url, GatewayError> {
    let url = Url::parse(raw.trim()).map_err(|_| GatewayError::InvalidPublicUrl(raw.to_string()))?;
    check_public_url(&url)?;
    Ok(url)
}

fn check_public_url(url: &Url) -> Result<(), GatewayError> {
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(GatewayError::InvalidPublicUrl(url.to_string()));
    }
    Ok(())
}

/// Normalises an origin (`HTTPS://App.Example:443/` -> `https://app.example`).
pub fn normalize_origin(raw: &str) -> Result<String, GatewayError> {
    let bad = || GatewayError::InvalidOrigin(raw.to_string());
    let url = Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}
