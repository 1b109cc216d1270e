//! The store's transitions, held to the same rules on both backends: the
//! in-process store always, and Redis when `DREAMGATE_TEST_REDIS` names a
//! server (`scripts/test.sh` starts one; each test uses its own key prefix).
//! Time is injected (wall-clock milliseconds), as everywhere in the gateway.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dreamgate_gateway::registry::{Access, Conflict, FailOutcome, Ms, ReapReason, RecordUpdate, StreamRecord};
use dreamgate_gateway::session::SessionId;
use dreamgate_gateway::store::{Store, StoreApi, StoreConfig};
use dreamgate_gateway::RegistryConfig;
use url::Url;

const S: fn(u64) -> Duration = Duration::from_secs;

fn rules() -> RegistryConfig {
    RegistryConfig {
        reap_after: S(120),
        retry_base: S(5),
        retry_max: S(20),
        max_attempts: 4,
        tombstone_ttl: S(600),
        session_idle: S(1800),
        max_sessions: 1000,
        delete_lease: S(30),
        create_lease: S(150),
    }
}

/// The Redis URL for tests, or `None` (with the reason printed once per test).
pub fn test_redis(test: &str) -> Option<String> {
    match std::env::var("DREAMGATE_TEST_REDIS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: Redis part skipped: DREAMGATE_TEST_REDIS is not set (scripts/test.sh sets it)");
            None
        }
    }
}

/// A key prefix no other test (or run) uses.
fn prefix(test: &str) -> String {
    format!("dgtest:{test}:{}:", SessionId::generate().as_str())
}

/// The backends to check: `(name, store, second handle on the same state)`.
/// The second handle is another connection to the same Redis keys (a second
/// instance); for the in-process store, the same store.
async fn backends(test: &str) -> Vec<(&'static str, Arc<Store>, Arc<Store>)> {
    let mem = Arc::new(Store::open(&StoreConfig::Memory, rules(), "").await.unwrap());
    let mut out = vec![("memory", mem.clone(), mem)];
    if let Some(url) = test_redis(test) {
        let cfg = StoreConfig::Redis { url, prefix: prefix(test) };
        let a = Arc::new(Store::open(&cfg, rules(), "").await.expect("connect to the test Redis"));
        let b = Arc::new(Store::open(&cfg, rules(), "").await.unwrap());
        out.push(("redis", a, b));
    }
    out
}

fn sid(n: u8) -> SessionId {
    SessionId::from_bytes([n; 16])
}

fn record(id: &str, owner: &SessionId) -> StreamRecord {
    StreamRecord {
        id: id.into(),
        owner: owner.clone(),
        model_id: "stabilityai/sd-turbo".into(),
        whip_url: Url::parse("https://ai.livepeer.com/live/video-to-video/stk/whip").unwrap(),
        whip_resource: None,
        whep_url: None,
        whep_resource: None,
    }
}

async fn created(st: &Store, id: &str, owner: &SessionId, now: Ms) {
    st.issue_session(owner, now).await.unwrap();
    st.begin_create(owner, now).await.unwrap().unwrap();
    assert_eq!(st.finish_create(&record(id, owner), now).await.unwrap(), None);
}

fn t0() -> Ms {
    Ms::now()
}

