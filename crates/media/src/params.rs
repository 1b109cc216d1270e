//! Lenient reading of StreamDiffusion parameters for the stylizer.
//!
//! Only the fields the transform uses are read. A field that is present and
//! well-formed replaces the current value; a present but malformed field
//! resets that value to its default; an absent field leaves it unchanged (so
//! both full parameter objects and PATCH-style partial ones work). Nothing
//! here panics or fails.

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
    /// Canny `low_threshold` / `high_threshold` (defaults 100 / 200).
    pub thresholds: (f32, f32),
}

/// The parameters the stylizer uses, with StreamDiffusion-like defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct StyleParams {
    /// Weighted prompts (`prompt` string = one prompt with weight 1).
    pub prompts: Vec<(String, f32)>,
    /// Weighted seeds (`seed` int = one seed with weight 1).
    pub seeds: Vec<(i64, f32)>,
    /// `guidance_scale` (default 1.0): palette saturation.
    pub guidance_scale: f32,
    /// `delta` (default 0.7): lower delta = more blending with the previous output.
    pub delta: f32,
    /// `num_inference_steps` (default 25).
    pub num_inference_steps: u32,
    /// `t_index_list` (default [12, 20, 24]): the first index sets strength.
    pub t_index_list: Vec<u32>,
    /// Enabled ControlNets.
    pub controlnets: Vec<ControlNet>,
    /// `skip_diffusion`: pass frames through untouched.
    pub skip_diffusion: bool,
    /// The similar-image filter settings.
    pub filter: FilterSettings,
}

impl Default for StyleParams {
    fn default() -> Self {
        StyleParams {
            prompts: vec![(String::new(), 1.0)],
            seeds: vec![(42, 1.0)],
            guidance_scale: 1.0,
            delta: 0.7,
            num_inference_steps: 25,
            t_index_list: vec![12, 20, 24],
            controlnets: Vec::new(),
            skip_diffusion: false,
            filter: FilterSettings::default(),
        }
    }
}

fn finite(v: &Value) -> Option<f32> {
    v.as_f64().filter(|x| x.is_finite()).map(|x| x as f32)
}

/// `"text"` or `[["text", w], ...]` (also `[{"text"/"prompt": .., "weight": ..}]`).
fn weighted_list<T>(v: &Value, item: impl Fn(&Value) -> Option<T>) -> Option<Vec<(T, f32)>> {
    if let Some(x) = item(v) {
        return Some(vec![(x, 1.0)]);
    }
    let list = v.as_array()?;
    let mut out = Vec::new();
    for entry in list {
        let (value, weight) = match entry {
            Value::Array(pair) => (pair.first().and_then(&item), pair.get(1).and_then(finite)),
            Value::Object(o) => (
                o.get("text").or_else(|| o.get("prompt")).or_else(|| o.get("seed")).and_then(&item),
                o.get("weight").and_then(finite),
            ),
            other => (item(other), Some(1.0)),
        };
        if let Some(value) = value {
            out.push((value, weight.unwrap_or(1.0).max(0.0)));
        }
    }
    (!out.is_empty()).then_some(out)
}

impl StyleParams {
    /// Parses a params object starting from the defaults.
    pub fn from_json(params: &Value) -> StyleParams {
        let mut p = StyleParams::default();
        p.apply(params);
        p
    }

