//! The WHIP (ingest) and WHEP (viewer) signalling endpoints: HTTP checks, then the offer goes
//! to the [`MediaBackend`](crate::backend::MediaBackend).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{gate, not_found, Fail};
use crate::backend::{IngestOffer, MediaError, SdpAnswer, ViewerOffer};
use crate::faults::{Call, FaultState};
use crate::Engine;

fn media_error(e: MediaError) -> Fail {
    Fail::new(e.status(), e.code(), e.to_string())
}

/// Checks `Content-Type: application/sdp` and an SDP body starting with `v=0`.
fn check_sdp(headers: &HeaderMap, body: &Bytes) -> Result<String, Fail> {
    if !content_type_is(headers, "application/sdp") {
        return Err(Fail::new(415, "MEDIA/UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/sdp"));
    }
    let sdp = std::str::from_utf8(body).map_err(|_| Fail::new(400, "MEDIA/BAD_OFFER", "SDP offer is not UTF-8"))?;
    if !sdp.trim_start().starts_with("v=0") {
        return Err(Fail::new(400, "MEDIA/BAD_OFFER", "Body is not an SDP offer (must start with v=0)"));
    }
    Ok(sdp.to_owned())
}

/// Whether the media type of `Content-Type` (parameters ignored) is `mime`.
fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(mime)
}

fn sdp_answer(status: StatusCode, answer: &SdpAnswer, location: String, playback: Option<String>) -> Response {
    let mut resp = (status, answer.sdp.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.append(name, v);
        }
    };
    put("location", &location);
    put("etag", &format!("\"{}\"", answer.resource_id));
    for server in &answer.ice_servers {
        put("link", &format!("<{server}>; rel=\"ice-server\""));
    }
    if let Some(p) = playback {
        put("livepeer-playback-url", &p);
    }
    resp
}

/// WHIP POST on `{base}/live/video-to-video/{stream_key}/whip`.
pub(super) async fn whip_offer(
    State(engine): State<Engine>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let (activity, params) =
        engine.streams().with_key(&key, |r| (r.activity(), r.params.clone())).ok_or_else(not_found)?;
    let id = activity.stream_id().to_owned();
    gate(&engine, Call::WhipOffer, Some(activity.age()))?;
    let sdp = check_sdp(&headers, &body)?;
    let index = engine
        .streams()
        .with_key(&key, |r| {
            r.whip_offers += 1;
            r.whip_offers - 1
        })
        .ok_or_else(not_found)?;
    let ice = engine.faults(|f| f.ice_policy(index));
    let offer =
        IngestOffer { stream_id: id.clone(), params, offer_sdp: sdp, activity, ice, faults: engine.media_faults() };
    let answer = engine.media().ingest(offer).await.map_err(media_error)?;
    tracing::info!(stream_id = %id, session = %answer.resource_id, "WHIP ingest accepted");
    let location = format!("{}/{}", engine.whip_url(&key), answer.resource_id);
    Ok(sdp_answer(StatusCode::CREATED, &answer, location, Some(engine.whep_url(&id))))
}

/// PATCH on the WHIP URL itself: Livepeer answers 405 (or the `trickle` fault status).
pub(super) async fn whip_patch_root(State(engine): State<Engine>, Path(key): Path<String>) -> Fail {
    let age = engine.streams().with_key(&key, |r| r.activity.created().elapsed());
    match gate(&engine, Call::WhipTrickle, age) {
        Err(f) => f,
        Ok(()) => Fail::new(405, "METHOD_NOT_ALLOWED", "Trickle ICE is not supported on the WHIP URL"),
    }
}

/// Trickle ICE PATCH on a WHIP session resource.
pub(super) async fn whip_trickle(
    State(engine): State<Engine>,
    Path((key, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let activity = engine.streams().with_key(&key, |r| r.activity()).ok_or_else(not_found)?;
    gate(&engine, Call::WhipTrickle, Some(activity.age()))?;
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return Err(Fail::new(
            415,
            "MEDIA/UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/trickle-ice-sdpfrag",
        ));
    }
    let frag =
        std::str::from_utf8(&body).map_err(|_| Fail::new(400, "MEDIA/BAD_OFFER", "Trickle body is not UTF-8"))?;
    engine.media().trickle(activity.stream_id(), &session, frag).map_err(media_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE on a WHIP session resource: ends the ingest (the backend records the close).
pub(super) async fn whip_delete(
    State(engine): State<Engine>,
    Path((key, session)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let activity = engine.streams().with_key(&key, |r| r.activity()).ok_or_else(not_found)?;
    gate(&engine, Call::WhipDelete, Some(activity.age()))?;
    match engine.media().end_ingest(activity.stream_id(), Some(&session)) {
        // the engine ended it a moment ago (the peer went away first): done all the same
        Err(MediaError::NotFound(_)) if activity.recently_ended(&session, Instant::now()) => {}
        other => other.map_err(media_error)?,
    }
    Ok(StatusCode::OK.into_response())
}

/// WHEP POST on `{base}/live/video-to-video/{stream_id}/whep`.
pub(super) async fn whep_offer(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let activity = engine.streams().activity(&id).ok_or_else(not_found)?;
    gate(&engine, Call::WhepOffer, Some(activity.age()))?;
    let sdp = check_sdp(&headers, &body)?;
    let max_viewers = engine.faults(FaultState::max_viewers);
    let offer = ViewerOffer { stream_id: id.clone(), offer_sdp: sdp, activity, max_viewers };
    // `whep_hold`: before the first output frame, hold the POST (bounded) instead of a 404
    let started = Instant::now();
    let answer = loop {
        match engine.media().view(offer.clone()).await {
            Err(MediaError::NotFound(m)) if offer.activity.exists() => {
                match engine.faults(|f| f.whep_hold_wait(started, Instant::now())) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(media_error(MediaError::NotFound(m))),
                }
            }
            other => break other.map_err(media_error)?,
        }
    };
    let location = format!("{}/{}", engine.whep_url(&id), answer.resource_id);
    Ok(sdp_answer(StatusCode::CREATED, &answer, location, None))
}

/// DELETE on a WHEP viewer resource.
pub(super) async fn whep_delete(
    State(engine): State<Engine>,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let activity = engine.streams().activity(&id).ok_or_else(not_found)?;
    gate(&engine, Call::WhepDelete, Some(activity.age()))?;
    match engine.media().end_view(&id, &viewer) {
        Err(MediaError::NotFound(_)) if activity.recently_ended(&viewer, Instant::now()) => {}
        other => other.map_err(media_error)?,
    }
    Ok(StatusCode::OK.into_response())
}
