//! dreamgate-rtc (skeleton: filled in by its owner).
