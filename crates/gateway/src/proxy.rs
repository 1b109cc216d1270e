//! The WHIP/WHEP proxy: the two signalling legs of a stream and how their
//! upstream answers are relayed.
//!
//! The browser never names an upstream URL: the gateway sends to the URLs it
//! stored (checked by the [`crate::whip_policy`]) and answers with its own
//! paths in `Location` and `Livepeer-Playback-URL`. Only `Content-Type`,
//! `ETag` and `Link` of an upstream answer reach the browser; redirects are
//! refused and error statuses mapped ([`HttpError::from_signal`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, ETAG, LINK, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use url::Url;

use crate::clock::Ms;
use crate::error::HttpError;
use crate::metrics::UpstreamOp;
use crate::registry::{RecordUpdate, StreamRecord};
use crate::state::{detached, AppState};
use crate::upstream::{Signal, SignalReply};

/// `Content-Type` of SDP offers and answers.
pub const SDP: &str = "application/sdp";
/// `Content-Type` of trickle ICE fragments.
pub const TRICKLE: &str = "application/trickle-ice-sdpfrag";

/// `Livepeer-Playback-URL` (WHIP answer header naming the WHEP URL).
pub const PLAYBACK_URL: HeaderName = HeaderName::from_static("livepeer-playback-url");

/// Holding a WHEP offer while the upstream has no output yet (`--whep-hold`): the upstream
/// answers 404 until its first output frame (Daydream's documented WHEP), and a player that
/// POSTs once and attaches once would miss the stream that its own retry brings. A pure rule:
/// the IO loop in [`whep_offer`] asks it after each 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhepHold {
    /// How long after the first attempt the offer may still be sent again (zero: never).
    pub limit: Duration,
}

impl WhepHold {
    /// How often a held offer is sent again.
    pub const POLL: Duration = Duration::from_millis(250);

    /// A WHEP offer first sent at `started` was answered 404 at `now`: how long to wait before
    /// sending it again, or `None` to relay that 404 (the hold is off or over).
    pub fn retry_after(self, started: Ms, now: Ms) -> Option<Duration> {
        let end = started + self.limit;
        (now < end).then(|| Self::POLL.min(end.since(now)))
    }
}

/// Which proxied signalling endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// WHIP ingest (`/api/daydream/streams/:id/whip`).
    Whip,
    /// WHEP playback (`/api/daydream/streams/:id/whep`).
    Whep,
}

impl Leg {
    fn label(self) -> &'static str {
        match self {
            Leg::Whip => "WHIP",
            Leg::Whep => "WHEP",
        }
    }

    /// How calls on this leg are named in the metrics.
    pub fn op(self) -> UpstreamOp {
        match self {
            Leg::Whip => UpstreamOp::Whip,
            Leg::Whep => UpstreamOp::Whep,
        }
    }

    /// The gateway's own path for this leg of stream `id`.
    pub fn gateway_path(self, id: &str) -> String {
        match self {
            Leg::Whip => format!("/api/daydream/streams/{id}/whip"),
            Leg::Whep => format!("/api/daydream/streams/{id}/whep"),
        }
    }

    /// The gateway's own URL for this leg of stream `id`: absolute under `base` (the
    /// gateway's public base URL), or just the path when `base` is empty.
    pub fn gateway_url(self, base: &str, id: &str) -> String {
        format!("{base}{}", self.gateway_path(id))
    }

    /// The stored upstream endpoint URL.
    pub fn endpoint(self, r: &StreamRecord) -> Option<&Url> {
        match self {
            Leg::Whip => Some(&r.whip_url),
            Leg::Whep => r.whep_url.as_ref(),
        }
    }

    /// The stored upstream session resource.
    pub fn resource(self, r: &StreamRecord) -> Option<&Url> {
        match self {
            Leg::Whip => r.whip_resource.as_ref(),
            Leg::Whep => r.whep_resource.as_ref(),
        }
    }
}

