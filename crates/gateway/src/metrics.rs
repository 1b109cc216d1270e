//! The gateway's metrics, in Prometheus' (OpenMetrics) text format.
//!
//! One process-wide set of counters and histograms (like any Prometheus
//! client's default registry: a process is one scrape target), updated
//! through the free functions below, which are the hooks the rest of the
//! gateway calls. Gauges of the state (open streams, sessions) are read from
//! the scraped gateway's state at scrape time ([`render`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `dreamgate_http_requests_total` | counter | `route` (the matched route template, e.g. `/api/daydream/streams/{id}/status`; `fallback` for the page's files and unknown paths), `method`, `status` |
//! | `dreamgate_upstream_request_duration_seconds` | histogram | `op` (`create`, `get`, `list`, `status`, `update`, `delete`, `whip`, `whep`), `outcome` (`ok`, `3xx`, `4xx`, `5xx`, `timeout`, `unreachable`, `invalid`) |
//! | `dreamgate_store_operation_duration_seconds` | histogram | `op` (named by the store) |
//! | `dreamgate_streams_open` | gauge | streams live or being deleted |
//! | `dreamgate_sessions` | gauge | sessions the gateway remembers |
//! | `dreamgate_streams_reaped_total` | counter | streams the reaper decided to delete |
//! | `dreamgate_stream_deletes_failed_total` | counter | upstream deletes that failed (each attempt) |
//! | `dreamgate_signal_proxy_requests_total` | counter | `leg` (`whip`, `whep`), `action` (`offer`, `trickle`, `teardown`), `result` (`ok`, `rejected`, `not_ready`, `refused`, `upstream_error`, `timeout`, `error`) |
//! | `dreamgate_rate_limited_total` | counter | requests refused by a rate limit |
//! | `dreamgate_upstream_status_calls_total` | counter | `caller` (`watcher`: the stream's one watcher, for every tab and instance; `route`: the status route, a page polling) |
//! | `dreamgate_streams_watched` | gauge | streams this instance has a watcher for (tabs holding an event stream) |
//! | `dreamgate_orphan_streams` | gauge | streams tagged as the gateway's upstream that the store does not know, at this instance's last orphan sweep ([`crate::sweep`]) |
//! | `dreamgate_orphans_deleted_total` | counter | orphan streams the sweep deleted upstream (`--orphans delete`) |
//! | `dreamgate_whep_offers_held_total` | counter | WHEP offers the upstream answered 404 (no output yet) that the gateway sent again (`--whep-hold`) |
//!
//! No label value ever comes from the request or from upstream: routes are
//! templates, methods and outcomes come from fixed lists, statuses are
//! numbers. So no key, session id, stream id or WHIP URL can appear.
//!
//! Hooks for other parts: [`observe_store`] / [`time_store`] (the store),
//! [`rate_limited`] (the request limits), [`stream_reaped`] and
//! [`delete_failed`] (the stream service).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, StatusCode};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use dreamgate_client::ApiError;

use crate::error::HttpError;

/// `Content-Type` of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One call the gateway makes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOp {
    /// `POST /v1/streams`.
    Create,
    /// `GET /v1/streams/{id}` (also the readiness probe).
    Get,
    /// `GET /v1/streams` (the orphan sweep).
    List,
    /// `GET /v1/streams/{id}/status`.
    Status,
    /// `PATCH /v1/streams/{id}`.
    Update,
    /// `DELETE /v1/streams?id=`.
    Delete,
    /// A WHIP request (offer, trickle, teardown).
    Whip,
    /// A WHEP request (offer, teardown).
    Whep,
}

impl UpstreamOp {
    fn label(self) -> &'static str {
        match self {
            UpstreamOp::Create => "create",
            UpstreamOp::Get => "get",
            UpstreamOp::List => "list",
            UpstreamOp::Status => "status",
            UpstreamOp::Update => "update",
            UpstreamOp::Delete => "delete",
            UpstreamOp::Whip => "whip",
            UpstreamOp::Whep => "whep",
        }
    }
}

/// What a WHIP/WHEP proxy request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// SDP offer (POST).
    Offer,
    /// Trickle ICE (PATCH).
    Trickle,
    /// Session teardown (DELETE).
    Teardown,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusCallLabels {
    caller: &'static str,
}

/// Who called the upstream status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCaller {
    /// A stream's watcher (one per stream, however many tabs and instances).
    Watcher,
    /// The status route (a page polling).
    Route,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    leg: &'static str,
    action: &'static str,
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn upstream_histogram() -> Histogram {
    // 0.5 ms .. 20 s: loopback engines answer in well under a millisecond,
    // Daydream in tens of milliseconds, a create can take seconds.
    Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0])
}

