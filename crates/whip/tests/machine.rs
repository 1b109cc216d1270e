//! The WHIP state machine's timing rules, driven with injected time (no sleeps).

use std::time::{Duration, Instant};

use dreamgate_whip::machine::{
    Action, ConnectionState, Event, HttpFailure, HttpReply, PeerState, RequestId, WhipMachine, WhipOptions,
};
use dreamgate_whip::{IceServer, WhipError};

const WHIP_URL: &str = "http://127.0.0.1:9/live/video-to-video/stk_1/whip?token=abc";
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:uf1\r\na=ice-pwd:pw1\r\na=mid:0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn machine(trickle: bool) -> WhipMachine {
    let mut opts = WhipOptions::new(WHIP_URL.parse().unwrap());
    opts.enable_trickle_ice = trickle;
    WhipMachine::new(opts)
}

fn step(m: &mut WhipMachine, now: Instant, event: Event) -> Vec<Action> {
    m.handle(now, event).expect("only Connect can fail")
}

fn answer() -> HttpReply {
    HttpReply {
        status: 201,
        location: Some("../sessions/abc".into()),
        link: vec![],
        etag: Some("\"e1\"".into()),
        content_type: Some("application/sdp".into()),
        body: ANSWER.into(),
    }
}

fn offer_request(actions: &[Action]) -> RequestId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::SendOffer { request, .. } => Some(*request),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SendOffer in {actions:?}"))
}

fn has_offer(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::SendOffer { .. }))
}

fn patches(actions: &[Action]) -> Vec<(RequestId, String, Option<String>, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendCandidates { request, url, etag, sdpfrag } => {
                Some((*request, url.to_string(), etag.clone(), sdpfrag.clone()))
            }
            _ => None,
        })
        .collect()
}

fn deletes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendDelete { url, .. } => Some(url.to_string()),
            _ => None,
        })
        .collect()
}

/// The states emitted, with their error messages as users see them.
fn states(actions: &[Action]) -> Vec<(ConnectionState, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::EmitState(s) => Some((s.state, s.error.as_ref().map(ToString::to_string))),
            _ => None,
        })
        .collect()
}

fn failed(msg: &str) -> Vec<(ConnectionState, Option<String>)> {
    vec![(ConnectionState::Failed, Some(msg.to_owned()))]
}

/// Connects with trickle off and gathers at once: returns the first offer's request.
fn connect_and_offer(m: &mut WhipMachine, t0: Instant) -> RequestId {
    let a = step(m, t0, Event::Connect);
    assert_eq!(states(&a), vec![(ConnectionState::Connecting, None)]);
    assert!(matches!(a.last(), Some(Action::CreatePeer { .. })), "{a:?}");
    let mut a = step(m, t0, Event::OfferReady { sdp: OFFER.into() });
    if !has_offer(&a) {
        a = step(m, t0, Event::GatheringComplete { sdp: None });
    }
    offer_request(&a)
}

/// Connects, gets the answer at `t0` and the peer connected.
fn connected(m: &mut WhipMachine, t0: Instant) {
    let req = connect_and_offer(m, t0);
    step(m, t0, Event::HttpResponse { request: req, reply: answer() });
    let a = step(m, t0, Event::PeerStateChanged(PeerState::Connected));
    assert_eq!(states(&a), vec![(ConnectionState::Connected, None)]);
}

