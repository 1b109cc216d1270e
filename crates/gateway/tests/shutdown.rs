//! Paid streams do not outlive the gateway: shutting it down deletes them upstream.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn shutdown_deletes_every_live_stream_upstream() {
    let (eng, gw, a) = stack("").await;
    let b = Browser::new(&gw.base_url());
    let ended = Browser::new(&gw.base_url());
    let id_a = a.create().await["id"].as_str().unwrap().to_string();
    let id_b = b.create().await["id"].as_str().unwrap().to_string();
    let id_ended = ended.create().await["id"].as_str().unwrap().to_string();
    // one has a WHIP session, one was already ended by its owner
    let (_p, offer) = whip_offer().await;
    assert_eq!(a.sdp("POST", &format!("/api/daydream/streams/{id_a}/whip"), &offer).await.status, 201);
    assert_eq!(ended.delete(&format!("/api/daydream/streams/{id_ended}")).await.status, 200);
    assert_eq!(eng.stream_count(), 2);
    let deletes_before = eng.hits.all().iter().filter(|h| h.starts_with("DELETE /v1/streams")).count();

    let report = gw.shutdown().await;

    let mut want = vec![id_a.clone(), id_b.clone()];
    want.sort();
    assert_eq!(report.deleted, want);
    assert!(report.not_deleted.is_empty(), "{report:?}");
    assert_eq!(eng.stream_count(), 0, "streams outlived the gateway");
    for id in [&id_a, &id_b] {
        assert!(eng.engine.streams().with(id, |_| ()).is_none(), "{id} still exists in the engine");
    }
    // the already-ended stream is not deleted twice
    let deletes = eng.hits.all().iter().filter(|h| h.starts_with("DELETE /v1/streams")).count();
    assert_eq!(deletes - deletes_before, 2, "{:?}", eng.hits.all());
}

#[tokio::test]
async fn shutdown_reports_streams_it_could_not_delete_in_time() {
    // the engine holds every answer for 2 s; the gateway gives the deletes 200 ms
    let eng = TestEngine::keyed("slow=2s").await;
    let gw = gateway(&eng.base, |cfg| cfg.shutdown_timeout = Duration::from_millis(200)).await;
    let b = Browser::new(&gw.base_url());
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let report = gw.shutdown().await;
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.not_deleted, vec![id]);
}