fn store_histogram() -> Histogram {
    // 50 µs .. 1 s: an in-process map or a Redis round trip.
    Histogram::new([0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0])
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream: HistogramFamily<UpstreamLabels>,
    store: HistogramFamily<StoreLabels>,
    reaped: Counter,
    delete_failed: Counter,
    signal: Family<SignalLabels, Counter>,
    rate_limited: Counter,
    status_calls: Family<StatusCallLabels, Counter>,
    orphans: Gauge,
    orphans_deleted: Counter,
    whep_held: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "dreamgate_http_requests",
            "HTTP requests answered, by matched route template, method and status",
            requests.clone(),
        );
        let upstream: HistogramFamily<UpstreamLabels> = Family::new_with_constructor(upstream_histogram);
        registry.register_with_unit(
            "dreamgate_upstream_request_duration",
            "Latency of calls to the upstream API and WHIP/WHEP endpoints, by operation and outcome",
            Unit::Seconds,
            upstream.clone(),
        );
        let store: HistogramFamily<StoreLabels> = Family::new_with_constructor(store_histogram);
        registry.register_with_unit(
            "dreamgate_store_operation_duration",
            "Latency of the state store's operations",
            Unit::Seconds,
            store.clone(),
        );
        let reaped = Counter::default();
        registry.register(
            "dreamgate_streams_reaped",
            "Streams the reaper decided to delete (silent or orphaned)",
            reaped.clone(),
        );
        let delete_failed = Counter::default();
        registry.register(
            "dreamgate_stream_deletes_failed",
            "Upstream stream deletes that failed (each attempt)",
            delete_failed.clone(),
        );
        let signal = Family::<SignalLabels, Counter>::default();
        registry.register(
            "dreamgate_signal_proxy_requests",
            "WHIP/WHEP proxy requests, by leg, action and result",
            signal.clone(),
        );
        let rate_limited = Counter::default();
        registry.register("dreamgate_rate_limited", "Requests refused by a rate limit", rate_limited.clone());
        let status_calls = Family::<StatusCallLabels, Counter>::default();
        registry.register(
            "dreamgate_upstream_status_calls",
            "Upstream status calls, by caller (a stream's watcher, or the status route)",
            status_calls.clone(),
        );
        let orphans = Gauge::default();
        registry.register(
            "dreamgate_orphan_streams",
            "Streams tagged as the gateway's upstream that the store does not know, at the last orphan sweep",
            orphans.clone(),
        );
        let orphans_deleted = Counter::default();
        registry.register(
            "dreamgate_orphans_deleted",
            "Orphan streams the sweep deleted upstream",
            orphans_deleted.clone(),
        );
        let whep_held = Counter::default();
        registry.register(
            "dreamgate_whep_offers_held",
            "WHEP offers the upstream answered 404 (no output yet) that the gateway sent again (--whep-hold)",
            whep_held.clone(),
        );
        Self {
            registry,
            requests,
            upstream,
            store,
            reaped,
            delete_failed,
            signal,
            rate_limited,
            status_calls,
            orphans,
            orphans_deleted,
            whep_held,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Records one store operation's latency (`op`: a fixed name such as
/// `"resume_session"`, never an id). The store calls this.
pub fn observe_store(op: &'static str, elapsed: Duration) {
    METRICS.store.get_or_create(&StoreLabels { op }).observe(elapsed.as_secs_f64());
}

/// Awaits `fut` and records its latency as store operation `op`.
pub async fn time_store<T>(op: &'static str, fut: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = fut.await;
    observe_store(op, start.elapsed());
    out
}

/// Counts one request refused by a rate limit. The request limits call this.
pub fn rate_limited() {
    METRICS.rate_limited.inc();
}

/// Counts one upstream status call.
pub fn status_call(caller: StatusCaller) {
    let caller = match caller {
        StatusCaller::Watcher => "watcher",
        StatusCaller::Route => "route",
    };
    METRICS.status_calls.get_or_create(&StatusCallLabels { caller }).inc();
}

/// The orphan sweep found `n` orphans.
pub fn orphans_found(n: usize) {
    METRICS.orphans.set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// Counts one orphan the sweep deleted.
pub fn orphan_deleted() {
    METRICS.orphans_deleted.inc();
}

/// Counts one WHEP offer held and sent again (`--whep-hold`).
pub fn whep_offer_held() {
    METRICS.whep_held.inc();
}

/// Counts one stream the reaper decided to delete.
pub fn stream_reaped() {
    METRICS.reaped.inc();
}

/// Counts one failed upstream delete.
pub fn delete_failed() {
    METRICS.delete_failed.inc();
}

/// Records one upstream call's latency and outcome.
pub fn observe_upstream(op: UpstreamOp, outcome: &'static str, elapsed: Duration) {
    METRICS.upstream.get_or_create(&UpstreamLabels { op: op.label(), outcome }).observe(elapsed.as_secs_f64());
}

/// The outcome label of an API call.
pub fn api_outcome<T>(result: &Result<T, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ApiError::Upstream { status, .. }) => status_class(*status),
        Err(ApiError::Timeout) => "timeout",
        Err(ApiError::Unreachable(_)) => "unreachable",
        Err(ApiError::InvalidResponse(_)) => "invalid",
    }
}

/// The outcome label of an upstream HTTP status (`ok` for 2xx).
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "invalid",
    }
}