#[test]
fn warmup_retries_follow_the_backoff_schedule_then_give_up_with_the_last_error() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let mut req = connect_and_offer(&mut m, t0);
    let mut sent_at = vec![Duration::ZERO];
    // The endpoint keeps answering "not ready" with the warm-up statuses.
    let statuses = [503, 404, 409, 429, 500, 502, 504, 503, 503, 503, 503];
    let mut now = t0;
    for (i, status) in statuses.into_iter().enumerate() {
        let a = step(&mut m, now, Event::HttpResponse { request: req, reply: HttpReply::status(status) });
        if i == statuses.len() - 1 {
            // 55.5 s + 8 s would be past the 60 s budget: give up now, with the last error.
            assert_eq!(states(&a), failed("WHIP offer failed: 503"));
            assert!(a.contains(&Action::ClosePeer));
            assert!(!m.is_active());
            assert_eq!(m.next_timeout(), None);
            break;
        }
        let Some(Action::RetryScheduled { retry, at, error }) = a.first().cloned() else {
            panic!("expected a retry, got {a:?}");
        };
        assert_eq!(retry as usize, i + 1);
        assert_eq!(error.to_string(), format!("WHIP offer failed: {status}"));
        assert!(states(&a).is_empty(), "warm-up must not flash an error: {a:?}");
        assert_eq!(m.next_timeout(), Some(at), "no connection timeout while warming up");
        // Nothing happens a millisecond early.
        assert!(step(&mut m, at - ms(1), Event::Timeout).is_empty());
        now = at;
        let a = step(&mut m, now, Event::Timeout);
        req = offer_request(&a);
        sent_at.push(now - t0);
    }
    let expected: Vec<Duration> =
        [0, 500, 1_500, 3_500, 7_500, 15_500, 23_500, 31_500, 39_500, 47_500, 55_500].map(ms).to_vec();
    assert_eq!(sent_at, expected);
    // 500 ms * 2^n, capped at 8 s.
    assert_eq!(m.options().backoff(0), ms(500));
    assert_eq!(m.options().backoff(3), ms(4_000));
    assert_eq!(m.options().backoff(4), ms(8_000));
    assert_eq!(m.options().backoff(40), ms(8_000));
}

#[test]
fn accepted_after_warmup_restarts_the_connection_window() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: HttpReply::status(503) });
    let req = offer_request(&step(&mut m, t0 + ms(500), Event::Timeout));
    step(&mut m, t0 + ms(600), Event::HttpResponse { request: req, reply: HttpReply::status(503) });
    let req = offer_request(&step(&mut m, t0 + ms(1_600), Event::Timeout));
    // A late reply to an old attempt is ignored.
    assert!(step(&mut m, t0 + ms(1_700), Event::HttpResponse { request: RequestId(1), reply: answer() }).is_empty());
    let a = step(&mut m, t0 + ms(2_000), Event::HttpResponse { request: req, reply: answer() });
    assert_eq!(a, vec![Action::ApplyAnswer { sdp: ANSWER.into() }]);
    assert_eq!(m.next_timeout(), Some(t0 + ms(2_000) + Duration::from_secs(45)));
    assert_eq!(m.retries(), 2);
    let a = step(&mut m, t0 + ms(3_000), Event::PeerStateChanged(PeerState::Connected));
    assert_eq!(states(&a), vec![(ConnectionState::Connected, None)]);
    assert_eq!(m.next_timeout(), None);
}

#[test]
fn unreachable_endpoint_is_retried_then_reported() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    let a = step(&mut m, t0, Event::HttpError { request: req, error: HttpFailure::Timeout });
    let Some(Action::RetryScheduled { error, .. }) = a.first() else { panic!("{a:?}") };
    assert_eq!(error.to_string(), "WHIP offer failed: request timed out");
    // At the end of the budget the network error is what the user sees.
    let mut now = t0;
    let mut req = offer_request(&step(&mut m, t0 + ms(500), Event::Timeout));
    loop {
        let a = step(
            &mut m,
            now,
            Event::HttpError { request: req, error: HttpFailure::Unreachable("connection refused".into()) },
        );
        if let Some(Action::RetryScheduled { at, .. }) = a.first() {
            now = *at;
            req = offer_request(&step(&mut m, now, Event::Timeout));
        } else {
            assert_eq!(states(&a), failed("WHIP offer failed: unreachable (connection refused)"));
            assert!(now - t0 <= Duration::from_secs(60));
            break;
        }
    }
}

