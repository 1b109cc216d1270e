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

    /// How many requests had exactly this request line (e.g. `"GET /v1/streams/str_1/status"`).
    pub fn count(&self, line: &str) -> usize {
        lock(&self.0).iter().filter(|h| *h == line).count()
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
/// and, to test what happens while one is in flight or fails, for a given method and path:
/// holds the requests after logging their arrival ([`Recorder::hold`]), holds their answers
/// after the server has given them ([`Recorder::hold_answers`]: the work is done, the caller
/// waits), or answers them itself with an error status, never passing them on
/// ([`Recorder::refuse`]).
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

/// `method path` a rule applies to.
type Route = (Method, String);

struct Inner {
    hits: Hits,
    exchanges: Mutex<Vec<Exchange>>,
    held: watch::Sender<Option<Route>>,
    held_answers: watch::Sender<Option<Route>>,
    refused: Mutex<Option<(Route, StatusCode)>>,
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
        let (held_answers, _) = watch::channel(None);
        let inner = Inner {
            hits: Hits::default(),
            exchanges: Mutex::new(Vec::new()),
            held,
            held_answers,
            refused: Mutex::new(None),
        };
        Recorder { inner: Arc::new(inner) }
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

    /// From now on, `method path` requests reach the server at once, but their answers are
    /// held (the server's work done) until [`Recorder::release_answers`] (or another
    /// `hold_answers`).
    pub fn hold_answers(&self, method: Method, path: &str) {
        self.inner.held_answers.send_replace(Some((method, path.to_owned())));
    }

    /// Lets held (and later) answers through.
    pub fn release_answers(&self) {
        self.inner.held_answers.send_replace(None);
    }

    /// From now on, `method path` requests are logged, then answered `status` with a JSON
    /// error body by the recorder itself (the server never sees them), until
    /// [`Recorder::accept`] (or another `refuse`).
    pub fn refuse(&self, method: Method, path: &str, status: StatusCode) {
        *lock(&self.inner.refused) = Some(((method, path.to_owned()), status));
    }

    /// Passes every request on again.
    pub fn accept(&self) {
        *lock(&self.inner.refused) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn record(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    rec.inner.hits.push(format!("{method} {uri}"));
    let is_this = |(m, p): &Route| *m == method && p == uri.path();
    let matches = |h: &Option<Route>| h.as_ref().is_some_and(is_this);
    let refused = lock(&rec.inner.refused).as_ref().filter(|(route, _)| is_this(route)).map(|(_, status)| *status);
    if let Some(status) = refused {
        let reason = status.canonical_reason().unwrap_or("Refused");
        let mut response = Response::new(Body::from(serde_json::json!({ "error": reason }).to_string()));
        *response.status_mut() = status;
        return response;
    }
    let mut held = rec.inner.held.subscribe();
    let _ = held.wait_for(|h| !matches(h)).await;

    let (parts, body) = req.into_parts();
    let request_headers = parts.headers.clone();
    let request_body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let response = next.run(Request::from_parts(parts, Body::from(request_body.clone()))).await;
    let mut held_answers = rec.inner.held_answers.subscribe();
    let _ = held_answers.wait_for(|h| !matches(h)).await;
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
