//! `dreamgate watch`: pull a stream's output over WHEP and write frames as PNG.
//!
//! ```text
//! dreamgate watch --whep http://127.0.0.1:7860/live/video-to-video/str_x/whep --frames 10 --out frames/
//! ```
//!
//! It POSTs an SDP offer (`Content-Type: application/sdp`, one recvonly H.264 video m-line)
//! to the WHEP URL. A `404` (output not ready yet) or `503` is retried like the official
//! player does: at once, then every 200 ms ten times, then 500 ms doubling up to 60 s,
//! all within `--timeout`. It then receives H.264, decodes it and writes
//! `frame-0001.png`, `frame-0002.png`, ... into `--out`, printing progress on stderr.
//! At the end (or on Ctrl-C, or on failure) it DELETEs the viewer resource named by the
//! answer's `Location` header. Exit code 0 once `--frames` pictures are written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use dreamgate_media::{write_png, H264Decoder};
use dreamgate_rtc::{Peer, RtcConfig, Viewer};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

/// Arguments of `dreamgate watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The WHEP URL of the stream's output (e.g. the `Livepeer-Playback-URL` of a WHIP answer).
    #[arg(long, value_name = "URL")]
    whep: String,
    /// Number of decoded frames to write.
    #[arg(long, default_value_t = 10)]
    frames: u32,
    /// Directory for the PNG files (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Give up after this many seconds (signalling retries, connecting and receiving).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
}

