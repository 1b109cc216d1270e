//! Orphan sweep: streams the gateway made upstream that nothing remembers.
//!
//! Every stream the gateway creates is named with [`crate::state::STREAM_TAG`]. Every path the
//! gateway knows of records or deletes its streams (ends, the reaper, late creates, parked
//! deletes), but a stream can still be orphaned by what the gateway cannot see: the in-process
//! store's process killed (`kill -9`, OOM) with streams live, a create answered upstream just as
//! the process died, a Redis store flushed. The sweep lists the key's streams upstream
//! (`GET /v1/streams`) every [`GatewayConfig::orphan_sweep`](crate::GatewayConfig) and looks for
//! tagged streams the store does not know (neither live nor tombstoned).
//!
//! [`OrphanMode`] says what it does with them: `report` (`dreamgate serve`'s default) logs each once and counts
//! them in the `dreamgate_orphan_streams` gauge; `delete` also deletes each one that stayed
//! unknown for [`GatewayConfig::orphan_grace`](crate::GatewayConfig) (seen unknown by two sweeps
//! at least that far apart, so a create whose answer is still on its way is never taken for an
//! orphan). `delete` assumes the API key serves this deployment alone: another deployment's
//! streams on the same key (another store) would look like orphans.
//!
//! [`OrphanBook`] is the pure rule (fed `now` and what one sweep saw); the driver in
//! [`crate::state`] does the IO, under a lease in the store so that one instance sweeps at a time.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use crate::clock::Ms;
use crate::state::STREAM_TAG;

/// What the sweep does with the orphans it finds (`dreamgate serve --orphans`, default
/// `report`; a [`GatewayConfig`](crate::GatewayConfig) made in code starts `Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanMode {
    /// No sweep.
    Off,
    /// Log each orphan once, count them (`dreamgate_orphan_streams`).
    Report,
    /// Report, and delete each orphan that stayed unknown for the grace period.
    Delete,
}

impl FromStr for OrphanMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "report" => Ok(Self::Report),
            "delete" => Ok(Self::Delete),
            _ => Err(format!("unknown orphan mode {s:?} (expected off, report or delete)")),
        }
    }
}

/// The id of a listed stream the gateway made (its name carries the tag), if it is one.
pub fn tagged_id(item: &Value) -> Option<&str> {
    let name = item.get("name")?.as_str()?;
    let id = item.get("id")?.as_str()?;
    (name.starts_with(STREAM_TAG) && crate::registry::valid_stream_id(id)).then_some(id)
}

/// What one sweep decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Orphans seen for the first time (to log).
    pub new: Vec<String>,
    /// Orphans to delete now (`delete` mode only).
    pub delete: Vec<String>,
    /// Orphans known now (the gauge).
    pub orphans: usize,
}

/// Tagged streams seen unknown to the store, and since when (pure).
#[derive(Debug, Default, Clone)]
pub struct OrphanBook {
    first_seen: HashMap<String, Ms>,
}

impl OrphanBook {
    /// One sweep at `now` saw `unknown`: the tagged streams listed upstream that the store does
    /// not know. An id no longer unknown (deleted, or recorded after all) is forgotten.
    pub fn sweep(&mut self, now: Ms, unknown: &[String], mode: OrphanMode, grace: Duration) -> SweepOutcome {
        self.first_seen.retain(|id, _| unknown.contains(id));
        let mut out = SweepOutcome { orphans: unknown.len(), ..Default::default() };
        for id in unknown {
            let since = *self.first_seen.entry(id.clone()).or_insert_with(|| {
                out.new.push(id.clone());
                now
            });
            if mode == OrphanMode::Delete && now >= since + grace {
                out.delete.push(id.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GRACE: Duration = Duration::from_secs(600);

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_tagged_streams_with_valid_ids_count() {
        assert_eq!(tagged_id(&json!({"id": "str_a1", "name": "dreamgate-stream"})), Some("str_a1"));
        assert_eq!(tagged_id(&json!({"id": "str_a1", "name": "my show"})), None);
        assert_eq!(tagged_id(&json!({"id": "str_a1"})), None);
        assert_eq!(tagged_id(&json!({"id": "../x", "name": "dreamgate-stream"})), None);
        assert_eq!(tagged_id(&json!("dreamgate-stream")), None);
    }

    #[test]
    fn an_orphan_is_deleted_only_after_staying_unknown_for_the_grace_period() {
        let mut book = OrphanBook::default();
        let t0 = Ms(1_000_000);
        let out = book.sweep(t0, &ids(&["a", "b"]), OrphanMode::Delete, GRACE);
        assert_eq!((out.new, out.delete, out.orphans), (ids(&["a", "b"]), vec![], 2));
        // b was recorded after all (a slow create): it is forgotten, never deleted.
        let out = book.sweep(t0 + Duration::from_secs(300), &ids(&["a"]), OrphanMode::Delete, GRACE);
        assert_eq!((out.new, out.delete), (vec![], vec![]));
        let out = book.sweep(t0 + GRACE, &ids(&["a", "b"]), OrphanMode::Delete, GRACE);
        assert_eq!(out.delete, ids(&["a"]), "a: unknown for the grace period; b: seen again just now");
        assert_eq!(out.new, ids(&["b"]));
    }

    #[test]
    fn report_mode_logs_each_orphan_once_and_deletes_nothing() {
        let mut book = OrphanBook::default();
        let t0 = Ms(5);
        assert_eq!(book.sweep(t0, &ids(&["a"]), OrphanMode::Report, GRACE).new, ids(&["a"]));
        let later = book.sweep(t0 + GRACE * 3, &ids(&["a"]), OrphanMode::Report, GRACE);
        assert_eq!((later.new, later.delete, later.orphans), (vec![], vec![], 1));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("delete".parse::<OrphanMode>(), Ok(OrphanMode::Delete));
        assert_eq!("report".parse::<OrphanMode>(), Ok(OrphanMode::Report));
        assert_eq!("off".parse::<OrphanMode>(), Ok(OrphanMode::Off));
        assert!("yes".parse::<OrphanMode>().unwrap_err().contains("off, report or delete"));
    }
}