    /// Applies a (full or partial) params object; see the module docs. A
    /// `{ "params": {...} }` or `{ "pipeline_params": {...} }` wrapper is
    /// unwrapped; anything that is not an object is ignored.
    pub fn apply(&mut self, params: &Value) {
        let Some(mut obj) = params.as_object() else { return };
        for key in ["params", "pipeline_params"] {
            if let Some(inner) = obj.get(key).and_then(Value::as_object) {
                obj = inner;
            }
        }
        let d = StyleParams::default();
        if let Some(v) = obj.get("prompt") {
            self.prompts = weighted_list(v, |x| x.as_str().map(str::to_owned)).unwrap_or(d.prompts);
        }
        if let Some(v) = obj.get("seed") {
            self.seeds = weighted_list(v, |x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64))).unwrap_or(d.seeds);
        }
        if let Some(v) = obj.get("guidance_scale") {
            self.guidance_scale = finite(v).map_or(d.guidance_scale, |g| g.clamp(0.0, 20.0));
        }
        if let Some(v) = obj.get("delta") {
            self.delta = finite(v).map_or(d.delta, |x| x.clamp(0.0, 2.0));
        }
        if let Some(v) = obj.get("num_inference_steps") {
            self.num_inference_steps = v.as_u64().map_or(d.num_inference_steps, |n| n.clamp(1, 1000) as u32);
        }
        if let Some(v) = obj.get("t_index_list") {
            let list: Option<Vec<u32>> =
                v.as_array().map(|a| a.iter().filter_map(Value::as_u64).map(|n| n.min(1000) as u32).collect());
            self.t_index_list = list.filter(|l| !l.is_empty()).unwrap_or(d.t_index_list);
        }
        if let Some(v) = obj.get("skip_diffusion") {
            self.skip_diffusion = v.as_bool().unwrap_or(false);
        }
        if let Some(v) = obj.get("controlnets") {
            self.controlnets = v.as_array().map(|a| a.iter().filter_map(controlnet).collect()).unwrap_or_default();
        }
        let df = FilterSettings::default();
        if let Some(v) = obj.get("enable_similar_image_filter") {
            self.filter.enabled = v.as_bool().unwrap_or(df.enabled);
        }
        if let Some(v) = obj.get("similar_image_filter_threshold") {
            self.filter.threshold = v.as_f64().filter(|x| x.is_finite()).map_or(df.threshold, |x| x.clamp(0.0, 1.0));
        }
        if let Some(v) = obj.get("similar_image_filter_max_skip_frame") {
            self.filter.max_skip_frame = v.as_u64().map_or(df.max_skip_frame, |n| n.min(10_000) as u32);
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
        best.map_or(42, |(s, _)| s)
    }
}

fn controlnet(v: &Value) -> Option<ControlNet> {
    let o = v.as_object()?;
    if o.get("enabled").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let source = o
        .get("preprocessor")
        .and_then(Value::as_str)
        .filter(|s| ControlKind::classify(s) != ControlKind::Other)
        .or_else(|| o.get("model_id").and_then(Value::as_str))?;
    let kind = ControlKind::classify(source);
    let scale = o.get("conditioning_scale").and_then(finite).unwrap_or(1.0).clamp(0.0, 1.0);
    let pp = o.get("preprocessor_params");
    let low = pp.and_then(|p| p.get("low_threshold")).and_then(finite).unwrap_or(100.0).clamp(0.0, 2000.0);
    let high = pp.and_then(|p| p.get("high_threshold")).and_then(finite).unwrap_or(200.0).clamp(0.0, 2040.0);
    let high = if high <= low { low + 1.0 } else { high };
    Some(ControlNet { kind, scale, thresholds: (low, high) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_full_object() {
        let p = StyleParams::from_json(&json!({
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
    fn odd_values_fall_back_and_absent_values_persist() {
        let mut p = StyleParams::from_json(&json!({"seed": 9, "delta": 0.2}));
        p.apply(&json!({"prompt": 5, "seed": "x", "guidance_scale": "big", "t_index_list": "no",
                        "controlnets": {"a": 1}, "similar_image_filter_threshold": -4}));
        let d = StyleParams::default();
        assert_eq!(p.prompts, d.prompts);
        assert_eq!(p.main_seed(), 42);
        assert_eq!(p.guidance_scale, d.guidance_scale);
        assert_eq!(p.t_index_list, d.t_index_list);
        assert_eq!(p.delta, 0.2, "absent field keeps its value");
        assert!(p.controlnets.is_empty());
        assert_eq!(p.filter.threshold, 0.0);
        // Not an object at all: ignored.
        let before = p.clone();
        p.apply(&json!([1, 2, 3]));
        p.apply(&Value::Null);
        assert_eq!(p, before);
    }

    #[test]
    fn weighted_prompts_and_seeds_and_wrappers() {
        let p = StyleParams::from_json(&json!({"params": {
            "prompt": [["red dragon", 0.3], ["gold coins", 0.7], [3, 1.0]],
            "seed": [[1, 0.2], [99, 0.8]]
        }}));
        assert_eq!(p.prompts, vec![("red dragon".to_owned(), 0.3), ("gold coins".to_owned(), 0.7)]);
        assert_eq!(p.main_seed(), 99);
    }
}
