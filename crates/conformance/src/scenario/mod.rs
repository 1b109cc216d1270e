//! The scripted scenario: every call an integrator makes, in order, each answer checked
//! against the documented shapes and status codes. Deviations are collected, never fatal:
//! a step whose prerequisite failed is skipped (its cause is already reported).

use std::fmt;
use std::time::{Duration, Instant};

use dreamgate_rtc::{Peer as _, RtcConfig};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use url::Url;

use crate::daydream;
use crate::shape::{check, Shape};

mod media;

/// An id no upstream has issued (for the 404 cases).
pub const UNKNOWN_ID: &str = "str_dreamgateConformance0";
/// The test pattern's size.
const SIZE: u32 = 512;
/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Statuses that mean "not ready yet" while a new stream warms up: retried within the budget.
const NOT_READY: [u16; 4] = [404, 409, 429, 503];

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API base (`https://api.daydream.live`, or an engine's `http://127.0.0.1:8787`).
    pub base: Url,
    /// The Bearer key (never printed).
    pub key: String,
    /// The `Origin` sent on WHIP/WHEP calls, whose CORS answers are checked.
    pub origin: String,
    /// How long the test pattern is published (from the moment it is live).
    pub publish_for: Duration,
    /// Budget for "not ready" answers of a fresh stream (status, update, WHIP, WHEP).
    pub warmup: Duration,
    /// Budget for the WHEP pull to decode a frame once connected.
    pub media_timeout: Duration,
    /// Local WebRTC settings (bind address).
    pub rtc: RtcConfig,
    /// Print each step's outcome on stderr.
    pub verbose: bool,
}

impl Config {
    /// Defaults for `base` and `key`.
    pub fn new(base: Url, key: impl Into<String>) -> Self {
        Config {
            base,
            key: key.into(),
            origin: "https://conformance.dreamgate.invalid".into(),
            publish_for: Duration::from_secs(4),
            warmup: Duration::from_secs(60),
            media_timeout: Duration::from_secs(20),
            rtc: RtcConfig::default(),
            verbose: false,
        }
    }
}

/// One answer that departs from the documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// The scenario step (e.g. `list`, `whep pull`).
    pub step: String,
    /// A JSON path (`$.params.foo`) or, for what is not in the body, `(status)`,
    /// `(header Location)`, `(media)`, `(request)`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.step, self.path, self.problem)
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every deviation, in scenario order.
    pub deviations: Vec<Deviation>,
    /// Steps run (skipped ones not counted).
    pub steps: usize,
}

impl Report {
    /// `(step, path)` of each deviation, for comparisons.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.deviations.iter().map(|d| (d.step.clone(), d.path.clone())).collect()
    }
}

/// Runs the whole scenario against `cfg.base`.
pub async fn run(cfg: &Config) -> Report {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a default reqwest client builds");
    let mut r = Runner { cfg, http, report: Report::default(), whep_from_status: None };
    r.scenario().await;
    r.report
}

/// An HTTP answer, read whole.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The stream the scenario runs on.
struct Stream {
    id: String,
    model_id: String,
    whip_url: Url,
}

/// Builds requests; cheap to copy into closures (no borrow of the runner).
#[derive(Clone)]
struct Rq<'a> {
    cfg: &'a Config,
    http: reqwest::Client,
}

impl Rq<'_> {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base.as_str().trim_end_matches('/'))
    }

    /// A `/v1` request with the Bearer key.
    fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.api(path)).bearer_auth(&self.cfg.key).header(header::ACCEPT, "application/json")
    }

    /// A `/v1` request without any key.
    fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.api(path)).header(header::ACCEPT, "application/json")
    }

    /// A WHIP/WHEP offer POST as a browser on `cfg.origin` sends it.
    fn offer(&self, url: &Url, sdp: &str) -> RequestBuilder {
        self.http
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/sdp")
            .header(header::ORIGIN, &self.cfg.origin)
            .body(sdp.to_owned())
    }
}

struct Runner<'a> {
    cfg: &'a Config,
    http: reqwest::Client,
    report: Report,
    whep_from_status: Option<String>,
}