/// Selects the [`Leg`] of a route at compile time.
pub trait LegKind: Send + Sync + 'static {
    /// The leg.
    const LEG: Leg;
}

/// Marker for [`Leg::Whip`].
#[derive(Debug)]
pub struct Whip;
/// Marker for [`Leg::Whep`].
#[derive(Debug)]
pub struct Whep;

impl LegKind for Whip {
    const LEG: Leg = Leg::Whip;
}
impl LegKind for Whep {
    const LEG: Leg = Leg::Whep;
}

/// Checks an upstream-provided URL (absolute or relative to `base`).
fn checked_url(st: &AppState, base: &Url, raw: &str, what: &str) -> Option<Url> {
    let joined = base.join(raw).ok()?;
    match st.upstream().policy().check(joined.as_str()) {
        Ok(url) => Some(url),
        Err(refusal) => {
            tracing::warn!(%refusal, "ignoring upstream {what} URL outside the WHIP policy");
            None
        }
    }
}

/// Remembers the WHEP URL named by a status body.
pub async fn learn_whep_from_status(st: &AppState, record: &StreamRecord, status: &Value) -> Option<Url> {
    let raw = status.pointer(WHEP_IN_STATUS).and_then(Value::as_str)?;
    learn_whep_url(st, record, raw).await
}

/// Where a status body names the stream's WHEP URL.
const WHEP_IN_STATUS: &str = "/data/gateway_status/whep_url";

/// Remembers `raw` (a status body's WHEP URL, absolute or relative to the
/// WHIP URL) when the policy allows it; empty = none.
pub async fn learn_whep_url(st: &AppState, record: &StreamRecord, raw: &str) -> Option<Url> {
    if raw.is_empty() {
        return None;
    }
    if let Some(known) = record.whep_url.as_ref().filter(|u| u.as_str() == raw) {
        return Some(known.clone()); // already checked and stored
    }
    let url = checked_url(st, &record.whip_url, raw, "WHEP")?;
    st.update_record(&record.id, RecordUpdate::WhepUrl(url.clone())).await;
    Some(url)
}

/// Checks that a status body is JSON and reads the string at
/// `/data/gateway_status/whep_url`, in one pass and without building a JSON
/// tree: `None` when the body is not JSON, `Some(None)` when it names no WHEP
/// URL (absent, or not a string). Like [`Value::pointer`], the last of
/// duplicate keys counts.
pub fn whep_url_in_status(body: &[u8]) -> Option<Option<String>> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = JsonPath(&["data", "gateway_status", "whep_url"]).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(found)
}

