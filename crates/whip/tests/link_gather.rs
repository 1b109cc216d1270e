//! `Link` ICE servers (RFC 9725) under trickle ICE: the machine asks for server-reflexive
//! candidates from the new STUN servers and PATCHes them, with injected time.

use std::time::{Duration, Instant};

use dreamgate_whip::machine::{
    Action, ConnectionState, Event, HttpReply, PeerState, RequestId, WhipMachine, WhipOptions,
};
use dreamgate_whip::{IceServer, IceTransportPolicy};

const WHIP_URL: &str = "http://127.0.0.1:9/live/video-to-video/stk_1/whip?token=abc";
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:uf1\r\na=ice-pwd:pw1\r\na=mid:0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
const SRFLX: &str = "a=candidate:3 1 udp 1694498815 198.51.100.7 50001 typ srflx raddr 127.0.0.1 rport 50000";
const FRAG_HEAD: &str = "a=ice-ufrag:uf1\r\na=ice-pwd:pw1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Created with Google's STUN server (the default), as the real client is.
fn machine(trickle: bool, policy: IceTransportPolicy) -> WhipMachine {
    let mut opts = WhipOptions::new(WHIP_URL.parse().unwrap());
    opts.enable_trickle_ice = trickle;
    opts.ice_transport_policy = policy;
    WhipMachine::new(opts)
}

fn step(m: &mut WhipMachine, now: Instant, event: Event) -> Vec<Action> {
    m.handle(now, event).expect("only Connect can fail")
}

/// A 201 announcing a new STUN server, the one the peer already uses, and a TURN server.
fn answer_with_links() -> HttpReply {
    HttpReply {
        status: 201,
        location: Some("../sessions/abc".into()),
        link: vec![
            r#"<stun:127.0.0.1:3478>; rel="ice-server", <stun:stun.l.google.com:19302>; rel="ice-server""#.into(),
            r#"<turn:127.0.0.1:3479>; rel="ice-server"; username="u"; credential="c""#.into(),
        ],
        etag: Some("\"e1\"".into()),
        content_type: Some("application/sdp".into()),
        body: ANSWER.into(),
    }
}

/// Connects, lets the peer offer (and, as the real driver does, finish gathering at
/// once); returns the offer's request.
fn connect(m: &mut WhipMachine, t0: Instant) -> RequestId {
    let created = step(m, t0, Event::Connect);
    assert!(created.iter().any(|a| matches!(a, Action::CreatePeer { ice_servers, .. }
        if ice_servers == &[IceServer::new("stun:stun.l.google.com:19302")])));
    let mut a = step(m, t0, Event::OfferReady { sdp: OFFER.into() });
    a.extend(step(m, t0, Event::GatheringComplete { sdp: None }));
    a.iter()
        .find_map(|a| match a {
            Action::SendOffer { request, .. } => Some(*request),
            _ => None,
        })
        .expect("an offer")
}

fn patches(actions: &[Action]) -> Vec<(RequestId, Option<String>, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendCandidates { request, etag, sdpfrag, .. } => Some((*request, etag.clone(), sdpfrag.clone())),
            _ => None,
        })
        .collect()
}

fn gathers(actions: &[Action]) -> Vec<Vec<IceServer>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::GatherFrom(servers) => Some(servers.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn trickle_on_gathers_from_new_link_stun_servers_and_patches_their_candidates() {
    let mut m = machine(true, IceTransportPolicy::All);
    let t0 = Instant::now();
    let req = connect(&mut m, t0);
    let a = step(&mut m, t0 + ms(40), Event::HttpResponse { request: req, reply: answer_with_links() });
    // Only the STUN server the peer did not use yet; the answer is applied first.
    assert_eq!(gathers(&a), vec![vec![IceServer::new("stun:127.0.0.1:3478")]]);
    let apply = a.iter().position(|a| matches!(a, Action::ApplyAnswer { .. })).unwrap();
    let gather = a.iter().position(|a| matches!(a, Action::GatherFrom(_))).unwrap();
    assert!(apply < gather, "{a:?}");
    // Gathering already completed, but the end of candidates waits for the new ones.
    assert!(patches(&a).is_empty(), "{a:?}");
    assert_eq!(m.next_timeout(), Some(t0 + Duration::from_secs(45)), "no new timer");

    let a = step(&mut m, t0 + ms(300), Event::CandidatesGathered { candidates: vec![SRFLX.into()] });
    let p = patches(&a);
    assert_eq!(p.len(), 1, "{a:?}");
    assert_eq!(p[0].1.as_deref(), Some("\"e1\""), "If-Match: the session's ETag");
    assert_eq!(p[0].2, format!("{FRAG_HEAD}{SRFLX}\r\na=end-of-candidates\r\n"));
    // 204: nothing left to send; the session goes on.
    assert!(
        step(&mut m, t0 + ms(310), Event::HttpResponse { request: p[0].0, reply: HttpReply::status(204) }).is_empty()
    );
    assert!(m.trickle_enabled());
    let a = step(&mut m, t0 + ms(400), Event::PeerStateChanged(PeerState::Connected));
    assert!(a.iter().any(|a| matches!(a, Action::EmitState(s) if s.state == ConnectionState::Connected)));
}

#[test]
fn no_candidates_from_the_link_servers_still_ends_the_candidates() {
    let mut m = machine(true, IceTransportPolicy::All);
    let t0 = Instant::now();
    let req = connect(&mut m, t0);
    let a = step(&mut m, t0, Event::HttpResponse { request: req, reply: answer_with_links() });
    assert_eq!(gathers(&a).len(), 1);
    let p = patches(&step(&mut m, t0 + ms(900), Event::CandidatesGathered { candidates: vec![] }));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].2, format!("{FRAG_HEAD}a=end-of-candidates\r\n"));
}

