//! Metric names and descriptions, the Prometheus recorder, and tracing set-up.
//!
//! Every metric is named here, as `mora_<name>_<unit>`, with labels drawn only
//! from closed sets (event kind, RPC method, gRPC code, model kind). Hot paths
//! record once per batch or request, never per event.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

use crate::events::{Channel, Event, EventKind, EventKindName, UnixTime};

/// Events applied for the first time, by `kind`.
pub const EVENTS_APPLIED: &str = "mora_events_applied_total";
/// Events ignored because their id was already applied, by `kind`.
pub const EVENTS_DUPLICATE: &str = "mora_events_duplicate_total";
/// Events refused, by `kind` (`unknown` when the kind itself is missing).
pub const EVENTS_REJECTED: &str = "mora_events_rejected_total";
/// Events per ingested batch.
pub const INGEST_BATCH_EVENTS: &str = "mora_ingest_batch_events";
/// Time to handle one RPC (one batch for `Ingest.Stream`), by `method`.
pub const RPC_DURATION: &str = "mora_rpc_duration_seconds";
/// RPCs (stream batches) finished, by `method` and gRPC `code`.
pub const RPC_REQUESTS: &str = "mora_rpc_requests_total";
/// Debtors held in state.
pub const DEBTORS: &str = "mora_debtors";
/// 1 for each model serving in a `role` (active, shadow), by `kind`,
/// `version` and `role`; 0 once it no longer does.
pub const MODEL_INFO: &str = "mora_model_info";
/// Model uploads, by `kind` and `outcome` (accepted or the failed check).
pub const MODEL_UPLOADS: &str = "mora_model_uploads_total";
/// Time since the model serving in `role` was trained, by `kind`.
pub const MODEL_AGE: &str = "mora_model_age_seconds";
/// |shadow − active| probability on the requests scored by both, by `kind`.
pub const SHADOW_DIFFERENCE: &str = "mora_shadow_abs_difference";
/// Time the shadow model took to predict, by `kind`.
pub const SHADOW_PREDICT_DURATION: &str = "mora_shadow_predict_seconds";
/// Share of the snapshot and log read by the recovery in progress (1 once
/// done).
pub const RECOVERY_PROGRESS: &str = "mora_recovery_progress_ratio";
/// Time the last recovery took.
pub const RECOVERY_DURATION: &str = "mora_recovery_duration_seconds";
/// Bytes cut from a damaged end of the write-ahead log at recovery.
pub const WAL_CUT_BYTES: &str = "mora_wal_cut_bytes_total";
/// Snapshots attempted, by `outcome` (ok, failed).
pub const SNAPSHOTS: &str = "mora_snapshots_total";
/// Time the last snapshot took to write.
pub const SNAPSHOT_DURATION: &str = "mora_snapshot_duration_seconds";
/// Size of the last snapshot written.
pub const SNAPSHOT_SIZE: &str = "mora_snapshot_size_bytes";
/// Debtors evicted as idle with nothing owed.
pub const DEBTORS_EVICTED: &str = "mora_debtors_evicted_total";
/// Server time at apply minus the `occurred_at` of each batch's latest event.
pub const EVENT_LAG: &str = "mora_event_lag_seconds";
/// Resident memory of the process, almost all of it debtor state.
pub const RESIDENT_MEMORY: &str = "mora_process_resident_memory_bytes";
/// Probabilities the models answer with, by `kind` and `role`: a drift signal.
pub const MODEL_PROBABILITY: &str = "mora_model_probability_ratio";
/// Contact attempts applied, by `channel`.
pub const CONTACT_ATTEMPTS: &str = "mora_contact_attempts_total";
/// Contact attempts that reached the debtor, by `channel`.
pub const CONTACT_SUCCESSES: &str = "mora_contact_successes_total";
/// Payments applied.
pub const PAYMENTS: &str = "mora_payments_total";
/// Sum of applied payments in minor units, all currencies added up.
pub const PAYMENT_AMOUNT: &str = "mora_payment_amount_minor_units_total";
/// Promises to pay applied.
pub const PROMISES_MADE: &str = "mora_promises_made_total";
/// Promises across all debtors by `state` (kept, broken, pending), as of the
/// latest sweep.
pub const PROMISES: &str = "mora_promises";

/// Calls refused before reaching a service, by `reason` (unauthenticated,
/// permission_denied).
pub const AUTH_REFUSALS: &str = "mora_auth_refusals_total";
/// Requests refused because a limit of concurrent work was reached, by
/// `pool` (requests, ingest_streams).
pub const REQUESTS_SHED: &str = "mora_requests_shed_total";

