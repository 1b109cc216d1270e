//! The real media backend over real sockets on 127.0.0.1: WHIP ingest from a native
//! publisher, the per-frame transform, WHEP output to `rtc::Viewer`s, and the status the
//! media drives. Every wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_engine::media::WebRtcMedia;
use dreamgate_engine::{start, EngineConfig, EngineHandle, RtcConfig};
use dreamgate_media::{Frame, H264Decoder, TestPattern};
use dreamgate_rtc::{MediaFrame, Peer, PeerState, Publisher, Viewer};
use dreamgate_testkit::status::wait_status;
use dreamgate_testkit::{eventually, Feed};
use dreamgate_whip::{ClientOptions, EncodingSource, WhipClient};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::time::timeout;

/// Frames a test's feed sends at most: 20 s at 30 fps.
const FEED_FRAMES: u64 = 30 * 20;

/// The media-heavy tests share 2 cores with everyone: run them one at a time.
static HEAVY: Mutex<()> = Mutex::const_new(());

async fn engine(media: Option<Arc<WebRtcMedia>>) -> EngineHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let media = media.map(|m| m as Arc<dyn dreamgate_engine::MediaBackend>);
    start(listener, EngineConfig { media, ..Default::default() }).await
}

fn client(h: &EngineHandle) -> DaydreamClient {
    DaydreamClient::new(h.base_url().parse().unwrap(), ApiKey::new("test"), Duration::from_secs(5)).unwrap()
}

/// Creates a stream of `size` x `size` (other params: the model's defaults).
async fn create(c: &DaydreamClient, size: u32) -> (String, String, String) {
    let mut payload = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    payload["params"]["width"] = json!(size);
    payload["params"]["height"] = json!(size);
    let s = c.create_stream(&payload).await.unwrap();
    let id = s["id"].as_str().unwrap().to_owned();
    let whep = format!("{}/live/video-to-video/{id}/whep", c.base_url().as_str().trim_end_matches('/'));
    (id, s["whip_url"].as_str().unwrap().to_owned(), whep)
}

