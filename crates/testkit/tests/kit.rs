//! The kit's helpers against real servers and real peers on loopback.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::routing::{patch, post};
use axum::Router;
use dreamgate_rtc::{accept_ingest, Peer, PeerState, Publisher, RtcConfig};
use dreamgate_testkit::peer::{wait_ended, wait_state};
use dreamgate_testkit::{eventually, Feed, Recorder};
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn app() -> Router {
    Router::new().route("/v1/streams", post(|| async { (StatusCode::CREATED, [("etag", "\"v1\"")], "created") })).route(
        "/session",
        patch(|body: String| async move { (StatusCode::NO_CONTENT, [("x-len", body.len().to_string())]) }),
    )
}

#[tokio::test]
async fn recorder_logs_requests_and_their_answers() {
    let rec = Recorder::new();
    let base = serve(rec.wrap(app())).await;
    let http = reqwest::Client::new();

    let created = http.post(format!("{base}/v1/streams?x=1")).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let patched = http
        .patch(format!("{base}/session"))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", "\"v1\"")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);
    assert_eq!(patched.headers()["x-len"], "21", "the server got the whole body");

    assert_eq!(rec.hits().all(), ["POST /v1/streams?x=1", "PATCH /session"]);
    assert!(rec.hits().any("PATCH /sess") && !rec.hits().any("DELETE"));
    assert_eq!((rec.hits().count("PATCH /session"), rec.hits().count("PATCH /sess")), (1, 0), "count: whole lines");
    let exchanges = rec.exchanges();
    assert_eq!(exchanges.len(), 2);
    assert_eq!((&exchanges[0].method, exchanges[0].status), (&Method::POST, StatusCode::CREATED));
    assert_eq!(exchanges[0].response_header("etag"), Some("\"v1\""));
    let p = &exchanges[1];
    assert_eq!(p.request_header("content-type"), Some("application/trickle-ice-sdpfrag"));
    assert_eq!(p.request_header("if-match"), Some("\"v1\""));
    assert_eq!(p.request_text(), "a=end-of-candidates\r\n");
    assert_eq!(p.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn held_requests_are_logged_on_arrival_and_answered_once_released() {
    let rec = Recorder::new();
    let base = serve(rec.wrap(app())).await;
    rec.hold(Method::POST, "/v1/streams");

    let http = reqwest::Client::new();
    let held = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/v1/streams"));
        async move { http.post(url).send().await.unwrap().status() }
    });
    let hits = rec.hits();
    assert!(eventually(Duration::from_secs(10), || hits.any("POST /v1/streams")).await);
    // Other requests pass while one is held.
    assert_eq!(http.patch(format!("{base}/session")).body("x").send().await.unwrap().status(), 204);
    assert_eq!(rec.exchanges().len(), 1, "the held create has not reached the server");
    assert!(!held.is_finished());

    rec.release();
    assert_eq!(held.await.unwrap(), 201);
    assert_eq!(rec.exchanges().len(), 2);
}

#[tokio::test]
async fn held_answers_wait_after_the_server_answered_and_refused_requests_never_reach_it() {
    let rec = Recorder::new();
    let base = serve(rec.wrap(app())).await;
    let http = reqwest::Client::new();

    rec.hold_answers(Method::POST, "/v1/streams");
    let held = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/v1/streams"));
        async move { http.post(url).send().await.unwrap().status() }
    });
    let hits = rec.hits();
    assert!(eventually(Duration::from_secs(10), || hits.any("POST /v1/streams")).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "the answer is held");
    assert!(rec.exchanges().is_empty(), "an exchange is recorded once its answer is let through");
    rec.release_answers();
    assert_eq!(held.await.unwrap(), StatusCode::CREATED);
    assert_eq!(rec.exchanges().len(), 1);

    rec.refuse(Method::PATCH, "/session", StatusCode::SERVICE_UNAVAILABLE);
    let refused = http.patch(format!("{base}/session")).body("x").send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "Service Unavailable");
    assert!(rec.hits().all().ends_with(&["PATCH /session".to_owned()]), "refused requests are logged");
    assert_eq!(rec.exchanges().len(), 1, "and never reach the server");
    assert_eq!(http.post(format!("{base}/v1/streams")).send().await.unwrap().status(), 201, "other routes pass");

    rec.accept();
    assert_eq!(http.patch(format!("{base}/session")).body("x").send().await.unwrap().status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_sends_decodable_pattern_frames_until_stopped() {
    let cfg = RtcConfig::default();
    let (mut publisher, offer) = Publisher::new(&cfg, &[]).await.unwrap();
    let (mut ingest, answer) = accept_ingest(&cfg, &offer).await.unwrap();
    publisher.set_answer(&answer).unwrap();
    wait_state(&publisher.state_changes(), PeerState::Connected).await;

    let feed = Feed::start_limited(publisher, 64, 64, 600);
    let mut decoder = dreamgate_media::H264Decoder::new().unwrap();
    let mut pictures = 0;
    while pictures < 5 {
        let frame = tokio::time::timeout(Duration::from_secs(10), ingest.frames.recv()).await.unwrap().unwrap();
        if let Some(p) = decoder.decode(&frame.data).unwrap() {
            assert_eq!((p.width, p.height), (64, 64));
            pictures += 1;
        }
    }
    assert!(feed.sent() >= 5);

    let publisher = feed.stop().await;
    assert_eq!(publisher.state(), PeerState::Connected, "stopping the feed leaves the peer up");
    publisher.close();
    assert_eq!(wait_ended(&ingest.state_changes()).await, PeerState::Closed);
}