/// The RPCs mora serves, as a closed set of label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    IngestStream,
    IngestSend,
    Score,
    ScoreBatch,
    GetFeatures,
    ModelsUpload,
    ModelsList,
    ModelsActivate,
    ModelsRollback,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::IngestStream => "ingest_stream",
            Method::IngestSend => "ingest_send",
            Method::Score => "score",
            Method::ScoreBatch => "score_batch",
            Method::GetFeatures => "get_features",
            Method::ModelsUpload => "models_upload",
            Method::ModelsList => "models_list",
            Method::ModelsActivate => "models_activate",
            Method::ModelsRollback => "models_rollback",
        }
    }
}

/// Measures one RPC; call [`RpcTimer::finish`] with the gRPC code name.
#[must_use]
pub struct RpcTimer {
    method: Method,
    started: Instant,
}

impl RpcTimer {
    /// Starts timing `method`.
    pub fn start(method: Method) -> Self {
        RpcTimer {
            method,
            started: Instant::now(),
        }
    }

    /// Records the duration and the outcome, e.g. `"ok"` or `"invalid_argument"`.
    pub fn finish(self, code: &'static str) {
        let method = self.method.as_str();
        histogram!(RPC_DURATION, "method" => method).record(self.started.elapsed().as_secs_f64());
        counter!(RPC_REQUESTS, "method" => method, "code" => code).increment(1);
    }
}

/// Outcomes of one batch's events, by kind, recorded once per batch.
#[derive(Debug, Default)]
pub struct BatchTally {
    applied: [u64; EventKindName::COUNT],
    duplicate: [u64; EventKindName::COUNT],
    rejected: [u64; EventKindName::COUNT],
    rejected_unknown_kind: u64,
    contact_attempts: [u64; 4],
    contact_successes: [u64; 4],
    payment_minor: i64,
    latest_event: Option<UnixTime>,
}

impl BatchTally {
    /// Counts one applied event, and what it means for collection.
    pub fn applied(&mut self, event: &Event) {
        self.applied[event.kind.name().index()] += 1;
        self.latest_event = self.latest_event.max(Some(event.occurred_at));
        match &event.kind {
            EventKind::Contact { channel, outcome } => {
                self.contact_attempts[channel.index()] += 1;
                if outcome.is_success_on(*channel) {
                    self.contact_successes[channel.index()] += 1;
                }
            }
            EventKind::Payment { amount, .. } => {
                self.payment_minor = self.payment_minor.saturating_add(amount.minor_units);
            }
            _ => {}
        }
    }

    /// Counts one duplicate event.
    pub fn duplicate(&mut self, kind: EventKindName) {
        self.duplicate[kind.index()] += 1;
    }

    /// Counts one rejected event, of a known kind or not.
    pub fn rejected(&mut self, kind: Option<EventKindName>) {
        match kind {
            Some(kind) => self.rejected[kind.index()] += 1,
            None => self.rejected_unknown_kind += 1,
        }
    }

    /// Publishes the tally and the batch size; `now` is the server time of
    /// the apply.
    pub fn record(&self, batch_events: usize, debtors: usize, now: UnixTime) {
        for kind in EventKindName::ALL {
            let label = kind.as_str();
            let i = kind.index();
            counter!(EVENTS_APPLIED, "kind" => label).increment(self.applied[i]);
            counter!(EVENTS_DUPLICATE, "kind" => label).increment(self.duplicate[i]);
            counter!(EVENTS_REJECTED, "kind" => label).increment(self.rejected[i]);
        }
        counter!(EVENTS_REJECTED, "kind" => "unknown").increment(self.rejected_unknown_kind);
        histogram!(INGEST_BATCH_EVENTS).record(batch_events as f64);
        gauge!(DEBTORS).set(debtors as f64);
        for channel in Channel::ALL {
            let (i, label) = (channel.index(), channel.name());
            counter!(CONTACT_ATTEMPTS, "channel" => label).increment(self.contact_attempts[i]);
            counter!(CONTACT_SUCCESSES, "channel" => label).increment(self.contact_successes[i]);
        }
        counter!(PAYMENTS).increment(self.applied[EventKindName::Payment.index()]);
        counter!(PAYMENT_AMOUNT).increment(self.payment_minor.max(0) as u64);
        counter!(PROMISES_MADE).increment(self.applied[EventKindName::Promise.index()]);
        if let Some(latest) = self.latest_event {
            histogram!(EVENT_LAG).record((now.0 - latest.0).max(0) as f64);
        }
    }
}

/// Publishes a probability a model answered with, `role` being `active` or
/// `shadow`.
pub fn record_probability(kind: &'static str, role: &'static str, probability: f64) {
    histogram!(MODEL_PROBABILITY, "kind" => kind, "role" => role).record(probability);
}