#[test]
fn non_retryable_answers_fail_at_once_with_the_status() {
    for status in [400, 401, 403, 405, 415, 422, 307] {
        let mut m = machine(false);
        let t0 = Instant::now();
        let req = connect_and_offer(&mut m, t0);
        let a = step(&mut m, t0, Event::HttpResponse { request: req, reply: HttpReply::status(status) });
        assert_eq!(states(&a), failed(&format!("WHIP offer failed: {status}")), "status {status}");
        assert!(!a.iter().any(|a| matches!(a, Action::RetryScheduled { .. })));
        assert!(deletes(&a).is_empty(), "no resource to delete");
        assert_eq!(m.next_timeout(), None);
    }
}

#[test]
fn unusable_answer_is_a_peer_failure() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    let reply = HttpReply { content_type: Some("text/html".into()), body: "<html>".into(), ..answer() };
    let a = step(&mut m, t0, Event::HttpResponse { request: req, reply });
    assert_eq!(states(&a), failed("Peer connection failed"));
    // The endpoint did create a resource: clean it up.
    assert_eq!(deletes(&a), vec!["http://127.0.0.1:9/live/video-to-video/sessions/abc"]);

    let mut m = machine(false);
    let req = connect_and_offer(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer() });
    let a = step(&mut m, t0, Event::AnswerRejected);
    assert_eq!(states(&a), failed("Peer connection failed"));
}

#[test]
fn trickle_off_sends_one_complete_offer_when_gathering_completes() {
    let mut m = machine(false);
    let t0 = Instant::now();
    step(&mut m, t0, Event::Connect);
    assert!(!has_offer(&step(&mut m, t0, Event::OfferReady { sdp: OFFER.into() })));
    assert_eq!(m.next_timeout(), Some(t0 + Duration::from_secs(20)));
    assert!(step(
        &mut m,
        t0 + ms(10),
        Event::LocalCandidate { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into() }
    )
    .is_empty());
    let full = format!("{OFFER}a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n");
    let a = step(&mut m, t0 + ms(20), Event::GatheringComplete { sdp: Some(full.clone()) });
    let [Action::SendOffer { request, url, sdp }] = a.as_slice() else { panic!("{a:?}") };
    assert_eq!(url.as_str(), WHIP_URL);
    assert_eq!(sdp, &full);
    let a = step(&mut m, t0 + ms(30), Event::HttpResponse { request: *request, reply: answer() });
    assert!(patches(&a).is_empty());
    assert!(step(
        &mut m,
        t0 + ms(40),
        Event::LocalCandidate { candidate: "candidate:2 1 udp 1 127.0.0.1 5001 typ host".into() }
    )
    .is_empty());
}

#[test]
fn trickle_off_sends_the_offer_at_the_gathering_timeout() {
    let mut m = machine(false);
    let t0 = Instant::now();
    step(&mut m, t0, Event::Connect);
    step(&mut m, t0 + ms(100), Event::OfferReady { sdp: OFFER.into() });
    let deadline = t0 + ms(100) + Duration::from_secs(20);
    assert_eq!(m.next_timeout(), Some(deadline));
    assert!(step(&mut m, deadline - ms(1), Event::Timeout).is_empty());
    let a = step(&mut m, deadline, Event::Timeout);
    let [Action::SendOffer { sdp, .. }] = a.as_slice() else { panic!("{a:?}") };
    assert_eq!(sdp, OFFER);
    // Gathering finishing later does not send a second offer.
    assert!(!has_offer(&step(&mut m, deadline + ms(5), Event::GatheringComplete { sdp: None })));
}

