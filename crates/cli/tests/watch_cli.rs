//! `dreamgate watch` against a small WHEP endpoint on loopback: a real HTTP/1.1 server
//! (hand-rolled on a TcpListener) answering with `dreamgate_rtc::accept_egress` and
//! feeding H.264 from `dreamgate_media`. It answers 404 twice first, like an output that
//! is not ready yet.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dreamgate_rtc::{accept_egress, Egress, Peer, RtcConfig};
use dreamgate_testkit::PatternFrames;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const W: u32 = 256;
const H: u32 = 192;

#[derive(Default)]
struct Log {
    requests: Vec<String>,
}

struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    body: String,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0;
    let mut content_type = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request { method, path, content_type, body: String::from_utf8(body).ok()? })
}

async fn respond(stream: &mut BufReader<TcpStream>, status: &str, headers: &[(&str, &str)], body: &str) {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = stream.get_mut().write_all(out.as_bytes()).await;
}

/// Feeds encoded test-pattern frames to `egress` until it ends.
async fn produce(mut egress: Egress) {
    let mut frames = PatternFrames::new(W, H, 30);
    while !egress.state().is_terminal() {
        let key = egress.keyframe_requests.try_recv().is_ok();
        egress.send(frames.next(key));
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
}

async fn serve(listener: TcpListener, log: Arc<Mutex<Log>>) {
    let posts = Arc::new(Mutex::new(0u32));
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let log = log.clone();
        let posts = posts.clone();
        tokio::spawn(async move {
            let mut stream = BufReader::new(stream);
            while let Some(req) = read_request(&mut stream).await {
                log.lock().unwrap().requests.push(format!("{} {}", req.method, req.path));
                match (req.method.as_str(), req.path.as_str()) {
                    ("POST", "/live/video-to-video/str_test/whep") => {
                        assert_eq!(req.content_type.as_deref(), Some("application/sdp"));
                        let n = {
                            let mut p = posts.lock().unwrap();
                            *p += 1;
                            *p
                        };
                        if n <= 2 {
                            respond(&mut stream, "404 Not Found", &[], "not ready").await;
                            continue;
                        }
                        let (egress, answer) = accept_egress(&RtcConfig::default(), &req.body).await.unwrap();
                        tokio::spawn(produce(egress));
                        respond(
                            &mut stream,
                            "201 Created",
                            &[("content-type", "application/sdp"), ("location", "whep/viewer-1")],
                            &answer,
                        )
                        .await;
                    }
                    ("DELETE", "/live/video-to-video/str_test/whep/viewer-1") => {
                        respond(&mut stream, "200 OK", &[], "").await;
                    }
                    _ => respond(&mut stream, "405 Method Not Allowed", &[], "").await,
                }
            }
        });
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_retries_not_ready_writes_pngs_and_deletes_the_viewer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    tokio::spawn(serve(listener, log.clone()));

    let out = std::env::temp_dir().join(format!("dreamgate-watch-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let whep = format!("http://{addr}/live/video-to-video/str_test/whep");
    let out_arg = out.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dreamgate"))
            .args(["watch", "--whep", &whep, "--frames", "5", "--timeout", "20", "--out"])
            .arg(&out_arg)
            .output()
            .expect("run dreamgate")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("not ready yet (404 Not Found)"), "{stderr}");
    assert!(stderr.contains("frame 5/5"), "{stderr}");

    for i in 1..=5 {
        let bytes = std::fs::read(out.join(format!("frame-{i:04}.png"))).expect("png written");
        assert_eq!(png_size(&bytes), (W, H));
    }
    assert!(!out.join("frame-0006.png").exists());

    let requests = log.lock().unwrap().requests.clone();
    let posts = requests.iter().filter(|r| r.starts_with("POST")).count();
    assert_eq!(posts, 3, "{requests:?}");
    assert_eq!(requests.last().map(String::as_str), Some("DELETE /live/video-to-video/str_test/whep/viewer-1"));
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_a_refused_offer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    tokio::spawn(serve(listener, log.clone()));
    let whep = format!("http://{addr}/wrong/whep");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dreamgate"))
            .args(["watch", "--whep", &whep, "--frames", "1", "--timeout", "5", "--out"])
            .arg(std::env::temp_dir().join("dreamgate-watch-refused"))
            .output()
            .expect("run dreamgate")
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WHEP offer refused: 405"), "{stderr}");
}
