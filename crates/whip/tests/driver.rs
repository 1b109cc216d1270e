//! The driver against a real HTTP peer on 127.0.0.1: an axum WHIP endpoint
//! written here that warms up (503, 503), then answers with a real answer from
//! `dreamgate_rtc::accept_ingest`, `Location`, `Link` and `ETag`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use dreamgate_rtc::{accept_ingest, Ingest, RtcConfig, StunServer};
use dreamgate_whip::{ClientOptions, ConnectionState, EncodingSource, IceServer, WhipClient, WhipError};

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
}

#[derive(Clone, Default)]
struct Endpoint {
    seen: Arc<Mutex<Vec<Seen>>>,
    ingest: Arc<Mutex<Option<Ingest>>>,
    stun: Option<SocketAddr>,
    /// How many POSTs answer 503 before the real answer.
    warmup: usize,
}

impl Endpoint {
    fn record(&self, method: Method, uri: &Uri, headers: &HeaderMap) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen { method: method.clone(), uri: uri.to_string(), headers: headers.clone() });
        seen.iter().filter(|s| s.method == method).count()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn whip_post(State(ep): State<Endpoint>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let n = ep.record(Method::POST, &uri, &headers);
    if n <= ep.warmup {
        return (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response();
    }
    let offer = String::from_utf8_lossy(&body).into_owned();
    match accept_ingest(&RtcConfig::default(), &offer).await {
        Ok((ingest, answer)) => {
            *ep.ingest.lock().unwrap() = Some(ingest);
            let mut headers = HeaderMap::new();
            headers.insert("content-type", "application/sdp".parse().unwrap());
            headers.insert("location", "../sessions/s1".parse().unwrap());
            headers.insert("etag", "\"v1\"".parse().unwrap());
            if let Some(stun) = ep.stun {
                headers.append("link", format!("<stun:{stun}>; rel=\"ice-server\"").parse().unwrap());
            }
            headers.append("link", "<https://example.invalid/help>; rel=\"help\"".parse().unwrap());
            (StatusCode::CREATED, headers, answer).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn session(State(ep): State<Endpoint>, method: Method, uri: Uri, headers: HeaderMap) -> StatusCode {
    ep.record(method.clone(), &uri, &headers);
    match method {
        // Like Livepeer: no trickle ICE.
        Method::PATCH => StatusCode::METHOD_NOT_ALLOWED,
        Method::DELETE => StatusCode::OK,
        _ => StatusCode::NOT_FOUND,
    }
}

async fn redirect(State(ep): State<Endpoint>, uri: Uri, headers: HeaderMap) -> Response {
    ep.record(Method::POST, &uri, &headers);
    (StatusCode::TEMPORARY_REDIRECT, [("location", "/live/x/whip?token=t0k3n")]).into_response()
}

async fn serve(ep: Endpoint) -> SocketAddr {
    let app = Router::new()
        .route("/live/x/whip", post(whip_post))
        .route("/live/sessions/s1", any(session))
        .route("/moved/whip", post(redirect))
        .with_state(ep);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn options(url: String) -> ClientOptions {
    let mut options = ClientOptions::new(url.parse().unwrap());
    options.whip.ice_servers = Vec::new(); // loopback only
    options.whip.backoff_initial = Duration::from_millis(50);
    options.whip.enable_trickle_ice = true;
    options.headers.insert("origin", "http://127.0.0.1:3000".parse().unwrap());
    options.headers.insert("cookie", "dreamgate_session=abc123".parse().unwrap());
    // Must never reach the WHIP endpoint.
    options.headers.insert("authorization", "Bearer daydream_live_secret".parse().unwrap());
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_warmup_connects_sends_frames_and_deletes_the_resource() {
    let stun = StunServer::bind(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let ep = Endpoint { warmup: 2, stun: Some(stun.addr), ..Endpoint::default() };
    let addr = serve(ep.clone()).await;
    let client = WhipClient::new(options(format!("http://{addr}/live/x/whip?token=t0k3n"))).unwrap();
    let mut status = client.status();

    let source = EncodingSource::test_pattern(256, 256, 30).unwrap();
    client.connect(Box::new(source)).await.unwrap();
    // connect twice: the spec's exact error.
    let again = client.connect(Box::new(EncodingSource::test_pattern(256, 256, 30).unwrap())).await;
    assert_eq!(again.unwrap_err().to_string(), "WHIP client already has an active connection");

    // The warm-up is visible as retries while connecting.
    let mut retries_seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = status.borrow_and_update().clone();
            if let Some(r) = &s.retry {
                if !retries_seen.contains(&r.retry) {
                    assert_eq!(r.error.to_string(), "WHIP offer failed: 503");
                    retries_seen.push(r.retry);
                }
            }
            match s.state.state {
                ConnectionState::Connected => break,
                ConnectionState::Failed | ConnectionState::Closed => panic!("{:?}", s.state),
                _ => {}
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("connected within 20 s");
    assert_eq!(retries_seen, vec![1, 2]);
    assert_eq!(client.status().borrow().link_ice_servers, vec![IceServer::new(format!("stun:{}", stun.addr))]);

    // Frames reach the endpoint's peer, starting with a keyframe.
    let mut ingest = ep.ingest.lock().unwrap().take().expect("the endpoint accepted an offer");
    let first = tokio::time::timeout(Duration::from_secs(10), ingest.frames.recv()).await.unwrap().unwrap();
    assert!(first.keyframe);
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(5), ingest.frames.recv()).await.unwrap().unwrap();
    }
    assert!(client.frames_sent() >= 6);

    client.disconnect().await;
    assert_eq!(client.status().borrow().state.state, ConnectionState::Closed);

    let seen = ep.seen();
    let posts: Vec<_> = seen.iter().filter(|s| s.method == Method::POST).collect();
    assert_eq!(posts.len(), 3, "503, 503, 201");
    // The backoff schedule itself is asserted with injected time in tests/machine.rs;
    // here: the order of the calls. All offers first, then trickle, the DELETE last.
    let methods: Vec<&Method> = seen.iter().map(|s| &s.method).collect();
    assert!(methods[..3].iter().all(|m| **m == Method::POST), "{methods:?}");
    assert!(methods[3..].iter().all(|m| **m != Method::POST), "{methods:?}");
    assert_eq!(methods.last(), Some(&&Method::DELETE), "{methods:?}");
    for post in &posts {
        assert_eq!(post.uri, "/live/x/whip?token=t0k3n");
        assert_eq!(post.headers["content-type"], "application/sdp");
    }
    let patch = seen.iter().find(|s| s.method == Method::PATCH).expect("trickle on: a PATCH was tried");
    assert_eq!(patch.uri, "/live/sessions/s1");
    assert_eq!(patch.headers["content-type"], "application/trickle-ice-sdpfrag");
    assert_eq!(patch.headers["if-match"], "\"v1\"");
    let deletes: Vec<_> = seen.iter().filter(|s| s.method == Method::DELETE).collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].uri, "/live/sessions/s1", "Location resolved against the WHIP URL");
    for s in &seen {
        assert!(!s.headers.contains_key("authorization"), "{} {} carried Authorization", s.method, s.uri);
        assert_eq!(s.headers["origin"], "http://127.0.0.1:3000");
        assert_eq!(s.headers["cookie"], "dreamgate_session=abc123");
    }
    client.shutdown().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let ep = Endpoint::default();
    let addr = serve(ep.clone()).await;
    let client = WhipClient::new(options(format!("http://{addr}/moved/whip"))).unwrap();
    client.connect(Box::new(EncodingSource::test_pattern(64, 64, 30).unwrap())).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), client.wait_connected()).await.unwrap().unwrap_err();
    assert_eq!(err, WhipError::OfferRejected(307));
    assert_eq!(err.to_string(), "WHIP offer failed: 307");
    let seen = ep.seen();
    assert_eq!(seen.len(), 1, "only the first URL was requested: {seen:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_endpoint_reports_the_network_error_after_the_budget() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut opts = options(format!("http://{addr}/whip"));
    opts.whip.warmup_budget = Duration::from_millis(300);
    let client = WhipClient::new(opts).unwrap();
    client.connect(Box::new(EncodingSource::test_pattern(64, 64, 30).unwrap())).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), client.wait_connected()).await.unwrap().unwrap_err();
    assert!(err.to_string().starts_with("WHIP offer failed: unreachable"), "{err}");
    client.shutdown().await;
}
