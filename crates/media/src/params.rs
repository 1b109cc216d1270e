//! The stylizer's settings, derived from typed StreamDiffusion parameters.
//!
//! Only the fields the transform uses are read. A field that is not given takes the
//! spec default from the model's table ([`dreamgate_model::defaults`]); this crate has
//! no defaults of its own. Values are clamped to what the transform can use (the
//! engine validates them before they get here, but a [`FrameProcessor`](crate::FrameProcessor)
//! must take any params without panicking).

use dreamgate_model::{defaults, ControlNet as ControlNetParams, Prompt, Seed, StreamParams};
use serde_json::Value;

use crate::similar::FilterSettings;

/// What a ControlNet steers in the stylizer, derived from its preprocessor
/// or model id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlKind {
    /// canny: edge overlay.
    Canny,
    /// hed / soft_edge / lineart: edge overlay.
    SoftEdge,
    /// depth: contrast.
    Depth,
    /// openpose / pose: contrast.
    Pose,
    /// color: keeps some of the input's own colour.
    Color,
    /// TemporalNet: more temporal blending.
    Temporal,
    /// tile and anything else: no effect.
    Other,
}

impl ControlKind {
    fn classify(text: &str) -> ControlKind {
        let t = text.to_ascii_lowercase();
        if t.contains("canny") {
            ControlKind::Canny
        } else if t.contains("hed") || t.contains("soft_edge") || t.contains("lineart") {
            ControlKind::SoftEdge
        } else if t.contains("depth") {
            ControlKind::Depth
        } else if t.contains("pose") {
            ControlKind::Pose
        } else if t.contains("temporal") {
            ControlKind::Temporal
        } else if t.contains("color") {
            ControlKind::Color
        } else {
            ControlKind::Other
        }
    }
}

/// One ControlNet as the stylizer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlNet {
    /// What it steers.
    pub kind: ControlKind,
    /// `conditioning_scale`, clamped to 0..=1 (0 when disabled).
    pub scale: f32,
    /// Canny `low_threshold` / `high_threshold` (absent: the model's defaults).
    pub thresholds: (f32, f32),
}

/// The parameters the stylizer uses (see [`StyleParams::from_params`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StyleParams {
    /// Weighted prompts (`prompt` string = one prompt with weight 1).
    pub prompts: Vec<(String, f32)>,
    /// Weighted seeds (`seed` int = one seed with weight 1).
    pub seeds: Vec<(i64, f32)>,
    /// `guidance_scale`: palette saturation.
    pub guidance_scale: f32,
    /// `delta`: lower delta = more blending with the previous output.
    pub delta: f32,
    /// `num_inference_steps`.
    pub num_inference_steps: u32,
    /// `t_index_list`: the first index sets strength.
    pub t_index_list: Vec<u32>,
    /// Enabled ControlNets.
    pub controlnets: Vec<ControlNet>,
    /// `skip_diffusion`: pass frames through untouched.
    pub skip_diffusion: bool,
    /// The similar-image filter settings.
    pub filter: FilterSettings,
}

impl Default for StyleParams {
    /// The settings of the spec's defaults (nothing given).
    fn default() -> Self {
        StyleParams::from_params(&StreamParams::default())
    }
}

fn finite(x: f64) -> Option<f32> {
    x.is_finite().then_some(x as f32)
}

/// A weighted list as the transform uses it: weights finite and >= 0.
fn weighted<T: Clone>(list: &[(T, f64)]) -> Vec<(T, f32)> {
    list.iter().map(|(v, w)| (v.clone(), finite(*w).unwrap_or(1.0).max(0.0))).collect()
}

fn prompts(prompt: Option<&Prompt>) -> Vec<(String, f32)> {
    let list = match prompt {
        Some(Prompt::Text(text)) => vec![(text.clone(), 1.0)],
        Some(Prompt::Weighted(list)) => weighted(list),
        None => Vec::new(),
    };
    if list.is_empty() {
        prompts(Some(&defaults::prompt()))
    } else {
        list
    }
}

fn seeds(seed: Option<&Seed>) -> Vec<(i64, f32)> {
    let list = match seed {
        Some(Seed::Single(s)) => vec![(*s, 1.0)],
        Some(Seed::Weighted(list)) => weighted(list),
        None => Vec::new(),
    };
    if list.is_empty() {
        vec![(defaults::SEED, 1.0)]
    } else {
        list
    }
}

