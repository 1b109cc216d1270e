//! Interop with a real browser over loopback:
//! * headless Chromium publishes a canvas over WHIP (H.264 + an audio m-line) to
//!   `accept_ingest`; the frames must decode;
//! * headless Chromium pulls over WHEP from `accept_egress`; its own stats must show
//!   decoded H.264 frames of the right size.
//!
//! Needs a Chromium binary, so these are ignored by default; run them with
//! `cargo test -p dreamgate-rtc --test chromium -- --ignored --test-threads=1`
//! (binary from `DREAMGATE_CHROMIUM`, default `/usr/bin/chromium`).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dreamgate_rtc::{accept_egress, accept_ingest, Egress, Ingest, Peer, PeerState, RtcConfig};
use dreamgate_testkit::peer::wait_state;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

const PUBLISH_PAGE: &str = r#"<!doctype html><html><body><script type="module">
const c = document.createElement('canvas'); c.width = 320; c.height = 240;
const g = c.getContext('2d'); let n = 0;
setInterval(() => { g.fillStyle = `hsl(${(n * 7) % 360},80%,50%)`; g.fillRect(0, 0, 320, 240);
  g.fillStyle = '#fff'; g.fillRect((n * 5) % 300, 100, 20, 20); n++; }, 33);
const track = c.captureStream(30).getVideoTracks()[0];
const pc = new RTCPeerConnection();
pc.addTransceiver('audio', { direction: 'sendonly' });
const tr = pc.addTransceiver(track, { direction: 'sendonly' });
const h264 = RTCRtpSender.getCapabilities('video').codecs.filter(k => k.mimeType === 'video/H264');
if (h264.length) tr.setCodecPreferences(h264);
await pc.setLocalDescription(await pc.createOffer());
const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
</script></body></html>"#;

const VIEW_PAGE: &str = r#"<!doctype html><html><body><video id="v" muted autoplay playsinline></video><script type="module">
const pc = new RTCPeerConnection();
pc.addTransceiver('video', { direction: 'recvonly' });
pc.addTransceiver('audio', { direction: 'recvonly' });
pc.ontrack = (e) => { if (e.track.kind === 'video') document.getElementById('v').srcObject = new MediaStream([e.track]); };
await pc.setLocalDescription(await pc.createOffer());
const r = await fetch('/whep', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
setInterval(async () => {
  const stats = await pc.getStats(); let codec = {};
  stats.forEach(s => { if (s.type === 'codec') codec[s.id] = s.mimeType; });
  stats.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') fetch('/report', { method: 'POST',
    body: `${s.framesDecoded || 0} ${s.frameWidth || 0} ${s.frameHeight || 0} ${codec[s.codecId] || ''} ${pc.connectionState}` }); });
}, 300);
</script></body></html>"#;

#[derive(Default)]
struct Shared {
    page: &'static str,
    ingest: Option<Ingest>,
    egress: Option<Egress>,
    report: String,
}

/// A one-request-per-connection HTTP server for the test pages and signalling.
async fn serve(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut s = BufReader::new(stream);
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                if s.read_line(&mut h).await.unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if s.read_exact(&mut body).await.is_err() {
                return;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            let cfg = RtcConfig::default();
            let (status, ctype, out) = if line.starts_with("POST /whip") {
                let (ingest, answer) = accept_ingest(&cfg, &body).await.unwrap();
                shared.lock().await.ingest = Some(ingest);
                ("201 Created", "application/sdp", answer)
            } else if line.starts_with("POST /whep") {
                let (egress, answer) = accept_egress(&cfg, &body).await.unwrap();
                shared.lock().await.egress = Some(egress);
                ("201 Created", "application/sdp", answer)
            } else if line.starts_with("POST /report") {
                shared.lock().await.report = body;
                ("204 No Content", "text/plain", String::new())
            } else {
                ("200 OK", "text/html", shared.lock().await.page.to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}",
                out.len()
            );
            let _ = s.get_mut().write_all(resp.as_bytes()).await;
        });
    }
}

