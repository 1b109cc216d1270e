//! Daydream's documented response shapes, written from its published API description
//! (the OpenAPI the official `@daydreamlive/sdk` is generated from, and Dreamgate's
//! `spec/daydream-api.md`; summary in `docs/daydream-shapes.md`).
//!
//! Where the published schema and the SDK's parsing differ, these follow the stricter of the
//! two: StreamDiffusion params are closed objects at every level (published schema); every
//! key the SDK's response schemas list must be present, the ones marked optional there with
//! `null` allowed (the SDK as npm installs it today, 0.1.1 on zod 4, fails a call when one of
//! those keys is absent: `output_stream_url`, `details`, `requestId`, `traceId`). Stream and
//! status objects are open (new fields are not drift worth failing on).

use serde_json::json;

use crate::shape::{array, closed, nullable, open, opt, req, Field, Shape};

/// The one pipeline.
pub const PIPELINE: &str = "streamdiffusion";

/// The model ids and their family.
pub const MODELS: [(&str, Family); 4] = [
    ("stabilityai/sd-turbo", Family::Sd21),
    ("stabilityai/sdxl-turbo", Family::Sdxl),
    ("Lykon/dreamshaper-8", Family::Sd15),
    ("prompthero/openjourney-v4", Family::Sd15),
];

/// A model family: which ControlNets and which extra params it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Sd21,
    Sdxl,
    Sd15,
}

/// Image pre/post-processor types (also the ControlNet preprocessors).
pub const IMAGE_PROCESSORS: &[&str] = &[
    "blur",
    "canny",
    "depth",
    "depth_tensorrt",
    "external",
    "feedback",
    "hed",
    "lineart",
    "mediapipe_pose",
    "mediapipe_segmentation",
    "openpose",
    "passthrough",
    "pose_tensorrt",
    "realesrgan_trt",
    "sharpen",
    "soft_edge",
    "standard_lineart",
    "temporal_net_tensorrt",
    "upscale",
];

/// Latent pre/post-processor types.
pub const LATENT_PROCESSORS: &[&str] = &["latent_feedback"];

const INTERPOLATION: &[&str] = &["linear", "slerp"];
const ACCELERATION: &[&str] = &["none", "xformers", "tensorrt"];
const IP_ADAPTER_TYPES: &[&str] = &["regular", "faceid"];
const WEIGHT_TYPES: &[&str] = &[
    "linear",
    "ease in",
    "ease out",
    "ease in-out",
    "reverse in-out",
    "weak input",
    "weak output",
    "weak middle",
    "strong middle",
    "style transfer",
    "composition",
    "strong style transfer",
    "style and composition",
    "style transfer precise",
    "composition precise",
];

/// Status states.
pub const STATES: &[&str] = &["LOADING", "ONLINE", "OFFLINE", "DEGRADED_INPUT", "DEGRADED_INFERENCE", "ERROR"];

fn controlnet_ids(family: Family) -> &'static [&'static str] {
    match family {
        Family::Sd21 => &[
            "thibaud/controlnet-sd21-openpose-diffusers",
            "thibaud/controlnet-sd21-hed-diffusers",
            "thibaud/controlnet-sd21-canny-diffusers",
            "thibaud/controlnet-sd21-depth-diffusers",
            "thibaud/controlnet-sd21-color-diffusers",
            "daydreamlive/TemporalNet2-stable-diffusion-2-1",
        ],
        Family::Sd15 => &[
            "lllyasviel/control_v11f1p_sd15_depth",
            "lllyasviel/control_v11f1e_sd15_tile",
            "lllyasviel/control_v11p_sd15_canny",
            "daydreamlive/TemporalNet2-stable-diffusion-v1-5",
        ],
        Family::Sdxl => {
            &["xinsir/controlnet-depth-sdxl-1.0", "xinsir/controlnet-canny-sdxl-1.0", "xinsir/controlnet-tile-sdxl-1.0"]
        }
    }
}

/// `{enabled?, processors: [{type, enabled?, params?}]}`, closed at both levels.
fn processing(types: &'static [&'static str]) -> Shape {
    closed([
        opt("enabled", Shape::Bool),
        req(
            "processors",
            array(closed([
                req("type", Shape::Enum(types)),
                opt("enabled", Shape::Bool),
                opt("params", Shape::Map(Box::new(Shape::Any))),
            ])),
        ),
    ])
}

/// `[[item, number], ...]` (weighted prompts and seeds).
fn weighted(item: Shape) -> Shape {
    array(Shape::Tuple(vec![item, Shape::Number]))
}

