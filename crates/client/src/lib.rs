//! Daydream HTTP client (`/v1/streams`) and environment configuration.
//!
//! - [`DaydreamEnv`] reads and validates the `DAYDREAM_*` variables once at start
//!   (an invalid `DAYDREAM_API_GATEWAY` is an error, never a silent fallback).
//! - [`DaydreamClient`] calls create / get / status / update / delete with
//!   `Authorization: Bearer <key>`, a per-call timeout, and redirects disabled so the key
//!   never travels to another host.
//! - [`ApiError`] keeps the upstream status and body, and tells a stream that is still
//!   warming up ([`ApiError::is_warming_up`]) from a real failure.
//!
//! - [`StreamStatus`] reads a status answer in either documented shape (the runner's
//!   `state`/`input_status.fps`/`inference_status.fps`, or the public reference's
//!   `inference_status.input_fps`/`output_fps`).
//!
//! The key is an [`ApiKey`], whose `Debug`/`Display` never print it.

mod client;
mod env;
mod status;

pub use client::{body_says_not_ready, error_chain, ApiError, ClientError, DaydreamClient, DEFAULT_TIMEOUT};
pub use env::{
    host_in_allowlist, is_loopback_host, ApiKey, ConfigError, DaydreamEnv, API_KEY_PREFIX, DEFAULT_GATEWAY,
    DEFAULT_WHIP_ALLOWED_HOSTS,
};
pub use status::StreamStatus;
