//! No path leaves a paid stream behind: creates answered after the timeout,
//! shutdown during a create, and deletes that could not be done (parked and
//! retried at the next start). Run with the in-process store, and with Redis
//! where `DREAMGATE_TEST_REDIS` is set.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_gateway::StoreConfig;
use dreamgate_testkit::eventually;

/// The stores to run a scenario with.
fn stores(test: &str) -> Vec<StoreConfig> {
    let mut out = vec![StoreConfig::Memory];
    out.extend(redis_store(test));
    out
}

#[tokio::test]
async fn a_create_answered_after_the_timeout_keeps_the_slot_is_recorded_and_reaped() {
    for store in stores("late_create") {
        let eng = TestEngine::keyed("").await;
        let gw = gateway(&eng.base, |c| {
            c.store = store.clone();
            c.api_timeout = Duration::from_millis(300);
            c.registry.reap_after = Duration::from_secs(1);
            c.reap_interval = Duration::from_millis(50);
        })
        .await;
        let b = Browser::new(&gw.base_url());
        eng.hold_answers(); // the engine makes the stream; its answer comes late
        let r = b.post_json("/api/daydream/streams", &create_payload()).await;
        r.assert_error(504, "Upstream timeout");
        assert!(b.cookie().is_some(), "{store:?}: the 504 carries the session");
        // the page retries: the slot is still held by the create in flight, no second stream
        let r = b.post_json("/api/daydream/streams", &create_payload()).await;
        assert_eq!(r.assert_error(409, "Stream already active")["activeStreamId"], serde_json::Value::Null);
        assert_eq!(eng.creates(), 1, "{store:?}");
        eng.release_answers();
        let id = eng.engine.streams().ids().into_iter().next().expect("the late stream");
        // recorded for the session once the answer arrives (only recorded streams are
        // reaped), then, the page gone silent, reaped: nothing left upstream
        assert!(eventually(Duration::from_secs(20), || eng.stream_count() == 0).await, "{store:?}: left behind");
        assert_eq!(eng.deletes_of(&id), 1, "{store:?}");
        assert_eq!(eng.creates(), 1, "{store:?}");
    }
}

#[tokio::test]
async fn shutdown_waits_for_a_create_in_flight_and_deletes_its_stream_in_process() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |_| {}).await;
    let browser = Browser::new(&gw.base_url());
    eng.hold_answers();
    let create = tokio::spawn(async move { browser.post_json("/api/daydream/streams", &create_payload()).await });
    assert!(
        eventually(Duration::from_secs(10), || eng.stream_count() == 1).await,
        "the create never reached the engine"
    );
    let stopping = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await; // let the shutdown begin (either order ends the same)
    eng.release_answers();
    let _ = create.await.unwrap();
    let report = stopping.await.unwrap();
    let id = eng.hits.all().iter().find_map(|h| h.strip_prefix("DELETE /v1/streams?id=").map(str::to_string));
    let id = id.expect("no delete reached the engine");
    assert_eq!(report.deleted, vec![id]);
    assert_eq!(eng.stream_count(), 0, "the stream created during shutdown was left behind");
}

#[tokio::test]
async fn deletes_that_fail_at_shutdown_are_parked_in_the_file_and_retried_at_the_next_start() {
    let eng = TestEngine::keyed("").await;
    let file = std::env::temp_dir()
        .join(format!("dreamgate-test-pending-{}.json", dreamgate_gateway::session::SessionId::generate().as_str()));
    let with_file = |c: &mut dreamgate_gateway::GatewayConfig| {
        c.store = StoreConfig::MemoryWithPendingFile(file.clone());
        c.shutdown_timeout = Duration::from_secs(2);
    };
    let gw = gateway(&eng.base, with_file).await;
    let id = Browser::new(&gw.base_url()).create().await["id"].as_str().unwrap().to_string();
    eng.fail_deletes(true); // upstream refuses deletes at shutdown
    let report = gw.shutdown().await;
    assert_eq!(report.not_deleted, vec![id.clone()]);
    let parked: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("no pending file")).unwrap();
    let key = format!("{}/", eng.base);
    assert_eq!(parked[&key], serde_json::json!([id]), "{parked}");
    assert_eq!(eng.stream_count(), 1);

    eng.fail_deletes(false);
    let before = eng.deletes_of(&id);
    let _next = gateway(&eng.base, with_file).await;
    assert!(eventually(Duration::from_secs(10), || eng.stream_count() == 0).await, "the parked delete was not retried");
    assert_eq!(eng.deletes_of(&id), before + 1);
    assert!(eventually(Duration::from_secs(5), || !file.exists()).await, "the pending file still lists it");
}

#[tokio::test]
async fn a_delete_given_up_while_running_is_parked_and_retried_by_the_running_instance() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |c| {
        c.registry.reap_after = Duration::from_millis(300);
        c.registry.retry_base = Duration::from_millis(20);
        c.registry.retry_max = Duration::from_millis(20);
        c.registry.max_attempts = 2;
        c.reap_interval = Duration::from_millis(20);
        c.parked_retry = Duration::from_millis(500);
    })
    .await;
    eng.fail_deletes(true); // the upstream refuses deletes for a while
    let id = Browser::new(&gw.base_url()).create().await["id"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(10), || eng.deletes_of(&id) >= 2).await,
        "the silent stream was not reaped: {:?}",
        eng.hits.all()
    );
    assert!(eventually(Duration::from_secs(5), || eng.deletes_of(&id) >= 3).await, "the parked delete was not retried");
    assert_eq!(eng.stream_count(), 1, "deletes still refused");
    eng.fail_deletes(false); // the upstream is back: the next periodic retry deletes it
    assert!(eventually(Duration::from_secs(5), || eng.stream_count() == 0).await, "the parked delete was never done");
    gw.shutdown().await;
}