#[test]
fn link_servers_the_peer_already_used_are_not_asked_again() {
    let mut m = machine(true, IceTransportPolicy::All);
    let t0 = Instant::now();
    let req = connect(&mut m, t0);
    let reply =
        HttpReply { link: vec![r#"<stun:stun.l.google.com:19302>; rel="ice-server""#.into()], ..answer_with_links() };
    let a = step(&mut m, t0, Event::HttpResponse { request: req, reply });
    assert!(gathers(&a).is_empty(), "{a:?}");
    // Nothing to wait for: the end of candidates goes out at once.
    assert_eq!(patches(&a)[0].2, format!("{FRAG_HEAD}a=end-of-candidates\r\n"));
}

#[test]
fn trickle_off_or_relay_only_keeps_the_servers_without_gathering() {
    for (trickle, policy) in [(false, IceTransportPolicy::All), (true, IceTransportPolicy::Relay)] {
        let mut m = machine(trickle, policy);
        let t0 = Instant::now();
        let req = connect(&mut m, t0);
        let a = step(&mut m, t0, Event::HttpResponse { request: req, reply: answer_with_links() });
        assert!(gathers(&a).is_empty(), "trickle {trickle}, {policy:?}: {a:?}");
        assert!(a.iter().any(|a| matches!(a, Action::SetIceServers(s) if s.len() == 3)));
        // Kept for a later ICE restart.
        assert_eq!(m.ice_servers()[0], IceServer::new("stun:127.0.0.1:3478"));
        // A stray report changes nothing.
        let a = step(&mut m, t0 + ms(5), Event::CandidatesGathered { candidates: vec![SRFLX.into()] });
        assert!(patches(&a).is_empty(), "{a:?}");
    }
}

#[test]
fn patch_of_the_gathered_candidates_answered_405_disables_trickle_quietly() {
    let mut m = machine(true, IceTransportPolicy::All);
    let t0 = Instant::now();
    let req = connect(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer_with_links() });
    let p = patches(&step(&mut m, t0 + ms(200), Event::CandidatesGathered { candidates: vec![SRFLX.into()] }));
    assert_eq!(p.len(), 1);
    let a = step(&mut m, t0 + ms(210), Event::HttpResponse { request: p[0].0, reply: HttpReply::status(405) });
    assert!(a.is_empty(), "no state change, no error: {a:?}");
    assert!(!m.trickle_enabled());
    assert!(step(
        &mut m,
        t0 + ms(220),
        Event::LocalCandidate { candidate: "candidate:9 1 udp 9 127.0.0.1 5009 typ host".into() }
    )
    .is_empty());
    let a = step(&mut m, t0 + ms(230), Event::PeerStateChanged(PeerState::Connected));
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::EmitState(s) if s.state == ConnectionState::Connected && s.error.is_none())));
}

#[test]
fn candidates_after_the_session_ended_are_ignored() {
    let mut m = machine(true, IceTransportPolicy::All);
    let t0 = Instant::now();
    let req = connect(&mut m, t0);
    step(&mut m, t0, Event::HttpResponse { request: req, reply: answer_with_links() });
    let a = step(&mut m, t0 + ms(10), Event::Disconnect);
    assert!(a.contains(&Action::ClosePeer));
    assert!(step(&mut m, t0 + ms(20), Event::CandidatesGathered { candidates: vec![SRFLX.into()] }).is_empty());
}
