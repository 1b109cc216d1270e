//! The spec's default create payload (`daydream-integration.md`, "Payload format").
//!
//! No IP adapter: `ip_adapter` is left out rather than sent disabled, because the
//! default model (sd-turbo, family sd21) does not support IP adapters at all.

use serde_json::{json, Map};

use crate::catalog::DEFAULT_MODEL_ID;
use crate::params::{Acceleration, ControlNet, CreatePayload, Interpolation, StreamParams};
use crate::persona::{self, Persona, DEFAULT_BASE_PROMPT};
use crate::PIPELINE;

/// Default negative prompt.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "blurry, low quality, flat, 2d";

/// `(name, conditioning_scale, preprocessor)` of the five default sd21 ControlNets,
/// model id `thibaud/controlnet-sd21-<name>-diffusers`.
const DEFAULT_CONTROLNETS: [(&str, f64, &str); 5] = [
    ("openpose", 0.75, "pose_tensorrt"),
    ("hed", 0.2, "soft_edge"),
    ("canny", 0.2, "canny"),
    ("depth", 0.75, "depth_tensorrt"),
    ("color", 0.2, "passthrough"),
];

/// The spec's default StreamDiffusion params (sd-turbo, 512x512, five ControlNets, ...).
pub fn default_params() -> StreamParams {
    StreamParams {
        model_id: Some(DEFAULT_MODEL_ID.into()),
        prompt: Some(persona::prompt(Persona::default(), DEFAULT_BASE_PROMPT).as_str().into()),
        negative_prompt: Some(DEFAULT_NEGATIVE_PROMPT.into()),
        num_inference_steps: Some(25),
        seed: Some(crate::Seed::Single(42)),
        width: Some(512),
        height: Some(512),
        guidance_scale: Some(1.0),
        delta: Some(0.7),
        t_index_list: Some(vec![12, 20, 24]),
        controlnets: Some(
            DEFAULT_CONTROLNETS.iter().map(|&(name, scale, pre)| default_controlnet(name, scale, pre)).collect(),
        ),
        acceleration: Some(Acceleration::Tensorrt),
        use_denoising_batch: Some(true),
        do_add_noise: Some(true),
        enable_similar_image_filter: Some(true),
        similar_image_filter_threshold: Some(0.98),
        similar_image_filter_max_skip_frame: Some(10),
        prompt_interpolation_method: Some(Interpolation::Slerp),
        seed_interpolation_method: Some(Interpolation::Linear),
        normalize_prompt_weights: Some(true),
        normalize_seed_weights: Some(true),
        ..StreamParams::default()
    }
}

fn default_controlnet(name: &str, scale: f64, preprocessor: &str) -> ControlNet {
    let preprocessor_params = match name {
        "canny" => json!({ "low_threshold": 100, "high_threshold": 200 }),
        _ => json!({}),
    };
    ControlNet {
        model_id: Some(format!("thibaud/controlnet-sd21-{name}-diffusers")),
        conditioning_scale: Some(scale),
        preprocessor: Some(preprocessor.into()),
        preprocessor_params: preprocessor_params.as_object().cloned(),
        enabled: Some(true),
        control_guidance_start: Some(0.0),
        control_guidance_end: Some(1.0),
        extra: Map::new(),
    }
}

/// `{ "pipeline": "streamdiffusion", "params": default_params() }`.
pub fn default_create_payload() -> CreatePayload {
    CreatePayload { pipeline: PIPELINE.into(), params: default_params(), extra: Map::new() }
}