#[test]
fn trickle_on_sends_the_offer_at_once_then_patches_candidates() {
    let mut m = machine(true);
    let t0 = Instant::now();
    step(&mut m, t0, Event::Connect);
    let req = offer_request(&step(&mut m, t0, Event::OfferReady { sdp: OFFER.into() }));
    // Candidates gathered before the answer wait for the resource.
    assert!(step(
        &mut m,
        t0,
        Event::LocalCandidate { candidate: "candidate:1 1 udp 9 127.0.0.1 5000 typ host".into() }
    )
    .is_empty());
    let a = step(&mut m, t0 + ms(50), Event::HttpResponse { request: req, reply: answer() });
    assert_eq!(a[0], Action::ApplyAnswer { sdp: ANSWER.into() });
    let p = patches(&a);
    assert_eq!(p.len(), 1, "{a:?}");
    let (patch1, url, etag, frag) = &p[0];
    assert_eq!(url, "http://127.0.0.1:9/live/video-to-video/sessions/abc");
    assert_eq!(etag.as_deref(), Some("\"e1\""));
    assert_eq!(
        frag,
        "a=ice-ufrag:uf1\r\na=ice-pwd:pw1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
         a=candidate:1 1 udp 9 127.0.0.1 5000 typ host\r\n"
    );
    // One PATCH at a time: the next candidate and the end wait for the reply.
    assert!(step(
        &mut m,
        t0 + ms(60),
        Event::LocalCandidate { candidate: "a=candidate:2 1 udp 8 10.0.0.1 5002 typ host".into() }
    )
    .is_empty());
    assert!(step(&mut m, t0 + ms(61), Event::GatheringComplete { sdp: None }).is_empty());
    let a = step(&mut m, t0 + ms(70), Event::HttpResponse { request: *patch1, reply: HttpReply::status(204) });
    let p = patches(&a);
    assert_eq!(p.len(), 1);
    assert!(p[0].3.ends_with("a=candidate:2 1 udp 8 10.0.0.1 5002 typ host\r\na=end-of-candidates\r\n"), "{}", p[0].3);
    assert!(m.trickle_enabled());
    // Nothing more to send.
    assert!(
        step(&mut m, t0 + ms(80), Event::HttpResponse { request: p[0].0, reply: HttpReply::status(204) }).is_empty()
    );
}

#[test]
fn patch_answered_405_disables_trickle_quietly() {
    let mut m = machine(true);
    let t0 = Instant::now();
    step(&mut m, t0, Event::Connect);
    let req = offer_request(&step(&mut m, t0, Event::OfferReady { sdp: OFFER.into() }));
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer() });
    let p = patches(&step(
        &mut m,
        t0,
        Event::LocalCandidate { candidate: "candidate:1 1 udp 9 127.0.0.1 5000 typ host".into() },
    ));
    assert_eq!(p.len(), 1);
    let a = step(&mut m, t0 + ms(5), Event::HttpResponse { request: p[0].0, reply: HttpReply::status(405) });
    assert!(a.is_empty(), "no state change, no error: {a:?}");
    assert!(!m.trickle_enabled());
    assert!(step(
        &mut m,
        t0 + ms(6),
        Event::LocalCandidate { candidate: "candidate:2 1 udp 9 127.0.0.1 5001 typ host".into() }
    )
    .is_empty());
    assert!(step(&mut m, t0 + ms(7), Event::GatheringComplete { sdp: None }).is_empty());
    let a = step(&mut m, t0 + ms(8), Event::PeerStateChanged(PeerState::Connected));
    assert_eq!(states(&a), vec![(ConnectionState::Connected, None)]);
}

#[test]
fn connection_timeout_fires_45s_after_connect() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    step(&mut m, t0 + ms(1_000), Event::HttpResponse { request: req, reply: answer() });
    step(&mut m, t0 + ms(1_500), Event::PeerStateChanged(PeerState::Connecting));
    assert_eq!(m.next_timeout(), Some(t0 + Duration::from_secs(45)));
    assert!(step(&mut m, t0 + Duration::from_secs(45) - ms(1), Event::Timeout).is_empty());
    let a = step(&mut m, t0 + Duration::from_secs(45), Event::Timeout);
    assert_eq!(states(&a), failed("Connection timed out"));
    assert!(a.contains(&Action::ClosePeer));
    assert_eq!(deletes(&a), vec!["http://127.0.0.1:9/live/video-to-video/sessions/abc"]);
    // A peer event after the end changes nothing.
    assert!(step(&mut m, t0 + Duration::from_secs(46), Event::PeerStateChanged(PeerState::Connected)).is_empty());
}

