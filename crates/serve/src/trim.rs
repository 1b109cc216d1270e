//! Giving memory back after a connection flood.
//!
//! Each open connection costs the process some kilobytes (hyper's buffers, the task, the
//! socket's bookkeeping), allocated by whichever worker thread served it. When a flood of
//! connections goes away, glibc keeps the freed pages in its per-thread arenas: measured
//! before this module, the gateway's RSS stayed at ~200 MiB after 20,000 connections had come
//! and gone. [`TrimPolicy`] decides when to ask the allocator to return free pages to the
//! system (`malloc_trim(0)`, which walks every arena), and [`trim`] does it.
//!
//! The rule, pure and without a timer: the policy keeps the peak of open connections since the
//! last trim; when the open count falls to a quarter of that peak (and the peak was at least
//! [`TRIM_MIN_PEAK`]), it trims and starts again from the current count. A flood from `n`
//! connections down to none therefore trims at most `log4(n / TRIM_MIN_PEAK) + 1` times (about
//! five times for 20,000), each trim is paid for by at least three quarters of a peak of
//! closed connections, and a steady load never trims.

/// Below this many open connections at the peak, closing them never trims (ordinary traffic).
pub const TRIM_MIN_PEAK: usize = 64;

/// When to give memory back (pure: fed the open-connection count, answers whether to trim).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrimPolicy {
    peak: usize,
}

impl TrimPolicy {
    /// The open-connection count changed to `open`: whether to trim now.
    pub fn on_open(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        if self.peak >= TRIM_MIN_PEAK && open <= self.peak / 4 {
            self.peak = open;
            return true;
        }
        false
    }
}

/// Returns the allocator's free pages to the system (glibc's `malloc_trim(0)`; nothing on
/// other allocators). Blocking: run it off the async workers.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes the allocator's own locks; it is safe to call any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trims(p: &mut TrimPolicy, counts: impl IntoIterator<Item = usize>) -> Vec<usize> {
        counts.into_iter().filter(|&n| p.on_open(n)).collect()
    }

    #[test]
    fn ordinary_traffic_never_trims() {
        let mut p = TrimPolicy::default();
        let up_down = (0..TRIM_MIN_PEAK).chain((0..TRIM_MIN_PEAK).rev());
        assert!(trims(&mut p, up_down.clone().cycle().take(10_000)).is_empty());
    }

    #[test]
    fn a_flood_going_away_trims_a_few_times_at_quarters_of_its_peak() {
        let mut p = TrimPolicy::default();
        assert!(trims(&mut p, 0..=20_000).is_empty(), "never while it grows");
        let at = trims(&mut p, (0..20_000).rev());
        assert_eq!(at, vec![5_000, 1_250, 312, 78, 19], "the last trim is near empty");
        assert!(at.len() <= 6);
        assert!(trims(&mut p, (0..19).rev()).is_empty(), "then nothing is left to give back");
    }

    #[test]
    fn a_flood_that_drops_at_once_trims_once() {
        let mut p = TrimPolicy::default();
        assert!(!p.on_open(20_000));
        assert!(p.on_open(0));
        assert!(!p.on_open(0));
    }

    #[test]
    fn oscillating_load_trims_once_per_swing_of_three_quarters() {
        let mut p = TrimPolicy::default();
        let swing = [1_000, 900, 600, 300, 250, 1_000];
        let at: Vec<usize> = (0..3).flat_map(|_| trims(&mut p, swing)).collect();
        assert_eq!(at, vec![250, 250, 250]);
    }

    #[test]
    fn trimming_is_harmless_at_any_time() {
        let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![1; i * 10]).collect();
        trim();
        assert_eq!(v[999].len(), 9990);
        drop(v);
        trim();
    }
}
