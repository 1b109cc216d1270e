//! Real H.264 over real UDP on 127.0.0.1: publisher -> ingest, egress -> viewers.

mod common;

use std::time::Duration;

use common::{source, take_request, Sink, FPS};
use dreamgate_rtc::{accept_egress, accept_ingest, Egress, Peer, PeerState, Publisher, RtcConfig, Viewer};
use dreamgate_testkit::peer::{wait_ended, wait_state};
use tokio::time::timeout;

const FRAMES: usize = 60;
const PACE: Duration = Duration::from_millis(1000 / FPS as u64 / 2);

#[tokio::test]
async fn publisher_to_ingest_delivers_decodable_frames_and_keyframe_requests() {
    let cfg = RtcConfig::default();
    let (mut publisher, offer) = Publisher::new(&cfg, &[]).await.unwrap();
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(offer.contains("H264/90000"), "{offer}");
    assert!(offer.contains("packetization-mode=1"), "{offer}");
    assert!(offer.contains("typ host"), "{offer}");

    let (mut ingest, answer) = accept_ingest(&cfg, &offer).await.unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(answer.contains(&format!("{} typ host", ingest.local_addr().port())), "{answer}");
    publisher.set_answer(&answer).unwrap();
    assert!(matches!(publisher.set_answer(&answer), Err(dreamgate_rtc::RtcError::InvalidState(_))));

    wait_state(&publisher.state_changes(), PeerState::Connected).await;
    wait_state(&ingest.state_changes(), PeerState::Connected).await;

    // Producer: encodes on demand, forcing an IDR whenever the receiver asked for one.
    // It stops when the consumer has seen enough (or after a generous maximum).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_producer = stop.clone();
    let producer = tokio::spawn(async move {
        let mut source = source();
        let mut forced_at = Vec::new();
        for i in 0..FRAMES * 5 {
            if stop_producer.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let requested = take_request(&mut publisher.keyframe_requests);
            if requested {
                forced_at.push(i);
            }
            publisher.send(source.next(requested));
            tokio::time::sleep(PACE).await;
        }
        (publisher, forced_at)
    });

    let mut sink = Sink::new();
    let mut received = Vec::new();
    let mut requested_after = None;
    loop {
        let keyframe_after_request = requested_after
            .is_some_and(|after: usize| received[after..].iter().any(|f: &dreamgate_rtc::MediaFrame| f.keyframe));
        if received.len() >= FRAMES && keyframe_after_request {
            break;
        }
        let Ok(Some(frame)) = timeout(Duration::from_secs(3), ingest.frames.recv()).await else {
            break;
        };
        sink.push(&frame);
        received.push(frame);
        if received.len() == 20 {
            ingest.request_keyframe();
            requested_after = Some(received.len());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (publisher, forced_at) = producer.await.unwrap();
    // Frames the producer sent before it saw the stop flag.
    while let Ok(Some(frame)) = timeout(Duration::from_millis(500), ingest.frames.recv()).await {
        sink.push(&frame);
        received.push(frame);
    }

    // Everything sent after the connection came up arrived and decoded.
    assert!(received.len() >= FRAMES - 2, "only {} of {FRAMES} frames", received.len());
    assert_eq!(sink.pictures, received.len());
    assert!(received[0].keyframe, "the stream starts on a keyframe");
    assert!(received.windows(2).all(|w| w[1].rtp_time > w[0].rtp_time));
    // Annex-B with start codes; the first access unit carries SPS (7), PPS (8) and IDR (5).
    let nals = dreamgate_media::nal_types(&received[0].data);
    assert!(received[0].data.starts_with(&[0, 0, 0, 1]));
    for t in [7, 8, 5] {
        assert!(nals.contains(&t), "NAL types {nals:?}");
    }

    // The PLI reached the publisher, which answered with a keyframe the ingest received.
    let after = requested_after.unwrap();
    assert!(
        forced_at.iter().any(|&i| i >= after.saturating_sub(2)),
        "no forced keyframe after the request: {forced_at:?}"
    );
    assert!(received[after..].iter().any(|f| f.keyframe), "no keyframe arrived after the request");

    let stats = ingest.stats();
    let bytes: u64 = received.iter().map(|f| f.data.len() as u64).sum();
    assert!(stats.bytes_received >= bytes, "{stats:?} vs {bytes}");
    assert!(stats.packets_received >= received.len() as u64, "{stats:?}");
    assert_eq!(stats.frames_delivered, received.len() as u64);
    assert_eq!(stats.packets_lost, 0, "{stats:?}");
    assert!(stats.keyframe_requests_sent >= 1, "{stats:?}");

    drop(publisher);
    wait_ended(&ingest.state_changes()).await;
}

/// One egress per viewer; the producer feeds both and honours their keyframe requests.
async fn connect_viewer(cfg: &RtcConfig) -> (Viewer, Egress) {
    let (mut viewer, offer) = Viewer::new(cfg).await.unwrap();
    assert!(offer.contains("a=recvonly"), "{offer}");
    let (egress, answer) = accept_egress(cfg, &offer).await.unwrap();
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    viewer.set_answer(&answer).unwrap();
    (viewer, egress)
}

#[tokio::test]
async fn egress_feeds_two_viewers_and_surfaces_their_keyframe_requests() {
    let cfg = RtcConfig::default();
    let (mut v1, e1) = connect_viewer(&cfg).await;
    let (mut v2, e2) = connect_viewer(&cfg).await;
    for rx in [v1.state_changes(), v2.state_changes(), e1.state_changes(), e2.state_changes()] {
        wait_state(&rx, PeerState::Connected).await;
    }

    let producer = tokio::spawn(async move {
        let mut egresses = [e1, e2];
        let mut source = source();
        let mut requests = [0usize; 2];
        for _ in 0..FRAMES {
            let mut key = false;
            for (n, e) in egresses.iter_mut().enumerate() {
                if take_request(&mut e.keyframe_requests) {
                    requests[n] += 1;
                    key = true;
                }
            }
            let frame = source.next(key);
            for e in &egresses {
                e.send(frame.clone());
            }
            tokio::time::sleep(PACE).await;
        }
        (egresses, requests)
    });

    let mut sinks = [Sink::new(), Sink::new()];
    let mut counts = [0usize; 2];
    let mut keyframes_after_request = 0;
    loop {
        let got = tokio::select! {
            f = v1.frames.recv() => f.map(|f| (0, f)),
            f = v2.frames.recv() => f.map(|f| (1, f)),
            _ = tokio::time::sleep(Duration::from_secs(3)) => None,
        };
        let Some((n, frame)) = got else { break };
        if counts[n] == 0 {
            assert!(frame.keyframe, "viewer {n} must start on a keyframe");
        }
        sinks[n].push(&frame);
        counts[n] += 1;
        if n == 0 && counts[0] == 20 {
            v1.request_keyframe();
        }
        if n == 0 && counts[0] > 20 && frame.keyframe {
            keyframes_after_request += 1;
        }
        if counts.iter().all(|&c| c >= FRAMES - 2) {
            break;
        }
    }
    let (egresses, requests) = producer.await.unwrap();

    for n in 0..2 {
        assert!(counts[n] >= FRAMES - 2, "viewer {n} got only {} frames", counts[n]);
        assert_eq!(sinks[n].pictures, counts[n]);
        // One request when the connection came up (start on a keyframe) ...
        assert!(requests[n] >= 1, "egress {n} saw no keyframe request");
    }
    // ... and the viewer's explicit PLI surfaced on egress 0.
    assert!(requests[0] >= 2, "viewer 1's keyframe request did not surface: {requests:?}");
    assert!(keyframes_after_request >= 1);
    assert!(v1.stats().keyframe_requests_sent >= 1);

    // Closing an egress ends its viewer's connection too (DTLS close_notify).
    egresses[0].close();
    let ended = wait_ended(&v1.state_changes()).await;
    assert_eq!(ended, PeerState::Closed);
    assert_eq!(v2.state(), PeerState::Connected);
    v1.close();
    v2.close();
}