#[test]
fn connection_timeout_also_covers_a_peer_that_never_offers() {
    let mut m = machine(false);
    let t0 = Instant::now();
    step(&mut m, t0, Event::Connect);
    let a = step(&mut m, t0 + Duration::from_secs(45), Event::Timeout);
    assert_eq!(states(&a), failed("Connection timed out"));
}

#[test]
fn link_ice_servers_are_honoured() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    let reply = HttpReply {
        link: vec![
            r#"<stun:127.0.0.1:3478>; rel="ice-server", <https://docs.example/>; rel="help""#.into(),
            r#"<turn:127.0.0.1:3479?transport=udp>; rel="ice-server"; username="u1"; credential="s3cret"; credential-type="password""#.into(),
        ],
        ..answer()
    };
    let a = step(&mut m, t0, Event::HttpResponse { request: req, reply });
    let expected = vec![
        IceServer::new("stun:127.0.0.1:3478"),
        IceServer {
            url: "turn:127.0.0.1:3479?transport=udp".into(),
            username: Some("u1".into()),
            credential: Some("s3cret".into()),
        },
    ];
    assert_eq!(a, vec![Action::SetIceServers(expected.clone()), Action::ApplyAnswer { sdp: ANSWER.into() }]);
    assert_eq!(m.ice_servers(), expected.as_slice());
}

#[test]
fn disconnect_deletes_the_resource_resolved_against_the_whip_url() {
    for (location, resolved) in [
        ("../sessions/abc", "http://127.0.0.1:9/live/video-to-video/sessions/abc"),
        ("whip/sess_9", "http://127.0.0.1:9/live/video-to-video/stk_1/whip/sess_9"),
        ("/api/daydream/streams/str_1/whip", "http://127.0.0.1:9/api/daydream/streams/str_1/whip"),
        ("http://127.0.0.2:8/r/1", "http://127.0.0.2:8/r/1"),
    ] {
        let mut m = machine(false);
        let t0 = Instant::now();
        let req = connect_and_offer(&mut m, t0);
        let reply = HttpReply { location: Some(location.into()), ..answer() };
        step(&mut m, t0, Event::HttpResponse { request: req, reply });
        step(&mut m, t0, Event::PeerStateChanged(PeerState::Connected));
        assert_eq!(m.resource_url().map(|u| u.as_str()), Some(resolved));
        let a = step(&mut m, t0 + ms(10), Event::Disconnect);
        assert_eq!(a[0], Action::ClosePeer);
        assert_eq!(deletes(&a), vec![resolved.to_owned()]);
        assert_eq!(states(&a), vec![(ConnectionState::Closed, None)]);
        // Its reply is ignored, whatever it is; a second disconnect does nothing.
        let Some(Action::SendDelete { request, .. }) = a.get(1) else { panic!("{a:?}") };
        assert!(step(&mut m, t0 + ms(20), Event::HttpResponse { request: *request, reply: HttpReply::status(404) })
            .is_empty());
        assert!(step(&mut m, t0 + ms(30), Event::Disconnect).is_empty());
        assert_eq!(m.state(), ConnectionState::Closed);
    }
}

#[test]
fn disconnect_during_the_offer_deletes_what_the_offer_creates() {
    let mut m = machine(false);
    let t0 = Instant::now();
    let req = connect_and_offer(&mut m, t0);
    let a = step(&mut m, t0 + ms(5), Event::Disconnect);
    assert_eq!(states(&a), vec![(ConnectionState::Closed, None)]);
    assert!(deletes(&a).is_empty());
    let a = step(&mut m, t0 + ms(50), Event::HttpResponse { request: req, reply: answer() });
    assert_eq!(deletes(&a), vec!["http://127.0.0.1:9/live/video-to-video/sessions/abc"]);
    assert!(states(&a).is_empty());
}

