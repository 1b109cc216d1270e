//! The orphan sweep (`crate::sweep`): streams named `dreamgate-*` upstream that
//! the store does not know are reported, and deleted in `delete` mode once they
//! stayed unknown for the grace period; streams the store knows (this
//! instance's or, on Redis, another instance's) and streams of other names are
//! never touched. Real engine, real gateway(s), real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_gateway::sweep::OrphanMode;
use dreamgate_testkit::eventually;
use serde_json::Value;

/// A stream made on the engine directly with the key, as a crashed gateway (or
/// someone else) would have left it.
async fn made_upstream(eng: &TestEngine, name: &str) -> String {
    let mut body = create_payload();
    body["name"] = Value::String(name.into());
    let r = reqwest::Client::new()
        .post(format!("{}/v1/streams", eng.base))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

fn lists(eng: &TestEngine) -> usize {
    eng.hits.all().iter().filter(|h| *h == "GET /v1/streams").count()
}

fn sweeping(mode: OrphanMode) -> impl FnOnce(&mut dreamgate_gateway::GatewayConfig) {
    move |cfg| {
        cfg.orphans = mode;
        cfg.orphan_sweep = Duration::from_millis(200);
        cfg.orphan_grace = Duration::from_millis(600);
    }
}

#[tokio::test]
async fn delete_mode_deletes_only_unknown_tagged_streams_after_the_grace() {
    let eng = TestEngine::keyed("").await;
    let orphan = made_upstream(&eng, "dreamgate-stream").await;
    let foreign = made_upstream(&eng, "my show").await;
    let gw = gateway(&eng.base, sweeping(OrphanMode::Delete)).await;
    let b = Browser::new(&gw.base_url());
    let mine = b.create().await["id"].as_str().unwrap().to_string();

    assert!(eventually(Duration::from_secs(15), || eng.deletes_of(&orphan) == 1).await, "the orphan is deleted");
    // Several sweeps later: nothing else was deleted, the orphan only once.
    let seen = lists(&eng);
    assert!(eventually(Duration::from_secs(10), || lists(&eng) >= seen + 3).await);
    assert_eq!((eng.deletes_of(&orphan), eng.deletes_of(&foreign), eng.deletes_of(&mine)), (1, 0, 0));
    assert_eq!(b.get(&format!("/api/daydream/streams/{mine}/status")).await.status, 200, "the session's stream lives");
}

#[tokio::test]
async fn report_mode_lists_and_deletes_nothing_and_off_never_lists() {
    let eng = TestEngine::keyed("").await;
    let orphan = made_upstream(&eng, "dreamgate-stream").await;
    let gw = gateway(&eng.base, sweeping(OrphanMode::Report)).await;
    // Sweeps keep coming, well past the grace period.
    assert!(eventually(Duration::from_secs(15), || lists(&eng) >= 6).await);
    assert_eq!(eng.deletes_of(&orphan), 0);
    let metrics = reqwest::get(format!("{}/metrics", gw.base_url())).await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.starts_with("dreamgate_orphan_streams ")).unwrap_or_default().to_string();
    assert!(!line.is_empty(), "gauge present:\n{metrics}");
    assert!(!metrics.contains(&orphan), "no stream id in the metrics");
    drop(gw);

    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, sweeping(OrphanMode::Off)).await;
    Browser::new(&gw.base_url()).create().await;
    // A negative: a sweep is due at start and every 200 ms; none comes.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(lists(&eng), 0);
    drop(gw);
}

#[tokio::test]
async fn on_redis_another_instances_streams_are_known() {
    let Some(store) = redis_store("sweep") else { return };
    let eng = TestEngine::keyed("").await;
    let orphan = made_upstream(&eng, "dreamgate-stream").await;
    let a = gateway(&eng.base, |cfg| {
        cfg.store = store.clone();
        cfg.orphans = OrphanMode::Off;
    })
    .await;
    let b = Browser::new(&a.base_url());
    let theirs = b.create().await["id"].as_str().unwrap().to_string();
    let s = store.clone();
    let _sweeper = gateway(&eng.base, move |cfg| {
        sweeping(OrphanMode::Delete)(cfg);
        cfg.store = s;
    })
    .await;
    assert!(eventually(Duration::from_secs(15), || eng.deletes_of(&orphan) == 1).await);
    let seen = lists(&eng);
    assert!(eventually(Duration::from_secs(10), || lists(&eng) >= seen + 3).await);
    assert_eq!(eng.deletes_of(&theirs), 0, "the other instance's stream is known through Redis");
}
