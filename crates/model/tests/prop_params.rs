//! Property tests: the stream-parameter parsers take any JSON a client may
//! send and never panic; what they accept is valid and serialisable.
//!
//! Bounded in CI (`PROPTEST_CASES`, default 256); longer by hand:
//! `PROPTEST_CASES=100000 cargo test -p dreamgate-model --test prop_params`.

use dreamgate_model::{default_create_payload, parse_create, parse_update, update_body, validate_params};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Field names the parsers know (and a few near misses), so that generated
/// objects reach the field parsers and not only the "unknown field" path.
const KEYS: &[&str] = &[
    "pipeline",
    "params",
    "pipeline_params",
    "model_id",
    "prompt",
    "negative_prompt",
    "num_inference_steps",
    "seed",
    "width",
    "height",
    "guidance_scale",
    "delta",
    "t_index_list",
    "controlnets",
    "conditioning_scale",
    "preprocessor",
    "preprocessor_params",
    "enabled",
    "control_guidance_start",
    "control_guidance_end",
    "acceleration",
    "use_denoising_batch",
    "do_add_noise",
    "enable_similar_image_filter",
    "similar_image_filter_threshold",
    "similar_image_filter_max_skip_frame",
    "prompt_interpolation_method",
    "seed_interpolation_method",
    "normalize_prompt_weights",
    "normalize_seed_weights",
    "ip_adapter",
    "ip_adapter_style_image_url",
    "name",
    "persona",
    "scale",
    "weight_type",
    "type",
    "",
    "ŝeed",
    "__proto__",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(vec![0.0, -0.0, 1e308, -1e308, 5e-324, 0.5, 512.0, 1024.0, 64.0]).prop_map(Value::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(KEYS.to_vec()).prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![prop::sample::select(KEYS.to_vec()).prop_map(str::to_string), ".{0,12}"], inner),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The default payload with one field replaced by anything (near-valid bodies).
fn mutated_default() -> impl Strategy<Value = Value> {
    (prop::sample::select(KEYS.to_vec()), json_value(), any::<bool>()).prop_map(|(key, value, nested)| {
        let mut body = serde_json::to_value(default_create_payload()).unwrap();
        let target = if nested { body["params"].as_object_mut().unwrap() } else { body.as_object_mut().unwrap() };
        target.insert(key.to_string(), value);
        body
    })
}

proptest! {
    #[test]
    fn prop_parse_create_never_panics(body in prop_oneof![json_value(), mutated_default()]) {
        if let Ok(payload) = parse_create(&body) {
            prop_assert!(validate_params(&payload.params).is_empty(), "accepted but invalid: {body}");
            prop_assert!(serde_json::to_value(&payload).is_ok());
        }
    }

    #[test]
    fn prop_parse_update_never_panics(body in prop_oneof![json_value(), mutated_default()], model in ".{0,20}") {
        if let Ok(params) = parse_update(&body) {
            let out = update_body(&model, params);
            prop_assert_eq!(&out["pipeline"], &json!("streamdiffusion"));
            prop_assert!(out["params"].is_object());
        }
    }

    #[test]
    fn prop_parse_accepts_any_shape_of_text(raw in ".{0,200}") {
        if let Ok(body) = serde_json::from_str::<Value>(&raw) {
            let _ = parse_create(&body);
            let _ = parse_update(&body);
        }
    }
}
