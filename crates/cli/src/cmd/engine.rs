//! `dreamgate engine`: run the local Daydream-compatible engine on its own.
//!
//! ```text
//! dreamgate engine --listen 127.0.0.1:8787 [--api-key KEY] [--faults warmup=5s,burst=3]
//! ```
//!
//! Once listening it prints its base URL as the first line on stdout (logs go to stderr):
//! `--listen 127.0.0.1:0` plus that line is how `dreamgate bench` runs it as a child.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use dreamgate_client::ApiKey;
use dreamgate_engine::{start, EngineConfig, Faults};

const FAULTS_HELP: &str = "Fault injection, comma-separated knob=value (all off by default):
  warmup=5s    for that long after a stream's creation, its status, PATCH and WHIP calls
               answer \"not ready\" errors (code STREAMS/NOT_READY): 404, then 409, then 503
  patch=405    PATCH /v1/streams/{id} always answers that status (400-599)
  trickle=405  WHIP trickle PATCH always answers that status (400-599)
  burst=3      the next 3 authenticated /v1/streams calls answer 503
  slow=2s      every answer is delayed by that long
  stall=3s     once live (5 s after the first output), the output stops for that long, then resumes
  load=5s      each ingest stays LOADING that long after its first frame; the output shows a
               warm-up frame meanwhile (the input dimmed, with a progress bar)
  whep_hold=8s a WHEP POST before the first output frame is held until that frame
               (at most that long, then 404) instead of answering 404 at once
  viewers=2    WHEP viewers per stream, 429 beyond (default 5, as Livepeer)
  status_shape=public  status in Daydream's public reference shape
               (inference_status.input_fps/output_fps, no state, no input_status)
  drop_field=output_stream_url  that field is left out of every stream body
  ice_disconnect=1  a WHIP session ends as soon as its ICE reports \"disconnected\" (as
               Livepeer); the first N sessions of each stream lose their return path 3 s
               after their first frame, so the client must POST a new offer
Durations take ms, s or m (a bare number is seconds).";

/// Arguments of `dreamgate engine`. `Debug` never shows the key (it is an [`ApiKey`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (use 127.0.0.1 unless you mean to expose it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// API key /v1 calls must present as Bearer (default: DAYDREAM_API_KEY; none = any
    /// non-empty bearer token is accepted). Never printed.
    #[arg(long, value_name = "KEY", env = "DAYDREAM_API_KEY", hide_env_values = true)]
    api_key: Option<ApiKey>,
    /// Fault injection, e.g. `warmup=5s,patch=405,trickle=405,burst=3,slow=2s`.
    #[arg(long, value_name = "SPEC", long_help = FAULTS_HELP, value_parser = parse_faults)]
    faults: Option<Faults>,
    /// Ingest (WHIP) sessions run at once over all streams; one more is answered 503.
    #[arg(long, value_name = "N", default_value_t = dreamgate_engine::media::DEFAULT_MAX_INGEST, value_parser = clap::value_parser!(usize))]
    max_ingest: usize,
    /// Base URL written into whip_url and WHEP URLs (default: http://<listen address>).
    #[arg(long, value_name = "URL")]
    public_base: Option<String>,
    #[command(flatten)]
    limits: super::limits::LimitArgs,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(long, value_name = "FORMAT", env = "DREAMGATE_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: super::LogFormat,
}

fn parse_faults(spec: &str) -> Result<Faults, String> {
    spec.parse().map_err(|e: dreamgate_engine::FaultsParseError| e.to_string())
}

/// Runs `dreamgate engine` until Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let limits = args.limits.limits()?;
    super::limits::raise_file_limit();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let faults = args.faults.unwrap_or_default();
    let keyed = args.api_key.as_ref().is_some_and(|k| !k.is_empty());
    let cfg = EngineConfig {
        api_key: args.api_key.map(|k| k.expose().to_owned()),
        public_base: args.public_base,
        faults: faults.clone(),
        max_ingest: args.max_ingest,
        limits,
        ..Default::default()
    };
    let handle = start(listener, cfg).await;
    tracing::info!(
        base_url = %handle.base_url(),
        auth = if keyed { "configured key required" } else { "any bearer token" },
        faults = %faults,
        "dreamgate engine listening (Ctrl-C to stop)"
    );
    // The first stdout line: `dreamgate bench` reads it (see the module docs).
    println!("{}", handle.base_url());
    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    tracing::info!("stopping the engine");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn debug_never_shows_the_api_key() {
        let secret = "daydream_live_DEBUGSECRET_42";
        let cli = Cli::try_parse_from(["x", "--api-key", secret, "--faults", "burst=1"]).unwrap();
        assert_eq!(cli.args.api_key.as_ref().map(ApiKey::expose), Some(secret));
        let shown = format!("{cli:?} {cli:#?}");
        assert!(!shown.contains("DEBUGSECRET"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
