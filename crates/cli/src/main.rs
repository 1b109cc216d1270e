//! `dreamgate`: one binary for every part of Dreamgate.
//!
//! Each subcommand group lives in its own module under `cmd/`; this file only
//! parses the command line, sets up logging and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Dreamgate: put Daydream's real-time StreamDiffusion video into an application.
///
/// Run `dreamgate serve` to start the gateway and the Dream page (offline, on the
/// embedded engine, unless DAYDREAM_API_KEY is set).
#[derive(Debug, Parser)]
#[command(name = "dreamgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway and the Dream page (embedded engine unless DAYDREAM_API_KEY is set).
    Serve(cmd::serve::Args),
    /// Run the local Daydream-compatible engine on its own.
    Engine(cmd::engine::Args),
    /// Inspect and validate StreamDiffusion parameters.
    #[command(subcommand)]
    Params(cmd::params::Command),
    /// Call the Daydream streams API (create, get, status, update, delete).
    #[command(subcommand)]
    Stream(cmd::stream::Command),
    /// Publish a test pattern or a Y4M file over WHIP.
    Ingest(cmd::ingest::Args),
    /// Pull a stream's output over WHEP and write frames as PNG.
    Watch(cmd::watch::Args),
    /// Measure the engine: first-frame latency, per-frame cost, fps, memory.
    Bench(cmd::bench::Args),
    /// Check a Daydream-compatible upstream against Daydream's documented API shapes.
    Conformance(cmd::conformance::Args),
}

/// Logs go to stderr. `DREAMGATE_LOG` (a tracing filter) overrides the default level, which is
/// `info` for servers and `warn` for `bench`, whose report on stdout should stand alone.
/// `--log-format json` (servers; or `DREAMGATE_LOG_FORMAT=json`) writes one JSON object per line.
fn init_logging(default: &str, format: cmd::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DREAMGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        cmd::LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        cmd::LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).init();
        }
    }
}

/// Commands that only print (`params`, `stream`) end quietly when their reader goes away
/// (`dreamgate params defaults | head`), like any Unix filter, instead of panicking on the
/// broken pipe. Servers keep Rust's default of ignoring SIGPIPE: a browser closing its socket
/// must never kill them.
fn exit_quietly_on_broken_pipe() {
    // SAFETY: called before any thread is started; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Params(_) | Command::Stream(_)) {
        exit_quietly_on_broken_pipe();
    }
    let log_format = match &cli.command {
        Command::Serve(args) => args.log_format,
        Command::Engine(args) => args.log_format,
        _ => cmd::LogFormat::Text,
    };
    init_logging(
        match cli.command {
            Command::Bench(_) => "warn",
            _ => "info,str0m=warn",
        },
        log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Engine(args) => cmd::engine::run(args).await,
            Command::Params(command) => cmd::params::run(command).await,
            Command::Stream(command) => cmd::stream::run(command).await,
            Command::Ingest(args) => cmd::ingest::run(args).await,
            Command::Watch(args) => cmd::watch::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::Conformance(args) => cmd::conformance::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