impl<'a> Runner<'a> {
    async fn scenario(&mut self) {
        let rq = self.rq();
        let create = serde_json::to_value(dreamgate_model::default_create_payload()).unwrap_or(Value::Null);
        let mut named = create.clone();
        named["name"] = json!("dreamgate conformance");

        // Errors that need no stream.
        self.step("create without key");
        let req = rq.anonymous(Method::POST, "/v1/streams").json(&named);
        self.expect_error("create without key", req, 401, None).await;

        let mut invalid = create.clone();
        invalid["params"]["width"] = json!(100);
        self.step("create with invalid params");
        let req = rq.authed(Method::POST, "/v1/streams").json(&invalid);
        self.expect_error("create with invalid params", req, 400, None).await;

        let mut unknown = create.clone();
        unknown["params"]["foo"] = json!(1);
        self.step("create with unknown param");
        let req = rq.authed(Method::POST, "/v1/streams").json(&unknown);
        self.expect_error("create with unknown param", req, 400, Some("foo")).await;

        // The stream's life.
        self.step("create");
        let req = rq.authed(Method::POST, "/v1/streams").json(&named);
        let stream = match self.send("create", req).await {
            Some(a) => self.expect_json("create", &a, 201, &daydream::stream()).and_then(|v| self.stream_of(&v)),
            None => None,
        };
        match stream {
            Some(stream) => {
                self.with_stream(&stream).await;
                self.step("delete");
                let req = rq.authed(Method::DELETE, "/v1/streams").query(&[("id", stream.id.as_str())]);
                if let Some(a) = self.send("delete", req).await {
                    self.expect_json("delete", &a, 200, &daydream::deleted());
                }
            }
            None => self.deviate("create", "(scenario)", "no usable stream: the steps that need one were skipped"),
        }

        // Unknown ids.
        let path = format!("/v1/streams/{UNKNOWN_ID}");
        self.step("get unknown id");
        self.expect_error("get unknown id", rq.authed(Method::GET, &path), 404, None).await;
        self.step("status unknown id");
        let req = rq.authed(Method::GET, &format!("{path}/status"));
        self.expect_error("status unknown id", req, 404, None).await;
        self.step("update unknown id");
        let body =
            json!({ "pipeline": daydream::PIPELINE, "params": { "model_id": "stabilityai/sd-turbo", "prompt": "x" } });
        self.expect_error("update unknown id", rq.authed(Method::PATCH, &path).json(&body), 404, None).await;
        self.step("delete unknown id");
        let req = rq.authed(Method::DELETE, "/v1/streams").query(&[("id", UNKNOWN_ID)]);
        self.expect_error("delete unknown id", req, 404, None).await;
    }

