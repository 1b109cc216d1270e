//! Typed StreamDiffusion parameters (the public schema in `daydream-api.md`).
//!
//! Every field is an `Option`: `None` means "not given" and is left out when
//! serialising (no `null`s), so the same types describe a full create payload and
//! a partial update. Fields this version does not know are kept in `extra` (at the
//! top level and inside every nested object) and written back untouched.
//!
//! Deserialising never panics and never leaks Rust type names: wrong JSON types
//! become [`FieldError`]s such as `params.width: must be an integer`
//! (see [`StreamParams::from_json`]). Integers are `i64` so that out-of-range
//! values (a negative width, say) reach validation and get a precise message.
//!
//! Layout: `decode.rs` (the [`Decode`](decode::Decode) trait and the declaring macros),
//! `values.rs` (enums, prompt, seed, LoRA weights), `nested.rs` (ControlNets, processor
//! chains, IP adapter, cached attention), and here the top-level [`StreamParams`] and
//! [`CreatePayload`].

use serde::de::{Deserialize, Deserializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{self, Family};
use crate::error::FieldError;

mod decode;
mod nested;
mod values;

use decode::{deserialize_via_decode, join, schema_object, type_error, Decode};
pub use nested::{CachedAttention, ControlNet, IpAdapter, Processing, Processor};
pub use values::{Acceleration, Interpolation, IpAdapterType, LoraDict, Prompt, Seed};

schema_object! {
    /// StreamDiffusion parameters: the `params` object of a create or update body.
    ///
    /// `StreamParams::default()` is EMPTY (nothing given); the spec's defaults are
    /// [`crate::default_params`].
    ///
    /// ```
    /// use dreamgate_model::{StreamParams, Prompt};
    /// let p = StreamParams::from_json(&serde_json::json!({
    ///     "model_id": "stabilityai/sd-turbo", "prompt": [["a cat", 1.0]], "future_knob": 3
    /// })).unwrap();
    /// assert!(matches!(p.prompt, Some(Prompt::Weighted(_))));
    /// assert_eq!(p.extra["future_knob"], 3);
    /// ```
    pub struct StreamParams {
        /// Model id (see [`crate::catalog::MODELS`]); required on create, always sent on update.
        "model_id" => model_id: String,
        /// Prompt text or weighted prompt list (hot-updatable).
        "prompt" => prompt: Prompt,
        /// What the image should not show.
        "negative_prompt" => negative_prompt: String,
        /// Denoising steps, 1-100 (hot-updatable).
        "num_inference_steps" => num_inference_steps: i64,
        /// Seed or weighted seed list (hot-updatable).
        "seed" => seed: Seed,
        /// Output width, 384-1024, multiple of 64.
        "width" => width: i64,
        /// Output height, 384-1024, multiple of 64.
        "height" => height: i64,
        /// Classifier-free guidance scale (hot-updatable).
        "guidance_scale" => guidance_scale: f64,
        /// Residual noise delta (hot-updatable).
        "delta" => delta: f64,
        /// Denoising step indices, 1-4 non-decreasing values in [0, num_inference_steps] (hot-updatable).
        "t_index_list" => t_index_list: Vec<i64>,
        /// ControlNets (`conditioning_scale` hot-updatable, anything else reloads).
        "controlnets" => controlnets: Vec<ControlNet>,
        /// Acceleration backend.
        "acceleration" => acceleration: Acceleration,
        /// Batch denoising.
        "use_denoising_batch" => use_denoising_batch: bool,
        /// Add noise to the input.
        "do_add_noise" => do_add_noise: bool,
        /// Skip frames too similar to the previous one.
        "enable_similar_image_filter" => enable_similar_image_filter: bool,
        /// Similarity above which a frame is skipped, 0-1.
        "similar_image_filter_threshold" => similar_image_filter_threshold: f64,
        /// Most frames skipped in a row, >= 0.
        "similar_image_filter_max_skip_frame" => similar_image_filter_max_skip_frame: i64,
        /// How weighted prompts are blended.
        "prompt_interpolation_method" => prompt_interpolation_method: Interpolation,
        /// How weighted seeds are blended.
        "seed_interpolation_method" => seed_interpolation_method: Interpolation,
        /// Normalise weighted prompt weights to sum to 1.
        "normalize_prompt_weights" => normalize_prompt_weights: bool,
        /// Normalise weighted seed weights to sum to 1.
        "normalize_seed_weights" => normalize_seed_weights: bool,
        /// LoRA weights by path, or null.
        "lora_dict" => lora_dict: LoraDict,
        /// Use the LCM LoRA.
        "use_lcm_lora" => use_lcm_lora: bool,
        /// Which LCM LoRA.
        "lcm_lora_id" => lcm_lora_id: String,
        /// Run the safety checker.
        "use_safety_checker" => use_safety_checker: bool,
        /// Pass frames through without diffusion.
        "skip_diffusion" => skip_diffusion: bool,
        /// Image processors before diffusion.
        "image_preprocessing" => image_preprocessing: Processing,
        /// Image processors after diffusion.
        "image_postprocessing" => image_postprocessing: Processing,
        /// Latent processors before diffusion.
        "latent_preprocessing" => latent_preprocessing: Processing,
        /// Latent processors after diffusion.
        "latent_postprocessing" => latent_postprocessing: Processing,
        /// IP adapter (sd15/sdxl only).
        "ip_adapter" => ip_adapter: IpAdapter,
        /// Style image for the IP adapter: https URL or base64 data URI (<= 5 MB).
        "ip_adapter_style_image_url" => ip_adapter_style_image_url: String,
        /// Attention caching (TensorRT, 512x512).
        "cached_attention" => cached_attention: CachedAttention,
    }
}

impl StreamParams {
    /// Decodes a params object, reporting every wrong type as a [`FieldError`]
    /// under `params.` (no range checks: see [`crate::validate_params`]).
    pub fn from_json(value: &Value) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        match Self::decode_at(value, "params", &mut errors) {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(errors),
        }
    }

    /// Decodes at `path`, pushing type errors; fields with errors are left `None`.
    pub(crate) fn decode_at(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        <Self as Decode>::decode(value, path, errors)
    }

    /// The family of `model_id`, when it is a known model.
    pub fn family(&self) -> Option<Family> {
        self.model_id.as_deref().and_then(catalog::model_family)
    }

    /// Every field outside Daydream's published (closed) schema, as
    /// [`FieldError`]s naming its path: keys this version does not know at any level
    /// (`params.foo`, `params.image_preprocessing.processors[0].foo`, `params.controlnets[1].foo`,
    /// `params.ip_adapter.foo`, `params.cached_attention.foo`), and the fields the model's
    /// family has no place for (`stabilityai/sd-turbo` has no `ip_adapter`,
    /// `ip_adapter_style_image_url` nor `cached_attention`). Decoding keeps unknown keys (the
    /// gateway passes them on to Daydream, which judges them); a server that publishes the
    /// closed schema (the engine) refuses them with this list.
    ///
    /// ```
    /// use dreamgate_model::StreamParams;
    /// let p = StreamParams::from_json(&serde_json::json!({
    ///     "model_id": "stabilityai/sd-turbo", "foo": 1, "ip_adapter": {"enabled": false},
    ///     "image_preprocessing": {"processors": [{"type": "blur", "bar": 2}]}
    /// })).unwrap();
    /// let fields: Vec<String> = p.unknown_fields().into_iter().map(|e| e.field).collect();
    /// assert_eq!(fields, ["params.foo", "params.image_preprocessing.processors[0].bar", "params.ip_adapter"]);
    /// assert!(dreamgate_model::default_params().unknown_fields().is_empty());
    /// ```
    pub fn unknown_fields(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        let mut extra = |path: &str, map: &Map<String, Value>| {
            for key in map.keys() {
                out.push(FieldError::new(join(path, key), "is not a known parameter"));
            }
        };
        extra("params", &self.extra);
        for (name, chain) in [
            ("image_preprocessing", &self.image_preprocessing),
            ("image_postprocessing", &self.image_postprocessing),
            ("latent_preprocessing", &self.latent_preprocessing),
            ("latent_postprocessing", &self.latent_postprocessing),
        ] {
            let Some(chain) = chain else { continue };
            let path = format!("params.{name}");
            extra(&path, &chain.extra);
            for (i, processor) in chain.processors.iter().flatten().enumerate() {
                extra(&format!("{path}.processors[{i}]"), &processor.extra);
            }
        }
        for (i, cn) in self.controlnets.iter().flatten().enumerate() {
            extra(&format!("params.controlnets[{i}]"), &cn.extra);
        }
        if let Some(ip) = &self.ip_adapter {
            extra("params.ip_adapter", &ip.extra);
        }
        if let Some(ca) = &self.cached_attention {
            extra("params.cached_attention", &ca.extra);
        }
        if self.family() == Some(Family::Sd21) {
            let model = self.model_id.as_deref().unwrap_or_default();
            for (name, given) in [
                ("ip_adapter", self.ip_adapter.is_some()),
                ("ip_adapter_style_image_url", self.ip_adapter_style_image_url.is_some()),
                ("cached_attention", self.cached_attention.is_some()),
            ] {
                if given {
                    out.push(FieldError::new(format!("params.{name}"), format!("is not a parameter of {model}")));
                }
            }
        }
        out
    }

    /// The params as a JSON object (absent fields left out, `extra` included).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // Serialising plain data into a Value cannot fail or yield a non-object.
            _ => Map::new(),
        }
    }
}

