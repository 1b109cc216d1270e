//! The media seam over HTTP: a media backend that accepts offers and reports frames through
//! `StreamActivity` drives the status seen by the Daydream client; and the client never
//! follows a redirect (its key must not travel to another host).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use dreamgate_client::{ApiError, ApiKey, DaydreamClient};
use dreamgate_engine::backend::{BoxFuture, IngestOffer, MediaBackend, MediaError, SdpAnswer, ViewerOffer};
use dreamgate_engine::streams::StreamActivity;
use dreamgate_engine::{start, EngineConfig};
use dreamgate_model::{Prompt, StreamParams};
use serde_json::Value;

/// Accepts every offer and keeps the activity handle so the test can play the media side;
/// records ingest start and close as the backend contract asks.
#[derive(Default)]
struct Recorder {
    ingests: Mutex<Vec<StreamActivity>>,
    ended: Mutex<Vec<(String, Option<String>)>>,
    params: Mutex<Vec<StreamParams>>,
}

impl MediaBackend for Recorder {
    fn ingest(&self, offer: IngestOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(async move {
            if offer.offer_sdp.contains("m=audio") && !offer.offer_sdp.contains("m=video") {
                return Err(MediaError::BadOffer("offer has no H.264 video".into()));
            }
            offer.activity.ingest_started(Instant::now());
            self.ingests.lock().unwrap().push(offer.activity);
            Ok(SdpAnswer {
                sdp: "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".into(),
                resource_id: "sess_1".into(),
                ice_servers: vec!["stun:127.0.0.1:3478".into()],
            })
        })
    }
    fn trickle(&self, _: &str, _: &str, _: &str) -> Result<(), MediaError> {
        Ok(())
    }
    fn end_ingest(&self, stream_id: &str, session_id: Option<&str>) -> Result<(), MediaError> {
        self.ended.lock().unwrap().push((stream_id.into(), session_id.map(str::to_owned)));
        for activity in self.ingests.lock().unwrap().iter().filter(|a| a.stream_id() == stream_id) {
            activity.ingest_closed(Instant::now());
        }
        Ok(())
    }
    fn view(&self, _: ViewerOffer) -> BoxFuture<'_, Result<SdpAnswer, MediaError>> {
        Box::pin(async { Err(MediaError::NotFound("no output yet".into())) })
    }
    fn end_view(&self, _: &str, _: &str) -> Result<(), MediaError> {
        Ok(())
    }
    fn params_updated(&self, _: &str, params: &StreamParams) -> bool {
        self.params.lock().unwrap().push(params.clone());
        false
    }
}

#[tokio::test]
async fn media_events_drive_the_status_over_http() {
    let media = Arc::new(Recorder::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = start(listener, EngineConfig { media: Some(media.clone()), ..Default::default() }).await;
    let c = DaydreamClient::new(h.base_url().parse().unwrap(), ApiKey::new("any"), Duration::from_secs(5)).unwrap();
    let stream =
        c.create_stream(&serde_json::to_value(dreamgate_model::default_create_payload()).unwrap()).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();
    let whip = stream["whip_url"].as_str().unwrap();

    let http = reqwest::Client::new();
    let resp = http
        .post(whip)
        .header("content-type", "application/sdp")
        .body("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let hdr = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(hdr("content-type"), "application/sdp");
    assert_eq!(hdr("location"), format!("{whip}/sess_1"));
    assert_eq!(hdr("link"), "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
    assert_eq!(hdr("livepeer-playback-url"), format!("{}/live/video-to-video/{id}/whep", h.base_url()));
    assert!(resp.text().await.unwrap().starts_with("v=0"));

    // media errors map to their status
    let resp = http
        .post(whip)
        .header("content-type", "application/sdp")
        .body("v=0\r\nm=audio 9 x 0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "offer has no H.264 video");
    let whep = format!("{}/live/video-to-video/{id}/whep", h.base_url());
    let resp = http.post(&whep).header("content-type", "application/sdp").body("v=0\r\n").send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // play 12 s of 30 fps input and output, ending now
    let activity = media.ingests.lock().unwrap()[0].clone();
    assert_eq!(activity.stream_id(), id);
    let now = Instant::now();
    for i in (0..360u64).rev() {
        let t = now - Duration::from_millis(i * 33);
        assert!(activity.record_input(t, 1500));
        assert!(activity.record_output(t, 1200));
    }
    let status = c.stream_status(&id).await.unwrap();
    let data = &status["data"];
    assert_eq!(data["state"], "ONLINE", "{data}");
    let fps = data["input_status"]["fps"].as_f64().unwrap();
    assert!((25.0..=31.0).contains(&fps), "{fps}");
    assert_eq!(data["gateway_status"]["ingest_metrics"]["stats"]["peer_conn_stats"]["BytesReceived"], 360 * 1500);
    assert_eq!(data["gateway_status"]["ingest_metrics"]["stats"]["track_stats"][0]["type"], "video");

    // PATCH reaches the media side with the merged params
    c.update_stream(&id, &serde_json::json!({"params": {"prompt": "neon"}})).await.unwrap();
    let seen = media.params.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].prompt, Some(Prompt::Text("neon".into())));
    assert_eq!(seen[0].width, Some(512));

    // the ticker's status step, 61 s later without input: the ingest is closed, once
    h.engine().tick(now + Duration::from_secs(30));
    assert!(media.ended.lock().unwrap().is_empty());
    h.engine().tick(now + Duration::from_secs(61));
    h.engine().tick(now + Duration::from_secs(62));
    assert_eq!(media.ended.lock().unwrap().as_slice(), &[(id.clone(), None)]);

    // DELETE of the WHIP resource ends the ingest session
    let resp = http.delete(format!("{whip}/sess_1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(media.ended.lock().unwrap()[1], (id.clone(), Some("sess_1".to_owned())));

    // once the stream is deleted, the media side is told to stop
    c.delete_stream(&id).await.unwrap();
    assert!(!activity.record_input(Instant::now(), 10));
    h.shutdown().await;
}

#[tokio::test]
async fn client_never_follows_redirects() {
    // "elsewhere" records any request that reaches it
    let hits: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = hits.clone();
    let elsewhere = axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned));
            StatusCode::OK
        }
    });
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/v1/streams", l2.local_addr().unwrap());
    let t2 = tokio::spawn(async move { axum::serve(l2, elsewhere).await });

    let redirector = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]).into_response() }
    });
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l1.local_addr().unwrap());
    let t1 = tokio::spawn(async move { axum::serve(l1, redirector).await });

    let c = DaydreamClient::new(base.parse().unwrap(), ApiKey::new("daydream_live_secret"), Duration::from_secs(5))
        .unwrap();
    let e = c.create_stream(&serde_json::json!({"pipeline": "streamdiffusion", "params": {}})).await.unwrap_err();
    assert!(matches!(e, ApiError::Upstream { status: 307, .. }), "{e:?}");
    assert!(hits.lock().unwrap().is_empty(), "the redirect was followed: {:?}", hits.lock().unwrap());
    t1.abort();
    t2.abort();
}