    async fn with_stream(&mut self, stream: &Stream) {
        let rq = self.rq();
        let path = format!("/v1/streams/{}", stream.id);

        self.step("get");
        if let Some(a) = self.send("get", rq.authed(Method::GET, &path)).await {
            if let Some(v) = self.expect_json("get", &a, 200, &daydream::stream()) {
                self.expect_value("get", "$.id", &v["id"], &json!(stream.id));
            }
        }

        self.step("get without key");
        self.expect_error("get without key", rq.anonymous(Method::GET, &path), 401, None).await;

        self.step("list");
        if let Some(a) = self.send("list", rq.authed(Method::GET, "/v1/streams")).await {
            if let Some(v) = self.expect_json("list", &a, 200, &daydream::stream_list()) {
                let listed = v["data"].as_array().is_some_and(|d| d.iter().any(|s| s["id"] == stream.id.as_str()));
                if !listed {
                    self.deviate("list", "$.data", &format!("the new stream {} is not listed", stream.id));
                }
            }
        }

        self.step("status");
        let status_path = format!("{path}/status");
        if let Some(a) = self.send_ready("status", || rq.authed(Method::GET, &status_path)).await {
            if let Some(v) = self.expect_json("status", &a, 200, &daydream::status()) {
                self.whep_from_status = v["data"]["gateway_status"]["whep_url"].as_str().map(str::to_owned);
            }
        }

        self.step("update");
        let prompt = "dreamgate conformance: a calm blue sea";
        let body =
            json!({ "pipeline": daydream::PIPELINE, "params": { "model_id": stream.model_id, "prompt": prompt } });
        if let Some(a) = self.send_ready("update", || rq.authed(Method::PATCH, &path).json(&body)).await {
            if let Some(v) = self.expect_json("update", &a, 200, &daydream::stream()) {
                self.expect_value("update", "$.params.prompt", &v["params"]["prompt"], &json!(prompt));
            }
        }

        self.step("update with invalid params");
        let body = json!({ "pipeline": daydream::PIPELINE, "params": { "model_id": stream.model_id, "width": 100 } });
        self.expect_error("update with invalid params", rq.authed(Method::PATCH, &path).json(&body), 400, None).await;

        self.media(stream).await;

        // Unknown keys last: an upstream that wrongly stores them must not colour the steps above.
        self.step("update with unknown nested key");
        let processors = json!([{ "type": "blur", "enabled": true, "params": {}, "foo": 1 }]);
        let body = json!({ "pipeline": daydream::PIPELINE, "params": {
            "model_id": stream.model_id,
            "image_preprocessing": { "enabled": true, "processors": processors },
        }});
        if let Some(a) =
            self.send_ready("update with unknown nested key", || rq.authed(Method::PATCH, &path).json(&body)).await
        {
            // Documented: a 400 naming the key, or the key dropped (never echoed).
            if a.status == 400 {
                self.expect_error_answer("update with unknown nested key", &a, 400, Some("foo"));
            } else {
                self.expect_json("update with unknown nested key", &a, 200, &daydream::stream());
            }
        }
        self.step("get after unknown nested key");
        if let Some(a) = self.send("get after unknown nested key", rq.authed(Method::GET, &path)).await {
            self.expect_json("get after unknown nested key", &a, 200, &daydream::stream());
        }

        self.step("update with unknown param");
        let body = json!({ "pipeline": daydream::PIPELINE, "params": { "model_id": stream.model_id, "foo": 1 } });
        self.expect_error("update with unknown param", rq.authed(Method::PATCH, &path).json(&body), 400, Some("foo"))
            .await;
    }

