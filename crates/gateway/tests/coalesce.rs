//! Status polls of one stream that arrive together share one upstream call
//! (`crate::coalesce`): many tabs, or a flood of polls, cost the upstream one
//! status call at a time. Real engine (its answers slowed by its `slow` knob so
//! that the polls overlap), real gateway, real sockets on 127.0.0.1.

mod common;

use std::sync::Arc;

use common::*;

fn status_calls(eng: &TestEngine, id: &str) -> usize {
    eng.hits.count(&format!("GET /v1/streams/{id}/status"))
}

#[tokio::test]
async fn polls_in_flight_together_share_one_upstream_call() {
    let (eng, _gw, b) = stack("slow=1s").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let b = Arc::new(b);
    let before = status_calls(&eng, &id);

    let polls: Vec<_> = (0..10)
        .map(|_| {
            let (b, path) = (b.clone(), format!("/api/daydream/streams/{id}/status"));
            tokio::spawn(async move { b.get(&path).await })
        })
        .collect();
    let mut bodies = Vec::new();
    for p in polls {
        let r = p.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        bodies.push(r.json());
    }
    assert_eq!(status_calls(&eng, &id) - before, 1, "10 polls in flight together: one upstream call");
    assert!(bodies.iter().all(|v| *v == bodies[0]), "every poll got that call's answer");

    // A poll after that call ended makes its own.
    let r = b.get(&format!("/api/daydream/streams/{id}/status")).await;
    assert_eq!(r.status, 200);
    assert_eq!(status_calls(&eng, &id) - before, 2, "a later poll is answered fresh");
}

#[tokio::test]
async fn an_upstream_error_is_shared_as_the_same_clean_error() {
    let (eng, _gw, b) = stack("slow=1s").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    // The stream goes away upstream behind the gateway's back.
    assert!(eng.engine.streams().remove(&id).is_some());
    let b = Arc::new(b);
    let before = status_calls(&eng, &id);
    let polls: Vec<_> = (0..5)
        .map(|_| {
            let (b, path) = (b.clone(), format!("/api/daydream/streams/{id}/status"));
            tokio::spawn(async move { b.get(&path).await })
        })
        .collect();
    let mut answers = Vec::new();
    for p in polls {
        let r = p.await.unwrap();
        answers.push((r.status, r.json()));
    }
    assert_eq!(status_calls(&eng, &id) - before, 1);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert!(answers[0].0 >= 400, "{answers:?}");
    assert!(answers[0].1["error"].is_string() && answers[0].1["message"].is_string(), "{answers:?}");
}