/// Publishes the promises of all debtors as of a sweep.
pub fn record_promises(kept: u64, broken: u64, pending: u64) {
    for (state, count) in [("kept", kept), ("broken", broken), ("pending", pending)] {
        gauge!(PROMISES, "state" => state).set(count as f64);
    }
}

/// Resident memory of this process from `/proc/self/statm`, where it exists.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0)
}

/// Refreshes the series read from the process or the clock; called before
/// each scrape.
pub fn refresh_before_scrape() {
    refresh_model_age();
    if let Some(bytes) = resident_bytes() {
        gauge!(RESIDENT_MEMORY).set(bytes);
    }
}

/// Publishes how far the recovery in progress has read.
pub fn record_recovery_progress(ratio: f64) {
    gauge!(RECOVERY_PROGRESS).set(ratio.clamp(0.0, 1.0));
}

/// Publishes a finished recovery.
pub fn record_recovery(seconds: f64, cut_bytes: u64, debtors: usize) {
    gauge!(RECOVERY_PROGRESS).set(1.0);
    gauge!(RECOVERY_DURATION).set(seconds);
    counter!(WAL_CUT_BYTES).increment(cut_bytes);
    gauge!(DEBTORS).set(debtors as f64);
}

/// Publishes one snapshot attempt: its time and size when it was written.
pub fn record_snapshot(written: Option<(f64, u64)>) {
    match written {
        Some((seconds, bytes)) => {
            counter!(SNAPSHOTS, "outcome" => "ok").increment(1);
            gauge!(SNAPSHOT_DURATION).set(seconds);
            gauge!(SNAPSHOT_SIZE).set(bytes as f64);
        }
        None => counter!(SNAPSHOTS, "outcome" => "failed").increment(1),
    }
}

/// Publishes one eviction sweep.
pub fn record_eviction(evicted: usize, debtors: usize) {
    counter!(DEBTORS_EVICTED).increment(evicted as u64);
    gauge!(DEBTORS).set(debtors as f64);
}

/// Creation times of the models serving now, by kind and role, for
/// [`refresh_model_age`].
static MODEL_CREATED: std::sync::Mutex<Vec<(&'static str, &'static str, i64)>> =
    std::sync::Mutex::new(Vec::new());

/// Marks `version` as serving `kind` in `role` (`active` or `shadow`).
pub fn record_model_role(kind: &'static str, version: &str, role: &'static str, created_at: i64) {
    gauge!(MODEL_INFO, "kind" => kind, "version" => version.to_owned(), "role" => role).set(1.0);
    let mut created = MODEL_CREATED.lock().unwrap_or_else(|e| e.into_inner());
    created.retain(|(k, r, _)| (*k, *r) != (kind, role));
    created.push((kind, role, created_at));
    drop(created);
    refresh_model_age();
}

/// Marks `version` as no longer serving `kind` in `role`.
pub fn clear_model_role(kind: &'static str, version: &str, role: &'static str) {
    gauge!(MODEL_INFO, "kind" => kind, "version" => version.to_owned(), "role" => role).set(0.0);
    if role == "shadow" {
        let mut created = MODEL_CREATED.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|(k, r, _)| (*k, *r) != (kind, role));
    }
}

/// Counts one call refused for its credentials.
pub fn record_auth_refusal(reason: &'static str) {
    counter!(AUTH_REFUSALS, "reason" => reason).increment(1);
}

/// Counts one request refused by load shedding.
pub fn record_shed(pool: &'static str) {
    counter!(REQUESTS_SHED, "pool" => pool).increment(1);
}

/// Counts one model upload by its outcome.
pub fn record_model_upload(kind: &'static str, outcome: &'static str) {
    counter!(MODEL_UPLOADS, "kind" => kind, "outcome" => outcome).increment(1);
}

/// Sets the age of every serving model from the current time; called before
/// each scrape.
pub fn refresh_model_age() {
    let now = chrono::Utc::now().timestamp();
    let created = MODEL_CREATED.lock().unwrap_or_else(|e| e.into_inner());
    for (kind, role, at) in created.iter() {
        gauge!(MODEL_AGE, "kind" => *kind, "role" => *role).set((now - at) as f64);
    }
}

/// Records one shadow prediction beside the active one.
pub fn record_shadow(kind: &'static str, abs_difference: f64, seconds: f64) {
    histogram!(SHADOW_DIFFERENCE, "kind" => kind).record(abs_difference);
    histogram!(SHADOW_PREDICT_DURATION, "kind" => kind).record(seconds);
}

