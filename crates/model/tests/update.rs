//! The update planner and the dynamic/reload classification.

use dreamgate_model::{
    default_params, is_dynamic, plan_update, update_body, Prompt, Seed, StreamParams, DYNAMIC_FIELDS,
};
use serde_json::{json, Map, Value};

fn body_params(plan_body: &Value) -> &Map<String, Value> {
    assert_eq!(plan_body["pipeline"], "streamdiffusion");
    plan_body["params"].as_object().unwrap()
}

#[test]
fn classification() {
    for field in DYNAMIC_FIELDS {
        assert!(is_dynamic(field), "{field}");
    }
    for field in
        ["controlnets[].conditioning_scale", "controlnets.conditioning_scale", "controlnets[4].conditioning_scale"]
    {
        assert!(is_dynamic(field), "{field}");
    }
    for field in [
        "model_id",
        "width",
        "height",
        "negative_prompt",
        "acceleration",
        "controlnets",
        "controlnets[0].enabled",
        "controlnets[x].conditioning_scale",
        "ip_adapter",
        "cached_attention",
        "lora_dict",
        "seed_interpolation_method",
        "enable_similar_image_filter",
        "image_preprocessing",
        "future_knob",
    ] {
        assert!(!is_dynamic(field), "{field}");
    }
}

#[test]
fn no_change_sends_only_model_id() {
    let plan = plan_update(&default_params(), &default_params());
    assert_eq!(plan.body, json!({"pipeline": "streamdiffusion", "params": {"model_id": "stabilityai/sd-turbo"}}));
    assert!(!plan.reload);
    assert!(plan.changed.is_empty());
}

#[test]
fn dynamic_changes_only() {
    let current = default_params();
    let mut wanted = current.clone();
    wanted.prompt = Some(Prompt::from("male cartoon magical dj blue sparkle"));
    wanted.seed = Some(Seed::Weighted(vec![(42, 0.5), (7, 0.5)]));
    wanted.guidance_scale = Some(1.5);
    wanted.delta = Some(0.5);
    wanted.num_inference_steps = Some(30);
    wanted.t_index_list = Some(vec![10, 20]);
    let plan = plan_update(&current, &wanted);
    assert!(!plan.reload);
    assert_eq!(plan.changed, ["prompt", "num_inference_steps", "seed", "guidance_scale", "delta", "t_index_list"]);
    assert_eq!(
        plan.body,
        json!({"pipeline": "streamdiffusion", "params": {
            "model_id": "stabilityai/sd-turbo",
            "prompt": "male cartoon magical dj blue sparkle",
            "num_inference_steps": 30,
            "seed": [[42, 0.5], [7, 0.5]],
            "guidance_scale": 1.5,
            "delta": 0.5,
            "t_index_list": [10, 20]
        }})
    );
}

#[test]
fn controlnet_scales_only_is_dynamic_and_sends_the_array() {
    let current = default_params();
    let mut wanted = current.clone();
    wanted.controlnets.as_mut().unwrap()[1].conditioning_scale = Some(0.6);
    let plan = plan_update(&current, &wanted);
    assert!(!plan.reload);
    assert_eq!(plan.changed, ["controlnets"]);
    let params = body_params(&plan.body);
    assert_eq!(params.len(), 2);
    assert_eq!(params["controlnets"], serde_json::to_value(wanted.controlnets.as_ref().unwrap()).unwrap());
    assert_eq!(params["controlnets"][1]["conditioning_scale"], 0.6);
}

#[test]
fn other_controlnet_changes_reload() {
    let current = default_params();
    let mut disabled = current.clone();
    disabled.controlnets.as_mut().unwrap()[0].enabled = Some(false);
    let mut removed = current.clone();
    removed.controlnets.as_mut().unwrap().pop();
    let mut both = current.clone();
    both.controlnets.as_mut().unwrap()[2].conditioning_scale = Some(0.9);
    both.controlnets.as_mut().unwrap()[2].preprocessor_params = None;
    for wanted in [disabled, removed, both] {
        let plan = plan_update(&current, &wanted);
        assert!(plan.reload, "{:?}", plan.body);
        assert_eq!(plan.changed, ["controlnets"]);
    }
    // controlnets added where there were none
    let mut bare = current.clone();
    bare.controlnets = None;
    assert!(plan_update(&bare, &current).reload);
}

#[test]
fn reload_fields_and_mixed_changes() {
    let current = default_params();
    let mut wanted = current.clone();
    wanted.width = Some(768);
    wanted.prompt = Some(Prompt::from("female neon"));
    wanted.extra.insert("future_knob".into(), json!(1));
    let plan = plan_update(&current, &wanted);
    assert!(plan.reload);
    assert_eq!(plan.changed, ["prompt", "width", "future_knob"]);
    assert_eq!(body_params(&plan.body).keys().collect::<Vec<_>>(), ["model_id", "prompt", "width", "future_knob"]);
}

#[test]
fn model_id_is_always_present() {
    let current = default_params();
    // wanted without a model_id: the stream's model is sent
    let wanted = StreamParams { seed: Some(Seed::Single(7)), ..StreamParams::default() };
    let plan = plan_update(&current, &wanted);
    assert_eq!(body_params(&plan.body)["model_id"], "stabilityai/sd-turbo");
    assert_eq!(plan.changed, ["seed"]);
    assert!(!plan.reload);
    // neither side has one: the default model
    let plan = plan_update(&StreamParams::default(), &wanted);
    assert_eq!(body_params(&plan.body)["model_id"], "stabilityai/sd-turbo");
    // a model change is a reload and carries the new model
    let mut sdxl = current.clone();
    sdxl.model_id = Some("stabilityai/sdxl-turbo".into());
    let plan = plan_update(&current, &sdxl);
    assert!(plan.reload);
    assert_eq!(plan.changed, ["model_id"]);
    assert_eq!(body_params(&plan.body)["model_id"], "stabilityai/sdxl-turbo");
}

#[test]
fn update_body_puts_model_id_first_and_wins() {
    let mut params = Map::new();
    params.insert("prompt".into(), json!("x"));
    params.insert("model_id".into(), json!("other"));
    let body = update_body("Lykon/dreamshaper-8", params);
    assert_eq!(
        body,
        json!({"pipeline": "streamdiffusion", "params": {"model_id": "Lykon/dreamshaper-8", "prompt": "x"}})
    );
    assert_eq!(body["params"].as_object().unwrap().keys().next().unwrap(), "model_id");
}
