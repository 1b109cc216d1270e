//! The status event stream (`GET /api/daydream/streams/:id/events`): one
//! watcher per stream however many tabs (and instances) watch it, its
//! messages, ownership, reaper activity, and its end (stream ended, gateway
//! shutdown). Real engine, real gateway(s), real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use dreamgate_testkit::eventually;
use serde_json::Value;

fn events_path(id: &str) -> String {
    format!("/api/daydream/streams/{id}/events")
}

/// One open event stream, read as a browser's EventSource would.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// Opens `path` on `base` with `cookie`; panics unless it is a 200 event stream.
    async fn open(base: &str, cookie: Option<&str>, path: &str) -> Events {
        let resp = Self::request(base, cookie, path).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events { resp, buf: String::new() }
    }

    async fn request(base: &str, cookie: Option<&str>, path: &str) -> reqwest::Response {
        let http = reqwest::Client::new();
        let mut req = http.get(format!("{base}{path}")).header("accept", "text/event-stream");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// The next whole SSE block (`None`: the stream ended), waiting at most `limit`.
    async fn next_block(&mut self, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block = self.buf[..at].to_string();
                self.buf.drain(..at + 2);
                return Some(block);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("no event stream block in time")
                .expect("event stream read error");
            match chunk {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// The next `status` message's data, parsed (`None`: the stream ended).
    async fn next_status(&mut self, limit: Duration) -> Option<Value> {
        loop {
            let block = self.next_block(limit).await?;
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_string());
                }
            }
            if event.as_deref() == Some("status") {
                return Some(serde_json::from_str(&data.expect("a status event has data")).unwrap());
            }
        }
    }

    /// Reads until the stream ends (true) or `limit` passes (false).
    async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return false,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Ok(Ok(Some(_))) => {}
            }
        }
    }
}

fn status_calls(eng: &TestEngine, id: &str) -> usize {
    eng.hits.count(&format!("GET /v1/streams/{id}/status"))
}

#[tokio::test]
async fn five_tabs_on_one_stream_cost_one_upstream_status_call_per_interval() {
    let (eng, gw, b) = stack("").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let cookie = b.cookie().unwrap();
    let mut tabs = Vec::new();
    for _ in 0..5 {
        tabs.push(Events::open(&gw.base_url(), Some(&cookie), &events_path(&id)).await);
    }
    // every tab gets the same pushed statuses, in the page's format
    for tab in &mut tabs {
        let first = tab.next_block(Duration::from_secs(5)).await.unwrap();
        assert_eq!(first, "retry: 1000", "the browser is told to reconnect quickly");
        let msg = tab.next_status(Duration::from_secs(5)).await.unwrap();
        assert!(
            ["creating", "warming", "live", "degraded", "reconnecting"].contains(&msg["phase"].as_str().unwrap()),
            "{msg}"
        );
        assert!(!msg["reason"].as_str().unwrap().is_empty(), "{msg}");
        assert_eq!(msg["status"]["data"]["stream_id"], id.as_str(), "{msg}");
    }
    let before = status_calls(&eng, &id);
    let window = Duration::from_secs(6);
    tokio::time::sleep(window).await;
    for tab in &mut tabs {
        assert!(tab.next_status(Duration::from_secs(5)).await.is_some(), "still pushed");
    }
    let calls = status_calls(&eng, &id) - before;
    let per_minute = calls as f64 * 60.0 / window.as_secs_f64();
    println!(
        "upstream status calls per stream per minute, 5 tabs: {per_minute:.0} (measured: {calls} in {window:?}); \
         one poll per tab per second would be {}",
        5 * 60
    );
    // about one per second (6, give or take a tick), never one per tab
    assert!((4..=8).contains(&calls), "{calls} status calls in {window:?} for 5 tabs");
    assert_eq!(gw.state().watchers().count(), 1, "one watcher");
    // everybody leaves: the watcher stops, and so do the calls
    drop(tabs);
    assert!(eventually(Duration::from_secs(5), || gw.state().watchers().count() == 0).await, "watcher stopped");
    let after = status_calls(&eng, &id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status_calls(&eng, &id), after, "no calls once nobody watches");
}

#[tokio::test]
async fn only_the_owner_opens_the_event_stream() {
    let (eng, gw, b) = stack("").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let other = Browser::new(&gw.base_url());
    other.create().await;
    let r = other.get(&events_path(&id)).await;
    r.assert_error(403, "Stream not owned by active session");
    let r = Browser::new(&gw.base_url()).get(&events_path(&id)).await;
    r.assert_error(403, "Stream not owned by active session");
    let r = b.get(&events_path("bad%20id")).await;
    r.assert_error(404, "Unknown stream");
    assert_eq!(status_calls(&eng, &id), 0, "upstream never asked for a refused request");
    assert_eq!(gw.state().watchers().count(), 0);
}