/// A create body: `{ "pipeline": "streamdiffusion", "params": {...} }`.
///
/// Other top-level keys (`name`, `output_rtmp_url`, future ones) are kept in
/// `extra` and sent on untouched. Deserialising checks JSON types only; use
/// [`crate::parse_create`] for client input (shapes, normalisation, validation).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CreatePayload {
    /// Always [`crate::PIPELINE`] after normalisation.
    pub pipeline: String,
    /// The StreamDiffusion parameters.
    pub params: StreamParams,
    /// Other top-level keys (e.g. `name`, `output_rtmp_url`), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(value: Value) -> Vec<String> {
        StreamParams::from_json(&value).err().unwrap_or_default().into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn wrong_types_are_field_errors_without_rust_names() {
        let errs = errors_of(json!({
            "width": "512", "seed": "x", "prompt": 3, "controlnets": [{"conditioning_scale": "hi"}],
            "acceleration": "cuda", "t_index_list": [1, 2.5], "lora_dict": [], "use_lcm_lora": 1
        }));
        for expected in [
            "params.width: must be an integer",
            "params.seed: must be an integer or a list of [seed, weight] pairs",
            "params.prompt: must be a string or a list of [text, weight] pairs",
            "params.controlnets[0].conditioning_scale: must be a number",
            "params.acceleration: must be one of: none, xformers, tensorrt",
            "params.t_index_list[1]: must be an integer",
            "params.lora_dict: must be an object of {path: weight} or null",
            "params.use_lcm_lora: must be true or false",
        ] {
            assert!(errs.iter().any(|e| e == expected), "missing {expected:?} in {errs:?}");
        }
        assert_eq!(errs.len(), 8, "{errs:?}");
        for e in &errs {
            assert!(!e.contains("i64") && !e.contains("invalid type"), "{e}");
        }
    }

    #[test]
    fn weighted_lists_decode_and_serialise_back() {
        let v = json!({"prompt": [["a", 0.5], ["b", 1.0]], "seed": [[1, 0.5], [2, 0.5]], "lora_dict": null});
        let p = StreamParams::from_json(&v).unwrap();
        assert_eq!(p.prompt, Some(Prompt::Weighted(vec![("a".into(), 0.5), ("b".into(), 1.0)])));
        assert_eq!(p.seed, Some(Seed::Weighted(vec![(1, 0.5), (2, 0.5)])));
        assert_eq!(p.lora_dict, Some(LoraDict(None)));
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn bad_pairs_name_the_element() {
        let errs = errors_of(json!({"prompt": [["a", 1.0], ["b"]], "seed": [[1.5, 1.0]]}));
        assert_eq!(
            errs,
            vec!["params.prompt[1]: must be a [text, weight] pair", "params.seed[0]: must be a [seed, weight] pair"]
        );
    }

    #[test]
    fn serde_deserialize_uses_the_same_messages() {
        let err = serde_json::from_value::<StreamParams>(json!({"width": true})).unwrap_err();
        assert_eq!(err.to_string(), "width: must be an integer");
        let ok: StreamParams = serde_json::from_value(json!({"width": 512.0})).unwrap();
        assert_eq!(ok.width, Some(512));
    }
}
