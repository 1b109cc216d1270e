//! [`FieldError`]: one problem with one field of a body, shared by decoding
//! (`params.rs`), validation (`validate.rs`) and normalisation (`normalize.rs`).

use std::fmt;

use serde::Serialize;

/// One validation problem: `{ "field": "params.width", "message": "..." }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `params.controlnets[2].model_id`.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    /// `field: message`, the CLI's one-line form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