#[test]
fn disconnected_is_transient_until_the_grace_period_ends() {
    let mut m = machine(false);
    let t0 = Instant::now();
    connected(&mut m, t0);
    let t1 = t0 + Duration::from_secs(100);
    let a = step(&mut m, t1, Event::PeerStateChanged(PeerState::Disconnected));
    assert_eq!(states(&a), vec![(ConnectionState::Disconnected, None)]);
    assert_eq!(m.next_timeout(), Some(t1 + Duration::from_secs(5)));
    // Comes back inside the grace period: connected again, no failure.
    let a = step(&mut m, t1 + ms(4_000), Event::PeerStateChanged(PeerState::Connected));
    assert_eq!(states(&a), vec![(ConnectionState::Connected, None)]);
    assert_eq!(m.next_timeout(), None);
    assert!(step(&mut m, t1 + ms(5_000), Event::Timeout).is_empty());
    // Lost again, for good this time.
    let t2 = t1 + Duration::from_secs(10);
    step(&mut m, t2, Event::PeerStateChanged(PeerState::Disconnected));
    assert!(step(&mut m, t2 + ms(4_999), Event::Timeout).is_empty());
    let a = step(&mut m, t2 + ms(5_000), Event::Timeout);
    assert_eq!(states(&a), failed("ICE connection failed"));
    assert_eq!(deletes(&a).len(), 1);
}

#[test]
fn peer_failures_map_to_the_spec_messages() {
    let t0 = Instant::now();
    let mut m = machine(false);
    let req = connect_and_offer(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer() });
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("ICE connection failed"));

    let mut m = machine(false);
    connected(&mut m, t0);
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("Peer connection failed"));

    let mut m = machine(false);
    connect_and_offer(&mut m, t0);
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("Peer connection failed"), "peer died before the answer");

    let mut m = machine(false);
    connected(&mut m, t0);
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Closed));
    assert_eq!(states(&a), vec![(ConnectionState::Closed, None)]);
    assert_eq!(deletes(&a).len(), 1, "remote close still cleans up the resource");
}

#[test]
fn connect_twice_is_refused_until_disconnect() {
    let mut m = machine(false);
    let t0 = Instant::now();
    assert_eq!(m.state(), ConnectionState::Disconnected);
    m.handle(t0, Event::Connect).unwrap();
    let err = m.handle(t0, Event::Connect).unwrap_err();
    assert_eq!(err, WhipError::AlreadyConnected);
    assert_eq!(err.to_string(), "WHIP client already has an active connection");
    step(&mut m, t0, Event::OfferReady { sdp: OFFER.into() });
    assert_eq!(m.handle(t0, Event::Connect).unwrap_err().to_string(), "WHIP client already has an active connection");
    step(&mut m, t0, Event::Disconnect);
    // A fresh session: new timers from the new connect.
    let t1 = t0 + Duration::from_secs(300);
    let a = m.handle(t1, Event::Connect).unwrap();
    assert_eq!(states(&a), vec![(ConnectionState::Connecting, None)]);
    assert_eq!(m.next_timeout(), Some(t1 + Duration::from_secs(45)));
}

#[test]
fn source_errors_use_the_spec_words() {
    assert_eq!(WhipError::NoTracks.to_string(), "MediaStream has no tracks");
    assert_eq!(WhipError::TrackNotLive.to_string(), "Video track is not live");
}

fn reconnecting(max_reconnects: u32) -> WhipMachine {
    let mut opts = WhipOptions::new(WHIP_URL.parse().unwrap());
    opts.enable_trickle_ice = false;
    opts.max_reconnects = max_reconnects;
    WhipMachine::new(opts)
}

const LOST: &str = "Connection lost — reconnecting…";