async fn post_sdp(url: &str, sdp: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Mean absolute difference of two equally sized planes (every `step`-th sample).
fn mad(a: &[u8], b: &[u8], step: usize) -> f64 {
    assert_eq!(a.len(), b.len());
    let (sum, n) =
        a.iter().zip(b).step_by(step).fold((0u64, 0u64), |(s, n), (x, y)| (s + x.abs_diff(*y) as u64, n + 1));
    sum as f64 / n.max(1) as f64
}

/// How far apart two pictures' colour distributions are: L1 distance (0..=2 per plane) of
/// their 16-bin U and V histograms. Motion of the same scene barely moves it; a new palette
/// (prompt) does.
fn palette_distance(a: &Frame, b: &Frame) -> f64 {
    fn hist(plane: &[u8]) -> [f64; 16] {
        let mut h = [0f64; 16];
        for &v in plane {
            h[usize::from(v >> 4)] += 1.0;
        }
        h.map(|c| c / plane.len().max(1) as f64)
    }
    let l1 = |x: &[u8], y: &[u8]| hist(x).iter().zip(hist(y)).map(|(p, q)| (p - q).abs()).sum::<f64>();
    l1(&a.u, &b.u) + l1(&a.v, &b.v)
}

/// A WHEP viewer and its decoder.
struct Watch {
    viewer: Viewer,
    decoder: H264Decoder,
    location: String,
}

impl Watch {
    /// POSTs a viewer offer to `whep`: the viewer, or the HTTP status and error message.
    async fn open(whep: &str) -> Result<Watch, (u16, String)> {
        let (mut viewer, offer) = Viewer::new(&RtcConfig::default()).await.unwrap();
        let resp = post_sdp(whep, &offer).await;
        let status = resp.status().as_u16();
        if status != 201 {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            return Err((status, body["error"].as_str().unwrap_or_default().to_owned()));
        }
        let location = header(&resp, "location");
        viewer.set_answer(&resp.text().await.unwrap()).unwrap();
        Ok(Watch { viewer, decoder: H264Decoder::new().unwrap(), location })
    }

    /// The next access unit and its picture (at most `wait`).
    async fn next(&mut self, wait: Duration) -> Option<(MediaFrame, Frame)> {
        let unit = timeout(wait, self.viewer.frames.recv()).await.ok().flatten()?;
        let picture = self.decoder.decode(&unit.data).expect("output decodes")?;
        Some((unit, picture))
    }

    /// The most recent picture after at least `frames` more arrived.
    async fn skip(&mut self, frames: usize) -> Frame {
        let mut last = None;
        for _ in 0..frames {
            last = Some(self.next(Duration::from_secs(3)).await.expect("output keeps flowing").1);
        }
        last.expect("frames > 0")
    }
}

fn fps(data: &Value, part: &str) -> f64 {
    data[part]["fps"].as_f64().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_is_404_before_output_and_offers_without_h264_get_400() {
    let h = engine(None).await; // the default backend: real WebRTC
    let c = client(&h);
    let (_, whip, whep) = create(&c, 384).await;

    // no ingest at all yet: nothing to watch
    let (status, message) = Watch::open(&whep).await.err().expect("WHEP must fail before any output");
    assert_eq!(status, 404);
    assert!(message.contains("No output yet"), "{message}");

    // a real publisher offer, rewritten to offer VP8 only
    let (_publisher, offer) = Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    assert!(offer.contains("H264/90000"), "{offer}");
    let vp8: String = offer
        .split("\r\n")
        .filter(|l| !l.starts_with("a=fmtp:"))
        .map(|l| l.replace("H264/90000", "VP8/90000"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let resp = post_sdp(&whip, &vp8).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "offer has no H.264 video");
    assert_eq!(body["success"], false);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_pattern_goes_online_and_viewers_get_the_transformed_output() {
    let _heavy = HEAVY.lock().await;
    let h = engine(None).await;
    let c = client(&h);
    let (id, whip, whep) = create(&c, 512).await;

    // the native WHIP client publishes the moving test pattern at 30 fps
    let publisher = WhipClient::new(ClientOptions::new(whip.parse().unwrap())).unwrap();
    publisher.connect(Box::new(EncodingSource::test_pattern(512, 512, 30).unwrap())).await.unwrap();
    timeout(Duration::from_secs(10), publisher.wait_connected()).await.expect("connects in time").unwrap();

    // status_reports_online_with_inference_fps
    let data =
        wait_status(&c, &id, Duration::from_secs(10), |d| d["state"] == "ONLINE" && fps(d, "inference_status") >= 25.0)
            .await;
    assert_eq!(data["state"], "ONLINE", "{data}");
    assert!(fps(&data, "inference_status") >= 25.0, "{data}");
    assert!(fps(&data, "input_status") >= 25.0, "{data}");
    let stats = &data["gateway_status"]["ingest_metrics"]["stats"];
    assert!(stats["peer_conn_stats"]["BytesReceived"].as_u64().unwrap() > 10_000, "{data}");
    assert!(stats["track_stats"][0]["packets_received"].as_u64().unwrap() > 30, "{data}");

    // a viewer: its first unit is a keyframe, and what it sees is not the input
    let mut a = Watch::open(&whep).await.expect("WHEP once output exists");
    let (first, picture) = a.next(Duration::from_secs(5)).await.expect("first output frame");
    assert!(first.keyframe, "a viewer starts on a keyframe");
    assert_eq!((picture.width, picture.height), (512, 512));
    let out = a.skip(5).await;
    let pattern = TestPattern::new(512, 512);
    let sent = publisher.frames_sent() + 5;
    let closest = (0..sent).map(|i| mad(&out.y, &pattern.frame(i).y, 7)).fold(f64::MAX, f64::min);
    eprintln!("closest input frame: mean abs diff {closest:.1}");
    assert!(closest > 12.0, "output too close to an input frame: mean abs diff {closest:.1}");

    // a prompt PATCH changes the output within a few frames, without reconnecting
    let before = a.skip(1).await;
    let motion = palette_distance(&before, &a.skip(20).await); // 20 frames of motion alone
    let before = a.skip(1).await;
    c.update_stream(&id, &json!({"params": {"prompt": "golden fire sunset red"}})).await.unwrap();
    let after = a.skip(20).await;
    let changed = palette_distance(&before, &after);
    eprintln!("palette distance: prompt change {changed:.3}, motion {motion:.3}");
    assert!(changed > 0.5 && changed > 3.0 * motion, "prompt change {changed:.3} vs motion {motion:.3}");

    // a second viewer at the same time: both receive decodable frames
    let mut b = Watch::open(&whep).await.expect("a second viewer");
    let (first_b, _) = b.next(Duration::from_secs(5)).await.expect("second viewer gets output");
    assert!(first_b.keyframe);
    for _ in 0..10 {
        let (ua, pa) = a.next(Duration::from_secs(3)).await.expect("viewer A still served");
        let (_, pb) = b.next(Duration::from_secs(3)).await.expect("viewer B served");
        assert_eq!((pa.width, pb.width), (512, 512));
        assert!(!ua.data.is_empty());
    }

    // a keyframe request (PLI) from a viewer is answered with a keyframe, well before the
    // encoder's periodic one (every 120 frames)
    let mut since_key = 0;
    while since_key < 10 {
        let (u, _) = a.next(Duration::from_secs(3)).await.expect("frames");
        since_key = if u.keyframe { 0 } else { since_key + 1 };
    }
    a.viewer.request_keyframe();
    let mut waited = 0;
    loop {
        let (u, _) = a.next(Duration::from_secs(3)).await.expect("frames after the PLI");
        if u.keyframe {
            break;
        }
        waited += 1;
        assert!(waited < 30, "no keyframe within 30 frames of the PLI");
    }

    // ending a viewer: 200, and again a moment later (it was ended: a late DELETE succeeds)
    let http = reqwest::Client::new();
    assert_eq!(http.delete(&b.location).send().await.unwrap().status(), 200);
    assert_eq!(http.delete(&b.location).send().await.unwrap().status(), 200);
    let never = format!("{}/vwr_neverIssued0000000", b.location.rsplit_once('/').unwrap().0);
    assert_eq!(http.delete(&never).send().await.unwrap().status(), 404, "a viewer never issued");

    publisher.shutdown().await;
    h.shutdown().await;
}

/// POSTs a publisher's offer; returns the response (answer not applied yet).
async fn offer(whip: &str) -> (Publisher, reqwest::Response) {
    let (publisher, offer) = Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    (publisher, post_sdp(whip, &offer).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_sessions_replace_each_other_and_end_on_delete_or_peer_close() {
    let _heavy = HEAVY.lock().await;
    let media = WebRtcMedia::new(RtcConfig::default());
    let h = engine(Some(media.clone())).await;
    let c = client(&h);
    let (id, whip, whep) = create(&c, 384).await;

    // first session: RFC 9725 answer headers
    let (mut p1, resp) = offer(&whip).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "content-type"), "application/sdp");
    let loc1 = header(&resp, "location");
    assert!(loc1.starts_with(&format!("{whip}/ses_")), "{loc1}");
    assert!(!header(&resp, "etag").is_empty());
    let link = header(&resp, "link");
    assert!(link.starts_with("<stun:127.0.0.1:") && link.ends_with(">; rel=\"ice-server\""), "{link}");
    assert_eq!(header(&resp, "livepeer-playback-url"), whep);
    // the advertised STUN responder answers Binding requests with our mapped address
    let stun: std::net::SocketAddr = link.trim_start_matches("<stun:").split('>').next().unwrap().parse().unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let txn = [7u8; 12];
    socket.send_to(&dreamgate_rtc::stun::binding_request(&txn), stun).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await.expect("STUN answer").unwrap();
    assert_eq!(dreamgate_rtc::stun::mapped_address(&buf[..n], &txn), Some(socket.local_addr().unwrap()));

    // trickle ICE on the session resource: 204; a bad candidate 400; an unknown session 404
    let trickle = |url: String, body: &'static str| async move {
        let resp = reqwest::Client::new()
            .patch(url)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    };
    let frag =
        "a=mid:0\r\na=candidate:2 1 udp 2122260222 127.0.0.1 54322 typ host generation 0\r\na=end-of-candidates\r\n";
    assert_eq!(trickle(loc1.clone(), frag).await, 204);
    assert_eq!(trickle(loc1.clone(), "a=candidate:nonsense\r\n").await, 400);
    assert_eq!(trickle(format!("{whip}/ses_unknown"), frag).await, 404);

    // ingest accepted, but no output yet: WHEP is 404
    assert_eq!(Watch::open(&whep).await.err().map(|e| e.0), Some(404));

    p1.set_answer(&resp.text().await.unwrap()).unwrap();
    let feed1 = Feed::start_limited(p1, 384, 384, FEED_FRAMES);
    assert!(
        eventually(Duration::from_secs(10), || media.stats(&id).is_some_and(|s| s.first_output.is_some())).await,
        "no output from the first session"
    );
    let s1 = loc1.rsplit('/').next().unwrap().to_owned();
    assert_eq!(media.stats(&id).unwrap().session_id.as_deref(), Some(s1.as_str()));

    // a second POST replaces the first session
    let (mut p2, resp) = offer(&whip).await;
    assert_eq!(resp.status(), 201);
    let loc2 = header(&resp, "location");
    assert_ne!(loc1, loc2);
    let s2 = loc2.rsplit('/').next().unwrap().to_owned();
    assert_eq!(media.stats(&id).unwrap().session_id.as_deref(), Some(s2.as_str()));
    p2.set_answer(&resp.text().await.unwrap()).unwrap();
    let feed2 = Feed::start_limited(p2, 384, 384, FEED_FRAMES);
    let flowing = || media.stats(&id).is_some_and(|s| s.pipeline.frames_out >= 10);
    assert!(eventually(Duration::from_secs(10), flowing).await, "the second session produces no output");
    let mut w = Watch::open(&whep).await.expect("output of the replacing session");
    assert!(w.next(Duration::from_secs(5)).await.expect("frames").0.keyframe);
    // at most 5 viewers per stream, Livepeer's default (offers answered but not connected count too)
    let mut extra = Vec::new();
    for _ in 1..dreamgate_engine::faults::DEFAULT_VIEWERS {
        let (viewer, offer) = Viewer::new(&RtcConfig::default()).await.unwrap();
        assert_eq!(post_sdp(&whep, &offer).await.status(), 201);
        extra.push(viewer);
    }
    let (status, message) = Watch::open(&whep).await.err().expect("one viewer too many");
    assert_eq!(status, 429);
    assert!(message.contains("Too many viewers"), "{message}");
    drop(extra);

    // the replaced session's resource: the engine ended it a moment ago, so its DELETE succeeds
    let http = reqwest::Client::new();
    assert_eq!(http.delete(&loc1).send().await.unwrap().status(), 200);
    assert_eq!(media.stats(&id).unwrap().session_id.as_deref(), Some(s2.as_str()), "the current one lives on");
    feed1.stop().await;

    // DELETE of the current resource ends the ingest: no session, no more input
    assert_eq!(http.delete(&loc2).send().await.unwrap().status(), 200);
    assert_eq!(media.stats(&id).unwrap().session_id, None);
    let last_input = |d: &Value| d["input_status"]["last_input_time"].as_u64();
    let t1 = last_input(&c.stream_status(&id).await.unwrap()["data"]);
    // the publisher keeps sending: ten more frames, none of them recorded
    let sent = feed2.sent();
    assert!(eventually(Duration::from_secs(5), || feed2.sent() >= sent + 10).await);
    assert_eq!(last_input(&c.stream_status(&id).await.unwrap()["data"]), t1, "input still recorded after DELETE");
    feed2.stop().await;

    // a third session whose peer closes on its own: the engine ends the session itself
    let (mut p3, resp) = offer(&whip).await;
    assert_eq!(resp.status(), 201);
    p3.set_answer(&resp.text().await.unwrap()).unwrap();
    let feed3 = Feed::start_limited(p3, 384, 384, FEED_FRAMES);
    let has_session = || media.stats(&id).is_some_and(|s| s.session_id.is_some() && s.frames_received > 5);
    assert!(eventually(Duration::from_secs(10), has_session).await);
    let p3 = feed3.stop().await;
    p3.close();
    assert!(
        eventually(Duration::from_secs(8), || media.stats(&id).is_some_and(|s| s.session_id.is_none())).await,
        "the session outlived its peer"
    );
    assert_eq!(p3.state(), PeerState::Closed);

    // deleting the stream drops its media (viewers included)
    c.delete_stream(&id).await.unwrap();
    assert!(media.stats(&id).is_none());
    h.shutdown().await;
}

/// `last_params_hash` / `last_params_update_time` / `last_params` move when the transform has
/// switched to the new params (the first frame after the PATCH), not when the PATCH answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_params_hash_moves_when_the_transform_switches_not_when_the_patch_answers() {
    let _heavy = HEAVY.lock().await;
    let media = WebRtcMedia::new(RtcConfig::default());
    let h = engine(Some(media.clone())).await;
    let c = client(&h);
    let (id, whip, _) = create(&c, 384).await;
    let inference = |d: &Value| d["inference_status"].clone();
    let created = inference(&wait_status(&c, &id, Duration::ZERO, |_| true).await);
    assert_eq!(created["last_params_update_time"], Value::Null, "{created}");

    let (mut publisher, resp) = offer(&whip).await;
    assert_eq!(resp.status(), 201);
    publisher.set_answer(&resp.text().await.unwrap()).unwrap();
    let feed = Feed::start_limited(publisher, 384, 384, FEED_FRAMES);
    let live = wait_status(&c, &id, Duration::from_secs(10), |d| fps(d, "inference_status") > 0.0).await;
    assert!(fps(&live, "inference_status") > 0.0, "{live}");
    let before = inference(&live);
    assert_eq!(before["last_params_hash"], created["last_params_hash"], "same params: same hash");

    // no input: the PATCH is accepted, but no frame has been transformed with it
    let publisher = feed.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut patch = serde_json::Map::new();
    patch.insert("prompt".into(), json!("a hash that waits"));
    let sent = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    c.update_stream(&id, &dreamgate_model::update_body("stabilityai/sd-turbo", patch)).await.unwrap();
    let waiting = inference(&c.stream_status(&id).await.unwrap()["data"]);
    assert_eq!(waiting["last_params_hash"], before["last_params_hash"], "not applied yet: {waiting}");
    assert_ne!(waiting["last_params"]["prompt"], "a hash that waits", "{waiting}");

    // frames again: the transform switches, and the status says so
    let feed = Feed::start_limited(publisher, 384, 384, FEED_FRAMES);
    let applied = inference(
        &wait_status(&c, &id, Duration::from_secs(10), |d| {
            d["inference_status"]["last_params_hash"] != before["last_params_hash"]
        })
        .await,
    );
    assert_ne!(applied["last_params_hash"], before["last_params_hash"], "{applied}");
    assert_eq!(applied["last_params"]["prompt"], "a hash that waits", "{applied}");
    assert!(applied["last_params_update_time"].as_u64().unwrap() + 50 >= sent, "{applied}");
    drop(feed.stop().await);

    // with no transform running, a PATCH is applied at once (the next pipeline starts with it)
    let (id2, _, _) = create(&c, 384).await;
    let first = inference(&c.stream_status(&id2).await.unwrap()["data"]);
    let mut patch = serde_json::Map::new();
    patch.insert("prompt".into(), json!("no pipeline yet"));
    c.update_stream(&id2, &dreamgate_model::update_body("stabilityai/sd-turbo", patch)).await.unwrap();
    let now = inference(&c.stream_status(&id2).await.unwrap()["data"]);
    assert_ne!(now["last_params_hash"], first["last_params_hash"]);
    assert_eq!(now["last_params"]["prompt"], "no pipeline yet");
    h.shutdown().await;
}

/// `--max-ingest`: beyond the cap a WHIP offer is answered 503 `MEDIA/BUSY` before any work;
/// a stream's new session still replaces its old one; a place frees when a session ends.
/// And an accepted offer costs no codec thread until its first media arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_sessions_are_capped_and_the_codec_thread_starts_with_the_first_media() {
    let _heavy = HEAVY.lock().await;
    let media = WebRtcMedia::with_max_ingest(RtcConfig::default(), 2);
    let h = engine(Some(media.clone())).await;
    let c = client(&h);
    let (a, whip_a, _) = create(&c, 384).await;
    let (b, whip_b, _) = create(&c, 384).await;
    let (_c, whip_c, _) = create(&c, 384).await;

    let (pa, ra) = offer(&whip_a).await;
    assert_eq!(ra.status(), 201);
    let (_pb, rb) = offer(&whip_b).await;
    assert_eq!(rb.status(), 201);
    assert_eq!(media.ingest_sessions(), 2);
    for (id, stats) in [(&a, media.stats(&a).unwrap()), (&b, media.stats(&b).unwrap())] {
        assert!(!stats.transform_running, "{id}: no codec thread before the first media");
    }

    let (_pc, rc) = offer(&whip_c).await;
    assert_eq!(rc.status(), 503);
    let body: Value = rc.json().await.unwrap();
    assert_eq!(body["code"], "MEDIA/BUSY", "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 2"), "{body}");
    assert_eq!(media.ingest_sessions(), 2, "the refused offer took no place");

    // a replacement of a's session is not refused at the cap
    let (pa2, ra2) = offer(&whip_a).await;
    assert_eq!(ra2.status(), 201);
    assert!(eventually(Duration::from_secs(2), || media.ingest_sessions() == 2).await, "the old one freed its place");
    drop(pa);

    // media on a's session: its codec thread starts
    let mut pa2 = pa2;
    pa2.set_answer(&ra2.text().await.unwrap()).unwrap();
    let feed = Feed::start_limited(pa2, 384, 384, FEED_FRAMES);
    assert!(
        eventually(Duration::from_secs(10), || media.stats(&a).is_some_and(|s| s.transform_running)).await,
        "the codec thread starts with the first media"
    );
    drop(feed.stop().await);

    // b ends: c gets its place (a's session may have ended too, its publisher is gone)
    c.delete_stream(&b).await.unwrap();
    assert!(eventually(Duration::from_secs(2), || media.ingest_sessions() <= 1).await, "b freed its place");
    let (_pc, rc) = offer(&whip_c).await;
    assert_eq!(rc.status(), 201);
    h.shutdown().await;
}

