//! `dreamgate serve`: the gateway and the Dream page.
//!
//! With `DAYDREAM_API_KEY` set it fronts Daydream (`DAYDREAM_API_GATEWAY`,
//! default `https://api.daydream.live`); without it, it starts the engine
//! in-process on a free loopback port, protected by a fresh random key, and
//! fronts that (`local` mode, where loopback http WHIP is allowed for the
//! engine). This command is where the two are composed: the gateway knows
//! only the engine's base URL and key, never the engine crate. Invalid configuration
//! (bad `DAYDREAM_*` values, allowlist entries, origins, fault specs, zero
//! durations) refuses to start with a message naming the problem.
//!
//! The start-up log names the mode, the effective WHIP allowlist and the
//! listen address; the key is never printed.
//!
//! State lives in the store (`--store`, also `DREAMGATE_STORE`): `memory`
//! (default, this process only) or `redis://host:port/db`, shared by several
//! instances behind a load balancer.
//!
//! On Ctrl-C or SIGTERM it stops accepting requests, finishes those in
//! flight and waits (bounded) for creates still awaited. Then, with the
//! in-process store, it deletes every stream still running upstream
//! (concurrently, within 10 s), logging which were deleted and which could
//! not be; those are written to the pending-deletes file (`--pending-deletes`,
//! in daydream mode by default `<temp dir>/dreamgate-pending-deletes.json`)
//! and retried at the next start. With the Redis store it deletes nothing:
//! the streams stay recorded for the other instances (or this one,
//! restarted). Finally it stops the embedded engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use dreamgate_client::{ApiKey, DaydreamEnv};
use dreamgate_engine::{EngineConfig, EngineHandle, Faults};
use dreamgate_gateway::whip_policy::WhipPolicy;
use dreamgate_gateway::{normalize_origin, parse_public_url, start, GatewayConfig, Mode, StoreConfig};
use rand::RngCore;
use url::Url;

/// Arguments of `dreamgate serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Faults for the embedded engine (local mode only), e.g. "warmup=5s,patch=405,slow=2s".
    #[arg(long, value_name = "SPEC")]
    pub engine_faults: Option<String>,
    /// Ingest (WHIP) sessions the embedded engine runs at once (local mode only); one more
    /// is answered 503.
    #[arg(long, value_name = "N", default_value_t = dreamgate_engine::media::DEFAULT_MAX_INGEST)]
    pub max_ingest: usize,
    /// Delete a stream upstream once its session has been silent (no status poll,
    /// no WHIP/WHEP request) for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub reap_after: u64,
    /// An additional origin allowed to call mutating routes (repeatable), e.g. https://app.example.
    #[arg(long = "allowed-origin", value_name = "URL")]
    pub allowed_origins: Vec<String>,
    /// The gateway is reached over https (through a TLS-terminating proxy):
    /// Secure cookies, https own origin.
    #[arg(long)]
    pub https: bool,
    /// Trust `X-Forwarded-Proto: https` from the reverse proxy in front of the gateway.
    #[arg(long)]
    pub trust_forwarded_proto: bool,
    /// Timeout of one Daydream API call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = dreamgate_client::DEFAULT_TIMEOUT.as_secs_f64())]
    pub api_timeout: f64,
    /// Timeout of one WHIP/WHEP request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub whip_timeout: f64,
    /// Hold a WHEP offer while the upstream answers it 404 (the stream has no output yet),
    /// sending it again every 250 ms, for at most this many seconds (0: relay the 404 at
    /// once). Lets players that POST once and attach once (the official browser SDK's
    /// README snippet) start on a stream that is still warming up. Keep it under the
    /// players' own request timeout (10 s for the SDK).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub whep_hold: f64,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    /// Serve /metrics (and /healthz, /readyz) on this address of its own, e.g.
    /// 127.0.0.1:9090, instead of on --listen (where /metrics then answers 404).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(long, value_name = "FORMAT", env = "DREAMGATE_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: super::LogFormat,
    /// How long a stream create is awaited in all, in seconds: one answered 504 after
    /// --api-timeout is still awaited (and its stream recorded) until then.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub create_timeout: f64,
    /// Where sessions, streams and the reaper's schedule are kept: `memory` (this process
    /// only; its streams are deleted when it stops) or `redis://[:password@]host:port/db`
    /// (shared by several instances; streams outlive a restart).
    #[arg(long, value_name = "STORE", env = "DREAMGATE_STORE", default_value = "memory")]
    pub store: String,
    /// Key prefix in Redis (several deployments can share one Redis).
    #[arg(long, value_name = "PREFIX", env = "DREAMGATE_STORE_PREFIX", default_value = "dreamgate:")]
    pub store_prefix: String,
    /// In-process store: the file where stream ids whose upstream delete could not be done
    /// are kept, retried at the next start [default in daydream mode:
    /// <temp dir>/dreamgate-pending-deletes.json; none in local mode, whose streams end with
    /// the embedded engine].
    #[arg(long, value_name = "FILE")]
    pub pending_deletes: Option<PathBuf>,
    /// The URL browsers use to reach the gateway from outside (behind a proxy),
    /// e.g. https://dream.example.com: its host is accepted in Host, its origin in Origin.
    #[arg(long, value_name = "URL", env = "DREAMGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A reverse proxy (CIDR or address) whose X-Forwarded-For is believed (repeatable;
    /// the env variable takes a comma-separated list). None by default.
    #[arg(long = "trusted-proxy", value_name = "CIDR", env = "DREAMGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Streams live at once per client address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_live_streams_per_ip: u32,
    /// Stream creates per minute per session (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_creates_per_minute_per_session: u32,
    /// Stream creates per minute per client address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_creates_per_minute_per_ip: u32,
    /// Streams named `dreamgate-*` upstream that the store does not know (orphans, e.g. left
    /// by a crash): `report` logs them and counts them in /metrics; `delete` also deletes
    /// each one still unknown after --orphan-grace (only when this API key serves this
    /// deployment alone); `off` never lists them.
    #[arg(long, value_name = "MODE", env = "DREAMGATE_ORPHANS", default_value = "report")]
    pub orphans: dreamgate_gateway::sweep::OrphanMode,
    /// How often the upstream stream list is swept for orphans, in seconds (at start, then
    /// every this often; one instance at a time).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub orphan_sweep: u64,
    /// How long an orphan must stay unknown before `--orphans delete` deletes it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub orphan_grace: u64,
}