/// Starts the server and a headless Chromium on its page.
async fn start(page: &'static str) -> (Arc<Mutex<Shared>>, tokio::process::Child, std::path::PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let shared = Arc::new(Mutex::new(Shared { page, ..Default::default() }));
    tokio::spawn(serve(listener, shared.clone()));
    let binary = std::env::var("DREAMGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = std::env::temp_dir().join(format!("dreamgate-chromium-{}-{}", std::process::id(), addr.port()));
    let browser = tokio::process::Command::new(binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-loopback-in-peer-connection",
            // no mDNS (.local) host candidates: the page never asks for a camera, which is
            // what otherwise reveals real host addresses to WebRTC
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            &format!("http://{addr}/"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    (shared, browser, profile)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Chromium binary"]
async fn chromium_publishes_h264_to_ingest() {
    let (shared, mut browser, profile) = start(PUBLISH_PAGE).await;
    let mut ingest = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(i) = shared.lock().await.ingest.take() {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("chromium never POSTed a WHIP offer");
    wait_state(&ingest.state_changes(), PeerState::Connected).await;

    let mut decoder = dreamgate_media::H264Decoder::new().unwrap();
    let (mut pictures, mut keyframes_after_request) = (0, 0);
    let mut sizes = Vec::new();
    while pictures < 40 {
        let frame = tokio::time::timeout(Duration::from_secs(10), ingest.frames.recv())
            .await
            .expect("frames stopped")
            .expect("ingest ended");
        if let Some(p) = decoder.decode(&frame.data).expect("decodable") {
            sizes.push((p.width, p.height));
            pictures += 1;
        }
        if pictures == 10 && !frame.keyframe {
            ingest.request_keyframe();
        }
        if pictures > 10 && frame.keyframe {
            keyframes_after_request += 1;
        }
    }
    // Chromium may scale down at first; the canvas size is the ceiling.
    assert!(sizes.iter().all(|&(w, h)| w <= 320 && h <= 240 && w > 0), "{sizes:?}");
    assert!(keyframes_after_request >= 1, "Chromium ignored our PLI");
    let stats = ingest.stats();
    assert!(stats.bytes_received > 0 && stats.packets_received >= 40, "{stats:?}");
    assert_eq!(stats.packets_lost, 0, "{stats:?}");
    println!("chromium WHIP: {pictures} pictures, last {:?}, {stats:?}", sizes.last());
    browser.kill().await.ok();
    let _ = std::fs::remove_dir_all(&profile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Chromium binary"]
async fn chromium_views_h264_from_egress() {
    let (shared, mut browser, profile) = start(VIEW_PAGE).await;
    let mut egress = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(e) = shared.lock().await.egress.take() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("chromium never POSTed a WHEP offer");
    wait_state(&egress.state_changes(), PeerState::Connected).await;

    let mut source = common::source();
    let mut report = String::new();
    for _ in 0..300 {
        let key = egress.keyframe_requests.try_recv().is_ok();
        egress.send(source.next(key));
        tokio::time::sleep(Duration::from_millis(33)).await;
        report = shared.lock().await.report.clone();
        let decoded: u32 = report.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        if decoded >= 30 {
            break;
        }
    }
    let fields: Vec<&str> = report.split(' ').collect();
    println!("chromium WHEP report: {report}");
    assert!(fields.len() >= 5, "no stats from the page: {report:?}");
    assert!(fields[0].parse::<u32>().unwrap_or(0) >= 30, "{report}");
    assert_eq!((fields[1], fields[2]), ("320", "240"), "{report}");
    assert_eq!(fields[3], "video/H264", "{report}");
    assert_eq!(fields[4], "connected", "{report}");
    browser.kill().await.ok();
    let _ = std::fs::remove_dir_all(&profile);
}
