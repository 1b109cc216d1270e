//! `dreamgate conformance`: checks a Daydream-compatible upstream (Daydream itself, or
//! Dreamgate's engine) against Daydream's published API shapes.
//!
//! * [`shape`]: a small JSON shape language (required/optional fields, closed/open objects,
//!   enums, literals, unions) and the checker that lists every departure with its JSON path.
//! * [`daydream`]: the documented shapes, written from Daydream's published description
//!   (`docs/daydream-shapes.md` summarises it and what the official SDKs accept).
//! * [`run`]: one scripted scenario (create, get, list, status, update, WHIP publish of the
//!   test pattern, WHEP pull of a frame, delete, and the documented error cases); the
//!   [`Report`] lists each answer that deviates, as `step: path: problem`.
//!
//! Its purpose: an integrator runs it against real Daydream to catch API drift before users do.

pub mod daydream;
mod scenario;
pub mod shape;

pub use scenario::{run, Config, Deviation, Report, UNKNOWN_ID};
