//! What durability costs, from one run:
//! - ingest throughput through `Ingest.Stream` on a real server with
//!   durability off and with each fsync policy (`never`, `interval`,
//!   `always`), rounds alternated so that every setting sees the same machine;
//! - snapshot time and size, and recovery time, for `MORA_DURABILITY_DEBTORS`
//!   debtors (1,000,000 by default) with the typical 20-event history;
//! - log replay speed: recovery from the log alone.
//!
//! Server and client share the process on two one-thread runtimes, one core
//! each; the snapshot and recovery parts run on the calling thread.
//!
//! ```text
//! cargo bench --bench durability
//! MORA_DURABILITY_DEBTORS=10000000 MORA_DURABILITY_INGEST=0 cargo bench --bench durability
//! ```

mod common;

use std::time::{Duration, Instant};

use common::*;
use mora::durability::{self, DurabilityConfig, FsyncPolicy};
use mora::events::{Event, UnixTime};
use mora::state::Store;
use tonic::transport::Channel;

/// One durability setting of the ingest comparison.
#[derive(Clone, Copy)]
enum Setting {
    Off,
    On(FsyncPolicy),
}

impl Setting {
    fn name(self) -> &'static str {
        match self {
            Setting::Off => "durability off",
            Setting::On(FsyncPolicy::Never) => "fsync never",
            Setting::On(FsyncPolicy::Interval) => "fsync interval (group commit, 2 ms)",
            Setting::On(FsyncPolicy::Always) => "fsync always",
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Events/s of one ingest of the simulated portfolio into a fresh server.
fn ingest_once(setting: Setting, debtors: usize, batch_events: usize) -> f64 {
    let bench = BenchServer::start_with(|config| match setting {
        Setting::Off => config.durability.enabled = false,
        Setting::On(policy) => config.durability.fsync = policy,
    });
    let address = bench.address.clone();
    let (events, took) = client_runtime().block_on(async move {
        let channel = Channel::from_shared(address)
            .unwrap()
            .connect()
            .await
            .unwrap();
        ingest(channel, debtors, batch_events).await
    });
    bench.shutdown();
    events as f64 / took.as_secs_f64()
}

fn compare_ingest(debtors: usize, batch_events: usize, rounds: usize) {
    let settings = [
        Setting::Off,
        Setting::On(FsyncPolicy::Never),
        Setting::On(FsyncPolicy::Interval),
        Setting::On(FsyncPolicy::Always),
    ];
    println!(
        "ingest: {debtors} simulated debtors, {batch_events} events per batch, one stream, \
         {rounds} rounds alternating the settings; medians"
    );
    let mut rates = vec![Vec::new(); settings.len()];
    for _ in 0..rounds {
        for (i, setting) in settings.iter().enumerate() {
            rates[i].push(ingest_once(*setting, debtors, batch_events));
        }
    }
    let off = median(rates[0].clone());
    for (setting, rates) in settings.iter().zip(rates) {
        let rate = median(rates);
        println!(
            "  {:<38} {:>10.0} events/s  ({:.2}x durability off)",
            setting.name(),
            rate,
            rate / off
        );
    }
}

fn config() -> DurabilityConfig {
    DurabilityConfig {
        fsync: FsyncPolicy::Never,
        ..DurabilityConfig::default()
    }
}

fn recover(dir: &std::path::Path) -> (Store, durability::RecoveryReport) {
    let store = Store::new();
    let (journal, report) =
        durability::recover(dir, &store, &config(), 0, &|_, _| {}).expect("recovery");
    journal.close().unwrap();
    (store, report)
}

fn snapshot_and_recover(debtors: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new();
    let started = Instant::now();
    for d in 0..debtors {
        for event in typical(d) {
            store.apply(&event).unwrap();
        }
    }
    println!(
        "state: {debtors} debtors with the typical 20-event history, loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (journal, _) = durability::recover(dir.path(), &Store::new(), &config(), 0, &|_, _| {})
        .expect("an empty state directory");
    let report = journal.snapshot(&store).expect("snapshot");
    journal.close().unwrap();
    drop(journal);
    println!(
        "  snapshot: {:.2} s, {:.0} MB ({:.0} bytes per debtor)",
        report.elapsed.as_secs_f64(),
        report.written.bytes as f64 / 1e6,
        report.written.bytes as f64 / debtors as f64
    );
    drop(store);

    let (recovered, recovery) = recover(dir.path());
    assert_eq!(recovered.len(), debtors);
    println!(
        "  recovery from the snapshot: {:.2} s ({:.0} debtors/s)",
        recovery.elapsed.as_secs_f64(),
        debtors as f64 / recovery.elapsed.as_secs_f64()
    );
}

fn replay_log(debtors: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new();
    let (journal, _) = durability::recover(dir.path(), &store, &config(), 0, &|_, _| {})
        .expect("an empty state directory");
    let started = Instant::now();
    let mut batch: Vec<Event> = Vec::with_capacity(1000);
    let mut events = 0;
    for d in 0..debtors {
        for event in typical(d) {
            batch.push(event);
            if batch.len() == 1000 {
                let append = journal.begin();
                for e in &batch {
                    store.apply(e).unwrap();
                }
                append.append(UnixTime::now(), &batch).unwrap();
                events += batch.len();
                batch.clear();
            }
        }
    }
    let logged = started.elapsed();
    journal.close().unwrap();
    drop(journal);
    drop(store);
    let (_recovered, report) = recover(dir.path());
    println!(
        "log: {events} events applied and logged in {:.2} s ({:.0} events/s, fsync never); \
         replayed by recovery in {:.2} s ({:.0} events/s)",
        logged.as_secs_f64(),
        events as f64 / logged.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        report.events_replayed as f64 / report.elapsed.as_secs_f64()
    );
}

fn main() {
    let debtors = setting("MORA_DURABILITY_DEBTORS", 1_000_000);
    let ingest_debtors = setting("MORA_DURABILITY_INGEST", 20_000);
    let rounds = setting("MORA_DURABILITY_ROUNDS", 3);
    let batch_events = setting("MORA_BENCH_BATCH_EVENTS", 1_000);
    let started = Instant::now();
    if ingest_debtors > 0 {
        compare_ingest(ingest_debtors, batch_events, rounds);
    }
    snapshot_and_recover(debtors);
    replay_log(setting("MORA_DURABILITY_LOG_DEBTORS", 100_000));
    println!(
        "(whole run {:.0} s)",
        Duration::as_secs_f64(&started.elapsed())
    );
}
