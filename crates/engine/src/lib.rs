//! dreamgate-engine (skeleton: filled in by its owner).
