//! Upstream failures (down, slow, 5xx) and the reaper, against real servers.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_testkit::eventually;

#[tokio::test]
async fn upstream_down_is_502() {
    // a port that was just free: nothing listens there
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let gw = gateway(&format!("http://{closed}"), |_| {}).await;
    let b = Browser::new(&gw.base_url());
    assert_eq!(b.get("/api/daydream/config").await.status, 200);
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    r.assert_error(502, "Upstream unreachable");
    // the failed create released the session's slot: it fails the same way again (not 409)
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    r.assert_error(502, "Upstream unreachable");
    assert_eq!(gw.open_streams().await, 0);
}

#[tokio::test]
async fn upstream_5xx_is_502_with_details() {
    let (_eng, _gw, b) = stack("burst=1").await;
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    let v = r.assert_error(502, "Upstream error");
    assert_eq!(v["upstreamStatus"], 503);
    assert!(v["details"].is_object(), "{v}");
    // the burst is over: the next create works
    b.create().await;
}

#[tokio::test]
async fn upstream_slower_than_the_timeout_is_504() {
    let eng = TestEngine::keyed("slow=800ms").await;
    // API calls time out
    let impatient = gateway(&eng.base, |cfg| cfg.api_timeout = Duration::from_millis(150)).await;
    let b = Browser::new(&impatient.base_url());
    let r = b.post_json("/api/daydream/streams", &create_payload()).await;
    r.assert_error(504, "Upstream timeout");

    // WHIP has its own, shorter timeout
    let gw = gateway(&eng.base, |cfg| {
        cfg.api_timeout = Duration::from_secs(10);
        cfg.whip_timeout = Duration::from_millis(150);
    })
    .await;
    let b = Browser::new(&gw.base_url());
    let stream = b.create().await;
    let id = stream["id"].as_str().unwrap();
    assert_eq!(b.get(&format!("/api/daydream/streams/{id}/status")).await.status, 200);
    let (_p, offer) = whip_offer().await;
    let r = b.sdp("POST", &format!("/api/daydream/streams/{id}/whip"), &offer).await;
    r.assert_error(504, "Upstream timeout");
}

#[tokio::test]
async fn silent_sessions_streams_are_reaped_and_polled_ones_survive() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |cfg| {
        cfg.registry.reap_after = Duration::from_secs(2);
        cfg.reap_interval = Duration::from_millis(100);
    })
    .await;
    let silent = Browser::new(&gw.base_url());
    let silent_id = silent.create().await["id"].as_str().unwrap().to_string();
    let polled = Browser::new(&gw.base_url());
    let polled_id = polled.create().await["id"].as_str().unwrap().to_string();
    assert_eq!(eng.stream_count(), 2);

    // keep polling one stream's status (as the page does) until the other is gone
    let gone = |id: &str| eng.engine.streams().with(id, |_| ()).is_none();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !gone(&silent_id) {
        assert!(tokio::time::Instant::now() < deadline, "silent stream never reaped");
        let r = polled.get(&format!("/api/daydream/streams/{polled_id}/status")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(eng.hits.any(&format!("DELETE /v1/streams?id={silent_id}")));
    assert!(!gone(&polled_id), "a polled stream was reaped");
    // the silent session learns its stream ended, and may start again
    silent.get(&format!("/api/daydream/streams/{silent_id}/status")).await.assert_error(404, "Stream not found");
    silent.create().await;

    // once the other session goes silent too, its stream goes
    assert!(eventually(Duration::from_secs(20), || gone(&polled_id)).await, "polled stream not reaped after silence");
}