/// Finds the string at a path of object keys, skipping everything else.
#[derive(Clone, Copy)]
struct JsonPath(&'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for JsonPath {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonPath {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_owned()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let Some((first, rest)) = self.0.split_first() else {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        while let Some(matches) = map.next_key_seed(KeyIs(first))? {
            if matches {
                found = map.next_value_seed(JsonPath(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether an object key equals the one sought (escaped keys included).
struct KeyIs(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIs {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// POSTs an SDP offer to `target`: the upstream answer and the checked
/// session resource it names in `Location`.
async fn send_offer(
    st: &AppState,
    leg: Leg,
    target: &Url,
    offer: Bytes,
) -> Result<(SignalReply, Option<Url>), HttpError> {
    let reply = st.upstream().signal(leg.op(), Signal::offer(target, offer)).await?;
    checked_answer(st, leg, target, reply)
}

/// A WHEP offer, sent again while the upstream answers 404 and `hold` allows
/// ([`WhepHold`]); then as [`send_offer`].
async fn send_held_offer(
    st: &AppState,
    target: &Url,
    offer: Bytes,
    hold: WhepHold,
) -> Result<(SignalReply, Option<Url>), HttpError> {
    let started = Ms::now();
    let reply = loop {
        let reply = st.upstream().signal(Leg::Whep.op(), Signal::offer(target, offer.clone())).await?;
        match hold.retry_after(started, Ms::now()) {
            Some(wait) if reply.status == StatusCode::NOT_FOUND => {
                crate::metrics::whep_offer_held();
                tokio::time::sleep(wait).await;
            }
            _ => break reply,
        }
    };
    checked_answer(st, Leg::Whep, target, reply)
}

/// An offer's upstream answer, refused unless a success, and the checked session resource it
/// names in `Location`.
fn checked_answer(
    st: &AppState,
    leg: Leg,
    target: &Url,
    reply: SignalReply,
) -> Result<(SignalReply, Option<Url>), HttpError> {
    ensure_success(st, &reply, &format!("{} offer failed", leg.label()))?;
    let resource = header_str(&reply.headers, &LOCATION)
        .and_then(|raw| checked_url(st, target, raw, &format!("{} resource", leg.label())));
    Ok((reply, resource))
}

/// A WHIP offer: relayed to the stream's WHIP URL (detached: the answer's
/// session resource and playback URL are recorded even if the browser left).
/// `Location` and `Livepeer-Playback-URL` are the gateway's own routes, absolute under `base`
/// (the gateway's public base URL) when known.
pub async fn whip_offer(
    st: Arc<AppState>,
    record: StreamRecord,
    offer: Bytes,
    base: Option<String>,
) -> Result<Response, HttpError> {
    let base = base.unwrap_or_default();
    detached(async move {
        let (reply, resource) = send_offer(&st, Leg::Whip, &record.whip_url, offer).await?;
        let playback =
            header_str(&reply.headers, &PLAYBACK_URL).and_then(|raw| checked_url(&st, &record.whip_url, raw, "WHEP"));
        let whep_known = playback.is_some() || record.whep_url.is_some();
        st.update_record(&record.id, RecordUpdate::WhipAnswer { resource, playback }).await;
        let mut resp = relay(&reply, SDP);
        let h = resp.headers_mut();
        insert_path(h, LOCATION, &Leg::Whip.gateway_url(&base, &record.id));
        if whep_known {
            insert_path(h, PLAYBACK_URL, &Leg::Whep.gateway_url(&base, &record.id));
        }
        Ok(resp)
    })
    .await
}

/// Trickle ICE, to the WHIP session resource (or the endpoint before there is one).
pub async fn whip_trickle(
    st: &AppState,
    record: &StreamRecord,
    frag: Bytes,
    if_match: Option<&HeaderValue>,
) -> Result<Response, HttpError> {
    let target = record.whip_resource.as_ref().unwrap_or(&record.whip_url);
    let reply = st.upstream().signal(UpstreamOp::Whip, Signal::trickle(target, frag, if_match)).await?;
    ensure_success(st, &reply, "WHIP trickle failed")?;
    Ok(relay(&reply, TRICKLE))
}

/// A WHEP offer: relayed to the stream's WHEP URL (learnt from the WHIP
/// answer or, failing that, from the stream's status); 404 `Playback not
/// ready` while none is known. An upstream 404 (no output yet) is retried
/// for `--whep-hold` ([`WhepHold`]) before it is relayed.
pub async fn whep_offer(
    st: Arc<AppState>,
    record: StreamRecord,
    offer: Bytes,
    base: Option<String>,
) -> Result<Response, HttpError> {
    let base = base.unwrap_or_default();
    detached(async move {
        let whep_url = match record.whep_url.clone() {
            Some(u) => Some(u),
            None => {
                let status =
                    st.upstream().api().stream_status(&record.id).await.map_err(|e| st.upstream().api_error(&e))?;
                learn_whep_from_status(&st, &record, &status).await
            }
        };
        let Some(whep_url) = whep_url else {
            return Err(HttpError::playback_not_ready());
        };
        let hold = WhepHold { limit: st.config().whep_hold };
        let (reply, resource) = send_held_offer(&st, &whep_url, offer, hold).await?;
        st.update_record(&record.id, RecordUpdate::WhepResource(resource)).await;
        let mut resp = relay(&reply, SDP);
        insert_path(resp.headers_mut(), LOCATION, &Leg::Whep.gateway_url(&base, &record.id));
        Ok(resp)
    })
    .await
}

/// Deletes the stream's upstream session resource of `leg` (204 when there is none).
pub async fn teardown(st: &AppState, leg: Leg, record: &StreamRecord) -> Result<Response, HttpError> {
    let Some(target) = leg.resource(record).cloned() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let cleared = match leg {
        Leg::Whip => RecordUpdate::WhipResource(None),
        Leg::Whep => RecordUpdate::WhepResource(None),
    };
    st.update_record(&record.id, cleared).await;
    let reply = st.upstream().signal(leg.op(), Signal::delete(&target)).await?;
    ensure_success(st, &reply, &format!("{} teardown failed", leg.label()))?;
    Ok(relay(&reply, "text/plain"))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|s| !s.is_empty())
}

fn insert_path(headers: &mut HeaderMap, name: HeaderName, path: &str) {
    if let Ok(v) = HeaderValue::from_str(path) {
        headers.insert(name, v);
    }
}

/// Refuses redirects and maps error statuses (see [`HttpError::from_signal`]).
fn ensure_success(st: &AppState, reply: &SignalReply, what: &str) -> Result<(), HttpError> {
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(HttpError::from_signal(what, reply.status, &reply.body, st.upstream().scrubber()))
    }
}

/// The upstream answer with only the headers the browser needs (Content-Type,
/// ETag, Link); Location is replaced by the caller.
fn relay(reply: &SignalReply, default_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(reply.body.clone()));
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    if !reply.body.is_empty() {
        let ct = reply.headers.get(CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static(default_type));
        h.insert(CONTENT_TYPE, ct);
    }
    if let Some(tag) = reply.headers.get(ETAG) {
        h.insert(ETAG, tag.clone());
    }
    for link in reply.headers.get_all(LINK) {
        h.append(LINK, link.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whep_hold_retries_404s_in_short_steps_until_its_limit() {
        let t0 = Ms(1_000_000);
        let off = WhepHold { limit: Duration::ZERO };
        assert_eq!(off.retry_after(t0, t0), None, "no hold: the 404 at once");
        let hold = WhepHold { limit: Duration::from_secs(2) };
        assert_eq!(hold.retry_after(t0, t0), Some(WhepHold::POLL));
        assert_eq!(
            hold.retry_after(t0, t0 + Duration::from_millis(1900)),
            Some(Duration::from_millis(100)),
            "never past the limit"
        );
        assert_eq!(hold.retry_after(t0, t0 + Duration::from_secs(2)), None);
        assert_eq!(hold.retry_after(t0, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn the_whep_url_of_a_status_body_is_found_like_a_json_pointer() {
        let bodies = [
            r#"{"success":true,"data":{"gateway_status":{"whep_url":"https://x.example/w"}}}"#,
            r#"{"data":{"n":[1,{"whep_url":"no"}],"gateway_status":{"a":null,"whep_url":"https://x.example/w","b":1.5}}}"#,
            r#"{"data":{"gateway_status":{"whep_url":"https:\/\/x.example\/w"}}}"#,
            r#"{"data":{"gateway_status":{"whep_url":"https://x.example/w"}}}"#,
            r#"{"data":{"gateway_status":{"whep_url":"old","whep_url":"https://x.example/w"}}}"#,
            r#"{"data":{"gateway_status":{"whep_url":7}}}"#,
            r#"{"data":{"gateway_status":"whep_url"}}"#,
            r#"{"data":[]}"#,
            r#"{"whep_url":"top-level"}"#,
            r#"null"#,
            r#"{"data":{"gateway_status":{"whep_url":"https://x.example/w"}}} trailing"#,
            r#"{"data":"#,
        ];
        for body in bodies {
            let tree = serde_json::from_str::<Value>(body).ok();
            let expected = tree.as_ref().map(|v| v.pointer(WHEP_IN_STATUS).and_then(Value::as_str).map(str::to_string));
            assert_eq!(whep_url_in_status(body.as_bytes()), expected, "{body}");
        }
    }
}
