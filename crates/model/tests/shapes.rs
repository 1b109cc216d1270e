//! Accepted input shapes, normalisation and unknown-field pass-through.

use dreamgate_model::{parse_create, parse_update, CreatePayload, StreamParams};
use serde_json::{json, Value};

#[test]
fn create_with_pipeline_and_params() {
    let body =
        json!({"pipeline": "streamdiffusion", "params": {"model_id": "stabilityai/sd-turbo", "prompt": "a fox"}});
    let p = parse_create(&body).unwrap();
    assert_eq!(serde_json::to_value(&p).unwrap(), body);
}

#[test]
fn create_with_legacy_pipeline_id_fills_model_id() {
    for (id, model) in [
        ("pip_SD-turbo", "stabilityai/sd-turbo"),
        ("pip_SDXL-turbo", "stabilityai/sdxl-turbo"),
        ("pip_SD15", "Lykon/dreamshaper-8"),
        ("pip_SDXL-turbo-faceid", "stabilityai/sdxl-turbo"),
    ] {
        let p = parse_create(&json!({"pipeline_id": id, "pipeline_params": {"prompt": "a fox"}})).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"pipeline": "streamdiffusion", "params": {"prompt": "a fox", "model_id": model}}),
            "{id}"
        );
    }
}

#[test]
fn legacy_pipeline_id_does_not_override_a_given_model_id() {
    let p =
        parse_create(&json!({"pipeline_id": "pip_SDXL-turbo", "pipeline_params": {"model_id": "Lykon/dreamshaper-8"}}))
            .unwrap();
    assert_eq!(p.params.model_id.as_deref(), Some("Lykon/dreamshaper-8"));
}

#[test]
fn unknown_pipeline_or_pipeline_id_is_a_field_error() {
    let errors =
        parse_create(&json!({"pipeline": "comfyui", "params": {"model_id": "stabilityai/sd-turbo"}})).unwrap_err();
    assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["pipeline"]);
    let errors = parse_create(&json!({"pipeline_id": "pip_XL", "pipeline_params": {}})).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["pipeline_id", "params.model_id"]);
    let errors = parse_update(&json!({"pipeline": 3, "params": {"seed": 1}})).unwrap_err();
    assert_eq!(errors[0].field, "pipeline");
}

#[test]
fn create_needs_params() {
    let errors = parse_create(&json!({"pipeline": "streamdiffusion"})).unwrap_err();
    assert_eq!(errors[0].field, "params");
    let errors =
        parse_create(&json!({"params": {"model_id": "stabilityai/sd-turbo"}, "pipeline_params": {}})).unwrap_err();
    assert_eq!(errors[0].field, "pipeline_params");
}

#[test]
fn create_keeps_other_top_level_keys() {
    let body = json!({"pipeline": "streamdiffusion", "params": {"model_id": "stabilityai/sd-turbo"},
                      "name": "dream", "output_rtmp_url": "rtmp://example/live"});
    let p = parse_create(&body).unwrap();
    assert_eq!(p.extra["name"], "dream");
    assert_eq!(serde_json::to_value(&p).unwrap(), body);
}

#[test]
fn update_shapes_all_normalise_to_the_same_params() {
    let expected = json!({"prompt": "a fox", "seed": 7});
    for body in [
        json!({"pipeline": "streamdiffusion", "params": {"prompt": "a fox", "seed": 7}}),
        json!({"params": {"prompt": "a fox", "seed": 7}}),
        json!({"pipeline_params": {"prompt": "a fox", "seed": 7}}),
        json!({"prompt": "a fox", "seed": 7}),
        json!({"pipeline": "streamdiffusion", "prompt": "a fox", "seed": 7}),
    ] {
        assert_eq!(Value::Object(parse_update(&body).unwrap()), expected, "{body}");
    }
    let legacy = parse_update(&json!({"pipeline_id": "pip_SD15", "pipeline_params": {"seed": 7}})).unwrap();
    assert_eq!(Value::Object(legacy), json!({"seed": 7, "model_id": "Lykon/dreamshaper-8"}));
}

#[test]
fn update_rejects_empty_and_non_object_params() {
    assert_eq!(parse_update(&json!({"params": {}})).unwrap_err()[0].field, "params");
    assert_eq!(parse_update(&json!({})).unwrap_err()[0].field, "params");
    assert_eq!(parse_update(&json!({"params": "prompt"})).unwrap_err()[0].field, "params");
    assert_eq!(parse_update(&json!([1])).unwrap_err()[0].field, "body");
}

fn with_unknowns() -> Value {
    json!({
        "pipeline": "streamdiffusion",
        "params": {
            "model_id": "stabilityai/sd-turbo",
            "prompt": "a fox",
            "future_top_level": {"deep": [1, 2, {"x": null}]},
            "controlnets": [{
                "model_id": "thibaud/controlnet-sd21-canny-diffusers",
                "conditioning_scale": 0.5,
                "future_controlnet_knob": "on"
            }],
            "image_postprocessing": {"enabled": true, "future_chain_knob": 1,
                "processors": [{"type": "sharpen", "params": {"amount": 2}, "future_proc_knob": false}]},
            "ip_adapter": {"enabled": false, "future_ip_knob": 3},
            "cached_attention": {"enabled": false, "future_ca_knob": "z"},
            "lora_dict": null
        }
    })
}

#[test]
fn unknown_fields_round_trip_untouched() {
    let body = with_unknowns();
    let p: CreatePayload = parse_create(&body).unwrap();
    assert_eq!(p.params.extra["future_top_level"], body["params"]["future_top_level"]);
    let cns = p.params.controlnets.as_ref().unwrap();
    assert_eq!(cns[0].extra["future_controlnet_knob"], "on");
    assert_eq!(serde_json::to_value(&p).unwrap(), body);

    // plain serde goes through the same decoder
    let typed: StreamParams = serde_json::from_value(body["params"].clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), body["params"]);

    // updates keep them too
    let update = parse_update(&body).unwrap();
    assert_eq!(Value::Object(update), body["params"]);
}

#[test]
fn create_payload_serde_round_trip() {
    // Plain serde (for trusted, already-normalised JSON): same shape, extras kept.
    let body = with_unknowns();
    let mut with_name = body.clone();
    with_name["name"] = json!("dream");
    let typed: CreatePayload = serde_json::from_value(with_name.clone()).unwrap();
    assert_eq!(typed.extra["name"], "dream");
    assert_eq!(serde_json::to_value(&typed).unwrap(), with_name);
    let err = serde_json::from_value::<CreatePayload>(json!({"pipeline": "streamdiffusion", "params": {"width": "w"}}))
        .unwrap_err();
    assert!(err.to_string().contains("width: must be an integer"), "{err}");
}