#[tokio::test]
async fn ending_the_stream_pushes_ended_and_closes_the_event_stream() {
    let (_eng, gw, b) = stack("").await;
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let cookie = b.cookie().unwrap();
    let mut tab = Events::open(&gw.base_url(), Some(&cookie), &events_path(&id)).await;
    tab.next_status(Duration::from_secs(5)).await.unwrap();
    assert_eq!(b.delete(&format!("/api/daydream/streams/{id}")).await.status, 200);
    let mut last = None;
    while let Some(msg) = tab.next_status(Duration::from_secs(5)).await {
        last = Some(msg);
    }
    let last = last.expect("a last message");
    assert_eq!(last["phase"], "ended", "{last}");
    assert!(eventually(Duration::from_secs(3), || gw.state().watchers().count() == 0).await);
}

#[tokio::test]
async fn an_open_event_stream_keeps_the_reaper_away_and_closing_it_lets_the_stream_be_reaped() {
    let eng = TestEngine::keyed("").await;
    let gw = gateway(&eng.base, |c| c.registry.reap_after = Duration::from_secs(2)).await;
    let b = Browser::new(&gw.base_url());
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let cookie = b.cookie().unwrap();
    let mut tab = Events::open(&gw.base_url(), Some(&cookie), &events_path(&id)).await;
    // three reap windows with no request but the open event stream
    for _ in 0..6 {
        assert!(tab.next_status(Duration::from_secs(5)).await.is_some());
    }
    assert_eq!(eng.deletes_of(&id), 0, "not reaped while watched");
    assert_eq!(eng.stream_count(), 1);
    drop(tab);
    assert!(eventually(Duration::from_secs(10), || eng.deletes_of(&id) == 1).await, "reaped once nobody watches");
}

#[tokio::test]
async fn shutdown_ends_every_event_stream_at_once() {
    let eng = TestEngine::keyed("").await;
    // a long drain: an event stream still open would hold the shutdown this long
    let gw = gateway(&eng.base, |c| {
        c.shutdown_timeout = Duration::from_secs(30);
        c.limits.shutdown_grace = Duration::from_secs(30);
    })
    .await;
    let b = Browser::new(&gw.base_url());
    let id = b.create().await["id"].as_str().unwrap().to_string();
    let cookie = b.cookie().unwrap();
    let mut tab = Events::open(&gw.base_url(), Some(&cookie), &events_path(&id)).await;
    tab.next_status(Duration::from_secs(5)).await.unwrap();
    let shutdown = tokio::spawn(gw.shutdown());
    assert!(tab.ends_within(Duration::from_secs(10)).await, "the event stream ends on shutdown (not after the drain)");
    let report = tokio::time::timeout(Duration::from_secs(20), shutdown).await.expect("shutdown finishes").unwrap();
    assert_eq!(report.deleted, vec![id]);
}

#[tokio::test]
async fn with_several_instances_one_polls_and_the_others_relay() {
    let Some(store) = redis_store("events_instances") else { return };
    let eng = TestEngine::keyed("").await;
    let a = gateway(&eng.base, |c| c.store = store.clone()).await;
    let b_gw = gateway(&eng.base, |c| c.store = store.clone()).await;
    let on_a = Browser::new(&a.base_url());
    let id = on_a.create().await["id"].as_str().unwrap().to_string();
    let cookie = on_a.cookie().unwrap();
    let mut tabs = Vec::new();
    for gw in [&a, &b_gw, &a, &b_gw] {
        tabs.push(Events::open(&gw.base_url(), Some(&cookie), &events_path(&id)).await);
    }
    for tab in &mut tabs {
        let msg = tab.next_status(Duration::from_secs(8)).await.expect("a status on every instance");
        assert_eq!(msg["status"]["data"]["stream_id"], id.as_str(), "{msg}");
    }
    let before = status_calls(&eng, &id);
    tokio::time::sleep(Duration::from_secs(6)).await;
    for tab in &mut tabs {
        assert!(tab.next_status(Duration::from_secs(5)).await.is_some(), "still pushed (relayed)");
    }
    let calls = status_calls(&eng, &id) - before;
    println!(
        "upstream status calls per stream per minute, 4 tabs on 2 instances: {:.0} ({calls} in 6 s)",
        calls as f64 * 10.0
    );
    assert!((4..=9).contains(&calls), "{calls} status calls in 6 s: one instance polls");
    // A's tabs leave (A polled: its watcher started first): B takes the lease over and keeps
    // pushing fresh statuses
    let mut i = 0;
    tabs.retain(|_| {
        i += 1;
        i % 2 == 0
    });
    assert!(eventually(Duration::from_secs(5), || a.state().watchers().count() == 0).await);
    let mut stamps = Vec::new();
    for _ in 0..4 {
        let msg = tabs[0].next_status(Duration::from_secs(8)).await.expect("still pushed by B");
        stamps.push(msg["status"]["data"]["timestamp"].as_u64().unwrap());
    }
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]) && stamps[3] > stamps[0], "fresh statuses: {stamps:?}");
}
