//! `GET /v1/streams/{id}/status`: renders the engine's [`StatusSnapshot`] as Daydream's status
//! JSON (`{success, error, data:{state, input_status, inference_status, gateway_status…}}`).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{api_gate, not_found, random_id, Fail};
use crate::faults::{Call, StatusShape};
use crate::snapshot::params_hash;
use crate::status::{conn_quality, packet_loss_pct};
use crate::{Engine, StatusSnapshot};

pub(super) async fn stream_status(
    State(engine): State<Engine>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    api_gate(&engine, &headers, Call::Status, Some(&id))?;
    let snapshot = engine.status(&id, Instant::now()).ok_or_else(not_found)?;
    let mut data = status_data(&engine, &snapshot);
    if engine.faults(|f| f.faults().status_shape) == StatusShape::Public {
        data = public_shape(data);
    }
    Ok(axum::Json(json!({ "success": true, "error": null, "data": data })).into_response())
}

/// The status `data` object of a snapshot.
fn status_data(engine: &Engine, s: &StatusSnapshot) -> Value {
    let (a, ev) = (&s.media, &s.evaluation);
    let ms = |t: Option<Instant>| t.map(|t| engine.epoch_ms(t));
    let t = a.transport;
    let loss = packet_loss_pct(t.packets_received, t.packets_lost);
    let track_stats = if a.last_input.is_some() {
        json!([{
            "type": "video",
            "jitter": t.jitter_ms / 1000.0,
            "packets_lost": t.packets_lost,
            "packets_received": t.packets_received,
            "packet_loss_pct": loss,
            "rtt": t.rtt_ms / 1000.0,
            "last_input_ts": ms(a.last_input),
            "last_output_ts": ms(a.last_output),
            "latency": match (a.last_input, a.last_output) {
                (Some(i), Some(o)) if o >= i => o.duration_since(i).as_secs_f64(),
                _ => 0.0,
            },
        }])
    } else {
        json!([])
    };
    let params = serde_json::to_value(&s.params).unwrap_or(Value::Null);
    json!({
        "type": "status",
        "pipeline": s.pipeline,
        "start_time": engine.epoch_ms(a.created),
        "state": ev.state.as_str(),
        "last_state_update_time": engine.epoch_ms(ev.since),
        "timestamp": engine.epoch_ms(s.now),
        "stream_id": s.stream_id,
        "request_id": random_id("req_", 16),
        "pipeline_id": legacy_pipeline_id(s.params.model_id.as_deref()),
        "orchestrator_info": { "address": "dreamgate-engine", "url": engine.base_url() },
        "input_status": { "fps": round2(ev.input_fps), "last_input_time": ms(a.last_input) },
        "inference_status": {
            "fps": round2(ev.output_fps),
            "last_output_time": ms(a.last_output),
            "last_params_update_time": ms(a.applied_params.as_ref().and_then(|(_, at)| *at)),
            "last_params": s.last_params.clone().map_or(params, Value::Object),
            "last_params_hash": a.applied_params.as_ref().map_or_else(|| params_hash(&s.params), |(h, _)| h.clone()),
            "last_error_time": ms(a.last_error.as_ref().map(|e| e.0)),
            "last_error": a.last_error.as_ref().map(|e| e.1.clone()),
            "last_restart_time": ms(a.last_restart),
            "last_restart_logs": a.restart_logs,
            "restart_count": a.restart_count,
        },
        "gateway_status": {
            "whep_url": engine.whep_url(&s.stream_id),
            "ingest_metrics": { "stats": {
                "peer_conn_stats": { "ID": s.stream_id, "BytesReceived": a.bytes_received, "BytesSent": a.bytes_sent },
                "track_stats": track_stats,
                "conn_quality": conn_quality(t.jitter_ms, loss),
            }},
        },
    })
}

/// `status_shape=public`: Daydream's public reference shape: `inference_status.input_fps`,
/// `output_fps` and `last_input_time`; no `state`, no `input_status`, no `inference_status.fps`.
fn public_shape(mut data: Value) -> Value {
    let Some(map) = data.as_object_mut() else { return data };
    map.remove("state");
    map.remove("last_state_update_time");
    let input = map.remove("input_status").unwrap_or(Value::Null);
    if let Some(inference) = map.get_mut("inference_status").and_then(Value::as_object_mut) {
        let output_fps = inference.remove("fps").unwrap_or(json!(0.0));
        inference.insert("input_fps".into(), input["fps"].clone());
        inference.insert("output_fps".into(), output_fps);
        inference.insert("last_input_time".into(), input["last_input_time"].clone());
    }
    data
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn legacy_pipeline_id(model_id: Option<&str>) -> &'static str {
    match model_id {
        Some("stabilityai/sdxl-turbo") => "pip_SDXL-turbo",
        Some("Lykon/dreamshaper-8" | "prompthero/openjourney-v4") => "pip_SD15",
        _ => "pip_SD-turbo",
    }
}
