//! dreamgate-model (skeleton: filled in by its owner).