/// One HTTP request's time limit (the official clients use 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `dreamgate watch`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let url: Url = args.whep.parse().with_context(|| format!("invalid WHEP URL {:?}", args.whep))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().context("cannot build the HTTP client")?;

    let mut plan = RetryPlan::new(Instant::now(), Duration::from_secs_f64(args.timeout));
    let cfg = RtcConfig { connect_timeout: Duration::from_secs_f64(args.timeout), ..RtcConfig::default() };
    let (mut viewer, offer) = Viewer::new(&cfg).await.context("cannot create the WebRTC viewer")?;

    let session = tokio::select! {
        r = tokio::time::timeout_at(plan.deadline().into(), negotiate(&http, &url, &offer, &mut plan)) => match r {
            Ok(result) => result?,
            Err(_) => bail!("timed out after {:.0} s waiting for the WHEP endpoint", args.timeout),
        },
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    eprintln!("watch: connected to {url}, answer received");

    let outcome = match viewer.set_answer(&session.answer) {
        Ok(()) => {
            tokio::select! {
                r = tokio::time::timeout_at(plan.deadline().into(), receive(&mut viewer, args.frames, &args.out)) => match r {
                    Ok(result) => result,
                    Err(_) => Err(anyhow::anyhow!("timed out after {:.0} s", args.timeout)),
                },
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        }
        Err(e) => Err(anyhow::Error::new(e).context("the WHEP answer was not usable")),
    };
    viewer.close();

    if let Some(resource) = &session.resource {
        match http.delete(resource.clone()).send().await {
            Ok(r) => eprintln!("watch: DELETE {resource} -> {}", r.status()),
            Err(e) => eprintln!("watch: DELETE {resource} failed: {e}"),
        }
    }
    let written = outcome?;
    eprintln!("watch: wrote {written} frames to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The accepted WHEP session.
struct Session {
    answer: String,
    /// Absolute URL of the viewer resource (`Location`), if the server named one.
    resource: Option<Url>,
}

/// POSTs the offer until the endpoint answers, retrying "not ready" answers on `plan`.
async fn negotiate(http: &reqwest::Client, url: &Url, offer: &str, plan: &mut RetryPlan) -> anyhow::Result<Session> {
    loop {
        let response = http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/sdp")
            .body(offer.to_string())
            .send()
            .await
            .with_context(|| format!("WHEP POST to {url} failed"))?;
        let status = response.status();
        if status == StatusCode::CREATED || status == StatusCode::OK {
            let resource =
                response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|loc| url.join(loc).ok());
            let answer = response.text().await.context("cannot read the WHEP answer")?;
            return Ok(Session { answer, resource });
        }
        let body = response.text().await.unwrap_or_default();
        if !RetryPlan::is_not_ready(status) {
            bail!("WHEP offer refused: {status} {}", body.trim());
        }
        let now = Instant::now();
        let Some(at) = plan.next_retry(now) else {
            bail!("WHEP endpoint still not ready ({status}) after {} attempts", plan.attempts());
        };
        eprintln!(
            "watch: output not ready yet ({status}), retry {} in {} ms",
            plan.attempts(),
            at.saturating_duration_since(now).as_millis()
        );
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Receives, decodes and writes `count` pictures; returns how many were written.
async fn receive(viewer: &mut Viewer, count: u32, dir: &Path) -> anyhow::Result<u32> {
    let mut decoder = H264Decoder::new().context("cannot start the H.264 decoder")?;
    let mut written = 0;
    while written < count {
        let Some(frame) = viewer.frames.recv().await else {
            bail!("the connection ended ({:?}) after {written} of {count} frames", viewer.state());
        };
        let picture = match decoder.decode(&frame.data) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("watch: undecodable frame ({e}), asking for a keyframe");
                viewer.request_keyframe();
                continue;
            }
        };
        written += 1;
        let path = dir.join(format!("frame-{written:04}.png"));
        let (w, h) = (picture.width, picture.height);
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_png(&picture, &target))
            .await
            .context("PNG writer task failed")?
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("watch: frame {written}/{count} {w}x{h} -> {}", path.display());
    }
    Ok(written)
}

/// The WHEP player's retry schedule for "not ready" answers, within an overall deadline.
/// Pure: the caller passes the current time.
#[derive(Debug, Clone)]
struct RetryPlan {
    deadline: Instant,
    attempts: u32,
}

impl RetryPlan {
    fn new(now: Instant, budget: Duration) -> Self {
        RetryPlan { deadline: now + budget, attempts: 0 }
    }

    /// The overall deadline.
    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Retries scheduled so far.
    fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Answers that mean "the output does not exist yet": retried.
    fn is_not_ready(status: StatusCode) -> bool {
        status == StatusCode::NOT_FOUND || status == StatusCode::SERVICE_UNAVAILABLE
    }

    /// Delay before retry number `n` (0-based): 0, then 200 ms x 10, then 500 ms x 2^k
    /// capped at 60 s.
    fn delay(n: u32) -> Duration {
        match n {
            0 => Duration::ZERO,
            1..=10 => Duration::from_millis(200),
            _ => Duration::from_millis(500u64.saturating_mul(1 << (n - 11).min(7))).min(Duration::from_secs(60)),
        }
    }

    /// After a "not ready" answer at `now`: when to retry, or `None` when the next attempt
    /// would fall after the deadline.
    fn next_retry(&mut self, now: Instant) -> Option<Instant> {
        let at = now + Self::delay(self.attempts);
        if at >= self.deadline {
            return None;
        }
        self.attempts += 1;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_the_official_player() {
        let delays: Vec<u64> = (0..20).map(|n| RetryPlan::delay(n).as_millis() as u64).collect();
        assert_eq!(&delays[..11], &[0, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]);
        assert_eq!(&delays[11..19], &[500, 1000, 2000, 4000, 8000, 16000, 32000, 60000]);
        assert_eq!(delays[19], 60000);
        assert_eq!(RetryPlan::delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn retries_stop_at_the_deadline() {
        let t0 = Instant::now();
        let mut plan = RetryPlan::new(t0, Duration::from_secs(3));
        let mut now = t0;
        let mut retries = 0;
        while let Some(at) = plan.next_retry(now) {
            assert!(at >= now && at < t0 + Duration::from_secs(3));
            now = at;
            retries += 1;
        }
        // 0 + 10 x 200 ms = 2 s, +500 ms = 2.5 s, +1 s would pass 3 s.
        assert_eq!(retries, 12);
        assert_eq!(plan.attempts(), 12);
        assert_eq!(plan.deadline(), t0 + Duration::from_secs(3));
    }

    #[test]
    fn only_not_ready_answers_are_retried() {
        assert!(RetryPlan::is_not_ready(StatusCode::NOT_FOUND));
        assert!(RetryPlan::is_not_ready(StatusCode::SERVICE_UNAVAILABLE));
        for s in [
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert!(!RetryPlan::is_not_ready(s), "{s}");
        }
    }
}