/// The embedded engine of `local` mode and how the gateway reaches it.
struct LocalEngine {
    /// The running engine (shut it down when the gateway stops).
    handle: EngineHandle,
    /// Its API base URL (loopback http).
    base: Url,
    /// The random key it was started with (never logged).
    key: ApiKey,
}

/// Starts the engine in-process on a free `127.0.0.1` port, protected by a
/// fresh random key (so no other local process can use it through the API).
async fn start_local_engine(faults: Faults, max_ingest: usize) -> std::io::Result<LocalEngine> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let key = ApiKey::new(format!("dreamgate_local_{key}"));
    let mut cfg =
        EngineConfig { api_key: Some(key.expose().to_string()), faults, max_ingest, ..EngineConfig::default() };
    // Every connection to the embedded engine comes from this process on 127.0.0.1: a per-peer
    // cap below the overall one would refuse the gateway's own upstream calls under load.
    cfg.limits.max_connections_per_ip = cfg.limits.max_connections;
    let handle = dreamgate_engine::start(listener, cfg).await;
    let base = Url::parse(handle.base_url()).map_err(|e| std::io::Error::other(format!("engine base URL: {e}")))?;
    Ok(LocalEngine { handle, base, key })
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
        bail!("--{name} must be a positive number of seconds (at most 86400), got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// Runs `dreamgate serve` until Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::limits::raise_file_limit();
    let env = DaydreamEnv::from_env().context("invalid Daydream configuration; refusing to start")?;
    for warning in &env.warnings {
        tracing::warn!("{warning}");
    }
    let api_timeout = seconds("api-timeout", args.api_timeout)?;
    let create_timeout = seconds("create-timeout", args.create_timeout)?;
    let mut store = StoreConfig::parse(&args.store).context("invalid --store / DREAMGATE_STORE")?;
    if let StoreConfig::Redis { prefix, .. } = &mut store {
        if args.store_prefix.is_empty() {
            bail!("--store-prefix must not be empty");
        }
        prefix.clone_from(&args.store_prefix);
        if args.pending_deletes.is_some() {
            tracing::warn!(
                "--pending-deletes applies to the in-process store: with Redis, deletes not done stay in Redis"
            );
        }
    }
    let whip_timeout = seconds("whip-timeout", args.whip_timeout)?;
    let whep_hold = if args.whep_hold == 0.0 { Duration::ZERO } else { seconds("whep-hold", args.whep_hold)? };
    let limits = args.limits.limits()?;
    if args.reap_after == 0 {
        bail!("--reap-after must be at least 1 second");
    }
    let policy = WhipPolicy::new(&env.whip_allowed_hosts, env.whip_allow_dev)
        .context("invalid DAYDREAM_WHIP_ALLOWED_HOSTS; refusing to start")?;
    let origins = args
        .allowed_origins
        .iter()
        .map(|o| normalize_origin(o))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid --allowed-origin")?;
    let public_url = match args.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(raw) => Some(parse_public_url(raw).context("invalid --public-url / DREAMGATE_PUBLIC_URL")?),
        None => None,
    };
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            dreamgate_gateway::edge::parse_proxy(p).with_context(|| {
                format!(
                    "invalid --trusted-proxy / DREAMGATE_TRUSTED_PROXIES entry {p:?}: expected a CIDR or an IP address"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let faults: Faults = match &args.engine_faults {
        Some(spec) => spec.parse().context("invalid --engine-faults")?,
        None => Faults::default(),
    };

    let (mut cfg, engine) = match env.api_key.clone() {
        Some(key) => {
            if args.engine_faults.is_some() {
                bail!("--engine-faults applies to the embedded engine, which is not used when DAYDREAM_API_KEY is set");
            }
            if store == StoreConfig::Memory {
                let file = args
                    .pending_deletes
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("dreamgate-pending-deletes.json"));
                store = StoreConfig::MemoryWithPendingFile(file);
            }
            (GatewayConfig::new(Mode::Daydream, env.gateway.clone(), key, policy), None)
        }
        None => {
            if let StoreConfig::Redis { .. } = store {
                tracing::warn!("--store redis with the embedded engine: its streams still end with this process");
            }
            if let (StoreConfig::Memory, Some(file)) = (&store, &args.pending_deletes) {
                store = StoreConfig::MemoryWithPendingFile(file.clone());
            }
            let engine = start_local_engine(faults.clone(), args.max_ingest)
                .await
                .context("cannot start the embedded engine")?;
            tracing::info!(
                engine = %engine.base,
                faults = %faults,
                "no DAYDREAM_API_KEY: local mode, embedded engine started"
            );
            let cfg = GatewayConfig::new(Mode::Local, engine.base.clone(), engine.key.clone(), policy.with_dev(true));
            (cfg, Some(engine))
        }
    };
    cfg.allowed_origins = origins;
    cfg.public_url = public_url;
    cfg.trusted_proxies = trusted_proxies;
    cfg.client_limits.live_streams_per_address = args.max_live_streams_per_ip;
    cfg.client_limits.creates_per_session = args.max_creates_per_minute_per_session;
    cfg.client_limits.creates_per_address = args.max_creates_per_minute_per_ip;
    cfg.https = args.https;
    cfg.trust_forwarded_proto = args.trust_forwarded_proto;
    cfg.api_timeout = api_timeout;
    cfg.create_timeout = create_timeout;
    cfg.store = store;
    cfg.whip_timeout = whip_timeout;
    cfg.whep_hold = whep_hold;
    cfg.registry.reap_after = Duration::from_secs(args.reap_after);
    cfg.orphans = args.orphans;
    cfg.orphan_sweep = Duration::from_secs(args.orphan_sweep);
    cfg.orphan_grace = Duration::from_secs(args.orphan_grace);
    cfg.limits = limits;
    cfg.metrics_listen = args.metrics_listen;
    cfg.validate().context("invalid configuration; refusing to start")?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let gateway = start(listener, cfg).await.context("cannot start the gateway")?;
    // With JSON logs, stderr carries JSON only (the start-up log names both addresses).
    let human = args.log_format == super::LogFormat::Text;
    if human {
        eprintln!("dreamgate: open {} in a browser (Ctrl-C to stop)", gateway.base_url());
        if let Some(at) = gateway.metrics_addr() {
            eprintln!("dreamgate: metrics on http://{at}/metrics");
        }
    }

    let signal = stop_signal().await?;
    tracing::info!("{signal}: stopping");
    let report = gateway.shutdown().await;
    if human && !report.not_deleted.is_empty() {
        eprintln!(
            "dreamgate: could not delete {} stream(s) upstream: {}",
            report.not_deleted.len(),
            report.not_deleted.join(", ")
        );
    }
    if let Some(engine) = engine {
        engine.handle.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM; names the one received.
async fn stop_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "Ctrl-C").context("cannot wait for Ctrl-C"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        Ok("Ctrl-C")
    }
}
