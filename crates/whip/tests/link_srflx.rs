//! `Link` ICE servers count (RFC 9725): with trickle ICE on, the native client asks the
//! engine's STUN server for a server-reflexive candidate after the POST answer and sends
//! it in the trickle PATCH. Real engine (real WebRTC media), real sockets, loopback only.
//!
//! On loopback a STUN server sees the client's host address, and a server-reflexive
//! candidate equal to the host one is redundant (RFC 8445 section 5.1.3): str0m drops it.
//! So, as a NAT in front of the client would, a tiny UDP NAT sits between the client and
//! the engine's own STUN responder: the test's HTTP layer points the engine's `Link` at
//! it, and the engine's STUN server then reflects the NAT's address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use dreamgate_client::{ApiKey, DaydreamClient};
use dreamgate_engine::{Engine, EngineConfig, WebRtcMedia};
use dreamgate_rtc::RtcConfig;
use dreamgate_testkit::{status, Exchange, Recorder};
use dreamgate_whip::{ClientOptions, EncodingSource, WhipClient};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

const KEY: &str = "daydream_live_whip_link_srflx";

/// A one-client UDP NAT in front of `upstream`: datagrams from the client to `front` leave
/// from `back`; what `upstream` answers to `back` goes back to the client from `front`.
struct Nat {
    front: SocketAddr,
    back: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Nat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Nat {
    async fn start(upstream: SocketAddr) -> Nat {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (front_addr, back_addr) = (front.local_addr().unwrap(), back.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut out, mut inb) = ([0u8; 2048], [0u8; 2048]);
            let mut client = None;
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut out) => {
                        client = Some(from);
                        let _ = back.send_to(&out[..n], upstream).await;
                    }
                    Ok((n, from)) = back.recv_from(&mut inb) => {
                        if let (true, Some(client)) = (from == upstream, client) {
                            let _ = front.send_to(&inb[..n], client).await;
                        }
                    }
                }
            }
        });
        Nat { front: front_addr, back: back_addr, task }
    }
}

/// The NAT in front of the engine's `Link` STUN server (started on the first one).
#[derive(Clone, Default)]
struct LinkNat(Arc<tokio::sync::Mutex<Option<Nat>>>);

/// Routes the engine's `Link` STUN server through the NAT.
async fn relay_links(State(nat): State<LinkNat>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let links: Vec<String> =
        resp.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    if links.is_empty() {
        return resp;
    }
    resp.headers_mut().remove("link");
    for link in links {
        let stun = link.strip_prefix("<stun:").and_then(|r| r.split('>').next()).and_then(|a| a.parse().ok());
        let value = match stun {
            Some(upstream) => {
                let mut nat = nat.0.lock().await;
                if nat.is_none() {
                    *nat = Some(Nat::start(upstream).await);
                }
                format!("<stun:{}>; rel=\"ice-server\"", nat.as_ref().map(|n| n.front).unwrap())
            }
            None => link,
        };
        resp.headers_mut().append("link", HeaderValue::from_str(&value).unwrap());
    }
    resp
}

/// The trickle PATCHes the engine got, with its answers.
fn patches(rec: &Recorder) -> Vec<Exchange> {
    rec.exchanges().into_iter().filter(|e| e.method == Method::PATCH).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_patch_carries_a_srflx_candidate_from_the_link_stun_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let media = WebRtcMedia::new(RtcConfig::default());
    let engine =
        Engine::new(EngineConfig { api_key: Some(KEY.into()), media: Some(media), ..Default::default() }, &base);
    // The recorder sits inside the NAT layer: it sees the engine's own `Link` headers.
    let (rec, nat) = (Recorder::new(), LinkNat::default());
    let app =
        rec.wrap(dreamgate_engine::router(engine)).layer(middleware::from_fn_with_state(nat.clone(), relay_links));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let api = DaydreamClient::new(base.parse().unwrap(), ApiKey::new(KEY), Duration::from_secs(10)).unwrap();
    let mut body = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap();
    body["params"]["width"] = 384.into();
    body["params"]["height"] = 384.into();
    let stream = api.create_stream(&body).await.unwrap();
    let id = stream["id"].as_str().unwrap().to_owned();

    let mut options = ClientOptions::new(stream["whip_url"].as_str().unwrap().parse().unwrap());
    options.whip.ice_servers = Vec::new(); // loopback only: the Link server is new to the peer
    options.whip.enable_trickle_ice = true;
    let client = WhipClient::new(options).unwrap();
    client.connect(Box::new(EncodingSource::test_pattern(384, 384, 30).unwrap())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), client.wait_connected()).await.expect("in time").unwrap();

    // The engine announced its own STUN responder.
    let engine_links: Vec<String> = rec.exchanges().iter().flat_map(|e| e.response_headers_all("link")).collect();
    assert!(engine_links.iter().any(|l| l.starts_with("<stun:127.0.0.1:") && l.ends_with("rel=\"ice-server\"")));
    let back = nat.0.lock().await.as_ref().expect("the engine sent a stun: Link").back;

    // The trickle PATCH (the client gathers for at most about a second).
    let until = Instant::now() + Duration::from_secs(10);
    let patch = loop {
        let found = patches(&rec).into_iter().find(|p| p.request_text().contains(" typ srflx"));
        match found {
            Some(p) => break p,
            None if Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
            None => panic!("no srflx candidate PATCHed: {:?}", patches(&rec)),
        }
    };
    assert_eq!(patch.request_header("content-type"), Some("application/trickle-ice-sdpfrag"));
    assert_eq!(patch.status, 204, "the engine took the candidates: {patch:?}");
    let etag = rec
        .exchanges()
        .into_iter()
        .filter(|e| e.method != Method::PATCH)
        .find_map(|e| e.response_header("etag").map(str::to_owned));
    assert_eq!(patch.request_header("if-match").map(str::to_owned), etag, "If-Match: the session's ETag");
    let body = patch.request_text();
    // The reflexive address is the one the engine's STUN server saw (the NAT's; str0m
    // hides the related address, as browsers do); the end of candidates comes with it.
    let line = body.lines().find(|l| l.contains(" typ srflx")).unwrap();
    assert!(line.starts_with("a=candidate:"), "{line}");
    assert!(line.contains(" 1 udp "), "{line}");
    assert!(line.contains(&format!(" {} {} typ srflx", back.ip(), back.port())), "{line}");
    assert!(body.contains("a=ice-ufrag:") && body.ends_with("a=end-of-candidates\r\n"), "{body}");
    let patches = patches(&rec);
    assert_eq!(patches.len(), 1, "one PATCH with the candidates and the end: {patches:?}");

    // The stream still goes live.
    let data = status::wait_state(&api, &id, "ONLINE", Duration::from_secs(20)).await;
    assert_eq!(data["state"], "ONLINE", "{data}");
    assert!(client.frames_sent() > 0);
    assert!(client.status().borrow().link_ice_servers.iter().any(|s| s.url.starts_with("stun:127.0.0.1:")));

    client.shutdown().await;
    server.abort();
}
