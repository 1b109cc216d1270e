//! # dreamgate-model
//!
//! The StreamDiffusion parameter model of Daydream's `/v1/streams` API, with no IO:
//!
//! - [`StreamParams`]: typed parameters for the whole public schema; unknown fields
//!   are kept in `extra` and passed through untouched.
//! - [`default_params`] / [`default_create_payload`]: the spec's defaults; [`defaults`]
//!   holds the same values typed (the project's one table of parameter defaults).
//! - [`parse_create`] / [`parse_update`]: accept the body shapes clients send
//!   (`{pipeline, params}`, legacy `{pipeline_id, pipeline_params}`, and for updates
//!   `{params}` or a flat params object), normalise to
//!   `{ "pipeline": "streamdiffusion", "params": {...} }` and report every problem
//!   as a [`FieldError`].
//! - [`validate_params`]: full validation.
//! - [`plan_update`] / [`update_body`] / [`is_dynamic`]: minimal PATCH bodies and
//!   whether they reload the pipeline.
//! - [`persona`]: the Dream page's persona prompts; [`catalog`]: known models,
//!   families, ControlNets and processor types.
//!
//! ```
//! use dreamgate_model::{default_create_payload, parse_create};
//! let body = serde_json::to_value(default_create_payload()).unwrap();
//! let parsed = parse_create(&body).unwrap();
//! assert_eq!(parsed, default_create_payload());
//! ```

pub mod catalog;
pub mod defaults;
mod error;
mod normalize;
mod params;
pub mod persona;
mod update;
mod validate;

pub use defaults::{default_create_payload, default_params, DEFAULT_NEGATIVE_PROMPT};
pub use error::FieldError;
pub use normalize::{parse_create, parse_update};
pub use params::{
    Acceleration, CachedAttention, ControlNet, CreatePayload, Interpolation, IpAdapter, IpAdapterType, LoraDict,
    Processing, Processor, Prompt, Seed, StreamParams,
};
pub use update::{is_dynamic, plan_update, update_body, UpdatePlan, DYNAMIC_FIELDS};
pub use validate::{validate_params, MAX_SIZE, MAX_STYLE_IMAGE_BYTES, MIN_SIZE, SIZE_STEP};

/// The only pipeline this model describes.
pub const PIPELINE: &str = "streamdiffusion";