    /// A header holding a URL: reported when missing or (with `absolute`) relative; returns it
    /// resolved against `base`.
    fn required_url(&mut self, step: &str, a: &Answer, name: &str, base: &Url, absolute: bool) -> Option<Url> {
        let path = format!("(header {})", canonical(name));
        let Some(raw) = a.header(name) else {
            self.deviate(step, &path, "missing");
            return None;
        };
        if absolute && Url::parse(raw).is_err() {
            self.deviate(step, &path, &format!("not an absolute URL: {raw:?}"));
        }
        match base.join(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                self.deviate(step, &path, &format!("not a URL: {raw:?} ({e})"));
                None
            }
        }
    }

    fn expect_status(&mut self, step: &str, a: &Answer, allowed: &[u16]) -> bool {
        if allowed.contains(&a.status) {
            return true;
        }
        let wanted: Vec<String> = allowed.iter().map(u16::to_string).collect();
        let body: String = a.body.chars().take(160).collect();
        self.deviate(step, "(status)", &format!("expected {}, got {}: {}", wanted.join(" or "), a.status, body.trim()));
        false
    }

    fn expect_content_type(&mut self, step: &str, a: &Answer, mime: &str) {
        let ct = a.header("content-type").unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(mime) {
            self.deviate(step, "(header Content-Type)", &format!("expected {mime}, got {ct:?}"));
        }
    }

    /// Status, JSON content type and shape of an answer; its body when the status is right.
    fn expect_json(&mut self, step: &str, a: &Answer, status: u16, shape: &Shape) -> Option<Value> {
        if !self.expect_status(step, a, &[status]) {
            return None;
        }
        self.expect_content_type(step, a, "application/json");
        let value: Value = match serde_json::from_str(&a.body) {
            Ok(v) => v,
            Err(e) => {
                self.deviate(step, "$", &format!("not JSON: {e}"));
                return None;
            }
        };
        for m in check(shape, &value) {
            self.deviate(step, &m.path, &m.problem.to_string());
        }
        Some(value)
    }

    /// Sends `req` and checks a documented error answer (`status`, error body, and when
    /// `names` is given, that the answer names that field).
    async fn expect_error(&mut self, step: &str, req: RequestBuilder, status: u16, names: Option<&str>) {
        if let Some(a) = self.send(step, req).await {
            self.expect_error_answer(step, &a, status, names);
            // An upstream that wrongly accepted a create made a stream: delete it.
            if a.status == 201 {
                let rq = self.rq();
                if let Some(id) =
                    serde_json::from_str::<Value>(&a.body).ok().and_then(|v| v["id"].as_str().map(str::to_owned))
                {
                    let _ = rq.authed(Method::DELETE, "/v1/streams").query(&[("id", id.as_str())]).send().await;
                }
            }
        }
    }

    fn expect_error_answer(&mut self, step: &str, a: &Answer, status: u16, names: Option<&str>) {
        if let Some(v) = self.expect_json(step, a, status, &daydream::error_body()) {
            if let Some(field) = names {
                let text = format!("{} {}", v["error"], v["details"]);
                if !text.contains(field) {
                    self.deviate(step, "$.error", &format!("does not name the field {field:?}"));
                }
            }
            self.expect_value(step, "$.status", &v["status"], &json!(status));
        }
    }

    fn expect_value(&mut self, step: &str, path: &str, found: &Value, expected: &Value) {
        if found != expected && !found.is_null() {
            self.deviate(step, path, &format!("expected {expected}, got {found}"));
        }
    }

    fn stream_of(&mut self, v: &Value) -> Option<Stream> {
        let id = v["id"].as_str()?.to_owned();
        let model_id = v["params"]["model_id"].as_str().unwrap_or("stabilityai/sd-turbo").to_owned();
        let whip_url = match v["whip_url"].as_str().map(Url::parse) {
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                self.deviate("create", "$.whip_url", &format!("not an absolute URL ({e})"));
                return None;
            }
            None => return None,
        };
        Some(Stream { id, model_id, whip_url })
    }

    // ---- plumbing ----

    fn rq(&self) -> Rq<'a> {
        Rq { cfg: self.cfg, http: self.http.clone() }
    }

    async fn send(&mut self, step: &str, req: RequestBuilder) -> Option<Answer> {
        match read(req).await {
            Ok(a) => Some(a),
            Err(e) => {
                self.deviate(step, "(request)", &e);
                None
            }
        }
    }

    /// Sends the request `make` builds, again while the answer is "not ready" (a fresh stream
    /// warming up), within the warm-up budget.
    async fn send_ready(&mut self, step: &str, make: impl Fn() -> RequestBuilder) -> Option<Answer> {
        let until = Instant::now() + self.cfg.warmup;
        loop {
            let a = self.send(step, make()).await?;
            if !NOT_READY.contains(&a.status) || Instant::now() >= until {
                return Some(a);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn deviate(&mut self, step: &str, path: &str, problem: &str) {
        let d = Deviation { step: step.into(), path: path.into(), problem: problem.into() };
        if self.cfg.verbose {
            eprintln!("  deviation: {d}");
        }
        self.report.deviations.push(d);
    }

    fn step(&mut self, name: &str) {
        self.report.steps += 1;
        self.note(name);
    }

    fn note(&self, text: &str) {
        if self.cfg.verbose {
            eprintln!("{text}");
        }
    }
}

async fn read(req: RequestBuilder) -> Result<Answer, String> {
    let resp = req.send().await.map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(Answer { status, headers, body })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether a comma-separated header list holds `item` (case-insensitive) or `*`.
fn list_has(list: &str, item: &str) -> bool {
    list.split(',').map(str::trim).any(|x| x == "*" || x.eq_ignore_ascii_case(item))
}

/// `livepeer-playback-url` -> `Livepeer-Playback-URL` (as the documentation writes it).
fn canonical(name: &str) -> &str {
    match name {
        "location" => "Location",
        "livepeer-playback-url" => "Livepeer-Playback-URL",
        _ => name,
    }
}