/// Livepeer ends a WHIP session as soon as ICE reports "disconnected": past the grace, a
/// session that had connected is published again by a NEW offer POST (old resource deleted,
/// media source kept), with a fresh warm-up budget; connecting again resets the count.
#[test]
fn a_lost_session_is_published_again_by_a_new_offer_within_max_reconnects() {
    let mut m = reconnecting(2);
    let t0 = Instant::now();
    connected(&mut m, t0);
    let t1 = t0 + Duration::from_secs(30);
    step(&mut m, t1, Event::PeerStateChanged(PeerState::Disconnected));
    assert!(step(&mut m, t1 + ms(4_999), Event::Timeout).is_empty(), "still in the grace");
    let t2 = t1 + ms(5_000);
    let a = step(&mut m, t2, Event::Timeout);
    assert_eq!(states(&a), vec![(ConnectionState::Connecting, Some(LOST.to_owned()))]);
    assert!(a.iter().any(|x| matches!(x, Action::DropPeer)), "{a:?}");
    assert!(!a.iter().any(|x| matches!(x, Action::ClosePeer)), "the media source is kept: {a:?}");
    assert_eq!(deletes(&a), vec!["http://127.0.0.1:9/live/video-to-video/sessions/abc"]);
    assert!(matches!(a.last(), Some(Action::CreatePeer { .. })), "{a:?}");
    assert_eq!(m.reconnects(), 1);
    assert!(m.is_active());
    assert_eq!(m.next_timeout(), Some(t2 + Duration::from_secs(45)), "a fresh connection window");
    // the new peer's offer goes out as a new POST to the WHIP URL
    step(&mut m, t2, Event::OfferReady { sdp: OFFER.into() });
    let a = step(&mut m, t2, Event::GatheringComplete { sdp: None });
    let req = offer_request(&a);
    // the endpoint warms up: retried inside the new budget, still "connection lost"
    let a = step(&mut m, t2, Event::HttpResponse { request: req, reply: HttpReply::status(503) });
    assert!(matches!(a[0], Action::RetryScheduled { retry: 1, .. }), "{a:?}");
    assert_eq!(m.state(), ConnectionState::Connecting);
    let a = step(&mut m, t2 + ms(500), Event::Timeout);
    let req = offer_request(&a);
    step(&mut m, t2 + ms(600), Event::HttpResponse { request: req, reply: answer() });
    let a = step(&mut m, t2 + ms(700), Event::PeerStateChanged(PeerState::Connected));
    assert_eq!(states(&a), vec![(ConnectionState::Connected, None)]);
    assert_eq!(m.reconnects(), 0, "connected again: the count starts over");
    // a peer failure (not only a long "disconnected") is a loss too
    let a = step(&mut m, t2 + Duration::from_secs(60), Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), vec![(ConnectionState::Connecting, Some(LOST.to_owned()))]);
}

#[test]
fn reconnects_stop_at_max_reconnects_in_a_row_then_fail() {
    let mut m = reconnecting(1);
    let t0 = Instant::now();
    connected(&mut m, t0);
    let a = step(&mut m, t0 + ms(10), Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), vec![(ConnectionState::Connecting, Some(LOST.to_owned()))]);
    step(&mut m, t0 + ms(10), Event::OfferReady { sdp: OFFER.into() });
    let a = step(&mut m, t0 + ms(10), Event::GatheringComplete { sdp: None });
    let req = offer_request(&a);
    step(&mut m, t0 + ms(20), Event::HttpResponse { request: req, reply: answer() });
    // the new peer never connects: no reconnect left
    let a = step(&mut m, t0 + ms(30), Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("Peer connection failed"));
    assert!(a.iter().any(|x| matches!(x, Action::ClosePeer)));
    assert!(!m.is_active());
}

#[test]
fn without_max_reconnects_a_lost_session_fails_and_a_never_connected_one_never_reconnects() {
    let mut m = reconnecting(0);
    let t0 = Instant::now();
    connected(&mut m, t0);
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("Peer connection failed"));

    let mut m = reconnecting(5);
    let req = connect_and_offer(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer() });
    let a = step(&mut m, t0, Event::PeerStateChanged(PeerState::Failed));
    assert_eq!(states(&a), failed("ICE connection failed"), "never connected: nothing to recover");
}
