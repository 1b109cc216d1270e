//! `dreamgate ingest`: publish a moving test pattern (or a Y4M file) as H.264
//! over WHIP, straight to a WHIP URL or through a running Dreamgate gateway.
//!
//! ```text
//! dreamgate ingest --whip http://127.0.0.1:7860/live/video-to-video/stk_x/whip [--duration 30]
//! dreamgate ingest --via http://127.0.0.1:3000 [--input clip.y4m] [--trickle]
//! ```
//!
//! `--via` does what the Dream page does: `GET /api/daydream/config` for a
//! session cookie, `POST /api/daydream/streams` with the default create
//! payload, WHIP to `/api/daydream/streams/<id>/whip` with `Origin` and the
//! cookie, and `DELETE /api/daydream/streams/<id>` at the end.
//!
//! A status line on stderr is refreshed about once a second (connecting,
//! warming up with the retry count, live with fps and frames sent). Ctrl-C,
//! `--duration`, the end of the input file or a failure tear everything down
//! (WHIP DELETE, then the stream DELETE for `--via`). Exit codes: 0 after a
//! clean stop, 1 when the connection failed or the gateway refused.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dreamgate_media::Y4mReader;
use dreamgate_whip::{
    ClientStatus, ConnectionState, EncodingSource, FrameSource, GatewaySession, IceServer, Url, WhipClient,
};

/// Arguments of `dreamgate ingest`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["whip", "via"])))]
pub struct Args {
    /// Publish straight to this WHIP URL (pre-signed: no Authorization header is sent).
    #[arg(long, value_name = "URL")]
    whip: Option<String>,
    /// Publish through a running Dreamgate gateway (creates and finally deletes a stream).
    #[arg(long, value_name = "URL")]
    via: Option<String>,
    /// Send this Y4M file (its size; its frame rate unless --fps is given) instead of the test pattern.
    /// `-` reads Y4M from standard input, e.g. a camera:
    /// `ffmpeg -f v4l2 -i /dev/video0 -f yuv4mpegpipe -pix_fmt yuv420p - | dreamgate ingest --input - ...`
    #[arg(long, value_name = "FILE.y4m|-")]
    input: Option<PathBuf>,
    /// Test pattern width.
    #[arg(long, default_value_t = 512)]
    width: u32,
    /// Test pattern height.
    #[arg(long, default_value_t = 512)]
    height: u32,
    /// Frames per second (default 30 for the test pattern, the file's rate for --input).
    #[arg(long)]
    fps: Option<u32>,
    /// Stop by itself after publishing this many seconds (counted from going live).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Trickle ICE candidates by PATCH (off by default, like the Dream page; a 405 turns it off).
    /// Also sends server-reflexive candidates from the endpoint's `Link` STUN servers.
    #[arg(long)]
    trickle: bool,
    /// ICE server URL (repeatable). Default: stun:stun.l.google.com:19302, none for loopback targets.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    /// Warm-up budget in seconds: not-ready answers (404/409/429/5xx) are retried this long.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    warmup: f64,
    /// Connection timeout in seconds.
    #[arg(long, default_value_t = 45.0, value_name = "SECONDS")]
    connect_timeout: f64,
}

