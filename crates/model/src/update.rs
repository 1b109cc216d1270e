//! Live updates: which parameters are hot-updatable and the minimal PATCH body
//! that turns the current params into the wanted ones.
//!
//! Dynamic (no pipeline reload): `prompt`, `guidance_scale`, `delta`,
//! `num_inference_steps`, `t_index_list`, `seed` and `controlnets[].conditioning_scale`.
//! Everything else reloads the pipeline (about 30 s upstream).

use serde_json::{json, Map, Value};

use crate::catalog::DEFAULT_MODEL_ID;
use crate::params::StreamParams;
use crate::PIPELINE;

/// Top-level parameters that update without a pipeline reload.
pub const DYNAMIC_FIELDS: [&str; 6] =
    ["prompt", "guidance_scale", "delta", "num_inference_steps", "t_index_list", "seed"];

/// Whether changing `field` keeps the pipeline running.
///
/// Accepts top-level names (`"prompt"`, optionally prefixed `params.`) and the
/// ControlNet scale in any of the forms `controlnets[].conditioning_scale`,
/// `controlnets.conditioning_scale` or `controlnets[2].conditioning_scale`.
///
/// ```
/// use dreamgate_model::is_dynamic;
/// assert!(is_dynamic("prompt"));
/// assert!(is_dynamic("params.controlnets[3].conditioning_scale"));
/// assert!(!is_dynamic("controlnets"));
/// assert!(!is_dynamic("width"));
/// ```
pub fn is_dynamic(field: &str) -> bool {
    let field = field.strip_prefix("params.").unwrap_or(field);
    if DYNAMIC_FIELDS.contains(&field) {
        return true;
    }
    let Some(rest) = field.strip_prefix("controlnets") else { return false };
    let rest = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((index, rest)) if index.bytes().all(|b| b.is_ascii_digit()) => rest,
        Some(_) => return false,
        None => rest,
    };
    rest == ".conditioning_scale"
}

/// `{ "pipeline": "streamdiffusion", "params": { "model_id": ..., ...params } }`;
/// `model_id` always comes first and always wins over one inside `params`.
///
/// ```
/// use serde_json::{json, Map};
/// let mut params = Map::new();
/// params.insert("seed".into(), json!(7));
/// assert_eq!(
///     dreamgate_model::update_body("stabilityai/sd-turbo", params),
///     json!({"pipeline": "streamdiffusion", "params": {"model_id": "stabilityai/sd-turbo", "seed": 7}})
/// );
/// ```
pub fn update_body(model_id: &str, params: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("model_id".into(), Value::String(model_id.into()));
    out.extend(params.into_iter().filter(|(k, _)| k != "model_id"));
    json!({ "pipeline": PIPELINE, "params": out })
}

/// The result of [`plan_update`].
#[derive(Clone, Debug, PartialEq)]
pub struct UpdatePlan {
    /// The PATCH body: `model_id` plus only the changed parameters.
    pub body: Value,
    /// Whether applying it reloads the pipeline.
    pub reload: bool,
    /// Names of the changed top-level parameters, in `wanted` order.
    pub changed: Vec<String>,
}

/// Plans the minimal update from `current` to `wanted`.
///
/// Only parameters present in `wanted` and different from `current` are sent
/// (PATCH merges, so an absent parameter keeps its value). `model_id` is always in
/// the body: `wanted`'s, else `current`'s (the model the stream was created with),
/// else the default model. ControlNets whose only differences are
/// `conditioning_scale` values are a dynamic change and send the whole wanted
/// `controlnets` array; any other ControlNet change reloads.
///
/// ```
/// use dreamgate_model::{default_params, plan_update, Prompt};
/// let current = default_params();
/// let mut wanted = current.clone();
/// wanted.prompt = Some(Prompt::from("male cartoon magical dj blue sparkle"));
/// let plan = plan_update(&current, &wanted);
/// assert!(!plan.reload);
/// assert_eq!(plan.changed, ["prompt"]);
/// assert_eq!(plan.body["params"].as_object().unwrap().len(), 2); // model_id + prompt
/// ```
pub fn plan_update(current: &StreamParams, wanted: &StreamParams) -> UpdatePlan {
    let current_map = current.to_map();
    let mut changed = Vec::new();
    let mut params = Map::new();
    let mut reload = false;
    for (key, value) in wanted.to_map() {
        let before = current_map.get(&key);
        if before == Some(&value) {
            continue;
        }
        reload |= match key.as_str() {
            "controlnets" => !only_scales_differ(before, &value),
            other => !is_dynamic(other),
        };
        changed.push(key.clone());
        params.insert(key, value);
    }
    let model_id = wanted.model_id.as_deref().or(current.model_id.as_deref()).unwrap_or(DEFAULT_MODEL_ID);
    UpdatePlan { body: update_body(model_id, params), reload, changed }
}

/// Whether two `controlnets` arrays are equal but for `conditioning_scale` values.
fn only_scales_differ(before: Option<&Value>, after: &Value) -> bool {
    let (Some(Value::Array(before)), Value::Array(after)) = (before, after) else { return false };
    let without_scale = |cn: &Value| -> Option<Map<String, Value>> {
        let mut map = cn.as_object()?.clone();
        map.remove("conditioning_scale");
        Some(map)
    };
    before.len() == after.len()
        && before.iter().zip(after).all(|(b, a)| {
            let (b, a) = (without_scale(b), without_scale(a));
            b.is_some() && b == a
        })
}
