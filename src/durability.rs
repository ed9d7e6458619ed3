//! Durable state: a write-ahead log of accepted batches, periodic snapshots
//! of the store, and recovery from both at start.
//!
//! Invariants: a batch is applied and then appended to the log under one
//! lock, so the log's order is the apply order and every batch applied before
//! a position is logged before it; an acknowledgement is sent only once the
//! log is durable up to its batch (by the [`FsyncPolicy`]); recovery replays
//! nothing past a damaged record. Replaying an event the snapshot already
//! holds is harmless, because applying an event twice changes nothing.
//!
//! Layout under `<data_dir>/state/`: `wal-<lsn>.log` segments,
//! `snapshot-<lsn>.snap` files (see [`wal`] and [`snapshot`]), and `LOCK`,
//! held by the one process using the directory.

pub mod snapshot;
#[cfg(test)]
mod tests;
pub mod wal;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::state::{DedupEpoch, Store};
use wal::{AppendGuard, Damage, Lsn, Wal};

/// When appended log bytes are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Each acknowledgement waits for an fsync that covers its batch
    /// (concurrent batches share one).
    Always,
    /// Group commit: an fsync every `fsync_interval_ms`; acknowledgements
    /// wait for the one that covers their batch.
    Interval,
    /// No fsync: batches are written to the operating system before they
    /// are acknowledged, so they survive the process being killed, but not a
    /// power cut or a kernel crash. For tests and benchmarks.
    Never,
}

/// Durability settings (`[durability]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DurabilityConfig {
    /// Whether debtor state is logged and snapshotted under
    /// `<data_dir>/state`; when off, it lives in memory only.
    pub enabled: bool,
    pub fsync: FsyncPolicy,
    /// Group-commit period for `fsync = "interval"`, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Size at which a log segment is closed and a new one begun.
    pub segment_bytes: u64,
    /// Seconds between snapshots; 0 snapshots only at shutdown.
    pub snapshot_interval_secs: u64,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig {
            enabled: true,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 2,
            segment_bytes: 64 << 20,
            snapshot_interval_secs: 300,
        }
    }
}

/// Why state could not be made durable or recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityError {
    #[error("state storage: {0}")]
    Io(String),
    #[error("encoding state: {0}")]
    Encode(String),
    /// Another process holds the state directory.
    #[error("{0} is in use by another mora process")]
    Locked(PathBuf),
    /// An earlier write or fsync failed; nothing more is acknowledged until a
    /// restart recovers from what is on disk.
    #[error("the write-ahead log failed earlier; restart the server to recover")]
    Failed,
}

/// Makes the entries of `dir` durable (after a create, rename or remove).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// How long dedup epochs last for a late-event horizon of `horizon_secs`
/// (0: ids are never forgotten): the horizon, plus the allowed clock skew,
/// plus a day of margin for snapshots taken while ids are being forgotten.
pub fn dedup_epoch_secs(horizon_secs: i64, max_clock_skew_secs: i64) -> i64 {
    if horizon_secs <= 0 {
        return 0;
    }
    horizon_secs + max_clock_skew_secs.max(0) + crate::events::SECONDS_PER_DAY
}

/// An open log and the snapshots beside it.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    wal: Wal,
    /// Held locked for as long as the journal is open.
    _lock: File,
    /// One snapshot at a time.
    snapshotting: Mutex<()>,
}

/// What a snapshot took and produced.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    pub written: snapshot::Written,
    pub elapsed: Duration,
    pub segments_removed: usize,
}

impl Journal {
    /// Takes the right to append: apply a batch while holding it, then append.
    pub fn begin(&self) -> AppendGuard<'_> {
        self.wal.begin()
    }

    /// Waits until the log is durable up to `lsn`.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), DurabilityError> {
        self.wal.wait_durable(lsn).await
    }

    /// Writes a snapshot of `store`, then removes what it makes redundant:
    /// snapshots but the newest two, and log segments the older of those
    /// covers (so that a damaged newest snapshot can fall back on it).
    pub fn snapshot(&self, store: &Store) -> Result<SnapshotReport, DurabilityError> {
        let _one_at_a_time = self.snapshotting.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let lsn = self.wal.end();
        let written = snapshot::write(&self.dir, store, lsn)?;

        let io = |e: io::Error| DurabilityError::Io(format!("removing old snapshots: {e}"));
        let kept = snapshot::snapshots(&self.dir).map_err(io)?;
        for (_, path) in kept.iter().skip(2) {
            fs::remove_file(path).map_err(io)?;
        }
        let oldest_kept = kept
            .iter()
            .take(2)
            .map(|(lsn, _)| *lsn)
            .min()
            .unwrap_or(lsn);
        let segments_removed = self.wal.remove_covered(oldest_kept)?;
        Ok(SnapshotReport {
            written,
            elapsed: started.elapsed(),
            segments_removed,
        })
    }

    /// Makes every appended batch durable and stops the log's sync thread.
    pub fn close(&self) -> Result<(), DurabilityError> {
        self.wal.close()
    }
}