/// Runs `dreamgate ingest`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let fps = args.fps.unwrap_or(30);
    let source: Box<dyn FrameSource> = match &args.input {
        Some(path) if path.as_os_str() == "-" => {
            let stdin = Y4mReader::new(std::io::BufReader::new(std::io::stdin()))
                .context("cannot read Y4M from standard input")?;
            Box::new(EncodingSource::y4m_reader(stdin, args.fps).context("cannot start the encoder")?)
        }
        Some(path) => {
            Box::new(EncodingSource::y4m(path, args.fps).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => {
            Box::new(EncodingSource::test_pattern(args.width, args.height, fps).context("cannot start the encoder")?)
        }
    };
    let warmup = seconds(args.warmup, "--warmup")?;
    let connect_timeout = seconds(args.connect_timeout, "--connect-timeout")?;
    let duration = args.duration.map(|d| seconds(d, "--duration")).transpose()?;

    let mut line = StatusLine::new();
    let (mut options, gateway) = match (&args.whip, &args.via) {
        (Some(whip), _) => {
            let url: Url = whip.parse().with_context(|| format!("invalid WHIP URL {whip:?}"))?;
            (dreamgate_whip::ClientOptions::new(url), None)
        }
        (None, Some(via)) => {
            let base: Url = via.parse().with_context(|| format!("invalid gateway URL {via:?}"))?;
            line.note(&format!("creating a stream on {}", base.origin().ascii_serialization()));
            let origin = base.origin().ascii_serialization();
            let gateway =
                GatewaySession::open(base).await.with_context(|| format!("cannot open a session on {origin}"))?;
            let body = create_body(args.input.is_none().then_some((args.width, args.height)))?;
            let id = gateway.create_stream(&body).await.context("creating the stream")?;
            line.note(&format!("stream {id} created"));
            (gateway.whip_options(&id)?, Some((gateway, id)))
        }
        (None, None) => anyhow::bail!("give --whip URL or --via URL"),
    };
    let loopback = options.whip.whip_url.host().is_some_and(|host| dreamgate_client::is_loopback_host(&host));
    options.whip.ice_servers = if !args.ice_servers.is_empty() {
        args.ice_servers.iter().map(IceServer::new).collect()
    } else if loopback {
        Vec::new()
    } else {
        options.whip.ice_servers
    };
    options.whip.enable_trickle_ice = args.trickle;
    // Livepeer ends a WHIP session when ICE reports "disconnected": publish again by a new
    // offer (each within the warm-up budget), as the official browser client does
    options.whip.max_reconnects = MAX_RECONNECTS;
    options.whip.warmup_budget = warmup;
    options.whip.connection_timeout = connect_timeout;

    let client = WhipClient::new(options).context("cannot build the HTTP client")?;
    let outcome = publish(&client, source, duration, &mut line).await;
    line.note("stopping: closing the WHIP session");
    let frames = client.frames_sent();
    client.shutdown().await;
    if let Some((gateway, id)) = gateway {
        match gateway.delete_stream(&id).await {
            Ok(()) => line.note(&format!("stream {id} deleted")),
            Err(e) => line.note(&format!("could not delete stream {id}: {e}")),
        }
    }
    match outcome {
        Ok(reason) => {
            line.note(&format!("{reason}; {frames} frames sent"));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            line.note(&format!("failed: {error}; {frames} frames sent"));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Connects and publishes until Ctrl-C, the duration, the end of the input or
/// a failure. `Ok` carries why it stopped, `Err` the spec's error message.
async fn publish(
    client: &WhipClient,
    source: Box<dyn FrameSource>,
    duration: Option<Duration>,
    line: &mut StatusLine,
) -> Result<String, String> {
    let started = Instant::now();
    let mut status = client.status();
    client.connect(source).await.map_err(|e| e.to_string())?;
    let mut live_since: Option<Instant> = None;
    let mut last = (Instant::now(), 0u64);
    let mut fps = 0.0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let s = status.borrow_and_update().clone();
        match s.state.state {
            ConnectionState::Connected => {
                live_since.get_or_insert_with(Instant::now);
            }
            ConnectionState::Failed => {
                return Err(s.state.error.map(|e| e.to_string()).unwrap_or_else(|| "failed".into()))
            }
            ConnectionState::Closed => return Ok("closed by the remote".into()),
            _ => {}
        }
        if s.source_ended {
            return Ok("end of input".into());
        }
        if let (Some(limit), Some(since)) = (duration, live_since) {
            if since.elapsed() >= limit {
                return Ok(format!("published for {:.0} s", limit.as_secs_f64()));
            }
        }
        let phase = (s.state.state, s.retry.as_ref().map(|r| r.retry));
        line.show(&render(&s, started, live_since, fps, client.frames_sent()), phase);
        tokio::select! {
            _ = &mut ctrl_c => return Ok("interrupted".into()),
            changed = status.changed() => if changed.is_err() { return Err("the WHIP client stopped".into()) },
            _ = tick.tick() => {
                let now = (Instant::now(), client.frames_sent());
                let secs = now.0.duration_since(last.0).as_secs_f64();
                if secs > 0.0 {
                    fps = (now.1 - last.1) as f64 / secs;
                }
                last = now;
            }
        }
    }
}

/// Reconnects in a row after a lost session (the official browser client's 5 attempts).
const MAX_RECONNECTS: u32 = 5;

fn render(s: &ClientStatus, started: Instant, live_since: Option<Instant>, fps: f64, frames: u64) -> String {
    match (s.state.state, &s.retry, live_since) {
        (ConnectionState::Connecting, _, _) if s.state.error == Some(dreamgate_whip::WhipError::ConnectionLost) => {
            dreamgate_whip::WhipError::ConnectionLost.to_string()
        }
        (ConnectionState::Connecting, Some(retry), _) => {
            let next = retry.at.saturating_duration_since(Instant::now()).as_secs_f64();
            format!("warming up (retry {}, next in {next:.1}s): {}", retry.retry, retry.error)
        }
        (ConnectionState::Connecting, None, _) => {
            format!("connecting ({:.0}s)", started.elapsed().as_secs_f64())
        }
        (ConnectionState::Disconnected, _, _) => "disconnected, waiting for the connection to come back".into(),
        (_, _, Some(since)) => {
            format!("live {:.0}s | {fps:.1} fps | {frames} frames sent", since.elapsed().as_secs_f64())
        }
        (state, _, None) => state.to_string(),
    }
}

/// The model's default create payload, at the test pattern's size when it is not the default.
fn create_body(size: Option<(u32, u32)>) -> anyhow::Result<serde_json::Value> {
    let mut body = serde_json::to_value(dreamgate_model::default_create_payload())?;
    if let (Some((w, h)), Some(params)) = (size, body.get_mut("params").and_then(|p| p.as_object_mut())) {
        params.insert("width".into(), w.into());
        params.insert("height".into(), h.into());
    }
    Ok(body)
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds"))
}

/// One status line on stderr, rewritten in place on a terminal (otherwise, e.g. in a log, a
/// plain line at each change of phase and at most every [`PLAIN_EVERY`] in between).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

struct StatusLine {
    terminal: bool,
    dirty: bool,
    last_plain: Option<(Instant, (ConnectionState, Option<u32>))>,
}

impl StatusLine {
    fn new() -> Self {
        Self { terminal: std::io::stderr().is_terminal(), dirty: false, last_plain: None }
    }

    fn show(&mut self, text: &str, phase: (ConnectionState, Option<u32>)) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{text}");
            self.dirty = true;
        } else if self.last_plain.is_none_or(|(t, p)| p != phase || t.elapsed() >= PLAIN_EVERY) {
            let _ = writeln!(err, "{text}");
            self.last_plain = Some((Instant::now(), phase));
        }
        let _ = err.flush();
    }

    /// A permanent line (the status line continues below it).
    fn note(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.dirty {
            let _ = write!(err, "\r\x1b[2K");
            self.dirty = false;
        }
        let _ = writeln!(err, "{text}");
    }
}
