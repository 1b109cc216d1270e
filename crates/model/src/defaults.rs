//! The spec's defaults (`daydream-integration.md`, "Payload format"): the project's one
//! table of parameter defaults.
//!
//! [`default_params`] is the default create payload's params. The constants are the same
//! values, typed, for code that reads a [`StreamParams`] and needs the value of a field that
//! was not given (the validator's cross-field rules, the media transform, the output size):
//! `p.delta.unwrap_or(defaults::DELTA)`.
//!
//! No IP adapter: `ip_adapter` is left out rather than sent disabled, because the
//! default model (sd-turbo, family sd21) does not support IP adapters at all.

use serde_json::{json, Map};

use crate::catalog::DEFAULT_MODEL_ID;
use crate::params::{Acceleration, ControlNet, CreatePayload, Interpolation, Prompt, Seed, StreamParams};
use crate::persona::{self, Persona, DEFAULT_BASE_PROMPT};
use crate::PIPELINE;

/// Default negative prompt.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "blurry, low quality, flat, 2d";
/// Output width and height (1:1).
pub const SIZE: i64 = 512;
/// `seed`.
pub const SEED: i64 = 42;
/// `num_inference_steps`.
pub const NUM_INFERENCE_STEPS: i64 = 25;
/// `guidance_scale`.
pub const GUIDANCE_SCALE: f64 = 1.0;
/// `delta`.
pub const DELTA: f64 = 0.7;
/// `t_index_list`.
pub const T_INDEX_LIST: [i64; 3] = [12, 20, 24];
/// `enable_similar_image_filter`.
pub const SIMILAR_IMAGE_FILTER: bool = true;
/// `similar_image_filter_threshold`.
pub const SIMILAR_IMAGE_FILTER_THRESHOLD: f64 = 0.98;
/// `similar_image_filter_max_skip_frame`.
pub const SIMILAR_IMAGE_FILTER_MAX_SKIP_FRAME: i64 = 10;
/// Canny ControlNet `preprocessor_params`: `(low_threshold, high_threshold)`.
pub const CANNY_THRESHOLDS: (i64, i64) = (100, 200);
/// `conditioning_scale` of a ControlNet that gives none: full strength.
pub const CONDITIONING_SCALE: f64 = 1.0;

/// `(name, conditioning_scale, preprocessor)` of the five default sd21 ControlNets,
/// model id `thibaud/controlnet-sd21-<name>-diffusers`.
const DEFAULT_CONTROLNETS: [(&str, f64, &str); 5] = [
    ("openpose", 0.75, "pose_tensorrt"),
    ("hed", 0.2, "soft_edge"),
    ("canny", 0.2, "canny"),
    ("depth", 0.75, "depth_tensorrt"),
    ("color", 0.2, "passthrough"),
];

/// The default prompt: the default persona over the default base prompt.
pub fn prompt() -> Prompt {
    persona::prompt(Persona::default(), DEFAULT_BASE_PROMPT).as_str().into()
}

/// The five default sd21 ControlNets.
pub fn controlnets() -> Vec<ControlNet> {
    DEFAULT_CONTROLNETS.iter().map(|&(name, scale, pre)| default_controlnet(name, scale, pre)).collect()
}

/// The spec's default StreamDiffusion params (sd-turbo, 512x512, five ControlNets, ...).
pub fn default_params() -> StreamParams {
    StreamParams {
        model_id: Some(DEFAULT_MODEL_ID.into()),
        prompt: Some(prompt()),
        negative_prompt: Some(DEFAULT_NEGATIVE_PROMPT.into()),
        num_inference_steps: Some(NUM_INFERENCE_STEPS),
        seed: Some(Seed::Single(SEED)),
        width: Some(SIZE),
        height: Some(SIZE),
        guidance_scale: Some(GUIDANCE_SCALE),
        delta: Some(DELTA),
        t_index_list: Some(T_INDEX_LIST.to_vec()),
        controlnets: Some(controlnets()),
        acceleration: Some(Acceleration::Tensorrt),
        use_denoising_batch: Some(true),
        do_add_noise: Some(true),
        enable_similar_image_filter: Some(SIMILAR_IMAGE_FILTER),
        similar_image_filter_threshold: Some(SIMILAR_IMAGE_FILTER_THRESHOLD),
        similar_image_filter_max_skip_frame: Some(SIMILAR_IMAGE_FILTER_MAX_SKIP_FRAME),
        prompt_interpolation_method: Some(Interpolation::Slerp),
        seed_interpolation_method: Some(Interpolation::Linear),
        normalize_prompt_weights: Some(true),
        normalize_seed_weights: Some(true),
        ..StreamParams::default()
    }
}

fn default_controlnet(name: &str, scale: f64, preprocessor: &str) -> ControlNet {
    let preprocessor_params = match name {
        "canny" => json!({ "low_threshold": CANNY_THRESHOLDS.0, "high_threshold": CANNY_THRESHOLDS.1 }),
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
