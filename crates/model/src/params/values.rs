//! The schema's value types: string enums ([`Interpolation`], [`Acceleration`],
//! [`IpAdapterType`]) and the fields with more than one shape ([`Prompt`], [`Seed`],
//! [`LoraDict`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer};
use serde::Serialize;
use serde_json::Value;

use super::decode::{decode_weighted, deserialize_via_decode, join, string_enum, type_error, Decode};
use crate::error::FieldError;

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
