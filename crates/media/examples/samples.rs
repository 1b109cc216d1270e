//! Writes sample PNGs of the stylizer: the test pattern input and its output
//! for a few prompts and seeds.
//!
//! `cargo run -p dreamgate-media --example samples -- /tmp/dreamgate-samples`

use dreamgate_media::{write_png, FrameProcessor, Processed, Stylizer, TestPattern};
use dreamgate_model::StreamParams;
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "dreamgate-samples".to_owned());
    std::fs::create_dir_all(&dir)?;
    let input = TestPattern::new(512, 512).frame(40);
    write_png(&input, format!("{dir}/input.png"))?;
    // The Dream page's defaults (ControlNets as in the integration spec).
    let base = json!({
        "seed": 42, "num_inference_steps": 25, "guidance_scale": 1.0, "delta": 0.7, "t_index_list": [12, 20, 24],
        "controlnets": [
            {"model_id": "thibaud/controlnet-sd21-openpose-diffusers", "preprocessor": "pose_tensorrt", "conditioning_scale": 0.75},
            {"model_id": "thibaud/controlnet-sd21-hed-diffusers", "preprocessor": "soft_edge", "conditioning_scale": 0.2},
            {"model_id": "thibaud/controlnet-sd21-canny-diffusers", "preprocessor": "canny", "conditioning_scale": 0.2,
             "preprocessor_params": {"low_threshold": 100, "high_threshold": 200}},
            {"model_id": "thibaud/controlnet-sd21-depth-diffusers", "preprocessor": "depth_tensorrt", "conditioning_scale": 0.75},
            {"model_id": "thibaud/controlnet-sd21-color-diffusers", "preprocessor": "passthrough", "conditioning_scale": 0.2}
        ]
    });
    let variants = [
        ("blue", json!({"prompt": "androgynous cartoon magical dj blue sparkle"})),
        ("red", json!({"prompt": "a red dragon breathing fire"})),
        ("blue-seed7", json!({"prompt": "androgynous cartoon magical dj blue sparkle", "seed": 7})),
        (
            "red-edges",
            json!({"prompt": "a red dragon breathing fire", "controlnets": [
            {"model_id": "thibaud/controlnet-sd21-canny-diffusers", "preprocessor": "canny", "conditioning_scale": 1.0}]}),
        ),
    ];
    for (name, extra) in variants {
        let mut s = Stylizer::new();
        // the stream's whole params: the base with this variant's fields replaced
        let mut merged = base.clone();
        if let (Value::Object(m), Value::Object(e)) = (&mut merged, extra) {
            m.extend(e);
        }
        s.set_params(&StreamParams::from_json(&merged).map_err(|e| format!("bad params: {e:?}"))?);
        if let Processed::Frame(out) = s.process(&input) {
            let path = format!("{dir}/{name}.png");
            write_png(&out, &path)?;
            println!("{path}: palette {:?}", s.palette());
        }
    }
    Ok(())
}