/// Installs the process-wide Prometheus recorder once and returns its handle.
/// Every server in the process renders from this one registry.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                    0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(INGEST_BATCH_EVENTS.into()),
                    &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(EVENT_LAG.into()),
                    &[
                        1.0,
                        10.0,
                        60.0,
                        300.0,
                        900.0,
                        3_600.0,
                        21_600.0,
                        86_400.0,
                        604_800.0,
                        2_592_000.0,
                    ],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(MODEL_PROBABILITY.into()),
                    &[0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(SHADOW_DIFFERENCE.into()),
                    &[0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                )
            })
            .expect("bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may only exist if an embedding program installed
        // one; mora's own metrics then go there and this handle renders none.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        EVENTS_APPLIED,
        Unit::Count,
        "Events applied to state for the first time, by kind."
    );
    describe_counter!(
        EVENTS_DUPLICATE,
        Unit::Count,
        "Events ignored because their event_id was already applied, by kind."
    );
    describe_counter!(
        EVENTS_REJECTED,
        Unit::Count,
        "Events refused with a reason, by kind (unknown when the kind is missing)."
    );
    describe_histogram!(
        INGEST_BATCH_EVENTS,
        Unit::Count,
        "Events per ingested batch."
    );
    describe_histogram!(
        RPC_DURATION,
        Unit::Seconds,
        "Time to handle one RPC, or one batch of Ingest.Stream, by method."
    );
    describe_counter!(
        RPC_REQUESTS,
        Unit::Count,
        "RPCs (and Ingest.Stream batches) handled, by method and gRPC code."
    );
    describe_counter!(
        AUTH_REFUSALS,
        Unit::Count,
        "Calls refused for a missing, unknown or insufficient token, by reason."
    );
    describe_counter!(
        REQUESTS_SHED,
        Unit::Count,
        "Requests refused with RESOURCE_EXHAUSTED because a concurrency limit was reached, by pool."
    );
    describe_gauge!(DEBTORS, Unit::Count, "Debtors held in state.");
    describe_gauge!(
        RECOVERY_PROGRESS,
        "Share of the snapshot and write-ahead log read by recovery; 1 once done."
    );
    describe_gauge!(
        RECOVERY_DURATION,
        Unit::Seconds,
        "Time the last recovery of debtor state took."
    );
    describe_counter!(
        WAL_CUT_BYTES,
        Unit::Bytes,
        "Bytes cut from a torn or corrupt end of the write-ahead log at recovery."
    );
    describe_counter!(
        SNAPSHOTS,
        Unit::Count,
        "State snapshots attempted, by outcome (ok, failed)."
    );
    describe_gauge!(
        SNAPSHOT_DURATION,
        Unit::Seconds,
        "Time the last state snapshot took to write."
    );
    describe_gauge!(
        SNAPSHOT_SIZE,
        Unit::Bytes,
        "Size of the last state snapshot."
    );
    describe_histogram!(
        EVENT_LAG,
        Unit::Seconds,
        "Server time at apply minus occurred_at of the latest event of each batch."
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the process, almost all of it debtor state."
    );
    describe_histogram!(
        MODEL_PROBABILITY,
        "Probabilities answered, by model kind and role (active, shadow): p_pay of \
         known debtors, p_success of a contact plan's best slot."
    );
    describe_counter!(
        CONTACT_ATTEMPTS,
        Unit::Count,
        "Contact attempts applied, by channel."
    );
    describe_counter!(
        CONTACT_SUCCESSES,
        Unit::Count,
        "Contact attempts that reached the debtor, by channel."
    );
    describe_counter!(PAYMENTS, Unit::Count, "Payments applied.");
    describe_counter!(
        PAYMENT_AMOUNT,
        Unit::Count,
        "Sum of applied payments in minor units, all currencies added up."
    );
    describe_counter!(PROMISES_MADE, Unit::Count, "Promises to pay applied.");
    describe_gauge!(
        PROMISES,
        Unit::Count,
        "Promises across all debtors by state (kept, broken, pending), as of the latest sweep."
    );
    describe_counter!(
        DEBTORS_EVICTED,
        Unit::Count,
        "Debtors evicted because they owed nothing and had no recent event."
    );
    describe_gauge!(
        MODEL_INFO,
        Unit::Count,
        "1 for each model serving in a role (active, shadow), by kind, version and role; 0 once replaced."
    );
    describe_counter!(
        MODEL_UPLOADS,
        Unit::Count,
        "Model uploads, by kind and outcome (accepted, or the check that failed)."
    );
    describe_gauge!(
        MODEL_AGE,
        Unit::Seconds,
        "Time since the model serving in a role was trained, by kind and role."
    );
    describe_histogram!(
        SHADOW_DIFFERENCE,
        "Absolute difference between the shadow and the active model's probability, by kind."
    );
    describe_histogram!(
        SHADOW_PREDICT_DURATION,
        Unit::Seconds,
        "Time the shadow model took to predict, by kind."
    );
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber: `info` unless `RUST_LOG` says otherwise.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never in files or collectors.
    let is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(is_terminal)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
