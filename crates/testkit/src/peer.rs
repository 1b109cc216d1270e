//! Waiting on a peer's state (`dreamgate-rtc`'s [`PeerState`] watch).

use std::time::Duration;

use dreamgate_rtc::PeerState;
use tokio::sync::watch;

/// How long the waits here wait before they fail the test.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Waits (at most [`LIMIT`]) until the watched state is `want`.
///
/// # Panics
///
/// When the peer task ends in another state, or on timeout (naming the last state).
pub async fn wait_state(rx: &watch::Receiver<PeerState>, want: PeerState) {
    let mut rx = rx.clone();
    let waited = tokio::time::timeout(LIMIT, rx.wait_for(|s| *s == want)).await.map(|r| r.is_ok());
    let last = *rx.borrow();
    match waited {
        Ok(true) => {}
        Ok(false) => panic!("peer task ended in {last:?} while waiting for {want:?}"),
        Err(_) => panic!("timed out in {last:?} waiting for {want:?}"),
    }
}

/// Waits (at most [`LIMIT`]) until the peer task behind `rx` has ended; returns its last
/// state.
///
/// # Panics
///
/// When the task is still running after the limit.
pub async fn wait_ended(rx: &watch::Receiver<PeerState>) -> PeerState {
    let mut rx = rx.clone();
    let ended = tokio::time::timeout(LIMIT, async { while rx.changed().await.is_ok() {} }).await;
    assert!(ended.is_ok(), "peer task still running in {:?}", *rx.borrow());
    let last = *rx.borrow();
    last
}
