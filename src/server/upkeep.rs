//! State upkeep beside the services: recovery of the debtor state at start,
//! then, on schedule, snapshots and sweeps over all debtors (eviction of idle
//! ones, promise counts for the metrics).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::api::readiness::Readiness;
use crate::config::Config;
use crate::durability::{self, DurabilityError, Journal};
use crate::events::UnixTime;
use crate::state::Store;
use crate::telemetry;

/// Writes a snapshot, logging and publishing the outcome.
pub(super) fn snapshot(journal: &Journal, store: &Store) {
    match journal.snapshot(store) {
        Ok(report) => {
            let seconds = report.elapsed.as_secs_f64();
            telemetry::record_snapshot(Some((seconds, report.written.bytes)));
            tracing::info!(
                debtors = report.written.debtors,
                bytes = report.written.bytes,
                lsn = report.written.lsn,
                seconds,
                segments_removed = report.segments_removed,
                "Snapshot written"
            );
        }
        Err(error) => {
            telemetry::record_snapshot(None);
            tracing::error!(%error, "Snapshot failed; the write-ahead log keeps growing");
        }
    }
}

/// Rebuilds the store from `<data_dir>/state`, opens the log, and publishes
/// the journal; logs what recovery found.
fn recover(config: &Config, store: &Store) -> Result<Journal, DurabilityError> {
    let dir = config.data_dir.join("state");
    tracing::info!(dir = %dir.display(), "Recovering debtor state");
    let last_logged = std::sync::Mutex::new(Instant::now());
    let progress = |done: u64, total: u64| {
        let ratio = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        telemetry::record_recovery_progress(ratio);
        let mut last = last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            tracing::info!(percent = format!("{:.0}", 100.0 * ratio), "Recovering");
        }
    };
    let (journal, report) = durability::recover(
        &dir,
        store,
        &config.durability,
        config.ingest.dedup_epoch_secs(),
        &progress,
    )?;
    if let Some((bytes, damage)) = report.cut {
        tracing::warn!(
            bytes,
            damage = ?damage,
            "Write-ahead log damaged: cut after its last valid record"
        );
    }
    if report.missing > 0 {
        tracing::error!(
            bytes = report.missing,
            "Write-ahead log missing between the snapshot and its start; those events are lost"
        );
    }
    telemetry::record_recovery(
        report.elapsed.as_secs_f64(),
        report.cut.map_or(0, |(bytes, _)| bytes),
        store.len(),
    );
    tracing::info!(
        debtors = store.len(),
        snapshot_lsn = report.snapshot.map(|s| s.lsn),
        damaged_snapshots = report.damaged_snapshots.len(),
        records_replayed = report.records_replayed,
        events_replayed = report.events_replayed,
        seconds = report.elapsed.as_secs_f64(),
        "Recovered"
    );
    Ok(journal)
}

/// Recovers the state, then snapshots and evicts on schedule until `stop`.
pub(super) async fn upkeep(
    config: Config,
    store: Arc<Store>,
    slot: Arc<OnceLock<Arc<Journal>>>,
    readiness: Readiness,
    mut stop: watch::Receiver<bool>,
) {
    if config.durability.enabled {
        let (recovering, config_for_recovery) = (store.clone(), config.clone());
        let recovered =
            tokio::task::spawn_blocking(move || recover(&config_for_recovery, &recovering)).await;
        match recovered {
            Ok(Ok(journal)) => {
                let _ = slot.set(Arc::new(journal));
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "Recovery failed; ingest and scoring stay unavailable");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "Recovery task failed; ingest and scoring stay unavailable");
                return;
            }
        }
    } else {
        tracing::warn!("Durability is off: debtor state lives in memory only");
    }
    readiness.recovered().await;

    let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    let snapshot_every =
        every(config.durability.snapshot_interval_secs).filter(|_| slot.get().is_some());
    let sweep_every = every(config.state.sweep_interval_secs);
    let mut next_snapshot = snapshot_every.map(|d| tokio::time::Instant::now() + d);
    let mut next_sweep = sweep_every.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next = [next_snapshot, next_sweep].into_iter().flatten().min();
        let wake = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let now = tokio::time::Instant::now();
        if let (Some(at), Some(period)) = (next_sweep, sweep_every)
            && at <= now
        {
            let (store, idle_days) = (store.clone(), config.state.evict_idle_days);
            let _ = tokio::task::spawn_blocking(move || sweep(&store, idle_days)).await;
            next_sweep = Some(now + period);
        }
        if let (Some(at), Some(period), Some(journal)) = (next_snapshot, snapshot_every, slot.get())
            && at <= now
        {
            let (store, journal) = (store.clone(), journal.clone());
            let _ = tokio::task::spawn_blocking(move || snapshot(&journal, &store)).await;
            next_snapshot = Some(tokio::time::Instant::now() + period);
        }
    }
}

/// Evicts the debtors idle for `idle_days` (0: none) that owe nothing, and
/// publishes the promises of the rest.
fn sweep(store: &Store, idle_days: u32) {
    let now = UnixTime::now();
    if idle_days > 0 {
        let evicted = store.evict_idle(now.plus_days(-i64::from(idle_days)), now);
        telemetry::record_eviction(evicted, store.len());
        if evicted > 0 {
            tracing::info!(evicted, debtors = store.len(), "Idle debtors evicted");
        }
    }
    let (mut kept, mut broken, mut pending) = (0u64, 0u64, 0u64);
    store.for_each(|_, debtor| {
        let promises = debtor.promises(now);
        kept += u64::from(promises.kept);
        broken += u64::from(promises.broken);
        pending += u64::from(promises.pending);
    });
    telemetry::record_promises(kept, broken, pending);
}
