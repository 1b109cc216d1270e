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

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{self, Family};
use crate::validate::FieldError;

/// Decoding of a JSON value into a schema type, reporting every problem with
/// its field path instead of stopping at the first one.
pub(crate) trait Decode: Sized {
    /// What a value of this type looks like, for messages ("a number").
    const EXPECTED: &'static str;

    /// Decodes `value`; on failure pushes errors naming `path` (or a path below
    /// it) and returns `None`.
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self>;
}

/// `path.key`, or just `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_error(path: &str, expected: &str) -> FieldError {
    FieldError::new(path, format!("must be {expected}"))
}

/// Serde entry point for types that decode through [`Decode`]: the error text is
/// our `field: message` list, never a serde message naming Rust types.
fn deserialize_via_decode<'de, D: Deserializer<'de>, T: Decode>(d: D) -> Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    let mut errors = Vec::new();
    match T::decode(&value, "", &mut errors) {
        Some(v) if errors.is_empty() => Ok(v),
        _ => Err(D::Error::custom(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))),
    }
}

impl Decode for bool {
    const EXPECTED: &'static str = "true or false";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_bool();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for f64 {
    const EXPECTED: &'static str = "a number";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_f64();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for i64 {
    const EXPECTED: &'static str = "an integer";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_i64().or_else(|| {
            // 512.0 is an integer too; 512.5 and 1e300 are not.
            value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
        });
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for String {
    const EXPECTED: &'static str = "a string";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_str().map(str::to_owned);
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for Map<String, Value> {
    const EXPECTED: &'static str = "an object";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_object().cloned();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl<T: Decode> Decode for Vec<T> {
    const EXPECTED: &'static str = "a list";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let Some(items) = value.as_array() else {
            errors.push(type_error(path, Self::EXPECTED));
            return None;
        };
        // Items that are the right shape but have a bad field inside (an object)
        // still count, so that validation can look at the rest of the list.
        let out: Vec<T> =
            items.iter().enumerate().filter_map(|(i, item)| T::decode(item, &format!("{path}[{i}]"), errors)).collect();
        (out.len() == items.len()).then_some(out)
    }
}

/// Decodes a `[first, weight]` pair of a weighted list.
fn decode_pair<T: Decode>(value: &Value, path: &str, what: &str, errors: &mut Vec<FieldError>) -> Option<(T, f64)> {
    let mut scratch = Vec::new();
    let pair = match value.as_array().map(Vec::as_slice) {
        Some([first, weight]) => T::decode(first, path, &mut scratch).zip(f64::decode(weight, path, &mut scratch)),
        _ => None,
    };
    if pair.is_none() {
        errors.push(FieldError::new(path, format!("must be a [{what}, weight] pair")));
    }
    pair
}

/// Declares a string enum of the schema: serde names, `ALL`, `as_str`, `parse`,
/// and decoding that lists the allowed values when given anything else.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the JSON spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Decode for $name {
            const EXPECTED: &'static str = "one of the allowed values";
            fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
                let v = value.as_str().and_then($name::parse);
                if v.is_none() {
                    let allowed: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    errors.push(FieldError::new(path, format!("must be one of: {}", allowed.join(", "))));
                }
                v
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_via_decode(d)
            }
        }
    };
}

/// Declares a schema object: every field optional and skipped when absent,
/// unknown keys kept in `extra`, decoding through [`Decode`].
macro_rules! schema_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $key, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )+
            /// Fields this version does not know, kept and passed through untouched.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl $name {
            /// The JSON keys this type knows (everything else lands in `extra`).
            pub const FIELDS: &'static [&'static str] = &[$($key),+];
        }

        impl Decode for $name {
            const EXPECTED: &'static str = "an object";
            fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
                let Some(map) = value.as_object() else {
                    errors.push(type_error(path, Self::EXPECTED));
                    return None;
                };
                let mut out = Self::default();
                for (key, v) in map {
                    match key.as_str() {
                        $( $key => out.$field = <$ty as Decode>::decode(v, &join(path, key), errors), )+
                        _ => {
                            out.extra.insert(key.clone(), v.clone());
                        }
                    }
                }
                Some(out)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_via_decode(d)
            }
        }
    };
}

string_enum! {
    /// How weighted prompt or seed lists are blended.
    pub enum Interpolation {
        /// Linear interpolation.
        Linear = "linear",
        /// Spherical linear interpolation.
        Slerp = "slerp",
    }
}

string_enum! {
    /// Inference acceleration backend.
    pub enum Acceleration {
        /// Plain PyTorch.
        None = "none",
        /// xFormers attention.
        Xformers = "xformers",
        /// TensorRT engines (required by cached attention).
        Tensorrt = "tensorrt",
    }
}

string_enum! {
    /// Kind of IP adapter.
    pub enum IpAdapterType {
        /// Style/content adapter (sd15 and sdxl).
        Regular = "regular",
        /// Face identity adapter (sdxl only).
        Faceid = "faceid",
    }
}

/// The `prompt` field: one text, or a weighted list `[["text", weight], ...]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Prompt {
    /// A single prompt.
    Text(String),
    /// Prompts blended by weight.
    Weighted(Vec<(String, f64)>),
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Prompt::Text(text.to_owned())
    }
}

