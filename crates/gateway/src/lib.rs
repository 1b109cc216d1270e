//! dreamgate-gateway (skeleton: filled in by its owner).
