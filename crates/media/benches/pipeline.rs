//! Per-frame cost of the engine's media path at 512x512 (decode + transform +
//! encode), printed as p50/p95 and sustained fps. Target: 30 fps with p95
//! under 20 ms on a 2-core machine.
//!
//! `cargo bench -p dreamgate-media`

use dreamgate_media::bench::{run, BenchConfig};
use dreamgate_media::{Passthrough, Stylizer};
use dreamgate_model::StreamParams;
use serde_json::json;

fn main() -> Result<(), dreamgate_media::MediaError> {
    // The Dream page's defaults: prompt, seed, steps, ControlNets, similar-image filter off
    // (so that every frame is transformed and encoded).
    let dream = StreamParams::from_json(&json!({
        "prompt": "androgynous cartoon magical dj blue sparkle", "seed": 42, "num_inference_steps": 25,
        "guidance_scale": 1.0, "delta": 0.7, "t_index_list": [12, 20, 24],
        "controlnets": [
            {"model_id": "thibaud/controlnet-sd21-openpose-diffusers", "preprocessor": "pose_tensorrt", "conditioning_scale": 0.75},
            {"model_id": "thibaud/controlnet-sd21-hed-diffusers", "preprocessor": "soft_edge", "conditioning_scale": 0.2},
            {"model_id": "thibaud/controlnet-sd21-canny-diffusers", "preprocessor": "canny", "conditioning_scale": 0.2},
            {"model_id": "thibaud/controlnet-sd21-depth-diffusers", "preprocessor": "depth_tensorrt", "conditioning_scale": 0.75},
            {"model_id": "thibaud/controlnet-sd21-color-diffusers", "preprocessor": "passthrough", "conditioning_scale": 0.2}
        ],
        "enable_similar_image_filter": false
    }))
    .expect("valid params");
    let runs = [
        ("stylizer", BenchConfig::square_512(dream.clone()), true),
        ("passthrough", BenchConfig::square_512(StreamParams::default()), false),
        ("stylizer, 640x480 input", BenchConfig { input: (640, 480), ..BenchConfig::square_512(dream) }, true),
    ];
    for (label, config, stylize) in runs {
        let report = if stylize {
            run(label, config, Box::new(Stylizer::new()))?
        } else {
            run(label, config, Box::new(Passthrough))?
        };
        println!("{report}\n");
    }
    Ok(())
}