impl StyleParams {
    /// The settings for a stream's params (the whole current params object: a field not
    /// given takes the model's default, not the value of an earlier call).
    pub fn from_params(p: &StreamParams) -> StyleParams {
        let t_index_list: Vec<u32> = match &p.t_index_list {
            Some(list) => list.iter().filter(|&&n| n >= 0).map(|&n| n.min(1000) as u32).collect(),
            None => Vec::new(),
        };
        let t_index_list = if t_index_list.is_empty() {
            defaults::T_INDEX_LIST.iter().map(|&n| n as u32).collect()
        } else {
            t_index_list
        };
        let controlnets = match &p.controlnets {
            Some(list) => list.iter().filter_map(controlnet).collect(),
            None => defaults::controlnets().iter().filter_map(controlnet).collect(),
        };
        let threshold = p.similar_image_filter_threshold.filter(|x| x.is_finite());
        StyleParams {
            prompts: prompts(p.prompt.as_ref()),
            seeds: seeds(p.seed.as_ref()),
            guidance_scale: p
                .guidance_scale
                .and_then(finite)
                .unwrap_or(defaults::GUIDANCE_SCALE as f32)
                .clamp(0.0, 20.0),
            delta: p.delta.and_then(finite).unwrap_or(defaults::DELTA as f32).clamp(0.0, 2.0),
            num_inference_steps: p.num_inference_steps.unwrap_or(defaults::NUM_INFERENCE_STEPS).clamp(1, 1000) as u32,
            t_index_list,
            controlnets,
            skip_diffusion: p.skip_diffusion == Some(true),
            filter: FilterSettings {
                enabled: p.enable_similar_image_filter.unwrap_or(defaults::SIMILAR_IMAGE_FILTER),
                threshold: threshold.unwrap_or(defaults::SIMILAR_IMAGE_FILTER_THRESHOLD).clamp(0.0, 1.0),
                max_skip_frame: p
                    .similar_image_filter_max_skip_frame
                    .unwrap_or(defaults::SIMILAR_IMAGE_FILTER_MAX_SKIP_FRAME)
                    .clamp(0, 10_000) as u32,
            },
        }
    }

    /// Stylisation strength in 0..=1 from how early the first denoising step
    /// starts (`t_index_list[0] / num_inference_steps`): lower index = stronger.
    pub fn strength(&self) -> f32 {
        let first = self.t_index_list.iter().copied().min().unwrap_or(0) as f32;
        let steps = self.num_inference_steps.max(1) as f32;
        let early = (1.0 - first / steps).clamp(0.0, 1.0);
        0.35 + 0.65 * early
    }

    /// Sum of enabled ControlNet scales of the given kinds.
    pub fn control(&self, kinds: &[ControlKind]) -> f32 {
        self.controlnets.iter().filter(|c| kinds.contains(&c.kind)).map(|c| c.scale).sum()
    }

    /// The seed with the largest weight (the first on ties).
    pub fn main_seed(&self) -> i64 {
        let mut best: Option<(i64, f32)> = None;
        for &(s, w) in &self.seeds {
            if best.is_none_or(|(_, bw)| w > bw) {
                best = Some((s, w));
            }
        }
        best.map_or(defaults::SEED, |(s, _)| s)
    }
}

/// The output size (`width` x `height`) a stream's params ask for; a size not given (or not
/// a `u32`) takes the model's default. Not checked for H.264 (see
/// [`Pipeline::new`](crate::Pipeline::new)).
pub fn output_size(p: &StreamParams) -> (u32, u32) {
    let default = defaults::SIZE as u32;
    let dim = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    (dim(p.width), dim(p.height))
}