/// Counts one WHIP/WHEP proxy request by what the gateway answered.
pub fn signal_proxied(leg: UpstreamOp, action: SignalAction, result: &Result<Response, HttpError>) {
    let leg = match leg {
        UpstreamOp::Whep => "whep",
        _ => "whip",
    };
    let action = match action {
        SignalAction::Offer => "offer",
        SignalAction::Trickle => "trickle",
        SignalAction::Teardown => "teardown",
    };
    let result = match result {
        Ok(resp) if resp.status().is_success() => "ok",
        Ok(_) => "rejected",
        Err(e) => signal_result(e),
    };
    METRICS.signal.get_or_create(&SignalLabels { leg, action, result }).inc();
}

fn signal_result(e: &HttpError) -> &'static str {
    match e.status {
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        StatusCode::NOT_FOUND if e == &HttpError::playback_not_ready() => "not_ready",
        StatusCode::BAD_GATEWAY if e.error == HttpError::signal_url_refused("").error => "refused",
        StatusCode::BAD_GATEWAY => "upstream_error",
        s if s.is_client_error() => "rejected",
        _ => "error",
    }
}

/// Counts every answered request by matched route template, method and
/// status (middleware; the outermost layer, so it sees every refusal).
pub async fn track_requests(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("fallback", |p| intern(p.as_str()));
    let method = method_label(req.method());
    let resp = next.run(req).await;
    METRICS.requests.get_or_create(&RequestLabels { route, method, status: resp.status().as_u16() }).inc();
    resp
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        _ => "other",
    }
}

/// Route templates as `&'static str`: the router's templates are a fixed,
/// small set, so each is leaked once.
fn intern(route: &str) -> &'static str {
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(r) = ROUTES.read().unwrap_or_else(|e| e.into_inner()).get(route) {
        return r;
    }
    let mut set = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = set.get(route) {
        return r;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Values read from the scraped gateway's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateGauges {
    /// Streams live or being deleted.
    pub streams_open: usize,
    /// Sessions the gateway remembers (`None`: not known, e.g. a shared store).
    pub sessions: Option<usize>,
    /// Streams this instance watches.
    pub watched: usize,
}

/// The whole exposition: the process-wide metrics plus `gauges`.
pub fn render(gauges: StateGauges) -> String {
    let mut local = Registry::default();
    let open: Gauge = Gauge::default();
    open.set(i64::try_from(gauges.streams_open).unwrap_or(i64::MAX));
    local.register("dreamgate_streams_open", "Streams live or being deleted upstream", open);
    if let Some(n) = gauges.sessions {
        let sessions: Gauge = Gauge::default();
        sessions.set(i64::try_from(n).unwrap_or(i64::MAX));
        local.register("dreamgate_sessions", "Sessions the gateway remembers (in-process store)", sessions);
    }
    let watched: Gauge = Gauge::default();
    watched.set(i64::try_from(gauges.watched).unwrap_or(i64::MAX));
    local.register("dreamgate_streams_watched", "Streams this instance has a status watcher for", watched);
    let mut out = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = encode_registry(&mut out, &METRICS.registry);
    let _ = encode_registry(&mut out, &local);
    let _ = encode_eof(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_ends_with_eof() {
        observe_store("test_op", Duration::from_millis(2));
        observe_upstream(UpstreamOp::Status, "ok", Duration::from_micros(700));
        rate_limited();
        status_call(StatusCaller::Watcher);
        let text = render(StateGauges { streams_open: 3, sessions: Some(5), watched: 2 });
        // (a labelled family appears once it has a sample)
        for needle in [
            "# TYPE dreamgate_upstream_request_duration_seconds histogram",
            "dreamgate_upstream_request_duration_seconds_bucket{le=\"0.001\",op=\"status\",outcome=\"ok\"}",
            "dreamgate_store_operation_duration_seconds_count{op=\"test_op\"} 1",
            "dreamgate_streams_open 3",
            "dreamgate_sessions 5",
            "dreamgate_rate_limited_total ",
            "dreamgate_upstream_status_calls_total{caller=\"watcher\"}",
            "dreamgate_streams_watched 2",
            "# TYPE dreamgate_streams_reaped counter",
            "# TYPE dreamgate_stream_deletes_failed counter",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn outcomes_come_from_fixed_lists() {
        assert_eq!(api_outcome::<()>(&Err(ApiError::Upstream { status: 404, body: "x".into() })), "4xx");
        assert_eq!(api_outcome::<()>(&Err(ApiError::Upstream { status: 503, body: "x".into() })), "5xx");
        assert_eq!(api_outcome::<()>(&Err(ApiError::Timeout)), "timeout");
        assert_eq!(api_outcome::<()>(&Err(ApiError::Unreachable("http://x".into()))), "unreachable");
        assert_eq!(signal_result(&HttpError::signal_timeout()), "timeout");
        assert_eq!(signal_result(&HttpError::playback_not_ready()), "not_ready");
        assert_eq!(signal_result(&HttpError::signal_url_refused("nope")), "refused");
        assert_eq!(signal_result(&HttpError::signal_unreachable("down")), "upstream_error");
        assert_eq!(signal_result(&HttpError::too_large(1)), "rejected");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert!(std::ptr::eq(intern("/a/{id}"), intern("/a/{id}")));
    }
}
