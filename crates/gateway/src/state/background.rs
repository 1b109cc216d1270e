//! The stream service's background work: the reaper driver, parked-delete
//! retries and the orphan sweep. A child of [`super`] (it drives `AppState`
//! through its private parts); the rules it applies are pure: the reaper's in
//! [`crate::registry`], the orphan rule in [`crate::sweep`].

use std::sync::Arc;

use dreamgate_client::ApiError as UpstreamError;

use super::AppState;
use crate::clock::Ms;
use crate::store::StoreApi;
use crate::sweep::OrphanMode;

impl AppState {
    /// Retries the deletes parked by an earlier run (or another instance):
    /// each is taken once, deleted upstream, and parked again if that fails.
    pub async fn retry_parked(self: Arc<Self>) {
        let _guard = self.enter();
        let ids = match self.store.take_parked().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the parked deletes");
                return;
            }
        };
        if ids.is_empty() {
            return;
        }
        tracing::info!(streams = ids.len(), "retrying parked deletes");
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids {
            let st = self.clone();
            tasks.spawn(async move {
                match st.upstream.api().delete_stream(&id).await {
                    Ok(()) | Err(UpstreamError::Upstream { status: 404 | 405, .. }) => {
                        tracing::info!(stream_id = %id, "parked stream deleted upstream");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(stream_id = %id, error = %st.upstream.log_text(&e), "parked stream still not deleted");
                        Some(id)
                    }
                }
            });
        }
        let mut again = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some(id)) = done {
                again.push(id);
            }
        }
        if let Err(e) = self.store.park(&again).await {
            tracing::warn!(error = %e, streams = ?again, "could not park these deletes again");
        }
    }

    /// One orphan sweep ([`crate::sweep`]), by the instance holding the sweep lease: lists the
    /// key's streams upstream, asks the store which tagged ones it knows, logs the new orphans,
    /// and (in `delete` mode) deletes those unknown for the grace period.
    pub async fn sweep_orphans(self: Arc<Self>) {
        let mode = self.cfg.orphans;
        if mode == OrphanMode::Off {
            return;
        }
        let now = Ms::now();
        let lease = self.cfg.orphan_sweep + self.cfg.orphan_sweep / 2;
        match self.store.claim_poll(SWEEP_LEASE, self.watchers.instance(), now, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "orphan sweep: store unavailable");
                return;
            }
        }
        let listed = match self.upstream.api().list_streams().await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %self.upstream.log_text(&e), "orphan sweep: cannot list the streams upstream");
                return;
            }
        };
        let tagged: Vec<String> = listed.iter().filter_map(crate::sweep::tagged_id).map(str::to_string).collect();
        let known = match self.store.known_streams(&tagged).await {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "orphan sweep: store unavailable");
                return;
            }
        };
        let unknown: Vec<String> = tagged.into_iter().zip(known).filter(|(_, k)| !k).map(|(id, _)| id).collect();
        let outcome = self.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).sweep(
            Ms::now(),
            &unknown,
            mode,
            self.cfg.orphan_grace,
        );
        crate::metrics::orphans_found(outcome.orphans);
        for id in &outcome.new {
            tracing::warn!(
                stream_id = %id,
                mode = if mode == OrphanMode::Delete { "delete" } else { "report" },
                "orphan stream: made by a Dreamgate gateway on this key, unknown to the store (it may be running and billed)"
            );
        }
        for id in outcome.delete {
            match self.upstream.api().delete_stream(&id).await {
                Ok(()) | Err(UpstreamError::Upstream { status: 404, .. }) => {
                    crate::metrics::orphan_deleted();
                    tracing::info!(stream_id = %id, "orphan stream deleted upstream");
                }
                Err(e) => {
                    tracing::warn!(stream_id = %id, error = %self.upstream.log_text(&e), "orphan stream not deleted; next sweep retries")
                }
            }
        }
    }
}

/// The store lease that lets one instance sweep at a time (a poll-lease name no stream id can take).
const SWEEP_LEASE: &str = "sweep:orphans";

/// Drives the reaper: every `reap_interval`, claims from the store the
/// delete attempts due now (each leased to this instance) and performs them
/// upstream (outcomes go back to the store); at start and every
/// `parked_retry`, retries the deletes parked in the store; at start and every
/// `orphan_sweep`, sweeps for orphans ([`crate::sweep`]).
pub async fn run_reaper(st: Arc<AppState>) {
    let mut interval = tokio::time::interval(st.cfg.reap_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut parked = crate::clock::ParkedSchedule::new(Ms::now(), st.cfg.parked_retry);
    let mut sweep = crate::clock::ParkedSchedule::new(Ms::now(), st.cfg.orphan_sweep);
    loop {
        interval.tick().await;
        if parked.due(Ms::now()) {
            tokio::spawn(st.clone().retry_parked());
        }
        if sweep.due(Ms::now()) {
            tokio::spawn(st.clone().sweep_orphans());
        }
        let actions = match st.store.claim_due(Ms::now()).await {
            Ok(actions) => actions,
            Err(e) => {
                tracing::warn!(error = %e, "reaper: store unavailable");
                continue;
            }
        };
        for action in actions {
            let st = st.clone();
            crate::metrics::stream_reaped();
            tracing::info!(stream_id = %action.stream_id, reason = action.reason.as_str(), attempt = action.attempt, "reaping stream");
            tokio::spawn(async move {
                let _ = st.delete_upstream(&action.stream_id, action.attempt).await;
            });
        }
    }
}