/// `load=2s,stall=2s`: the output first shows warm-up frames (the input dimmed, with the
/// progress bar) while the status says LOADING, then the transformed output (ONLINE); once
/// live, the output stops for the stall, then resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shows_the_warmup_frame_and_stall_stops_the_output_then_resumes() {
    let _heavy = HEAVY.lock().await;
    let media = WebRtcMedia::new(RtcConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = EngineConfig {
        media: Some(media.clone() as Arc<dyn dreamgate_engine::MediaBackend>),
        faults: "load=2s,stall=2s".parse().unwrap(),
        ..Default::default()
    };
    let h = start(listener, cfg).await;
    let c = client(&h);
    let (id, whip, whep) = create(&c, 384).await;
    let (mut publisher, resp) = offer(&whip).await;
    publisher.set_answer(&resp.text().await.unwrap()).unwrap();
    let feed = Feed::start_limited(publisher, 384, 384, FEED_FRAMES);
    assert!(eventually(Duration::from_secs(10), || media.stats(&id).is_some_and(|s| s.first_output.is_some())).await);

    // warm-up frames while LOADING: the progress bar's outline and dark track are there
    let mut viewer = Watch::open(&whep).await.expect("WHEP during the load");
    let (_, picture) = viewer.next(Duration::from_secs(3)).await.expect("a warm-up frame");
    let loading = c.stream_status(&id).await.unwrap()["data"].clone();
    assert_eq!(loading["state"], "LOADING", "{loading}");
    let (x0, y0, x1, y1) = dreamgate_media::bar_box(384, 384);
    let luma = |x: u32, y: u32| picture.y[(y * 384 + x) as usize];
    let mid = (y0 + y1) / 2;
    assert!(luma(x1 - 4, mid) < 70, "dark track at the bar's end: {}", luma(x1 - 4, mid));
    assert!(luma((x0 + x1) / 2, y0 - 6) < 110, "dimmed input above the bar: {}", luma((x0 + x1) / 2, y0 - 6));

    // then live, then the stall: a gap of about 2 s in the output, then frames again
    let online = wait_status(&c, &id, Duration::from_secs(10), |d| d["state"] == "ONLINE").await;
    assert_eq!(online["state"], "ONLINE", "{online}");
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(12);
    let mut after_gap = 0;
    while Instant::now() < until && after_gap < 10 {
        if viewer.next(Duration::from_secs(4)).await.is_some() {
            let gap = last.elapsed();
            if gap > longest {
                longest = gap;
            }
            if longest >= Duration::from_millis(1500) {
                after_gap += 1;
            }
            last = Instant::now();
        }
    }
    eprintln!("longest gap in the output: {longest:?}");
    assert!(longest >= Duration::from_millis(1500), "the output stalled: longest gap {longest:?}");
    assert_eq!(after_gap, 10, "and resumed by itself");
    drop(feed.stop().await);
    h.shutdown().await;
}