#[tokio::test]
async fn only_issued_sessions_resume_and_idle_ones_expire_unless_they_hold_a_slot() {
    for (name, st, _) in backends("sessions").await {
        let t0 = t0();
        let (idle, busy, forged) = (sid(1), sid(2), sid(3));
        st.issue_session(&idle, t0).await.unwrap();
        st.issue_session(&busy, t0).await.unwrap();
        assert!(st.resume_session(&idle, t0 + S(10)).await.unwrap(), "{name}");
        assert!(!st.resume_session(&forged, t0).await.unwrap(), "{name}: never issued");
        // busy holds a slot (a create in flight, then a stream)
        st.begin_create(&busy, t0 + S(10)).await.unwrap().unwrap();
        st.finish_create(&record("str_busy", &busy), t0 + S(10)).await.unwrap();
        assert!(st.resume_session(&idle, t0 + S(10 + 1799)).await.unwrap(), "{name}: activity postpones expiry");
        assert!(!st.resume_session(&idle, t0 + S(10 + 1799 + 1800)).await.unwrap(), "{name}: idle 30 min");
        assert!(!st.resume_session(&idle, t0 + S(10)).await.unwrap(), "{name}: and forgotten");
        assert!(st.resume_session(&busy, t0 + S(5000)).await.unwrap(), "{name}: a slot holder is kept");
        // its stream ends: from then on it expires like any other (from its last activity)
        st.begin_delete("str_busy", t0 + S(5000)).await.unwrap();
        assert!(st.resume_session(&busy, t0 + S(5000 + 1799)).await.unwrap(), "{name}");
        assert!(!st.resume_session(&busy, t0 + S(5000 + 1799 + 1800)).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn one_stream_per_session_and_the_slot_is_freed_by_abort_end_or_a_dead_create() {
    for (name, st, _) in backends("slot").await {
        let t0 = t0();
        let (a, b) = (sid(1), sid(2));
        st.issue_session(&a, t0).await.unwrap();
        st.begin_create(&a, t0).await.unwrap().unwrap();
        assert_eq!(st.begin_create(&a, t0).await.unwrap(), Err(Conflict { active_stream_id: None }), "{name}");
        st.finish_create(&record("str_a", &a), t0).await.unwrap();
        assert_eq!(
            st.begin_create(&a, t0).await.unwrap(),
            Err(Conflict { active_stream_id: Some("str_a".into()) }),
            "{name}"
        );
        assert_eq!(st.active_stream(&a).await.unwrap().as_deref(), Some("str_a"), "{name}");
        // another session is independent; an aborted create frees its slot
        st.issue_session(&b, t0).await.unwrap();
        st.begin_create(&b, t0).await.unwrap().unwrap();
        st.abort_create(&b, t0).await.unwrap();
        st.begin_create(&b, t0).await.unwrap().unwrap();
        // a create whose instance died frees the slot after the create lease
        assert!(st.begin_create(&b, t0 + S(149)).await.unwrap().is_err(), "{name}");
        assert!(st.begin_create(&b, t0 + S(150)).await.unwrap().is_ok(), "{name}");
        // ending the stream frees a's slot
        assert_eq!(st.begin_delete("str_a", t0).await.unwrap(), Some(1), "{name}");
        assert_eq!(st.active_stream(&a).await.unwrap(), None, "{name}");
        st.begin_create(&a, t0).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn ending_during_the_create_hands_the_delete_to_the_creator() {
    for (name, st, _) in backends("end_pending").await {
        let t0 = t0();
        let a = sid(1);
        st.issue_session(&a, t0).await.unwrap();
        assert!(!st.end_pending_create(&a).await.unwrap(), "{name}: nothing in flight");
        st.begin_create(&a, t0).await.unwrap().unwrap();
        assert!(st.end_pending_create(&a).await.unwrap(), "{name}");
        assert_eq!(st.finish_create(&record("str_a", &a), t0).await.unwrap(), Some(1), "{name}");
        assert!(matches!(st.authorize(&a, "str_a", None).await.unwrap(), Access::Deleting(_)), "{name}");
        assert_eq!(st.active_stream(&a).await.unwrap(), None, "{name}");
        assert_eq!(st.begin_delete("str_a", t0).await.unwrap(), None, "{name}: attempt 1 is in flight");
        st.delete_succeeded("str_a", t0).await.unwrap();
        assert_eq!(st.authorize(&a, "str_a", None).await.unwrap(), Access::Gone, "{name}");
        assert_eq!(st.open_streams().await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn records_round_trip_and_only_their_owner_reaches_them() {
    for (name, st, other) in backends("records").await {
        let t0 = t0();
        let (a, b) = (sid(1), sid(2));
        created(&st, "str_a", &a, t0).await;
        let Access::Live(r) = other.authorize(&a, "str_a", None).await.unwrap() else { panic!("{name}") };
        assert_eq!(r, record("str_a", &a), "{name}");
        assert_eq!(st.authorize(&b, "str_a", None).await.unwrap(), Access::NotOwned, "{name}");
        assert_eq!(st.authorize(&a, "str_unknown", None).await.unwrap(), Access::NotOwned, "{name}");
        let res = Url::parse("https://ai.livepeer.com/live/video-to-video/stk/whip/ses_1").unwrap();
        let whep = Url::parse("https://lp-playback.studio/webrtc/x").unwrap();
        let viewer = Url::parse("https://lp-playback.studio/webrtc/x/vwr_1").unwrap();
        st.update_record(
            "str_a",
            &RecordUpdate::WhipAnswer { resource: Some(res.clone()), playback: Some(whep.clone()) },
        )
        .await
        .unwrap();
        other.update_record("str_a", &RecordUpdate::WhepResource(Some(viewer.clone()))).await.unwrap();
        // a WHIP answer without a playback URL keeps the known one
        st.update_record("str_a", &RecordUpdate::WhipAnswer { resource: Some(res.clone()), playback: None })
            .await
            .unwrap();
        let Access::Live(r) = st.authorize(&a, "str_a", None).await.unwrap() else { panic!("{name}") };
        assert_eq!((&r.whip_resource, &r.whep_url, &r.whep_resource), (&Some(res), &Some(whep), &Some(viewer)));
        st.update_record("str_a", &RecordUpdate::WhipResource(None)).await.unwrap();
        let Access::Live(r) = other.authorize(&a, "str_a", None).await.unwrap() else { panic!("{name}") };
        assert_eq!(r.whip_resource, None, "{name}");
        // updating an unknown stream creates nothing
        st.update_record("str_nope", &RecordUpdate::WhipResource(None)).await.unwrap();
        assert_eq!(st.authorize(&a, "str_nope", None).await.unwrap(), Access::NotOwned, "{name}");
    }
}

#[tokio::test]
async fn a_stream_routes_check_resumes_the_session_and_authorizes_in_one_transition() {
    for (name, st, other) in backends("resume_authorize").await {
        let t0 = t0();
        let (a, b, forged, idle) = (sid(1), sid(2), sid(3), sid(4));
        created(&st, "str_a", &a, t0).await;
        st.issue_session(&b, t0).await.unwrap();
        st.issue_session(&idle, t0).await.unwrap();
        let Access::Live(r) = other.resume_and_authorize(&a, "str_a", t0 + S(100)).await.unwrap() else {
            panic!("{name}")
        };
        assert_eq!(r, record("str_a", &a), "{name}");
        assert_eq!(st.resume_and_authorize(&b, "str_a", t0).await.unwrap(), Access::NotOwned, "{name}: not its owner");
        assert_eq!(st.resume_and_authorize(&forged, "str_a", t0).await.unwrap(), Access::NotOwned, "{name}: forged");
        assert!(!st.resume_session(&forged, t0).await.unwrap(), "{name}: and not remembered by asking");
        // the owner's check recorded the stream's activity: reaped 120 s after +100 s, not after t0
        assert!(st.claim_due(t0 + S(219)).await.unwrap().is_empty(), "{name}");
        assert_eq!(st.claim_due(t0 + S(220)).await.unwrap().len(), 1, "{name}");
        // and the session's: a check at +1799 s keeps an idle session another 30 min
        assert_eq!(st.resume_and_authorize(&idle, "str_a", t0 + S(1799)).await.unwrap(), Access::NotOwned);
        assert!(st.resume_session(&idle, t0 + S(1799 + 1799)).await.unwrap(), "{name}: its activity was recorded");
        // an expired session owns nothing and is forgotten, even its own stream's
        assert_eq!(st.resume_and_authorize(&idle, "str_a", t0 + S(1799 * 2 + 1800)).await.unwrap(), Access::NotOwned);
        assert!(!st.resume_session(&idle, t0 + S(1799 * 2 + 1800)).await.unwrap(), "{name}: forgotten");
    }
}

#[tokio::test]
async fn a_silent_stream_is_claimed_once_and_a_lost_attempt_is_retried_after_its_lease() {
    for (name, st, other) in backends("reap").await {
        let t0 = t0();
        let (a, b) = (sid(1), sid(2));
        created(&st, "str_a", &a, t0).await;
        created(&st, "str_b", &b, t0).await;
        // activity postpones reaping (b polls at +100 s); never backwards
        st.authorize(&b, "str_b", Some(t0 + S(100))).await.unwrap();
        st.authorize(&b, "str_b", Some(t0 + S(50))).await.unwrap();
        assert!(st.claim_due(t0 + S(119)).await.unwrap().is_empty(), "{name}");
        let claimed = other.claim_due(t0 + S(120)).await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}: {claimed:?}");
        assert_eq!(
            (claimed[0].stream_id.as_str(), claimed[0].reason, claimed[0].attempt),
            ("str_a", ReapReason::Silent, 1)
        );
        assert_eq!(st.active_stream(&a).await.unwrap(), None, "{name}: the slot is free");
        assert!(matches!(st.authorize(&a, "str_a", Some(t0 + S(121))).await.unwrap(), Access::Deleting(_)));
        // leased: nobody else claims it, nor can the owner start another attempt
        assert!(st.claim_due(t0 + S(149)).await.unwrap().is_empty(), "{name}");
        assert_eq!(st.begin_delete("str_a", t0 + S(149)).await.unwrap(), None, "{name}");
        // the claimer died: after the lease another instance takes it over
        let again = st.claim_due(t0 + S(150)).await.unwrap();
        assert_eq!(again.len(), 1, "{name}");
        assert_eq!((again[0].reason, again[0].attempt), (ReapReason::LeaseExpired, 2), "{name}");
        assert_eq!(other.delete_failed("str_a", 1, t0 + S(151)).await.unwrap(), FailOutcome::Ignored, "{name}");
        st.delete_succeeded("str_a", t0 + S(152)).await.unwrap();
        assert_eq!(st.authorize(&a, "str_a", None).await.unwrap(), Access::Gone, "{name}");
        assert_eq!(st.open_streams().await.unwrap(), 1, "{name}: str_b is open");
        assert!(st.claim_due(t0 + S(219)).await.unwrap().is_empty(), "{name}: nothing left of str_a");
        let b_claim = st.claim_due(t0 + S(220)).await.unwrap();
        assert_eq!(b_claim.iter().map(|c| c.stream_id.as_str()).collect::<Vec<_>>(), vec!["str_b"], "{name}");
    }
}

#[tokio::test]
async fn failed_deletes_back_off_then_are_parked_and_taken_once() {
    for (name, st, other) in backends("retries").await {
        let t0 = t0();
        let a = sid(1);
        created(&st, "str_a", &a, t0).await;
        let mut now = t0 + S(1);
        let mut attempt = st.begin_delete("str_a", now).await.unwrap().unwrap();
        let mut delays = Vec::new();
        loop {
            match st.delete_failed("str_a", attempt, now).await.unwrap() {
                FailOutcome::Retry => {}
                FailOutcome::GaveUp => break,
                FailOutcome::Ignored => panic!("{name}: ignored"),
            }
            // find when the retry is due (by probing, as a reaper would)
            let mut due = now;
            let claimed = loop {
                due = due + S(1);
                let c = st.claim_due(due).await.unwrap();
                if !c.is_empty() {
                    break c;
                }
                assert!(due < now + S(100), "{name}: retry never due");
            };
            assert_eq!((claimed[0].reason, claimed[0].attempt), (ReapReason::Retry, attempt + 1), "{name}");
            delays.push(due - now);
            attempt += 1;
            now = due;
        }
        assert_eq!(delays, vec![S(5), S(10), S(20)], "{name}");
        assert_eq!(st.authorize(&a, "str_a", None).await.unwrap(), Access::Gone, "{name}: given up");
        assert_eq!(st.open_streams().await.unwrap(), 0, "{name}");
        st.park(&["str_other".to_string()]).await.unwrap();
        let mut parked = other.take_parked().await.unwrap();
        parked.sort();
        assert_eq!(parked, vec!["str_a".to_string(), "str_other".to_string()], "{name}");
        assert!(st.take_parked().await.unwrap().is_empty(), "{name}: taken once");
    }
}

#[tokio::test]
async fn drain_hands_over_every_open_stream() {
    for (name, st, _) in backends("drain").await {
        let t0 = t0();
        created(&st, "str_live", &sid(1), t0).await;
        created(&st, "str_retry", &sid(2), t0).await;
        created(&st, "str_gone", &sid(3), t0).await;
        let n = st.begin_delete("str_retry", t0).await.unwrap().unwrap();
        st.delete_failed("str_retry", n, t0).await.unwrap();
        st.begin_delete("str_gone", t0).await.unwrap();
        st.delete_succeeded("str_gone", t0).await.unwrap();
        let drained = st.drain(t0).await.unwrap();
        let ids: Vec<_> = drained.iter().map(|a| (a.stream_id.as_str(), a.reason, a.attempt)).collect();
        assert_eq!(ids, vec![("str_live", ReapReason::Shutdown, 1), ("str_retry", ReapReason::Shutdown, 2)], "{name}");
        assert_eq!(st.active_stream(&sid(1)).await.unwrap(), None, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_instances_never_both_reserve_a_slot_or_claim_a_delete() {
    for (name, a, b) in backends("races").await {
        let t0 = t0();
        // 20 sessions, each racing 8 creates split over the two instances: one wins each
        let sessions: Vec<SessionId> = (0..20).map(sid).collect();
        for s in &sessions {
            a.issue_session(s, t0).await.unwrap();
        }
        let mut tasks = tokio::task::JoinSet::new();
        for s in &sessions {
            for i in 0..8 {
                let (st, s) = (if i % 2 == 0 { a.clone() } else { b.clone() }, s.clone());
                tasks.spawn(async move { (s.clone(), st.begin_create(&s, t0).await.unwrap().is_ok()) });
            }
        }
        let mut wins = std::collections::HashMap::new();
        while let Some(r) = tasks.join_next().await {
            let (s, won) = r.unwrap();
            *wins.entry(s).or_insert(0) += u32::from(won);
        }
        assert!(wins.values().all(|w| *w == 1), "{name}: {wins:?}");
        // each records a stream; all go silent; 6 reapers race for them: each claimed once
        for (i, s) in sessions.iter().enumerate() {
            a.finish_create(&record(&format!("str_{i}"), s), t0).await.unwrap();
        }
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6 {
            let st = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move {
                let mut mine = Vec::new();
                for step in 0..5 {
                    mine.extend(st.claim_due(t0 + S(120) + Duration::from_millis(step)).await.unwrap());
                }
                mine
            });
        }
        let mut claimed = Vec::new();
        while let Some(r) = tasks.join_next().await {
            claimed.extend(r.unwrap().into_iter().map(|c| c.stream_id));
        }
        let unique: HashSet<_> = claimed.iter().cloned().collect();
        assert_eq!(claimed.len(), 20, "{name}: {claimed:?}");
        assert_eq!(unique.len(), 20, "{name}");
    }
}

#[tokio::test]
async fn one_instance_holds_a_streams_poll_lease_renews_it_and_another_takes_over_when_it_runs_out() {
    for (name, a, b) in backends("poll_lease").await {
        let t0 = t0();
        let lease = S(3);
        assert!(a.claim_poll("str_w", "inst-a", t0, lease).await.unwrap(), "{name}: free");
        assert!(!b.claim_poll("str_w", "inst-b", t0 + S(1), lease).await.unwrap(), "{name}: held by a");
        assert!(a.claim_poll("str_w", "inst-a", t0 + S(2), lease).await.unwrap(), "{name}: renewed");
        assert!(!b.claim_poll("str_w", "inst-b", t0 + S(4), lease).await.unwrap(), "{name}: renewal counts");
        assert!(b.claim_poll("str_w", "inst-b", t0 + S(5), lease).await.unwrap(), "{name}: ran out: b takes it");
        assert!(!a.claim_poll("str_w", "inst-a", t0 + S(6), lease).await.unwrap(), "{name}: now b's");
        // another stream's lease is its own
        assert!(a.claim_poll("str_other", "inst-a", t0 + S(6), lease).await.unwrap(), "{name}");

        // the holder publishes; the others read it until it is stale
        assert_eq!(a.latest_status("str_w", t0 + S(6)).await.unwrap(), None, "{name}: nothing yet");
        b.publish_status("str_w", r#"{"phase":"live"}"#, t0 + S(6), lease).await.unwrap();
        let seen = a.latest_status("str_w", t0 + S(8)).await.unwrap().expect("published");
        assert_eq!((seen.at, seen.text.as_str()), (t0 + S(6), r#"{"phase":"live"}"#), "{name}");
        assert_eq!(a.latest_status("str_w", t0 + S(9)).await.unwrap(), None, "{name}: stale after its TTL");

        // only the holder releases; then the lease is free at once and its status gone
        b.publish_status("str_w", "x", t0 + S(7), lease).await.unwrap();
        a.release_poll("str_w", "inst-a").await.unwrap();
        assert!(!a.claim_poll("str_w", "inst-a", t0 + S(7), lease).await.unwrap(), "{name}: not a's to release");
        b.release_poll("str_w", "inst-b").await.unwrap();
        assert_eq!(a.latest_status("str_w", t0 + S(7)).await.unwrap(), None, "{name}");
        assert!(a.claim_poll("str_w", "inst-a", t0 + S(7), lease).await.unwrap(), "{name}: released");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_never_both_hold_a_poll_lease() {
    for (name, a, b) in backends("poll_race").await {
        let t0 = t0();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let st = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move { st.claim_poll("str_race", &format!("inst-{i}"), t0, S(3)).await.unwrap() });
        }
        let mut granted = 0;
        while let Some(r) = tasks.join_next().await {
            granted += u32::from(r.unwrap());
        }
        assert_eq!(granted, 1, "{name}");
    }
}
