//! Several gateways on one Redis in front of one engine (skipped, with the
//! reason printed, when `DREAMGATE_TEST_REDIS` is unset; `scripts/test.sh`
//! sets it). Each test keeps its keys under a prefix of its own.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_testkit::{eventually, eventually_async};
use serde_json::json;

fn api(id: &str, tail: &str) -> String {
    format!("/api/daydream/streams/{id}{tail}")
}

/// A browser on `gw` carrying `cookie` (the same browser reaching another instance).
fn same_browser(gw: &dreamgate_gateway::GatewayHandle, cookie: &str) -> Browser {
    let b = Browser::new(&gw.base_url());
    b.set_cookie(cookie);
    b
}

#[tokio::test]
async fn any_instance_serves_any_session() {
    let Some(store) = redis_store("any_instance") else { return };
    let eng = TestEngine::keyed("").await;
    let a = gateway(&eng.base, |c| c.store = store.clone()).await;
    let b = gateway(&eng.base, |c| c.store = store.clone()).await;
    let on_a = Browser::new(&a.base_url());
    let id = on_a.create().await["id"].as_str().unwrap().to_string();
    let cookie = on_a.cookie().unwrap();

    // the same browser, balanced to B: status, parameters, WHIP, WHIP trickle
    let on_b = same_browser(&b, &cookie);
    let r = on_b.get(&api(&id, "/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "B did not resume A's session");
    let r = on_b.patch_json(&api(&id, "/parameters"), &json!({"prompt": "from b"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(eng.params(&id).unwrap()["prompt"], "from b");
    let (mut publisher, offer) = whip_offer().await;
    let r = on_b.sdp("POST", &api(&id, "/whip"), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    publisher.set_answer(&r.text()).unwrap();
    // the WHIP session resource B stored is used by A
    let on_a = same_browser(&a, &cookie);
    let r = on_a
        .request("PATCH", &api(&id, "/whip"), Some("application/trickle-ice-sdpfrag"), b"a=ice-ufrag:x\r\n".to_vec())
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(eng.hits.any("PATCH /live/video-to-video/"), "{:?}", eng.hits.all());

    // one stream per session across instances; other sessions are refused on both
    let r = on_b.post_json("/api/daydream/streams", &create_payload()).await;
    assert_eq!(r.assert_error(409, "Stream already active")["activeStreamId"], id);
    for gw in [&a, &b] {
        Browser::new(&gw.base_url())
            .get(&api(&id, "/status"))
            .await
            .assert_error(403, "Stream not owned by active session");
    }
    // ended on B: gone for A too
    assert_eq!(on_b.delete(&api(&id, "")).await.status, 200);
    on_a.get(&api(&id, "/status")).await.assert_error(404, "Stream not found");
    assert_eq!(eng.stream_count(), 0);
    assert_eq!(eng.deletes_of(&id), 1);
}

#[tokio::test]
async fn a_crashed_instance_loses_nothing_and_the_other_carries_on() {
    let Some(store) = redis_store("crash") else { return };
    let eng = TestEngine::keyed("").await;
    let a = gateway(&eng.base, |c| c.store = store.clone()).await;
    let b = gateway(&eng.base, |c| c.store = store.clone()).await;
    let on_a = Browser::new(&a.base_url());
    let id = on_a.create().await["id"].as_str().unwrap().to_string();
    let (_publisher, offer) = whip_offer().await;
    assert_eq!(on_a.sdp("POST", &api(&id, "/whip"), &offer).await.status, 201);
    let cookie = on_a.cookie().unwrap();

    drop(a); // a crash: the server and reaper stop, nothing is deleted

    let on_b = same_browser(&b, &cookie);
    assert_eq!(on_b.get(&api(&id, "/status")).await.status, 200);
    let r = on_b.patch_json(&api(&id, "/parameters"), &json!({"prompt": "after the crash"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = on_b
        .request("PATCH", &api(&id, "/whip"), Some("application/trickle-ice-sdpfrag"), b"a=ice-ufrag:y\r\n".to_vec())
        .await;
    assert_eq!(r.status, 204, "the WHIP resource recorded by the crashed instance: {}", r.text());
    assert_eq!(eng.stream_count(), 1);
    assert_eq!(eng.deletes_of(&id), 0);
}

#[tokio::test]
async fn silent_streams_are_deleted_exactly_once_by_racing_reapers() {
    let Some(store) = redis_store("reapers") else { return };
    let eng = TestEngine::keyed("").await;
    let fast = |c: &mut dreamgate_gateway::GatewayConfig| {
        c.store = store.clone();
        c.registry.reap_after = Duration::from_secs(1);
        c.reap_interval = Duration::from_millis(20);
        // six streams from one address (127.0.0.1): the per-address caps, counted across
        // instances in Redis, are not what this test is about
        c.client_limits = dreamgate_gateway::limits::LimitsConfig::unlimited();
    };
    let gws = [gateway(&eng.base, fast).await, gateway(&eng.base, fast).await, gateway(&eng.base, fast).await];
    let mut ids = Vec::new();
    for i in 0..6 {
        let b = Browser::new(&gws[i % 3].base_url());
        ids.push(b.create().await["id"].as_str().unwrap().to_string());
    }
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            eng.stream_count() == 0 && gws[0].open_streams().await == 0
        })
        .await,
        "silent streams not reaped: {} left",
        eng.stream_count()
    );
    for id in &ids {
        assert_eq!(eng.deletes_of(id), 1, "{id}: {:?}", eng.hits.all());
    }
}

#[tokio::test]
async fn a_restarted_instance_keeps_its_sessions_and_its_shutdown_deletes_nothing() {
    let Some(store) = redis_store("restart") else { return };
    let eng = TestEngine::keyed("").await;
    let a = gateway(&eng.base, |c| c.store = store.clone()).await;
    let on_a = Browser::new(&a.base_url());
    let id = on_a.create().await["id"].as_str().unwrap().to_string();
    let cookie = on_a.cookie().unwrap();

    let report = a.shutdown().await; // a deploy: SIGTERM
    assert!(report.deleted.is_empty() && report.not_deleted.is_empty(), "{report:?}");
    assert_eq!(eng.stream_count(), 1, "the Dream ended with the deploy");
    assert_eq!(eng.deletes_of(&id), 0);

    let again = gateway(&eng.base, |c| c.store = store.clone()).await;
    let b = same_browser(&again, &cookie);
    let r = b.get(&api(&id, "/status")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_none(), "the session was not kept");
    assert_eq!(b.end_beacon(None).await.json()["id"], id.as_str());
    assert_eq!(eng.stream_count(), 0);
}

#[tokio::test]
async fn shutdown_during_a_create_records_the_stream_and_another_instance_reaps_it() {
    let Some(store) = redis_store("shutdown_create") else { return };
    let eng = TestEngine::keyed("").await;
    // every instance shares the timing rules (the reap deadline is stored with the stream)
    let fast = |c: &mut dreamgate_gateway::GatewayConfig| {
        c.store = store.clone();
        c.registry.reap_after = Duration::from_secs(1);
        c.reap_interval = Duration::from_millis(50);
    };
    let a = gateway(&eng.base, fast).await;
    let browser = Browser::new(&a.base_url());
    eng.hold_answers();
    let create = tokio::spawn(async move { browser.post_json("/api/daydream/streams", &create_payload()).await });
    assert!(
        eventually(Duration::from_secs(10), || eng.stream_count() == 1).await,
        "the create never reached the engine"
    );
    let stopping = tokio::spawn(a.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await; // let the shutdown begin (either order ends the same)
    eng.release_answers();
    let created = create.await.unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let report = stopping.await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(eng.deletes_of(&id), 0);

    // nobody polls it: the next instance's reaper deletes it, once
    let _b = gateway(&eng.base, fast).await;
    assert!(eventually(Duration::from_secs(20), || eng.stream_count() == 0).await, "the stream outlived the gateways");
    assert_eq!(eng.deletes_of(&id), 1);
}

#[tokio::test]
async fn per_client_limits_are_counted_across_instances() {
    let Some(store) = redis_store("limits") else { return };
    let eng = TestEngine::keyed("").await;
    let limits = dreamgate_gateway::limits::LimitsConfig {
        live_streams_per_address: 0,
        creates_per_session: 0,
        creates_per_address: 2,
        window: Duration::from_secs(60),
    };
    let a = gateway(&eng.base, |c| {
        c.store = store.clone();
        c.client_limits = limits;
    })
    .await;
    let b = gateway(&eng.base, |c| {
        c.store = store.clone();
        c.client_limits = limits;
    })
    .await;
    // one client address (127.0.0.1), new browsers, balanced A, B, A: the third create is the
    // address's third in the window, whichever instance answers it
    for gw in [&a, &b] {
        let browser = Browser::new(&gw.base_url());
        let r = browser.post_json("/api/daydream/streams", &create_payload()).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        assert_eq!(browser.delete(&api(&id, "")).await.status, 200);
    }
    let r = Browser::new(&a.base_url()).post_json("/api/daydream/streams", &create_payload()).await;
    r.assert_error(429, "Too many requests");
    assert!(r.header("retry-after").is_some(), "429 without Retry-After");
    assert_eq!(eng.stream_count(), 0, "the refused create reached the upstream");
}
