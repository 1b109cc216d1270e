//! dreamgate-client (skeleton: filled in by its owner).
