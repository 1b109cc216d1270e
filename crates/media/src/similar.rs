//! StreamDiffusion's similar-image filter, made deterministic.
//!
//! StreamDiffusion compares each input frame with the last frame it actually
//! processed (cosine similarity of the two images as vectors in [-1, 1]) and
//! skips the new frame with probability `max(0, 1 - (1 - sim) / (1 - threshold))`,
//! repeating its previous output; a run of skips is capped by
//! `max_skip_frame`.
//!
//! Ours draws no random numbers: a frame is skipped when `sim >= threshold`
//! and fewer than `max_skip_frame` frames in a row were skipped before it (so
//! `max_skip_frame = 0` never skips). As upstream, a threshold of 1 or more
//! disables skipping, and the reference frame is only replaced by frames that
//! are processed, so a slow drift still triggers processing eventually.

use crate::Frame;

/// Filter settings (`enable_similar_image_filter`,
/// `similar_image_filter_threshold`, `similar_image_filter_max_skip_frame`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilterSettings {
    /// Whether the filter runs at all.
    pub enabled: bool,
    /// Cosine similarity at or above which a frame counts as "the same".
    pub threshold: f64,
    /// The most frames skipped in a row.
    pub max_skip_frame: u32,
}

impl Default for FilterSettings {
    /// Off: nothing is ever skipped (the spec's settings come from the stream's params,
    /// see [`crate::StyleParams`]).
    fn default() -> Self {
        FilterSettings { enabled: false, threshold: 1.0, max_skip_frame: 0 }
    }
}

/// The filter's state: the reference frame and the current run of skips.
#[derive(Debug, Default)]
pub struct SimilarImageFilter {
    settings: FilterSettings,
    reference: Option<Frame>,
    skipped_in_a_row: u32,
}

impl SimilarImageFilter {
    /// A filter with the given settings.
    pub fn new(settings: FilterSettings) -> SimilarImageFilter {
        SimilarImageFilter { settings, reference: None, skipped_in_a_row: 0 }
    }

    /// Current settings.
    pub fn settings(&self) -> FilterSettings {
        self.settings
    }

    /// Changes the settings, keeping the reference frame.
    pub fn set_settings(&mut self, settings: FilterSettings) {
        if !settings.enabled {
            self.skipped_in_a_row = 0;
        }
        self.settings = settings;
    }

    /// Decides whether `frame` should be skipped (true) or processed (false);
    /// processed frames become the new reference.
    pub fn should_skip(&mut self, frame: &Frame) -> bool {
        if !self.settings.enabled {
            return false;
        }
        let similar = match &self.reference {
            Some(reference) => {
                self.settings.threshold < 1.0
                    && cosine_similarity(reference, frame).is_some_and(|s| s >= self.settings.threshold)
            }
            None => false,
        };
        if similar && self.skipped_in_a_row < self.settings.max_skip_frame {
            self.skipped_in_a_row += 1;
            return true;
        }
        self.skipped_in_a_row = 0;
        match &mut self.reference {
            Some(reference) => reference.copy_from(frame),
            None => self.reference = Some(frame.clone()),
        }
        false
    }
}

/// Cosine similarity of two frames seen as vectors of samples centred on
/// mid-grey (Y around 128, Cb/Cr around 128), i.e. like StreamDiffusion's
/// [-1, 1] image tensors. `None` when the sizes differ. Two flat mid-grey
/// frames (zero vectors) count as identical.
pub fn cosine_similarity(a: &Frame, b: &Frame) -> Option<f64> {
    if (a.width, a.height) != (b.width, b.height) || a.validate().is_err() || b.validate().is_err() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0i64, 0i64, 0i64);
    for (pa, pb) in [(&a.y, &b.y), (&a.u, &b.u), (&a.v, &b.v)] {
        // Sum in i32 chunks (vectorises well), accumulate in i64.
        for (ca, cb) in pa.chunks(4096).zip(pb.chunks(4096)) {
            let (mut d, mut x, mut y) = (0i32, 0i32, 0i32);
            for (&p, &q) in ca.iter().zip(cb.iter()) {
                let (p, q) = (p as i32 - 128, q as i32 - 128);
                d += p * q;
                x += p * p;
                y += q * q;
            }
            dot += d as i64;
            na += x as i64;
            nb += y as i64;
        }
    }
    Some(match (na, nb) {
        (0, 0) => 1.0,
        (0, _) | (_, 0) => 0.0,
        _ => dot as f64 / ((na as f64).sqrt() * (nb as f64).sqrt()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: u8) -> Frame {
        let mut f = Frame::filled(16, 16, level, 128, 128);
        // Some structure so that similarity is not trivially 1.
        for (i, p) in f.y.iter_mut().enumerate() {
            if i % 7 == 0 {
                *p = 255 - level;
            }
        }
        f
    }

    fn on(threshold: f64, max: u32) -> SimilarImageFilter {
        SimilarImageFilter::new(FilterSettings { enabled: true, threshold, max_skip_frame: max })
    }

    #[test]
    fn similarity_basics() {
        let a = frame(40);
        assert!((cosine_similarity(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        let inverted = frame(215);
        assert!(cosine_similarity(&a, &inverted).unwrap() < 0.0);
        assert_eq!(
            cosine_similarity(&Frame::filled(4, 4, 128, 128, 128), &Frame::filled(4, 4, 128, 128, 128)),
            Some(1.0)
        );
        assert_eq!(cosine_similarity(&a, &Frame::new(4, 4)), None);
    }

    #[test]
    fn disabled_never_skips() {
        let mut f = SimilarImageFilter::new(FilterSettings { enabled: false, ..FilterSettings::default() });
        let a = frame(40);
        assert!((0..5).all(|_| !f.should_skip(&a)));
    }

    #[test]
    fn identical_frames_skip_up_to_max_then_process() {
        let mut f = on(0.98, 3);
        let a = frame(40);
        let decisions: Vec<bool> = (0..9).map(|_| f.should_skip(&a)).collect();
        // first is processed (no reference), then 3 skips, 1 processed, 3 skips, ...
        assert_eq!(decisions, vec![false, true, true, true, false, true, true, true, false]);
    }

    #[test]
    fn different_frame_is_processed_and_resets_the_run() {
        let mut f = on(0.98, 5);
        let (a, b) = (frame(40), frame(215));
        assert!(!f.should_skip(&a));
        assert!(f.should_skip(&a));
        assert!(!f.should_skip(&b), "a dissimilar frame must be processed");
        assert!(f.should_skip(&b), "b is now the reference");
        assert!(!f.should_skip(&a));
    }

    #[test]
    fn zero_max_skip_and_threshold_one_disable_skipping() {
        let a = frame(40);
        let mut zero = on(0.5, 0);
        assert!((0..4).all(|_| !zero.should_skip(&a)));
        let mut one = on(1.0, 10);
        assert!((0..4).all(|_| !one.should_skip(&a)));
    }

    #[test]
    fn threshold_decides_what_is_similar() {
        let a = frame(40);
        let mut b = a.clone();
        for p in b.y.iter_mut().take(40) {
            *p = 250;
        }
        let sim = cosine_similarity(&a, &b).unwrap();
        assert!(sim > 0.5 && sim < 0.999, "{sim}");
        let mut loose = on(sim - 0.01, 10);
        loose.should_skip(&a);
        assert!(loose.should_skip(&b));
        let mut strict = on(sim + 0.001, 10);
        strict.should_skip(&a);
        assert!(!strict.should_skip(&b));
    }
}
