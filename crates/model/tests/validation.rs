//! One test per validation rule: each names the field in the error.

use dreamgate_model::{default_create_payload, parse_create, parse_update, validate_params, FieldError};
use serde_json::{json, Map, Value};

/// The default params with `patch` applied on top (a `null` removes the key).
fn params_with(patch: Value) -> Map<String, Value> {
    let mut params = default_create_payload().params.to_map();
    for (k, v) in patch.as_object().expect("patch is an object") {
        if v.is_null() {
            params.remove(k);
        } else {
            params.insert(k.clone(), v.clone());
        }
    }
    params
}

fn create_errors(patch: Value) -> Vec<FieldError> {
    let body = json!({ "pipeline": "streamdiffusion", "params": params_with(patch) });
    match parse_create(&body) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

/// Asserts that `patch` on the defaults yields exactly errors on `fields`.
#[track_caller]
fn assert_fields(patch: Value, fields: &[&str]) {
    let errors = create_errors(patch.clone());
    let got: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(got, fields, "patch {patch}: {errors:?}");
    for e in &errors {
        assert!(!e.message.is_empty());
    }
}

fn controlnet(model_id: &str) -> Value {
    json!({ "model_id": model_id, "conditioning_scale": 0.5, "preprocessor": "canny", "enabled": true })
}

#[test]
fn valid_payload_has_no_errors() {
    assert_fields(json!({}), &[]);
    assert!(validate_params(&default_create_payload().params).is_empty());
    // A richer but valid sdxl payload.
    assert_fields(
        json!({
            "model_id": "stabilityai/sdxl-turbo",
            "prompt": [["a fox", 0.7], ["a wolf", 0.3]],
            "seed": [[1, 0.5], [2, 0.5]],
            "width": 1024, "height": 384,
            "t_index_list": [0, 0, 25, 25],
            "controlnets": [controlnet("xinsir/controlnet-depth-sdxl-1.0"), controlnet("xinsir/controlnet-canny-sdxl-1.0"),
                            controlnet("xinsir/controlnet-tile-sdxl-1.0"),
                            {"model_id": "thibaud/controlnet-sd21-hed-diffusers", "enabled": false}],
            "ip_adapter": {"type": "faceid", "enabled": true, "scale": 0.5},
            "ip_adapter_style_image_url": "https://example.com/style.png",
            "image_preprocessing": {"enabled": true, "processors": [{"type": "blur", "params": {"radius": 2}}]},
            "latent_postprocessing": {"processors": [{"type": "latent_feedback", "params": {"feedback_strength": 0.15}}]},
            "lora_dict": {"some/lora": 0.8},
            "acceleration": "xformers",
        }),
        // the disabled sd21 ControlNet is still of the wrong family
        &["params.controlnets[3].model_id"],
    );
}

#[test]
fn model_id_is_required() {
    assert_fields(json!({"model_id": null}), &["params.model_id"]);
}

#[test]
fn model_id_must_be_known() {
    assert_fields(json!({"model_id": "runwayml/stable-diffusion-v1-5"}), &["params.model_id"]);
}

#[test]
fn prompt_must_not_be_empty() {
    assert_fields(json!({"prompt": "  "}), &["params.prompt"]);
}

#[test]
fn weighted_prompt_must_not_be_empty() {
    assert_fields(json!({"prompt": []}), &["params.prompt"]);
}

#[test]
fn weighted_prompt_texts_must_not_be_empty() {
    assert_fields(json!({"prompt": [["ok", 1.0], ["", 0.5]]}), &["params.prompt[1]"]);
}

#[test]
fn width_within_bounds() {
    assert_fields(json!({"width": 320}), &["params.width"]);
    assert_fields(json!({"width": 1088}), &["params.width"]);
}

#[test]
fn height_multiple_of_64() {
    assert_fields(json!({"height": 500}), &["params.height"]);
}

#[test]
fn num_inference_steps_1_to_100() {
    assert_fields(json!({"num_inference_steps": 0}), &["params.num_inference_steps"]);
    assert_fields(json!({"num_inference_steps": 101, "t_index_list": [1]}), &["params.num_inference_steps"]);
}

#[test]
fn t_index_list_has_1_to_4_entries() {
    assert_fields(json!({"t_index_list": []}), &["params.t_index_list"]);
    assert_fields(json!({"t_index_list": [1, 2, 3, 4, 5]}), &["params.t_index_list"]);
}

#[test]
fn t_index_list_is_non_decreasing() {
    assert_fields(json!({"t_index_list": [12, 20, 18]}), &["params.t_index_list"]);
}

#[test]
fn t_index_list_values_within_steps() {
    assert_fields(json!({"t_index_list": [12, 26]}), &["params.t_index_list[1]"]);
    assert_fields(
        json!({"num_inference_steps": 10, "t_index_list": [-1, 12]}),
        &["params.t_index_list[0]", "params.t_index_list[1]"],
    );
}

#[test]
fn conditioning_scale_0_to_1() {
    let mut cns = params_with(json!({}))["controlnets"].clone();
    cns[2]["conditioning_scale"] = json!(1.5);
    assert_fields(json!({"controlnets": cns}), &["params.controlnets[2].conditioning_scale"]);
}

#[test]
fn control_guidance_0_to_1_and_ordered() {
    let mut cns = params_with(json!({}))["controlnets"].clone();
    cns[0]["control_guidance_start"] = json!(-0.1);
    cns[1]["control_guidance_start"] = json!(0.8);
    cns[1]["control_guidance_end"] = json!(0.2);
    assert_fields(
        json!({"controlnets": cns}),
        &["params.controlnets[0].control_guidance_start", "params.controlnets[1].control_guidance_end"],
    );
}

#[test]
fn similar_image_filter_threshold_0_to_1() {
    assert_fields(json!({"similar_image_filter_threshold": 1.01}), &["params.similar_image_filter_threshold"]);
}

#[test]
fn similar_image_filter_max_skip_frame_not_negative() {
    assert_fields(json!({"similar_image_filter_max_skip_frame": -1}), &["params.similar_image_filter_max_skip_frame"]);
}

#[test]
fn controlnet_ids_unique() {
    let id = "thibaud/controlnet-sd21-canny-diffusers";
    assert_fields(json!({"controlnets": [controlnet(id), controlnet(id)]}), &["params.controlnets[1].model_id"]);
}

#[test]
fn controlnet_of_the_model_family() {
    assert_fields(
        json!({"controlnets": [controlnet("lllyasviel/control_v11p_sd15_canny")]}),
        &["params.controlnets[0].model_id"],
    );
    assert_fields(
        json!({"model_id": "Lykon/dreamshaper-8", "controlnets": [controlnet("lllyasviel/control_v11p_sd15_canny")]}),
        &[],
    );
}

#[test]
fn controlnet_unknown_or_missing_id() {
    assert_fields(
        json!({"controlnets": [controlnet("someone/controlnet-x"), {"conditioning_scale": 0.3}]}),
        &["params.controlnets[0].model_id", "params.controlnets[1].model_id"],
    );
}

#[test]
fn sdxl_at_most_three_enabled_controlnets() {
    let ids =
        ["xinsir/controlnet-depth-sdxl-1.0", "xinsir/controlnet-canny-sdxl-1.0", "xinsir/controlnet-tile-sdxl-1.0"];
    let mut cns: Vec<Value> = ids.iter().map(|id| controlnet(id)).collect();
    // three enabled is fine
    assert_fields(json!({"model_id": "stabilityai/sdxl-turbo", "controlnets": cns.clone()}), &[]);
    // a fourth enabled one (enabled absent counts as enabled), even unknown, is over the limit
    cns.push(json!({"model_id": "xinsir/controlnet-depth-sdxl-1.0-v2"}));
    assert_fields(
        json!({"model_id": "stabilityai/sdxl-turbo", "controlnets": cns}),
        &["params.controlnets[3].model_id", "params.controlnets"],
    );
}

#[test]
fn acceleration_enum() {
    assert_fields(json!({"acceleration": "cuda"}), &["params.acceleration"]);
}

#[test]
fn interpolation_method_enums() {
    assert_fields(
        json!({"prompt_interpolation_method": "cubic", "seed_interpolation_method": "SLERP"}),
        &["params.prompt_interpolation_method", "params.seed_interpolation_method"],
    );
}

#[test]
fn controlnet_preprocessor_enum() {
    let mut cns = params_with(json!({}))["controlnets"].clone();
    cns[4]["preprocessor"] = json!("latent_feedback");
    assert_fields(json!({"controlnets": cns}), &["params.controlnets[4].preprocessor"]);
}

#[test]
fn processor_types_per_chain() {
    assert_fields(
        json!({
            "image_preprocessing": {"processors": [{"type": "blur"}, {"type": "latent_feedback"}]},
            "image_postprocessing": {"processors": [{"enabled": true}]},
            "latent_preprocessing": {"processors": [{"type": "canny"}]},
            "latent_postprocessing": {"processors": [{"type": "latent_feedback"}]}
        }),
        &[
            "params.image_preprocessing.processors[1].type",
            "params.image_postprocessing.processors[0].type",
            "params.latent_preprocessing.processors[0].type",
        ],
    );
}

#[test]
fn ip_adapter_only_on_sdxl_and_sd15() {
    assert_fields(json!({"ip_adapter": {"type": "regular", "enabled": true}}), &["params.ip_adapter"]);
    // a disabled adapter on sd21 is harmless
    assert_fields(json!({"ip_adapter": {"type": "regular", "enabled": false}}), &[]);
    assert_fields(
        json!({"model_id": "Lykon/dreamshaper-8", "controlnets": null, "ip_adapter": {"type": "regular"}}),
        &[],
    );
}

#[test]
fn ip_adapter_faceid_only_on_sdxl() {
    assert_fields(
        json!({"model_id": "prompthero/openjourney-v4", "controlnets": null, "ip_adapter": {"type": "faceid"}}),
        &["params.ip_adapter.type"],
    );
    assert_fields(
        json!({"model_id": "stabilityai/sdxl-turbo", "controlnets": null, "ip_adapter": {"type": "faceid"}}),
        &[],
    );
    assert_fields(
        json!({"model_id": "stabilityai/sdxl-turbo", "controlnets": null, "ip_adapter": {"type": "face"}}),
        &["params.ip_adapter.type"],
    );
}

#[test]
fn style_image_url_https_or_data_uri() {
    assert_fields(
        json!({"ip_adapter_style_image_url": "http://example.com/a.png"}),
        &["params.ip_adapter_style_image_url"],
    );
    assert_fields(json!({"ip_adapter_style_image_url": "data:image/png;base64,iVBORw0KGgo="}), &[]);
}

#[test]
fn style_image_data_uri_at_most_5_mb() {
    let big = format!("data:image/jpeg;base64,{}", "QUFB".repeat(5 * 1024 * 1024 / 3 + 1));
    assert_fields(json!({"ip_adapter_style_image_url": big}), &["params.ip_adapter_style_image_url"]);
}

#[test]
fn cached_attention_ranges() {
    assert_fields(
        json!({"cached_attention": {"enabled": true, "max_frames": 5, "interval": 0}}),
        &["params.cached_attention.max_frames", "params.cached_attention.interval"],
    );
    assert_fields(
        json!({"cached_attention": {"max_frames": 4, "interval": 241}}),
        &["params.cached_attention.interval"],
    );
    assert_fields(json!({"cached_attention": {"enabled": true, "max_frames": 1, "interval": 240}}), &[]);
}

#[test]
fn cached_attention_needs_tensorrt() {
    assert_fields(
        json!({"acceleration": "xformers", "cached_attention": {"enabled": true}}),
        &["params.cached_attention"],
    );
    // absent acceleration means the default, tensorrt
    assert_fields(json!({"acceleration": null, "cached_attention": {"enabled": true}}), &[]);
    // disabled caching has no requirement
    assert_fields(json!({"acceleration": "none", "cached_attention": {"enabled": false}}), &[]);
}

#[test]
fn cached_attention_needs_512x512() {
    assert_fields(json!({"width": 768, "cached_attention": {"enabled": true}}), &["params.cached_attention"]);
}

#[test]
fn weighted_seed_must_not_be_empty() {
    assert_fields(json!({"seed": []}), &["params.seed"]);
}

#[test]
fn wrong_json_types_are_field_errors() {
    let errors = create_errors(json!({
        "width": "512", "seed": 1.5, "enable_similar_image_filter": "yes", "t_index_list": "12",
        "controlnets": [{"model_id": 7}], "cached_attention": [], "lora_dict": {"x": "heavy"}
    }));
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "params.seed",
            "params.width",
            "params.t_index_list",
            "params.controlnets[0].model_id",
            "params.enable_similar_image_filter",
            "params.cached_attention",
            "params.lora_dict.x",
        ],
        "{errors:?}"
    );
    for e in &errors {
        for rust in ["i64", "f64", "String", "invalid type", "struct", "Vec"] {
            assert!(!e.message.contains(rust), "{e}");
        }
    }
    let not_object = parse_create(&json!({"pipeline": "streamdiffusion", "params": [1, 2]})).unwrap_err();
    assert_eq!(not_object[0].field, "params");
    assert_eq!(parse_create(&json!("text")).unwrap_err()[0].field, "body");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = create_errors(json!({
        "model_id": null, "prompt": "", "width": 100, "height": 2000, "num_inference_steps": 0,
        "similar_image_filter_threshold": 2.0, "acceleration": "fast", "similar_image_filter_max_skip_frame": -3
    }));
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "params.acceleration",
            "params.height",
            "params.model_id",
            "params.num_inference_steps",
            "params.prompt",
            "params.similar_image_filter_max_skip_frame",
            "params.similar_image_filter_threshold",
            "params.width",
        ]
    );
    // the JSON form is { field, message }
    let json = serde_json::to_value(&errors[0]).unwrap();
    assert_eq!(json.as_object().unwrap().keys().collect::<Vec<_>>(), ["field", "message"]);
}

#[test]
fn updates_check_given_fields_and_cross_rules_only_when_both_given() {
    // t_index 30 alone: no steps given, the range check against steps is skipped
    assert!(parse_update(&json!({"params": {"t_index_list": [30]}})).is_ok());
    let errors = parse_update(&json!({"params": {"t_index_list": [30], "num_inference_steps": 20}})).unwrap_err();
    assert_eq!(errors[0].field, "params.t_index_list[0]");
    // model_id is not required on updates, but checked when given
    assert_eq!(parse_update(&json!({"model_id": "x/y"})).unwrap_err()[0].field, "params.model_id");
    // family rules need the model
    let sd15_cn = json!([{"model_id": "lllyasviel/control_v11p_sd15_canny"}]);
    assert!(parse_update(&json!({"controlnets": sd15_cn})).is_ok());
    let errors = parse_update(&json!({"model_id": "stabilityai/sd-turbo", "controlnets": sd15_cn})).unwrap_err();
    assert_eq!(errors[0].field, "params.controlnets[0].model_id");
    // per-field rules apply to updates too
    let errors = parse_update(&json!({"params": {"width": 100, "prompt": "", "seed": "s"}})).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["params.seed", "params.prompt", "params.width"]);
}
