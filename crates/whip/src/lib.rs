//! dreamgate-whip (skeleton: filled in by its owner).
