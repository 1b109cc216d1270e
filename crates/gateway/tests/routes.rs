//! The gateway in front of a real engine, over loopback HTTP.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_testkit::{eventually, eventually_async, Feed};
use serde_json::{json, Value};

fn api(id: &str, tail: &str) -> String {
    format!("/api/daydream/streams/{id}{tail}")
}

/// Creates a stream with the default payload: its id and the stream object.
async fn created(b: &Browser) -> (String, Value) {
    let stream = b.create().await;
    (stream["id"].as_str().unwrap().to_string(), stream)
}

/// The engine path of a stream's WHIP URL (`/live/video-to-video/<key>/whip`).
fn whip_path(eng: &TestEngine, stream: &Value) -> String {
    stream["whip_url"].as_str().unwrap().trim_start_matches(&eng.base).to_string()
}

/// Publishes a real WHIP offer through the gateway: the relayed answer (201)
/// and the publisher it was applied to (keep it alive while it matters; give
/// it to a [`Feed`] to send frames).
async fn published(b: &Browser, id: &str) -> (Resp, dreamgate_rtc::Publisher) {
    let (mut publisher, offer) = whip_offer().await;
    let r = b.sdp("POST", &api(id, "/whip"), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    publisher.set_answer(&r.text()).expect("the relayed answer is a usable SDP answer");
    (r, publisher)
}

#[tokio::test]
async fn config_reports_local_mode_without_a_session_and_create_sets_a_strict_session_cookie() {
    let (_eng, _gw, b) = stack("").await;
    let r = b.get("/api/daydream/config").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"configured": true, "mode": "local", "playback": {"iframeBase": "https://lvpr.tv/"}}));
    assert!(r.header("set-cookie").is_none(), "a session was issued where none is needed");
    // nor for the page, its files, or a stream route without a session
    for path in ["/", "/definitely-missing", "/api/daydream/streams/str_x/status"] {
        assert!(b.get(path).await.header("set-cookie").is_none(), "{path}");
    }
    // an invalid create needs no session either
    let r = b.post_json("/api/daydream/streams", &json!({"params": {"width": 100}})).await;
    assert_eq!(r.status, 400);
    assert!(r.header("set-cookie").is_none());
    // the create issues one
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cookie = r.header("set-cookie").expect("session cookie on the create");
    assert!(cookie.starts_with("dreamgate_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"));
    // and it is kept
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = b.get(&api(&id, "/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "cookie re-issued to a known session");
}

#[tokio::test]
async fn creates_are_tagged_as_the_gateways() {
    let (eng, _gw, b) = stack("").await;
    let (id, _) = created(&b).await;
    let name = eng.engine.streams().with(&id, |r| r.name.clone()).unwrap();
    assert!(name.starts_with("dreamgate-"), "{name}");
}

#[tokio::test]
async fn create_makes_the_stream_upstream_and_answers_its_object() {
    let (eng, _gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    assert!(id.starts_with("str_"));
    assert!(stream["whip_url"].as_str().unwrap().starts_with(&eng.base));
    assert_eq!(eng.stream_count(), 1);
    assert!(eng.hits.any("POST /v1/streams"));
}

#[tokio::test]
async fn status_is_passed_through_and_not_cached() {
    let (_eng, _gw, b) = stack("").await;
    let (id, _) = created(&b).await;
    let r = b.get(&api(&id, "/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let status = r.json();
    assert_eq!(status["success"], true);
    assert!(status["data"]["state"].is_string(), "{status}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn parameter_updates_accept_every_shape_and_always_send_the_model() {
    let (eng, _gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    let shapes = [
        json!({"pipeline": "streamdiffusion", "params": {"prompt": "one"}}),
        json!({"params": {"prompt": "two"}}),
        json!({"pipeline_params": {"prompt": "three"}}),
        json!({"prompt": "four", "seed": 7}),
    ];
    for (shape, want) in shapes.iter().zip(["one", "two", "three", "four"]) {
        let r = b.patch_json(&api(&id, "/parameters"), shape).await;
        assert_eq!(r.status, 200, "{shape}: {}", r.text());
        let params = eng.params(&id).unwrap();
        assert_eq!(params["prompt"], want);
        assert_eq!(params["model_id"], stream["params"]["model_id"]);
    }
    assert_eq!(eng.params(&id).unwrap()["seed"], 7);
}

#[tokio::test]
async fn invalid_parameters_answer_400_with_details_and_never_reach_the_engine() {
    let (eng, _gw, b) = stack("").await;
    let (id, _) = created(&b).await;
    let patches = || eng.hits.all().iter().filter(|h| h.starts_with("PATCH /v1")).count();
    let patches_before = patches();
    let r = b.patch_json(&api(&id, "/parameters"), &json!({"params": {"width": 100}})).await;
    let v = r.assert_error(400, "Invalid stream configuration");
    assert!(v["details"][0]["field"].as_str().unwrap().contains("width"), "{v}");
    assert_eq!(patches_before, patches(), "an invalid update reached the engine");
}

#[tokio::test]
async fn whip_offer_is_answered_by_the_engine_through_the_gateway_under_its_own_paths() {
    let (eng, _gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    let (r, _publisher) = published(&b, &id).await;
    assert_eq!(r.header("content-type").as_deref(), Some("application/sdp"));
    // absolute URLs of the gateway (browser clients resolve the player's Location against them)
    assert_eq!(r.header("location").unwrap(), format!("{}{}", b.base, api(&id, "/whip")));
    assert_eq!(r.header("livepeer-playback-url").unwrap(), format!("{}{}", b.base, api(&id, "/whep")));
    assert!(r.header("etag").is_some());
    let link = r.header("link").unwrap();
    assert!(link.starts_with("<stun:127.0.0.1:") && link.ends_with(">; rel=\"ice-server\""), "{link}");
    assert!(r.text().starts_with("v=0"));
    assert!(!r.text().contains(&eng.base), "upstream URL leaked into the answer");
    assert!(eng.hits.any(&format!("POST {}", whip_path(&eng, &stream))));
}

#[tokio::test]
async fn whip_trickle_goes_to_the_stored_session_resource() {
    let (eng, _gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    let (_, _publisher) = published(&b, &id).await;
    let r = b
        .request("PATCH", &api(&id, "/whip"), Some("application/trickle-ice-sdpfrag"), b"a=ice-ufrag:x\r\n".to_vec())
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(eng.hits.any(&format!("PATCH {}/ses_", whip_path(&eng, &stream))), "{:?}", eng.hits.all());
}

#[tokio::test]
async fn whep_plays_through_the_gateway_once_there_is_output_and_tears_down_the_viewer() {
    let (eng, _gw, b) = stack("").await;
    let (id, _) = created(&b).await;
    let (_, publisher) = published(&b, &id).await;
    // the publisher connects to the engine and feeds it real frames
    let feed = Feed::start(publisher, 512, 512);
    // WHEP through the gateway's own playback path, once the engine has output
    // (it answers 404 "No output yet" before, which the gateway relays; players retry)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (_viewer, r) = loop {
        let (viewer, view_offer) = dreamgate_rtc::Viewer::new(&dreamgate_rtc::RtcConfig::default()).await.unwrap();
        let r = b.sdp("POST", &api(&id, "/whep"), &view_offer).await;
        if r.status != 404 || tokio::time::Instant::now() >= deadline {
            break (viewer, r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("application/sdp"));
    assert_eq!(r.header("location").unwrap(), format!("{}{}", b.base, api(&id, "/whep")));
    assert!(eng.hits.any(&format!("POST /live/video-to-video/{id}/whep")));
    let r = b.delete(&api(&id, "/whep")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eng.hits.any(&format!("DELETE /live/video-to-video/{id}/whep/vwr_")), "{:?}", eng.hits.all());
    feed.stop().await;
}

/// How many WHEP offers of stream `id` reached the engine.
fn whep_posts(eng: &TestEngine, id: &str) -> usize {
    eng.hits.count(&format!("POST /live/video-to-video/{id}/whep"))
}

#[tokio::test]
async fn without_whep_hold_the_upstreams_404_before_output_is_relayed_at_once() {
    let (eng, _gw, b) = stack("").await;
    let (id, _) = created(&b).await;
    let (_, _publisher) = published(&b, &id).await;
    let (_viewer, view_offer) = dreamgate_rtc::Viewer::new(&dreamgate_rtc::RtcConfig::default()).await.unwrap();
    let r = b.sdp("POST", &api(&id, "/whep"), &view_offer).await;
    assert_eq!(r.status, 404, "nothing was fed: no output yet; {}", r.text());
    assert_eq!(whep_posts(&eng, &id), 1, "sent once: {:?}", eng.hits.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_whep_hold_an_offer_before_output_is_held_and_answered_once_there_is_output() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| cfg.whep_hold = Duration::from_secs(20)).await;
    let b = std::sync::Arc::new(Browser::new(&gw.base_url()));
    let (id, _) = created(&b).await;
    let (_, publisher) = published(&b, &id).await;
    let (_viewer, view_offer) = dreamgate_rtc::Viewer::new(&dreamgate_rtc::RtcConfig::default()).await.unwrap();
    let held = tokio::spawn({
        let (b, path) = (b.clone(), api(&id, "/whep"));
        async move { b.sdp("POST", &path, &view_offer).await }
    });
    // nothing is fed yet: the engine answers 404 and the gateway sends the offer again
    assert!(eventually(Duration::from_secs(10), || whep_posts(&eng, &id) >= 3).await, "{:?}", eng.hits.all());
    assert!(!held.is_finished(), "the 404s are held, not relayed");
    let feed = Feed::start(publisher, 512, 512);
    let r = held.await.unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location").unwrap(), format!("{}{}", b.base, api(&id, "/whep")));
    assert!(r.text().starts_with("v=0"));
    feed.stop().await;
    // operators see the held offers (process-wide counter: only this test holds any)
    let m = reqwest::get(format!("{}/metrics", gw.base_url())).await.unwrap().text().await.unwrap();
    let held =
        m.lines().find_map(|l| l.strip_prefix("dreamgate_whep_offers_held_total ")).map(|v| v.parse::<f64>().unwrap());
    assert!(held.is_some_and(|n| n >= 2.0), "{held:?}");
}

#[tokio::test]
async fn whip_teardown_goes_to_the_stored_session_resource() {
    let (eng, _gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    let (_, _publisher) = published(&b, &id).await;
    let r = b.delete(&api(&id, "/whip")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eng.hits.any(&format!("DELETE {}/ses_", whip_path(&eng, &stream))));
}

#[tokio::test]
async fn delete_ends_the_stream_upstream_then_the_owner_gets_404_and_may_create_again() {
    let (eng, gw, b) = stack("").await;
    let (id, stream) = created(&b).await;
    let r = b.delete(&api(&id, "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["success"], true);
    assert_eq!(eng.stream_count(), 0);
    assert!(eng.hits.any(&format!("DELETE /v1/streams?id={id}")));
    // the owner now learns the stream is gone; deleting again is harmless
    b.get(&api(&id, "/status")).await.assert_error(404, "Stream not found");
    assert_eq!(b.delete(&api(&id, "")).await.status, 200);
    assert_eq!(gw.open_streams().await, 0);
    // and may create a new one
    let again = b.create().await;
    assert_ne!(again["id"], stream["id"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn whip_resource_parameter_is_accepted_only_for_the_stored_url() {
    let (eng, _gw, b) = stack("").await;
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    let whip_url = stream["whip_url"].as_str().unwrap();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (_p, offer) = whip_offer().await;

    for other in [
        format!("{}/live/video-to-video/stk_other/whip", eng.base),
        "https://ai.livepeer.com/live/video-to-video/stk_x/whip".to_string(),
        "http://127.0.0.1:1/whip".to_string(),
    ] {
        let before = eng.hits.len();
        let r = b.sdp("POST", &format!("{}?resource={}", api(id, "/whip"), enc(&other)), &offer).await;
        r.assert_error(400, "Invalid resource");
        assert_eq!(eng.hits.len(), before, "refused resource still reached the engine");
    }
    let r = b.sdp("POST", &format!("{}?resource={}", api(id, "/whip"), enc(whip_url)), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Every stream route, for a stream the caller's session did not create.
async fn foreign_requests(b: &Browser, id: &str, offer: &str) -> Vec<(String, Resp)> {
    let mut out = Vec::new();
    out.push(("status".into(), b.get(&api(id, "/status")).await));
    out.push(("patch".into(), b.patch_json(&api(id, "/parameters"), &json!({"prompt": "x"})).await));
    out.push(("whip post".into(), b.sdp("POST", &api(id, "/whip"), offer).await));
    out.push((
        "whip patch".into(),
        b.request("PATCH", &api(id, "/whip"), Some("application/trickle-ice-sdpfrag"), b"a=x\r\n".to_vec()).await,
    ));
    out.push(("whip delete".into(), b.delete(&api(id, "/whip")).await));
    out.push(("whep post".into(), b.sdp("POST", &api(id, "/whep"), offer).await));
    out.push(("whep delete".into(), b.delete(&api(id, "/whep")).await));
    out.push(("end".into(), b.end_beacon(Some(id)).await));
    out.push(("delete".into(), b.delete(&api(id, "")).await));
    out
}

#[tokio::test]
async fn other_sessions_get_403_and_the_engine_receives_nothing() {
    let (eng, gw, owner) = stack("").await;
    let stream = owner.create().await;
    let id = stream["id"].as_str().unwrap().to_string();
    // the owner has a live WHIP session and a known WHEP URL, so every route has a target
    let (_p, offer) = whip_offer().await;
    assert_eq!(owner.sdp("POST", &api(&id, "/whip"), &offer).await.status, 201);

    // a stream created directly upstream (by no session)
    let direct = DaydreamClient::new(eng.base.parse().unwrap(), ApiKey::new(KEY), Duration::from_secs(5)).unwrap();
    let orphan = direct.create_stream(&create_payload()).await.unwrap();
    let orphan_id = orphan["id"].as_str().unwrap().to_string();

    let other = Browser::new(&gw.base_url());
    other.create().await; // gets its own session (and stream)
    assert!(other.cookie().is_some());
    assert_ne!(other.cookie(), owner.cookie());
    let nobody = Browser::new(&gw.base_url()); // no session at all
    let forged = Browser::new(&gw.base_url()); // a well-formed cookie nobody issued
    forged.set_cookie(&format!("dreamgate_session={}", "ab".repeat(16)));

    for (who, b) in [("other session", &other), ("forged session", &forged), ("no session", &nobody), ("owner", &owner)]
    {
        for target in [&id, &orphan_id] {
            if who == "owner" && *target == id {
                continue;
            }
            let before = eng.hits.all();
            for (route, r) in foreign_requests(b, target, &offer).await {
                assert_eq!(r.status, 403, "{who} {route} {target}: {}", r.text());
                assert_eq!(r.json()["error"], "Stream not owned by active session", "{who} {route}");
            }
            assert_eq!(eng.hits.all(), before, "{who} reached the engine");
        }
    }
    // nothing changed for the owner
    assert_eq!(eng.stream_count(), 3);
    assert!(nobody.cookie().is_none(), "a refused request issued a session");
    assert_eq!(owner.get(&api(&id, "/status")).await.status, 200);
}

#[tokio::test]
async fn one_stream_per_session_answers_409_with_the_active_id() {
    let (eng, gw, b) = stack("").await;
    let first = b.create().await;
    let before = eng.hits.len();
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    let v = r.assert_error(409, "Stream already active");
    assert_eq!(v["activeStreamId"], first["id"]);
    assert_eq!(eng.hits.len(), before);
    assert_eq!(eng.stream_count(), 1);
    // another session is independent
    Browser::new(&gw.base_url()).create().await;
    assert_eq!(eng.stream_count(), 2);
}

#[tokio::test]
async fn mutating_routes_need_a_same_or_allowed_origin() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| {
        cfg.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let mut b = Browser::new(&gw.base_url());
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let before = eng.hits.len();
    for origin in [None, Some("https://evil.example"), Some("null"), Some("http://127.0.0.1:1")] {
        b.origin = origin.map(str::to_string);
        for r in [
            b.post_json("/api/daydream/streams", &create_payload()).await,
            b.patch_json(&api(&id, "/parameters"), &json!({"prompt": "x"})).await,
            b.delete(&api(&id, "")).await,
            b.end_beacon(Some(&id)).await,
        ] {
            r.assert_error(403, "Forbidden origin");
        }
    }
    assert_eq!(eng.hits.len(), before, "a cross-origin request reached the engine");
    // reads need no Origin
    b.origin = None;
    assert_eq!(b.get(&api(&id, "/status")).await.status, 200);
    // a configured origin is accepted
    b.origin = Some("https://app.example".into());
    let r = b.patch_json(&api(&id, "/parameters"), &json!({"prompt": "allowed"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(eng.params(&id).unwrap()["prompt"], "allowed");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let (eng, gw, b) = stack("").await;

    let r = b.request("POST", "/api/daydream/streams", Some("application/json"), b"{not json".to_vec()).await;
    r.assert_error(400, "Malformed JSON");
    let r = b.request("POST", "/api/daydream/streams", Some("application/json"), vec![]).await;
    r.assert_error(400, "Malformed JSON");
    let r = b
        .post_json(
            "/api/daydream/streams",
            &json!({"pipeline": "streamdiffusion", "params": {"width": 100, "num_inference_steps": 0}}),
        )
        .await;
    let v = r.assert_error(400, "Invalid stream configuration");
    let details = v["details"].as_array().unwrap();
    assert!(details.len() >= 2, "{v}");
    assert!(details.iter().all(|d| d["field"].is_string() && d["message"].is_string()));

    // 100 KiB JSON limit (a valid payload padded past it)
    let mut big = create_payload();
    big["params"]["negative_prompt"] = Value::String("x".repeat(100 * 1024));
    b.post_json("/api/daydream/streams", &big).await.assert_error(413, "Payload too large");
    // without Content-Length (chunked) too
    let body = serde_json::to_vec(&big).unwrap();
    let status = raw_chunked_post(&gw.base_url(), "/api/daydream/streams", &body).await;
    assert_eq!(status, 413);
    assert_eq!(eng.stream_count(), 0);
    assert_eq!(eng.hits.len(), 0, "a refused body reached the engine");

    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    let before = eng.hits.len();
    b.request("PATCH", &api(id, "/parameters"), Some("application/json"), b"[1,".to_vec())
        .await
        .assert_error(400, "Malformed JSON");
    // 64 KiB SDP limit
    let sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(64 * 1024 / 5));
    b.sdp("POST", &api(id, "/whip"), &sdp).await.assert_error(413, "Payload too large");
    // wrong content types
    let r = b.request("POST", &api(id, "/whip"), Some("text/plain"), b"v=0\r\n".to_vec()).await;
    r.assert_error(415, "Unsupported media type");
    let r = b.request("PATCH", &api(id, "/whip"), Some("application/sdp"), b"a=x\r\n".to_vec()).await;
    r.assert_error(415, "Unsupported media type");
    let r = b.request("POST", "/api/daydream/streams/end", Some("text/plain"), b"{oops".to_vec()).await;
    r.assert_error(400, "Malformed JSON");
    assert_eq!(eng.hits.len(), before, "a refused body reached the engine");

    // unknown routes and methods are JSON too
    b.get("/api/daydream/nope").await.assert_error(404, "Not found");
    let v = b.request("PUT", &api(id, ""), None, vec![]).await.assert_error(405, "Method not allowed");
    assert_eq!(v["message"], format!("PUT is not allowed on {}", api(id, "")));
    b.get("/api/daydream/streams/bad%20id/status").await.assert_error(404, "Unknown stream");
}

/// GETs `path` exactly as given (no client-side normalisation) over a raw socket; returns the status.
async fn raw_get_status(base: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// POSTs `body` with `Transfer-Encoding: chunked` over a raw socket; returns the status.
async fn raw_chunked_post(base: &str, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {base}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(16 * 1024) {
        // the server may answer 413 and close before everything is sent
        if sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || sock.write_all(chunk).await.is_err()
            || sock.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn end_beacon_deletes_the_stream_upstream() {
    let (eng, _gw, b) = stack("").await;
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    // sendBeacon sends text/plain
    let r = b.end_beacon(Some(id)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(eng.stream_count(), 0, "the end beacon left the paid stream running");
    assert!(eng.hits.any(&format!("DELETE /v1/streams?id={id}")));
    // repeated beacon: harmless
    let r = b.end_beacon(Some(id)).await;
    assert_eq!(r.status, 200);
    // without a body: the session's active stream
    let second = b.create().await;
    let r = b.end_beacon(None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], second["id"]);
    assert_eq!(eng.stream_count(), 0);
}

#[tokio::test]
async fn security_headers_cookies_and_static_files() {
    let (eng, gw, b) = stack("").await;

    for path in ["/", "/api/daydream/config", "/definitely-missing"] {
        let r = b.get(path).await;
        let csp = r.header("content-security-policy").unwrap();
        for d in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-src https://lvpr.tv",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(d), "{path}: {csp}");
        }
        assert!(r.header("permissions-policy").unwrap().starts_with("camera=(self)"));
        assert_eq!(r.header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
        let api = path.starts_with("/api/");
        assert_eq!(r.header("cache-control").as_deref() == Some("no-store"), api, "{path}");
    }

    // the page is embedded in the binary: always served at /
    let r = b.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"), "{:?}", r.header("content-type"));
    assert!(r.text().contains("<title>Dreamgate — Dream</title>"), "{}", r.text());
    assert!(r.header("content-security-policy").unwrap().contains("default-src 'self'"));
    // paths leaving the web root are not files: 404 (normalised by the client, and raw)
    b.get("/lib/../../Cargo.toml").await.assert_error(404, "Not found");
    for raw in ["/lib/../../Cargo.toml", "/../Cargo.toml", "/%2e%2e/%2e%2e/Cargo.toml", "/lib/..%2f..%2fCargo.toml"] {
        assert_eq!(raw_get_status(&gw.base_url(), raw).await, 404, "{raw}");
    }

    // Secure cookies over https (config flag), X-Forwarded-Proto trusted only when configured
    // (the cookie comes with the create, whose Origin must be the own origin: https:// when secure)
    let cookie_for = |gw_base: String, xfp: bool, https_origin: bool| async move {
        let origin = if https_origin { gw_base.replace("http://", "https://") } else { gw_base.clone() };
        let mut req = reqwest::Client::new()
            .post(format!("{gw_base}/api/daydream/streams"))
            .header("origin", origin)
            .json(&create_payload());
        if xfp {
            req = req.header("x-forwarded-proto", "https");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 201);
        resp.headers()["set-cookie"].to_str().unwrap().to_string()
    };
    assert!(!cookie_for(gw.base_url(), true, false).await.contains("Secure"), "untrusted X-Forwarded-Proto honoured");
    let https = gateway(&eng.base, |cfg| cfg.https = true).await;
    assert!(cookie_for(https.base_url(), false, true).await.ends_with("; Secure"));
    let proxied = gateway(&eng.base, |cfg| cfg.trust_forwarded_proto = true).await;
    assert!(cookie_for(proxied.base_url(), true, true).await.ends_with("; Secure"));
    assert!(!cookie_for(proxied.base_url(), false, false).await.contains("Secure"));
    // behind https the own origin is https://host
    let mut hb = Browser::new(&https.base_url());
    hb.origin = Some(https.base_url().replace("http://", "https://"));
    assert_eq!(hb.post_json("/api/daydream/streams", &create_payload()).await.status, 201);
}

#[tokio::test]
async fn upstream_4xx_keep_their_status_and_details() {
    // patch=405: the engine refuses parameter updates like some Daydream streams do
    let (_eng, _gw, b) = stack("patch=405").await;
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    let r = b.patch_json(&api(id, "/parameters"), &json!({"prompt": "x"})).await;
    assert_eq!(r.status, 405, "{}", r.text());
    let v = r.json();
    assert!(v["error"].is_string() && v["message"].is_string());
    assert_eq!(v["details"]["status"], 405, "{v}");
}

#[tokio::test]
async fn end_beacon_during_create_deletes_the_stream_once_created() {
    let (eng, gw, b) = stack("").await;
    let b = std::sync::Arc::new(b);
    // a session first (its own stream, ended: the slot is free again)
    let (first, _) = created(&b).await;
    assert_eq!(b.delete(&api(&first, "")).await.status, 200);
    // the create reaches the engine and is held there until the beacon has been answered
    let creates_before = eng.hits.all().iter().filter(|h| h.starts_with("POST /v1/streams")).count();
    eng.hold_creates();
    let creator = b.clone();
    let create = tokio::spawn(async move { creator.post_json("/api/daydream/streams", &create_payload()).await });
    assert!(
        eventually(Duration::from_secs(10), || eng
            .hits
            .all()
            .iter()
            .filter(|h| h.starts_with("POST /v1/streams"))
            .count()
            > creates_before)
        .await,
        "the create never reached the engine"
    );
    let r = b.end_beacon(None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pending"], true, "{}", r.text());
    assert_eq!(eng.stream_count(), 0, "the create was not held");
    eng.release_creates();
    let created = create.await.unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            eng.engine.streams().with(&id, |_| ()).is_none() && gw.open_streams().await == 0
        })
        .await,
        "the stream ended during its create is still running"
    );
    assert!(eng.hits.any(&format!("DELETE /v1/streams?id={id}")));
}

#[tokio::test]
async fn a_client_chosen_session_id_is_replaced_and_owns_nothing() {
    let (eng, gw, victim) = stack("").await;
    // an attacker plants a well-formed id of its choosing in the victim's browser
    let planted = format!("dreamgate_session={}", "ab".repeat(16));
    victim.set_cookie(&planted);
    let r = victim.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let fresh = r.header("set-cookie").expect("a client-chosen id gets a fresh session cookie");
    assert!(fresh.starts_with("dreamgate_session=") && !fresh.contains(&"ab".repeat(16)), "{fresh}");
    assert_ne!(victim.cookie().as_deref(), Some(planted.as_str()));

    // the victim works under the issued session ...
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = victim.get(&api(&id, "/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "a real session cookie was replaced");

    // ... which the planted id cannot reach: it is not resumed, and a new session owns nothing
    let attacker = Browser::new(&gw.base_url());
    for _ in 0..2 {
        attacker.set_cookie(&planted);
        let before = eng.hits.len();
        let r = attacker.get(&api(&id, "/status")).await;
        r.assert_error(403, "Stream not owned by active session");
        assert!(r.header("set-cookie").is_none(), "a refused request issued a session");
        let r = attacker.end_beacon(None).await;
        assert_eq!(r.json()["id"], Value::Null, "{}", r.text());
        assert_eq!(eng.hits.len(), before, "the planted id reached the engine");
    }
    assert_eq!(eng.stream_count(), 1);
}

#[tokio::test]
async fn own_ended_stream_is_404_others_403_malformed_404() {
    let (eng, gw, owner) = stack("").await;
    let (_p, offer) = whip_offer().await;
    let id = owner.create().await["id"].as_str().unwrap().to_string();
    assert_eq!(owner.delete(&api(&id, "")).await.status, 200);
    assert_eq!(eng.stream_count(), 0);

    let before = eng.hits.len();
    // the owner: every stream route says the stream has ended (404), except the
    // idempotent end routes (200)
    for (route, r) in foreign_requests(&owner, &id, &offer).await {
        if route == "end" || route == "delete" {
            assert_eq!(r.status, 200, "{route}: {}", r.text());
        } else {
            r.assert_error(404, "Stream not found");
        }
    }
    // another session: 403 for the same (ended) id, as for any id it does not own
    let other = Browser::new(&gw.base_url());
    for target in [id.as_str(), "str_never_existed"] {
        for (route, r) in foreign_requests(&other, target, &offer).await {
            assert_eq!(r.status, 403, "{route} {target}: {}", r.text());
            assert_eq!(r.json()["error"], "Stream not owned by active session");
        }
    }
    assert_eq!(eng.hits.len(), before, "an ended or foreign stream's request reached the engine");
    // a malformed id is 404 for everyone
    for b in [&owner, &other] {
        b.get("/api/daydream/streams/str.bad/status").await.assert_error(404, "Unknown stream");
        b.delete("/api/daydream/streams/str%20bad").await.assert_error(404, "Unknown stream");
    }
}

/// `--allowed-origin`: CORS (preflight and answer headers) on the API and WHIP/WHEP routes for
/// those origins only; `--public-url`: `Location` and `Livepeer-Playback-URL` under it.
#[tokio::test]
async fn cors_for_allowed_origins_only_and_absolute_urls_under_the_public_url() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| {
        cfg.allowed_origins = vec!["https://app.example".into()];
        cfg.public_url = Some("https://dream.example".parse().unwrap());
    })
    .await;
    let http = reqwest::Client::new();
    let base = gw.base_url();
    let preflight = |origin: &'static str, path: String| {
        http.request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    for path in ["/api/daydream/streams".to_owned(), api("str_x", "/whip"), api("str_x", "/whep")] {
        let r = preflight("https://app.example", path.clone()).await.unwrap();
        assert_eq!(r.status(), 204, "{path}");
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert_eq!(h("access-control-allow-origin"), "https://app.example");
        assert_eq!(h("access-control-allow-credentials"), "true");
        assert!(
            h("access-control-allow-methods").contains("POST") && h("access-control-allow-methods").contains("DELETE")
        );
        assert!(h("access-control-allow-headers").contains("content-type"));
        let r = preflight("https://evil.example", path.clone()).await.unwrap();
        assert_ne!(r.status(), 204, "{path}");
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
    assert_eq!(eng.hits.len(), 0, "preflights never reach the engine");

    // an allowed origin's answers carry the grant; the WHIP answer's URLs are absolute
    let mut b = Browser::new(&base);
    b.origin = Some("https://app.example".into());
    let (id, _) = created(&b).await;
    let (r, _publisher) = published(&b, &id).await;
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("https://app.example"));
    assert!(r.header("access-control-expose-headers").unwrap().contains("Livepeer-Playback-URL"));
    assert_eq!(r.header("location").unwrap(), format!("https://dream.example{}", api(&id, "/whip")));
    assert_eq!(r.header("livepeer-playback-url").unwrap(), format!("https://dream.example{}", api(&id, "/whep")));
    // the gateway's own page gets no CORS header (same origin needs none), nor does another origin
    b.origin = Some(base.clone());
    assert!(b.get(&api(&id, "/status")).await.header("access-control-allow-origin").is_none());
    b.origin = Some("https://evil.example".into());
    assert!(b.get(&api(&id, "/status")).await.header("access-control-allow-origin").is_none());
}