/// What recovery found and did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// The snapshot recovery started from, if any was valid.
    pub snapshot: Option<snapshot::Loaded>,
    /// Snapshots skipped as damaged, with why.
    pub damaged_snapshots: Vec<String>,
    pub records_replayed: u64,
    pub events_replayed: u64,
    /// Bytes cut from the end of the log, and why.
    pub cut: Option<(u64, Damage)>,
    /// Bytes of log missing between the snapshot and the log's start.
    pub missing: u64,
    pub elapsed: Duration,
}

/// Progress of a recovery, for logs and metrics.
pub trait RecoveryProgress {
    /// `done` of `total` bytes (snapshot, then log) have been read.
    fn advanced(&self, done: u64, total: u64);
}

impl<F: Fn(u64, u64)> RecoveryProgress for F {
    fn advanced(&self, done: u64, total: u64) {
        self(done, total)
    }
}

/// Rebuilds `store` (empty) from the newest valid snapshot in `dir` and the
/// log after it, cuts any damaged log tail, and opens the log for appending.
pub fn recover(
    dir: &Path,
    store: &Store,
    config: &DurabilityConfig,
    epoch_secs: i64,
    progress: &dyn RecoveryProgress,
) -> Result<(Journal, RecoveryReport), DurabilityError> {
    let started = Instant::now();
    let io = |what: &str, e: io::Error| DurabilityError::Io(format!("{what}: {e}"));
    fs::create_dir_all(dir).map_err(|e| io("creating the state directory", e))?;
    let lock = File::create(dir.join("LOCK")).map_err(|e| io("creating the lock file", e))?;
    if lock.try_lock().is_err() {
        return Err(DurabilityError::Locked(dir.to_owned()));
    }
    for entry in fs::read_dir(dir).map_err(|e| io("listing the state directory", e))? {
        let path = entry
            .map_err(|e| io("listing the state directory", e))?
            .path();
        if path.extension().is_some_and(|x| x == "tmp") {
            fs::remove_file(&path).map_err(|e| io("removing an unfinished snapshot", e))?;
        }
    }

    let size = |path: &Path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let log_bytes: u64 = wal::segments(dir)
        .map_err(|e| io("listing log segments", e))?
        .iter()
        .map(|(_, p)| size(p))
        .sum();
    let mut report = RecoveryReport::default();
    let mut from = 0;
    let mut snapshot_bytes = 0;
    for (_, path) in snapshot::snapshots(dir).map_err(|e| io("listing snapshots", e))? {
        snapshot_bytes = size(&path);
        let total = snapshot_bytes + log_bytes;
        match snapshot::load(&path, store, |done| progress.advanced(done, total)) {
            Ok(loaded) => {
                from = loaded.lsn;
                report.snapshot = Some(loaded);
                break;
            }
            Err(error) => {
                tracing::error!(%error, "Snapshot damaged; falling back to the one before");
                report.damaged_snapshots.push(error.to_string());
                store.clear();
            }
        }
    }

    if report.snapshot.is_none() {
        snapshot_bytes = 0;
    }
    let total = snapshot_bytes + log_bytes;
    let tail = wal::replay(dir, from, |lsn, batch| {
        let epoch = DedupEpoch::at(batch.applied_at, epoch_secs);
        for event in &batch.events {
            // Logged events applied once already; refusing them now (a lower
            // debtor limit, say) would lose acknowledged data.
            let _ = store.replay_in(event, epoch);
        }
        report.records_replayed += 1;
        report.events_replayed += batch.events.len() as u64;
        progress.advanced(snapshot_bytes + (lsn - from).min(log_bytes), total);
    })?;
    report.cut = tail.cut;
    report.missing = tail.missing;

    let wal = Wal::open(
        dir,
        tail.end,
        config.fsync,
        Duration::from_millis(config.fsync_interval_ms.max(1)),
        config.segment_bytes,
    )?;
    report.elapsed = started.elapsed();
    let journal = Journal {
        dir: dir.to_owned(),
        wal,
        _lock: lock,
        snapshotting: Mutex::new(()),
    };
    Ok((journal, report))
}
