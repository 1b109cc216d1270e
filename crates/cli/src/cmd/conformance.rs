//! `dreamgate conformance`: runs one scripted scenario against a Daydream-compatible
//! upstream and prints every answer that deviates from Daydream's documented shapes.
//!
//! ```text
//! dreamgate conformance --gateway http://127.0.0.1:8787
//! DAYDREAM_API_KEY=daydream_live_... dreamgate conformance --bind-ip 192.168.1.20
//! ```
//!
//! stdout: one line per deviation (`step: path: problem`), then `N deviations`.
//! stderr: each step as it runs. Exit code 0 with no deviation, 1 otherwise.

use std::io::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use dreamgate_conformance::{run as run_scenario, Config};
use dreamgate_rtc::RtcConfig;

/// Token sent when no key is given (an engine started without `--api-key` takes any token).
const PLACEHOLDER_KEY: &str = "dreamgate-conformance";

/// Arguments of `dreamgate conformance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The upstream API base: Daydream, or an engine such as http://127.0.0.1:8787.
    #[arg(long, value_name = "URL", env = "DAYDREAM_API_GATEWAY", default_value = "https://api.daydream.live")]
    gateway: String,
    /// The API key (Bearer). Without it a placeholder token is sent (fine for a local engine).
    #[arg(long, value_name = "K", env = "DAYDREAM_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Seconds to publish the test pattern over WHIP (from the moment it is live).
    #[arg(long, default_value_t = 4.0, value_name = "SECONDS")]
    publish: f64,
    /// Seconds a fresh stream may answer "not ready" (status, update, WHIP, WHEP).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    warmup: f64,
    /// Local address for WebRTC media (its host candidate); a reachable one for a remote upstream.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    bind_ip: IpAddr,
    /// The Origin sent on WHIP/WHEP calls (their CORS answers are checked against it).
    #[arg(long, default_value = "https://conformance.dreamgate.invalid", value_name = "ORIGIN")]
    origin: String,
}

/// Runs `dreamgate conformance`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base = args.gateway.parse().with_context(|| format!("invalid --gateway URL {:?}", args.gateway))?;
    let key = match args.key.filter(|k| !k.trim().is_empty()) {
        Some(k) => k,
        None => {
            eprintln!("no --key (or DAYDREAM_API_KEY): sending a placeholder token");
            PLACEHOLDER_KEY.into()
        }
    };
    let mut cfg = Config::new(base, key);
    cfg.publish_for = seconds(args.publish, "--publish")?;
    cfg.warmup = seconds(args.warmup, "--warmup")?;
    cfg.rtc = RtcConfig::new(args.bind_ip);
    cfg.origin = args.origin;
    cfg.verbose = true;
    eprintln!("conformance against {}", cfg.base);
    let report = run_scenario(&cfg).await;
    let mut out = std::io::stdout().lock();
    for d in &report.deviations {
        writeln!(out, "{d}")?;
    }
    let n = report.deviations.len();
    writeln!(out, "{n} deviation{}", if n == 1 { "" } else { "s" })?;
    eprintln!("{} steps run", report.steps);
    Ok(if n == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds"))
}
