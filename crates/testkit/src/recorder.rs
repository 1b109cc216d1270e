//! A request recorder: axum middleware in front of a real server (an engine's router, a
//! fake WHIP endpoint) that logs what reached it and can hold requests on demand.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::sync::watch;

/// One request and its answer, as the wrapped server got and gave them.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Request method.
    pub method: Method,
    /// Request URI (path and query).
    pub uri: Uri,
    /// Request headers.
    pub request_headers: HeaderMap,
    /// Request body.
    pub request_body: Bytes,
    /// Response status.
    pub status: StatusCode,
    /// Response headers, as the wrapped server sent them (before any outer layer).
    pub response_headers: HeaderMap,
}

impl Exchange {
    /// A request header, if present and text.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A response header, if present and text (the first one).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a response header that is text (e.g. `link`).
    pub fn response_headers_all(&self, name: &str) -> Vec<String> {
        self.response_headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// The request body as text (lossy).
    pub fn request_text(&self) -> String {
        String::from_utf8_lossy(&self.request_body).into_owned()
    }
}

/// Every request line a server received, as `"METHOD /path?query"`, in arrival order.
/// A cheap handle: clones share the log.
#[derive(Clone, Default)]
pub struct Hits(Arc<Mutex<Vec<String>>>);

impl Hits {
    /// Every request line so far.
    pub fn all(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    /// How many requests so far.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// No request so far.
    pub fn is_empty(&self) -> bool {
        lock(&self.0).is_empty()
    }

    /// Whether a request line starts with `prefix` (e.g. `"DELETE /v1/streams/"`).
    pub fn any(&self, prefix: &str) -> bool {
        lock(&self.0).iter().any(|h| h.starts_with(prefix))
    }

    fn push(&self, line: String) {
        lock(&self.0).push(line);
    }
}

/// Records what reaches the server it wraps:
///
/// * on arrival, the request line ([`Recorder::hits`]);
/// * once answered, the whole [`Exchange`] (request headers and body, response status and
///   headers: [`Recorder::exchanges`]);
///
/// and holds the requests of a given method and path, after logging their arrival, while
/// [`Recorder::hold`] is in force (to test what happens while one is in flight).
///
/// ```no_run
/// # async fn demo(router: axum::Router) {
/// use axum::http::Method;
/// use dreamgate_testkit::Recorder;
///
/// let recorder = Recorder::new();
/// let app = recorder.wrap(router); // serve `app` instead of `router`
/// recorder.hold(Method::POST, "/v1/streams"); // creates now wait...
/// recorder.release(); // ...until released
/// assert!(recorder.hits().any("POST /v1/streams"));
/// let patches: Vec<_> = recorder.exchanges().into_iter().filter(|e| e.method == Method::PATCH).collect();
/// # drop((app, patches));
/// # }
/// ```
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    hits: Hits,
    exchanges: Mutex<Vec<Exchange>>,
    held: watch::Sender<Option<(Method, String)>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("hits", &self.inner.hits.all()).finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder holding nothing.
    pub fn new() -> Recorder {
        let (held, _) = watch::channel(None);
        Recorder { inner: Arc::new(Inner { hits: Hits::default(), exchanges: Mutex::new(Vec::new()), held }) }
    }

    /// `router` with this recorder in front of it. Layers added to the result afterwards
    /// sit outside the recorder (it sees what they pass on, and the responses before them).
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), record))
    }

    /// The request lines received so far (a live handle).
    pub fn hits(&self) -> Hits {
        self.inner.hits.clone()
    }

    /// The exchanges answered so far, in the order their answers were given.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.inner.exchanges).clone()
    }

    /// From now on, `method path` requests are logged on arrival, then held before the
    /// server sees them, until [`Recorder::release`] (or another `hold`).
    pub fn hold(&self, method: Method, path: &str) {
        self.inner.held.send_replace(Some((method, path.to_owned())));
    }

    /// Lets held (and later) requests through.
    pub fn release(&self) {
        self.inner.held.send_replace(None);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn record(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    rec.inner.hits.push(format!("{method} {uri}"));
    let mut held = rec.inner.held.subscribe();
    let matches = |h: &Option<(Method, String)>| h.as_ref().is_some_and(|(m, p)| *m == method && p == uri.path());
    let _ = held.wait_for(|h| !matches(h)).await;

    let (parts, body) = req.into_parts();
    let request_headers = parts.headers.clone();
    let request_body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let response = next.run(Request::from_parts(parts, Body::from(request_body.clone()))).await;
    let exchange = Exchange {
        method,
        uri,
        request_headers,
        request_body,
        status: response.status(),
        response_headers: response.headers().clone(),
    };
    lock(&rec.inner.exchanges).push(exchange);
    response
}