/// The params of one family (closed).
pub fn params(model_id: &'static str, family: Family) -> Shape {
    let mut fields: Vec<Field> = vec![
        req("model_id", Shape::Literal(json!(model_id))),
        opt("prompt", Shape::OneOf(vec![Shape::String, weighted(Shape::String)])),
        opt("prompt_interpolation_method", Shape::Enum(INTERPOLATION)),
        opt("normalize_prompt_weights", Shape::Bool),
        opt("normalize_seed_weights", Shape::Bool),
        opt("negative_prompt", Shape::String),
        opt("guidance_scale", Shape::Number),
        opt("delta", Shape::Number),
        opt("num_inference_steps", Shape::Integer),
        opt("t_index_list", array(Shape::Integer)),
        opt("use_safety_checker", Shape::Bool),
        opt("width", Shape::Integer),
        opt("height", Shape::Integer),
        opt("lora_dict", nullable(Shape::Map(Box::new(Shape::Number)))),
        opt("use_lcm_lora", Shape::Bool),
        opt("lcm_lora_id", Shape::String),
        opt("acceleration", Shape::Enum(ACCELERATION)),
        opt("use_denoising_batch", Shape::Bool),
        opt("do_add_noise", Shape::Bool),
        opt("seed", Shape::OneOf(vec![Shape::Integer, weighted(Shape::Integer)])),
        opt("seed_interpolation_method", Shape::Enum(INTERPOLATION)),
        opt("enable_similar_image_filter", Shape::Bool),
        opt("similar_image_filter_threshold", Shape::Number),
        opt("similar_image_filter_max_skip_frame", Shape::Integer),
        opt("skip_diffusion", Shape::Bool),
        opt("image_preprocessing", processing(IMAGE_PROCESSORS)),
        opt("image_postprocessing", processing(IMAGE_PROCESSORS)),
        opt("latent_preprocessing", processing(LATENT_PROCESSORS)),
        opt("latent_postprocessing", processing(LATENT_PROCESSORS)),
        opt(
            "controlnets",
            array(closed([
                req("model_id", Shape::Enum(controlnet_ids(family))),
                req("conditioning_scale", Shape::Number),
                req("preprocessor", Shape::Enum(IMAGE_PROCESSORS)),
                req("enabled", Shape::Bool),
                opt("preprocessor_params", Shape::Map(Box::new(Shape::Any))),
                opt("control_guidance_start", Shape::Number),
                opt("control_guidance_end", Shape::Number),
            ])),
        ),
    ];
    if family != Family::Sd21 {
        fields.extend([
            opt(
                "ip_adapter",
                closed([
                    opt("type", Shape::Enum(IP_ADAPTER_TYPES)),
                    opt("enabled", Shape::Bool),
                    opt("scale", Shape::Number),
                    opt("weight_type", Shape::Enum(WEIGHT_TYPES)),
                ]),
            ),
            opt("ip_adapter_style_image_url", Shape::String),
            opt(
                "cached_attention",
                closed([
                    req("enabled", Shape::Bool),
                    req("max_frames", Shape::Integer),
                    req("interval", Shape::Integer),
                ]),
            ),
        ]);
    }
    closed(fields)
}

/// Params told apart by `model_id`.
pub fn any_params() -> Shape {
    Shape::Tagged { tag: "model_id", variants: MODELS.iter().map(|&(id, family)| (id, params(id, family))).collect() }
}

/// The stream object (create, get, update, list items).
pub fn stream() -> Shape {
    open([
        req("id", Shape::String),
        req("stream_key", Shape::String),
        req("whip_url", Shape::String),
        req("output_playback_id", Shape::String),
        req("created_at", Shape::String),
        req("pipeline", Shape::Literal(json!(PIPELINE))),
        req("params", any_params()),
        req("name", Shape::String),
        req("author", Shape::String),
        req("from_playground", Shape::Bool),
        req("gateway_host", Shape::String),
        req("is_smoke_test", Shape::Bool),
        req("output_stream_url", nullable(Shape::String)),
    ])
}

/// `GET /v1/streams`: `{success: true, data: [stream, ...]}`.
pub fn stream_list() -> Shape {
    open([req("success", Shape::Literal(json!(true))), req("data", array(stream()))])
}

/// `DELETE /v1/streams?id=`: `{success: true, data: {}}`.
pub fn deleted() -> Shape {
    open([req("success", Shape::Literal(json!(true))), req("data", closed([]))])
}

/// Every 4xx/5xx of the `/v1/streams` API.
pub fn error_body() -> Shape {
    open([
        req("success", Shape::Literal(json!(false))),
        req("error", Shape::String),
        req("code", Shape::String),
        req("status", Shape::Integer),
        req("details", Shape::Any),
        req("requestId", nullable(Shape::String)),
        req("traceId", nullable(Shape::String)),
    ])
}

fn time() -> Shape {
    nullable(Shape::Number)
}

/// Fields both status shapes may carry in `inference_status`.
fn inference_common() -> Vec<Field> {
    vec![
        opt("last_output_time", time()),
        opt("last_input_time", time()),
        opt("last_params_update_time", time()),
        opt("last_params", nullable(Shape::Map(Box::new(Shape::Any)))),
        opt("last_params_hash", nullable(Shape::String)),
        opt("last_error_time", time()),
        opt("last_error", nullable(Shape::String)),
        opt("last_restart_time", time()),
        opt("restart_count", Shape::Integer),
    ]
}

/// Top-level status fields both shapes may carry.
fn status_common() -> Vec<Field> {
    vec![
        opt("type", Shape::Literal(json!("status"))),
        opt("stream_id", Shape::String),
        opt("pipeline", Shape::String),
        opt("start_time", Shape::Number),
        opt("timestamp", Shape::Number),
        opt("gateway_status", open([opt("whep_url", Shape::String)])),
    ]
}

/// The status `data`, in either documented shape: the runner's (`state`, `input_status.fps`,
/// `inference_status.fps`) or the public reference's (`inference_status.input_fps` /
/// `output_fps`, no `state`).
pub fn status_data() -> Shape {
    let mut runner_inference = inference_common();
    runner_inference.push(req("fps", Shape::Number));
    let mut runner = status_common();
    runner.extend([
        req("state", Shape::Enum(STATES)),
        req("input_status", open([req("fps", Shape::Number), opt("last_input_time", time())])),
        req("inference_status", open(runner_inference)),
    ]);
    let mut public_inference = inference_common();
    public_inference.extend([req("input_fps", Shape::Number), req("output_fps", Shape::Number)]);
    let mut public = status_common();
    public.push(req("inference_status", open(public_inference)));
    Shape::OneOf(vec![open(runner), open(public)])
}

/// `GET /v1/streams/{id}/status`: `{success: true, error?: null, data}`.
pub fn status() -> Shape {
    open([req("success", Shape::Literal(json!(true))), opt("error", Shape::Null), req("data", status_data())])
}
