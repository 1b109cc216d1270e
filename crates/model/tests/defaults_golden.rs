//! Golden test: the default create payload against the spec's defaults
//! (`daydream-integration.md` "Payload format" + the list), field by field.

use dreamgate_model::{default_create_payload, default_params, validate_params, PIPELINE};
use serde_json::{json, Value};

/// The spec's default create payload, written out by hand.
fn expected() -> Value {
    let controlnet = |name: &str, scale: f64, pre: &str, pre_params: Value| {
        json!({
            "model_id": format!("thibaud/controlnet-sd21-{name}-diffusers"),
            "conditioning_scale": scale,
            "preprocessor": pre,
            "preprocessor_params": pre_params,
            "enabled": true,
            "control_guidance_start": 0.0,
            "control_guidance_end": 1.0
        })
    };
    json!({
        "pipeline": "streamdiffusion",
        "params": {
            "model_id": "stabilityai/sd-turbo",
            "prompt": "androgynous cartoon magical dj blue sparkle",
            "negative_prompt": "blurry, low quality, flat, 2d",
            "num_inference_steps": 25,
            "seed": 42,
            "width": 512,
            "height": 512,
            "guidance_scale": 1.0,
            "delta": 0.7,
            "t_index_list": [12, 20, 24],
            "controlnets": [
                controlnet("openpose", 0.75, "pose_tensorrt", json!({})),
                controlnet("hed", 0.2, "soft_edge", json!({})),
                controlnet("canny", 0.2, "canny", json!({"low_threshold": 100, "high_threshold": 200})),
                controlnet("depth", 0.75, "depth_tensorrt", json!({})),
                controlnet("color", 0.2, "passthrough", json!({}))
            ],
            "acceleration": "tensorrt",
            "use_denoising_batch": true,
            "do_add_noise": true,
            "enable_similar_image_filter": true,
            "similar_image_filter_threshold": 0.98,
            "similar_image_filter_max_skip_frame": 10,
            "prompt_interpolation_method": "slerp",
            "seed_interpolation_method": "linear",
            "normalize_prompt_weights": true,
            "normalize_seed_weights": true
        }
    })
}

/// Every leaf of `value` as `(path, leaf)`; empty objects/arrays count as leaves.
fn leaves(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                leaves(v, format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        leaf => out.push((path, leaf.clone())),
    }
}

fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = value;
    for part in path.trim_start_matches('$').split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        cur = cur.get(key)?;
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            cur = cur.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

#[test]
fn default_create_payload_matches_the_spec_field_by_field() {
    let actual = serde_json::to_value(default_create_payload()).unwrap();
    let expected = expected();

    let mut want = Vec::new();
    leaves(&expected, "$".into(), &mut want);
    assert!(want.len() > 50, "the expected payload has {} leaves", want.len());
    for (path, value) in &want {
        assert_eq!(at(&actual, path), Some(value), "field {path}");
    }

    let mut got = Vec::new();
    leaves(&actual, "$".into(), &mut got);
    let unexpected: Vec<&String> = got.iter().map(|(p, _)| p).filter(|p| !want.iter().any(|(w, _)| w == *p)).collect();
    assert!(unexpected.is_empty(), "unexpected fields in the default payload: {unexpected:?}");
    assert_eq!(got.len(), want.len());
}

#[test]
fn no_ip_adapter_by_default() {
    // Documented choice: absent (sd21 has no IP adapter), not sent disabled.
    let p = default_params();
    assert!(p.ip_adapter.is_none());
    assert!(p.ip_adapter_style_image_url.is_none());
    assert!(p.extra.is_empty());
    let json = serde_json::to_value(&p).unwrap();
    assert!(json.get("ip_adapter").is_none());
    assert!(!json.to_string().contains("null"), "no nulls: {json}");
}

#[test]
fn defaults_are_valid_and_use_the_pipeline_constant() {
    assert_eq!(default_create_payload().pipeline, PIPELINE);
    assert_eq!(validate_params(&default_params()), vec![]);
}
