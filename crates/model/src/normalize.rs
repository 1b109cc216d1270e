//! Accepting the body shapes clients send and normalising them to
//! `{ "pipeline": "streamdiffusion", "params": {...} }`.
//!
//! Create: `{pipeline, params}` or the deprecated `{pipeline_id, pipeline_params}`
//! (`pipeline_id` fills `params.model_id` when the params lack one; a missing
//! `pipeline` means streamdiffusion). Update: the same, or `{params}`,
//! `{pipeline_params}`, or a flat params object.

use serde_json::{Map, Value};

use crate::catalog;
use crate::error::FieldError;
use crate::params::{CreatePayload, StreamParams};
use crate::validate::{validate, Mode};
use crate::PIPELINE;

/// Keys of the envelope around the params object.
const ENVELOPE_KEYS: [&str; 4] = ["pipeline", "pipeline_id", "params", "pipeline_params"];

/// Parses, normalises and fully validates a create body, returning every problem.
///
/// ```
/// use serde_json::json;
/// let p = dreamgate_model::parse_create(&json!({
///     "pipeline_id": "pip_SDXL-turbo", "pipeline_params": {"prompt": "a fox"}
/// })).unwrap();
/// assert_eq!(p.pipeline, "streamdiffusion");
/// assert_eq!(p.params.model_id.as_deref(), Some("stabilityai/sdxl-turbo"));
/// ```
pub fn parse_create(body: &Value) -> Result<CreatePayload, Vec<FieldError>> {
    let Some(body) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let legacy_model = envelope(body, &mut errors);
    let params_value = match (body.get("params"), body.get("pipeline_params")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("pipeline_params", "give either params or pipeline_params, not both"));
            body.get("params")
        }
        (Some(v), None) | (None, Some(v)) => Some(v),
        (None, None) => {
            errors.push(FieldError::new("params", "is required"));
            None
        }
    };
    let mut params = params_value.and_then(|v| StreamParams::decode_at(v, "params", &mut errors));
    if let Some(p) = params.as_mut() {
        if p.model_id.is_none() {
            p.model_id = legacy_model.map(str::to_owned);
        }
        let problems = validate(p, Mode::Full);
        merge(&mut errors, problems);
    }
    match params {
        Some(params) if errors.is_empty() => {
            let extra = body
                .iter()
                .filter(|(k, _)| !ENVELOPE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(CreatePayload { pipeline: PIPELINE.into(), params, extra })
        }
        _ => Err(errors),
    }
}

/// Parses an update body and validates each given field (cross-field rules only
/// when both sides are given); returns the params object to merge upstream, with
/// the given values untouched (plus `model_id` from a legacy `pipeline_id`).
///
/// ```
/// use serde_json::json;
/// let flat = dreamgate_model::parse_update(&json!({"prompt": "a fox", "seed": 7})).unwrap();
/// assert_eq!(flat["seed"], 7);
/// let errs = dreamgate_model::parse_update(&json!({"params": {"width": 100}})).unwrap_err();
/// assert_eq!(errs[0].field, "params.width");
/// ```
pub fn parse_update(body: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    let Some(body) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let legacy_model = envelope(body, &mut errors);
    let params = match (body.get("params"), body.get("pipeline_params")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("pipeline_params", "give either params or pipeline_params, not both"));
            body.get("params").cloned()
        }
        (Some(v), None) | (None, Some(v)) => Some(v.clone()),
        // A flat params object: everything but the envelope keys.
        (None, None) => Some(Value::Object(
            body.iter()
                .filter(|(k, _)| !ENVELOPE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )),
    };
    let mut map = match params {
        Some(Value::Object(map)) => map,
        _ => {
            errors.push(FieldError::new("params", "must be an object"));
            return Err(errors);
        }
    };
    if !map.contains_key("model_id") {
        if let Some(model) = legacy_model {
            map.insert("model_id".into(), Value::String(model.into()));
        }
    }
    if map.is_empty() {
        errors.push(FieldError::new("params", "no parameters to update"));
    }
    let value = Value::Object(map);
    if let Some(p) = StreamParams::decode_at(&value, "params", &mut errors) {
        let problems = validate(&p, Mode::Partial);
        merge(&mut errors, problems);
    }
    match value {
        Value::Object(map) if errors.is_empty() => Ok(map),
        _ => Err(errors),
    }
}

/// Checks `pipeline` / `pipeline_id`; returns the model a legacy `pipeline_id` stands for.
fn envelope(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<&'static str> {
    if let Some(pipeline) = body.get("pipeline") {
        if pipeline.as_str() != Some(PIPELINE) {
            errors.push(FieldError::new("pipeline", format!("must be \"{PIPELINE}\"")));
        }
    }
    let id = body.get("pipeline_id")?;
    let model = id.as_str().and_then(catalog::legacy_pipeline_model);
    if model.is_none() {
        let known: Vec<&str> = catalog::LEGACY_PIPELINES.iter().map(|(id, _)| *id).collect();
        errors.push(FieldError::new("pipeline_id", format!("must be one of: {}", known.join(", "))));
    }
    model
}

/// Adds validation problems, except those about a field that already has a
/// type error (its value was not decoded, so the rule saw it as absent).
fn merge(errors: &mut Vec<FieldError>, problems: Vec<FieldError>) {
    let covered = |field: &str| {
        errors.iter().any(|e| {
            field == e.field || field.strip_prefix(e.field.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    };
    let fresh: Vec<FieldError> = problems.into_iter().filter(|p| !covered(&p.field)).collect();
    errors.extend(fresh);
}
