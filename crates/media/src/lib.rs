//! dreamgate-media (skeleton: filled in by its owner).