fn controlnet(c: &ControlNetParams) -> Option<ControlNet> {
    if !c.is_enabled() {
        return None;
    }
    let source = c
        .preprocessor
        .as_deref()
        .filter(|s| ControlKind::classify(s) != ControlKind::Other)
        .or(c.model_id.as_deref())?;
    let kind = ControlKind::classify(source);
    let scale = c.conditioning_scale.and_then(finite).unwrap_or(defaults::CONDITIONING_SCALE as f32).clamp(0.0, 1.0);
    let threshold = |key: &str, default: i64| {
        let given = c.preprocessor_params.as_ref().and_then(|pp| pp.get(key)).and_then(Value::as_f64);
        given.and_then(finite).unwrap_or(default as f32)
    };
    let (low_default, high_default) = defaults::CANNY_THRESHOLDS;
    let low = threshold("low_threshold", low_default).clamp(0.0, 2000.0);
    let high = threshold("high_threshold", high_default).clamp(0.0, 2040.0);
    let high = if high <= low { low + 1.0 } else { high };
    Some(ControlNet { kind, scale, thresholds: (low, high) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn style(v: serde_json::Value) -> StyleParams {
        StyleParams::from_params(&StreamParams::from_json(&v).unwrap())
    }

    #[test]
    fn full_object() {
        let p = style(json!({
            "model_id": "stabilityai/sd-turbo",
            "prompt": "blue sparkle", "seed": 7, "guidance_scale": 1.5, "delta": 0.5,
            "num_inference_steps": 50, "t_index_list": [10, 30],
            "controlnets": [
                {"model_id": "thibaud/controlnet-sd21-canny-diffusers", "preprocessor": "canny", "conditioning_scale": 0.4,
                 "preprocessor_params": {"low_threshold": 50, "high_threshold": 150}, "enabled": true},
                {"model_id": "thibaud/controlnet-sd21-depth-diffusers", "preprocessor": "depth_tensorrt", "conditioning_scale": 0.75},
                {"model_id": "thibaud/controlnet-sd21-hed-diffusers", "preprocessor": "soft_edge", "conditioning_scale": 0.2, "enabled": false}
            ],
            "enable_similar_image_filter": true, "similar_image_filter_threshold": 0.9, "similar_image_filter_max_skip_frame": 3
        }));
        assert_eq!(p.prompts, vec![("blue sparkle".to_owned(), 1.0)]);
        assert_eq!((p.main_seed(), p.guidance_scale, p.delta, p.num_inference_steps), (7, 1.5, 0.5, 50));
        assert_eq!(p.controlnets.len(), 2);
        assert_eq!(p.controlnets[0].kind, ControlKind::Canny);
        assert_eq!(p.controlnets[0].thresholds, (50.0, 150.0));
        assert_eq!(p.controlnets[1].kind, ControlKind::Depth);
        assert!((p.control(&[ControlKind::Canny, ControlKind::SoftEdge]) - 0.4).abs() < 1e-6);
        assert!(p.filter.enabled && p.filter.threshold == 0.9 && p.filter.max_skip_frame == 3);
        assert!((p.strength() - (0.35 + 0.65 * 0.8)).abs() < 1e-6);
    }

    #[test]
    fn absent_fields_take_the_models_defaults() {
        let p = StyleParams::from_params(&StreamParams::default());
        assert_eq!(p, StyleParams::from_params(&dreamgate_model::default_params()));
        let Prompt::Text(text) = defaults::prompt() else { panic!("the default prompt is one text") };
        assert_eq!(p.prompts, vec![(text, 1.0)]);
        assert_eq!(p.main_seed(), defaults::SEED);
        assert_eq!(p.controlnets.len(), 5);
        assert!(p.filter.enabled && !p.skip_diffusion);
        assert_eq!(output_size(&StreamParams::default()), (512, 512));
        // A ControlNet without a scale applies fully; canny without thresholds uses the model's.
        let p = style(json!({"controlnets": [{"model_id": "thibaud/controlnet-sd21-canny-diffusers"}]}));
        assert_eq!((p.controlnets[0].scale, p.controlnets[0].thresholds), (1.0, (100.0, 200.0)));
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut raw = StreamParams::from_json(&json!({
            "seed": [], "prompt": [], "t_index_list": [-1, 9999], "num_inference_steps": 0,
            "guidance_scale": -1e9, "delta": 1e9, "similar_image_filter_max_skip_frame": -1,
            "similar_image_filter_threshold": -4, "width": -5
        }))
        .unwrap();
        raw.controlnets = Some(vec![ControlNetParams { conditioning_scale: Some(f64::NAN), ..Default::default() }]);
        let p = StyleParams::from_params(&raw);
        assert_eq!(p.main_seed(), defaults::SEED);
        assert_eq!(p.prompts, StyleParams::default().prompts);
        assert_eq!((p.t_index_list.as_slice(), p.num_inference_steps), (&[1000][..], 1));
        assert_eq!((p.guidance_scale, p.delta), (0.0, 2.0));
        assert_eq!((p.filter.max_skip_frame, p.filter.threshold), (0, 0.0));
        assert!(p.controlnets.is_empty(), "a ControlNet naming nothing steers nothing");
        assert_eq!(output_size(&raw), (512, 512));
    }

    #[test]
    fn weighted_prompts_and_seeds() {
        let p = style(json!({
            "prompt": [["red dragon", 0.3], ["gold coins", 0.7]],
            "seed": [[1, 0.2], [99, 0.8]]
        }));
        assert_eq!(p.prompts, vec![("red dragon".to_owned(), 0.3), ("gold coins".to_owned(), 0.7)]);
        assert_eq!(p.main_seed(), 99);
    }
}