impl Decode for Prompt {
    const EXPECTED: &'static str = "a string or a list of [text, weight] pairs";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        match value {
            Value::String(text) => Some(Prompt::Text(text.clone())),
            Value::Array(items) => decode_weighted(items, path, "text", errors).map(Prompt::Weighted),
            _ => {
                errors.push(type_error(path, Self::EXPECTED));
                None
            }
        }
    }
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via_decode(d)
    }
}

/// The `seed` field: one seed, or a weighted list `[[seed, weight], ...]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Seed {
    /// A single seed.
    Single(i64),
    /// Seeds blended by weight.
    Weighted(Vec<(i64, f64)>),
}

impl Decode for Seed {
    const EXPECTED: &'static str = "an integer or a list of [seed, weight] pairs";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        match value {
            Value::Number(_) => {
                let mut scratch = Vec::new();
                let seed = i64::decode(value, path, &mut scratch).map(Seed::Single);
                if seed.is_none() {
                    errors.push(type_error(path, Self::EXPECTED));
                }
                seed
            }
            Value::Array(items) => decode_weighted(items, path, "seed", errors).map(Seed::Weighted),
            _ => {
                errors.push(type_error(path, Self::EXPECTED));
                None
            }
        }
    }
}

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via_decode(d)
    }
}

fn decode_weighted<T: Decode>(
    items: &[Value],
    path: &str,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<(T, f64)>> {
    let out: Vec<(T, f64)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| decode_pair(item, &format!("{path}[{i}]"), what, errors))
        .collect();
    (out.len() == items.len()).then_some(out)
}

/// The `lora_dict` field: `{path: weight}`, or an explicit `null` (kept as such).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LoraDict(pub Option<BTreeMap<String, f64>>);

impl Decode for LoraDict {
    const EXPECTED: &'static str = "an object of {path: weight} or null";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        match value {
            Value::Null => Some(LoraDict(None)),
            Value::Object(map) => {
                let before = errors.len();
                let weights: BTreeMap<String, f64> = map
                    .iter()
                    .filter_map(|(k, v)| f64::decode(v, &join(path, k), errors).map(|w| (k.clone(), w)))
                    .collect();
                (errors.len() == before).then_some(LoraDict(Some(weights)))
            }
            _ => {
                errors.push(type_error(path, Self::EXPECTED));
                None
            }
        }
    }
}

impl<'de> Deserialize<'de> for LoraDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_via_decode(d)
    }
}

schema_object! {
    /// One entry of `controlnets`.
    pub struct ControlNet {
        /// ControlNet model id; must belong to the stream model's family.
        "model_id" => model_id: String,
        /// Strength, 0-1 (hot-updatable).
        "conditioning_scale" => conditioning_scale: f64,
        /// Image processor type feeding the ControlNet.
        "preprocessor" => preprocessor: String,
        /// Preprocessor settings (canny: `low_threshold`, `high_threshold`).
        "preprocessor_params" => preprocessor_params: Map<String, Value>,
        /// Whether the ControlNet is applied (absent counts as enabled).
        "enabled" => enabled: bool,
        /// Fraction of the steps where guidance starts, 0-1.
        "control_guidance_start" => control_guidance_start: f64,
        /// Fraction of the steps where guidance ends, 0-1.
        "control_guidance_end" => control_guidance_end: f64,
    }
}

impl ControlNet {
    /// Whether this ControlNet is applied (`enabled` absent counts as true).
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }
}

schema_object! {
    /// `image_preprocessing`, `image_postprocessing`, `latent_preprocessing`,
    /// `latent_postprocessing`: a chain of processors.
    pub struct Processing {
        /// Whether the chain runs.
        "enabled" => enabled: bool,
        /// The processors, in order.
        "processors" => processors: Vec<Processor>,
    }
}

schema_object! {
    /// One processor of a [`Processing`] chain.
    pub struct Processor {
        /// Processor type (image types for image chains, `latent_feedback` for latent ones).
        "type" => kind: String,
        /// Whether this processor runs.
        "enabled" => enabled: bool,
        /// Processor settings (e.g. `feedback_strength` for `latent_feedback`).
        "params" => params: Map<String, Value>,
    }
}

schema_object! {
    /// `ip_adapter` (sd15 and sdxl models only).
    pub struct IpAdapter {
        /// `regular` or `faceid` (faceid: sdxl only).
        "type" => kind: IpAdapterType,
        /// Whether the adapter is applied (absent counts as enabled).
        "enabled" => enabled: bool,
        /// Adapter strength.
        "scale" => scale: f64,
        /// Weighting scheme name.
        "weight_type" => weight_type: String,
    }
}

impl IpAdapter {
    /// Whether the adapter is applied (`enabled` absent counts as true).
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }
}

schema_object! {
    /// `cached_attention`: needs TensorRT and 512x512.
    pub struct CachedAttention {
        /// Whether attention caching is on (absent counts as enabled).
        "enabled" => enabled: bool,
        /// Frames kept, 1-4.
        "max_frames" => max_frames: i64,
        /// Refresh interval in frames, 1-240.
        "interval" => interval: i64,
    }
}

impl CachedAttention {
    /// Whether caching is on (`enabled` absent counts as true).
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }
}

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
