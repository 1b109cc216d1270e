//! What the public StreamDiffusion schema knows about: models and their families,
//! ControlNets per family, processor types and the deprecated `pipeline_id` values.
//!
//! Everything here comes from the "StreamDiffusion params" section of
//! `daydream-api.md`; validation and normalisation look names up here instead of
//! repeating them.

use std::fmt;

/// The model family a StreamDiffusion model (and a ControlNet) belongs to.
///
/// ControlNets must match the family of the stream's model; IP adapters only exist
/// for [`Family::Sd15`] and [`Family::Sdxl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Stable Diffusion 1.5 (`Lykon/dreamshaper-8`, `prompthero/openjourney-v4`).
    Sd15,
    /// Stable Diffusion 2.1 (`stabilityai/sd-turbo`).
    Sd21,
    /// Stable Diffusion XL (`stabilityai/sdxl-turbo`).
    Sdxl,
}

impl Family {
    /// The short id used in messages: `sd15`, `sd21` or `sdxl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sd15 => "sd15",
            Family::Sd21 => "sd21",
            Family::Sdxl => "sdxl",
        }
    }

    /// The ControlNet model ids usable with this family.
    pub fn controlnets(self) -> impl Iterator<Item = &'static str> {
        CONTROLNETS.iter().filter(move |(_, family)| *family == self).map(|(id, _)| *id)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model used when nothing else is asked for.
pub const DEFAULT_MODEL_ID: &str = "stabilityai/sd-turbo";

/// Every model id the public schema accepts, with its family.
pub const MODELS: &[(&str, Family)] = &[
    ("stabilityai/sd-turbo", Family::Sd21),
    ("stabilityai/sdxl-turbo", Family::Sdxl),
    ("Lykon/dreamshaper-8", Family::Sd15),
    ("prompthero/openjourney-v4", Family::Sd15),
];

/// Every ControlNet model id the public schema accepts, with its family.
pub const CONTROLNETS: &[(&str, Family)] = &[
    ("thibaud/controlnet-sd21-openpose-diffusers", Family::Sd21),
    ("thibaud/controlnet-sd21-hed-diffusers", Family::Sd21),
    ("thibaud/controlnet-sd21-canny-diffusers", Family::Sd21),
    ("thibaud/controlnet-sd21-depth-diffusers", Family::Sd21),
    ("thibaud/controlnet-sd21-color-diffusers", Family::Sd21),
    ("daydreamlive/TemporalNet2-stable-diffusion-2-1", Family::Sd21),
    ("lllyasviel/control_v11f1p_sd15_depth", Family::Sd15),
    ("lllyasviel/control_v11f1e_sd15_tile", Family::Sd15),
    ("lllyasviel/control_v11p_sd15_canny", Family::Sd15),
    ("daydreamlive/TemporalNet2-stable-diffusion-v1-5", Family::Sd15),
    ("xinsir/controlnet-depth-sdxl-1.0", Family::Sdxl),
    ("xinsir/controlnet-canny-sdxl-1.0", Family::Sdxl),
    ("xinsir/controlnet-tile-sdxl-1.0", Family::Sdxl),
];

/// Most ControlNets that may be enabled at once on an SDXL model.
pub const SDXL_MAX_ENABLED_CONTROLNETS: usize = 3;

/// Image processor types (ControlNet `preprocessor`, `image_preprocessing` and
/// `image_postprocessing` processors).
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

/// Latent processor types (`latent_preprocessing` and `latent_postprocessing`).
pub const LATENT_PROCESSORS: &[&str] = &["latent_feedback"];

/// Deprecated `pipeline_id` values and the model each one stands for.
pub const LEGACY_PIPELINES: &[(&str, &str)] = &[
    ("pip_SD-turbo", "stabilityai/sd-turbo"),
    ("pip_SDXL-turbo", "stabilityai/sdxl-turbo"),
    ("pip_SD15", "Lykon/dreamshaper-8"),
    ("pip_SDXL-turbo-faceid", "stabilityai/sdxl-turbo"),
];

/// The family of a known model id, `None` for an unknown one.
///
/// ```
/// use dreamgate_model::catalog::{model_family, Family};
/// assert_eq!(model_family("stabilityai/sd-turbo"), Some(Family::Sd21));
/// assert_eq!(model_family("nope/model"), None);
/// ```
pub fn model_family(model_id: &str) -> Option<Family> {
    lookup(MODELS, model_id)
}

/// The family of a known ControlNet model id, `None` for an unknown one.
pub fn controlnet_family(model_id: &str) -> Option<Family> {
    lookup(CONTROLNETS, model_id)
}

/// The model id a deprecated `pipeline_id` stands for.
///
/// ```
/// use dreamgate_model::catalog::legacy_pipeline_model;
/// assert_eq!(legacy_pipeline_model("pip_SD15"), Some("Lykon/dreamshaper-8"));
/// ```
pub fn legacy_pipeline_model(pipeline_id: &str) -> Option<&'static str> {
    lookup(LEGACY_PIPELINES, pipeline_id)
}

/// Whether `kind` is an image processor type.
pub fn is_image_processor(kind: &str) -> bool {
    IMAGE_PROCESSORS.contains(&kind)
}

/// Whether `kind` is a latent processor type.
pub fn is_latent_processor(kind: &str) -> bool {
    LATENT_PROCESSORS.contains(&kind)
}

fn lookup<T: Copy>(table: &[(&str, T)], key: &str) -> Option<T> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_controlnets_and_a_model() {
        for family in [Family::Sd15, Family::Sd21, Family::Sdxl] {
            assert!(family.controlnets().count() >= 3, "{family}");
            assert!(MODELS.iter().any(|(_, f)| *f == family), "{family}");
        }
    }

    #[test]
    fn legacy_pipelines_map_to_known_models() {
        for (id, model) in LEGACY_PIPELINES {
            assert!(model_family(model).is_some(), "{id} -> {model}");
        }
        assert_eq!(legacy_pipeline_model("pip_SDXL-turbo-faceid"), Some("stabilityai/sdxl-turbo"));
        assert_eq!(legacy_pipeline_model("pip_unknown"), None);
    }

    #[test]
    fn processor_kinds() {
        assert!(is_image_processor("canny"));
        assert!(!is_image_processor("latent_feedback"));
        assert!(is_latent_processor("latent_feedback"));
        assert!(!is_latent_processor("canny"));
    }
}
