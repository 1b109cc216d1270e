//! Peer tasks end on close, on drop and on timeout, and release their UDP port.

use std::net::UdpSocket;
use std::time::Duration;

use dreamgate_rtc::{accept_egress, accept_ingest, Peer, PeerState, Publisher, RtcConfig, StunServer, Viewer};
use dreamgate_testkit::peer::{wait_ended, wait_state};

/// The port is free again: binding it succeeds.
fn port_released(addr: std::net::SocketAddr) -> bool {
    UdpSocket::bind(addr).is_ok()
}

#[tokio::test]
async fn dropping_a_connected_ingest_ends_both_sides_and_frees_the_port() {
    let cfg = RtcConfig::default();
    let (mut publisher, offer) = Publisher::new(&cfg, &[]).await.unwrap();
    let (ingest, answer) = accept_ingest(&cfg, &offer).await.unwrap();
    publisher.set_answer(&answer).unwrap();
    let ingest_state = ingest.state_changes();
    wait_state(&ingest_state, PeerState::Connected).await;
    wait_state(&publisher.state_changes(), PeerState::Connected).await;
    let addr = ingest.local_addr();
    assert!(!port_released(addr), "the live peer holds its port");

    drop(ingest);
    assert_eq!(wait_ended(&ingest_state).await, PeerState::Closed);
    assert!(port_released(addr));
    // The publisher saw the DTLS close_notify and closed too.
    assert_eq!(wait_ended(&publisher.state_changes()).await, PeerState::Closed);
    assert!(port_released(publisher.local_addr()));
}

#[tokio::test]
async fn close_ends_an_egress_and_its_viewer() {
    let cfg = RtcConfig::default();
    let (mut viewer, offer) = Viewer::new(&cfg).await.unwrap();
    let (egress, answer) = accept_egress(&cfg, &offer).await.unwrap();
    viewer.set_answer(&answer).unwrap();
    wait_state(&viewer.state_changes(), PeerState::Connected).await;

    viewer.close();
    assert_eq!(wait_ended(&viewer.state_changes()).await, PeerState::Closed);
    assert!(port_released(viewer.local_addr()));
    assert_eq!(wait_ended(&egress.state_changes()).await, PeerState::Closed);
    assert!(port_released(egress.local_addr()));
    // The viewer's frame stream ended with it.
    assert!(viewer.frames.recv().await.is_none());
}

#[tokio::test]
async fn an_ingest_nobody_connects_to_fails_after_the_connect_timeout() {
    // When it fails is the pure ConnectionMonitor's rule (unit-tested with injected time);
    // here only that the driver applies it: Failed, port freed. Short so the test ends soon.
    let cfg = RtcConfig { connect_timeout: Duration::from_millis(600), ..Default::default() };
    // A publisher whose answer is never applied: it never sends a STUN check.
    let (_publisher, offer) = Publisher::new(&cfg, &[]).await.unwrap();
    let (mut ingest, _answer) = accept_ingest(&cfg, &offer).await.unwrap();
    let addr = ingest.local_addr();
    assert_eq!(wait_ended(&ingest.state_changes()).await, PeerState::Failed);
    assert!(port_released(addr));
    assert!(ingest.frames.recv().await.is_none());
}

#[tokio::test]
async fn a_publisher_closed_before_its_answer_is_closed() {
    let (mut publisher, _offer) = Publisher::new(&RtcConfig::default(), &[]).await.unwrap();
    let addr = publisher.local_addr();
    publisher.close();
    assert_eq!(publisher.state(), PeerState::Closed);
    assert!(port_released(addr));
    assert!(publisher.set_answer("v=0\r\n").is_err());
}

#[tokio::test]
async fn publisher_gathers_from_stun_servers_and_skips_dead_ones() {
    let stun = StunServer::bind("127.0.0.1".parse().unwrap()).await.unwrap();
    // A port with nobody behind it: its query gives up (GATHER_TIMEOUT), the offer still comes.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let servers = vec![stun.url(), format!("stun:{dead}"), "turn:127.0.0.1:1".to_string()];
    let (publisher, offer) = Publisher::new(&RtcConfig::default(), &servers).await.unwrap();
    // On loopback the reflexive address is the host address: only the host candidate.
    assert_eq!(offer.matches("a=candidate:").count(), 1, "{offer}");
    assert!(offer.contains(&format!("{} typ host", publisher.local_addr().port())));
}
