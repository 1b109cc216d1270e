//! The schema's nested objects: [`ControlNet`], [`Processing`] and its [`Processor`]s,
//! [`IpAdapter`], [`CachedAttention`]. Unknown keys inside each are kept in `extra`.

use serde::de::{Deserialize, Deserializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::decode::{deserialize_via_decode, join, schema_object, type_error, Decode};
use super::values::IpAdapterType;
use crate::error::FieldError;

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
