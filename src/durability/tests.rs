//! Log, snapshot and recovery behaviour on real files: round trips, torn and
//! corrupt tails, damaged snapshots, and ids forgotten by epoch.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::wal::{self, Damage};
use super::*;
use crate::events::{Currency, Event, EventKind, Money, UnixTime, validation};

const T0: i64 = 1_767_571_200;

fn usd(minor_units: i64) -> Money {
    let currency: Currency = validation::currency("c", "USD").unwrap();
    Money {
        minor_units,
        currency,
    }
}

fn payment(id: usize, debtor: usize) -> Event {
    Event {
        event_id: format!("e-{id}"),
        debtor_id: format!("d-{debtor}"),
        occurred_at: UnixTime(T0 + id as i64),
        kind: EventKind::Payment {
            amount: usd(100),
            invoice_id: None,
        },
    }
}

fn config(fsync: FsyncPolicy) -> DurabilityConfig {
    DurabilityConfig {
        fsync,
        segment_bytes: 4096,
        ..DurabilityConfig::default()
    }
}

/// Recovers `dir` into a fresh store.
fn recover_into(dir: &Path) -> (Store, Journal, RecoveryReport) {
    let store = Store::new();
    let (journal, report) =
        recover(dir, &store, &config(FsyncPolicy::Never), 0, &|_, _| {}).unwrap();
    (store, journal, report)
}

/// Applies and logs `events` as one batch, as the ingest path does.
fn ingest(journal: &Journal, store: &Store, events: &[Event]) -> wal::Lsn {
    let append = journal.begin();
    let fresh: Vec<Event> = events
        .iter()
        .filter(|e| store.apply(e).unwrap() == crate::state::Applied::New)
        .cloned()
        .collect();
    append.append(UnixTime(T0), &fresh).unwrap()
}

fn gross_paid(store: &Store, debtor: usize) -> Option<i64> {
    store.read(&format!("d-{debtor}"), |d| d.gross_paid_minor())
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    wal::segments(dir).unwrap().pop().unwrap().1
}

#[tokio::test]
async fn the_log_replays_every_batch_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, report) = recover_into(dir.path());
    assert!(report.snapshot.is_none());
    for batch in 0..80 {
        let events: Vec<Event> = (0..5).map(|i| payment(batch * 5 + i, batch % 3)).collect();
        let lsn = ingest(&journal, &store, &events);
        journal.wait_durable(lsn).await.unwrap();
    }
    journal.close().unwrap();
    drop(journal);
    assert!(
        wal::segments(dir.path()).unwrap().len() > 2,
        "segments roll"
    );

    let (recovered, _journal, report) = recover_into(dir.path());
    assert_eq!(report.records_replayed, 80);
    assert_eq!(report.events_replayed, 400);
    assert!(report.cut.is_none());
    for debtor in 0..3 {
        assert_eq!(gross_paid(&recovered, debtor), gross_paid(&store, debtor));
    }
}

#[test]
fn a_torn_tail_is_cut_and_reported_and_later_appends_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, _) = recover_into(dir.path());
    ingest(&journal, &store, &[payment(1, 0)]);
    ingest(&journal, &store, &[payment(2, 0)]);
    journal.close().unwrap();
    drop(journal);
    let segment = last_segment(dir.path());
    let len = fs::metadata(&segment).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let (recovered, journal, report) = recover_into(dir.path());
    let (cut, damage) = report.cut.expect("the torn record is cut");
    assert_eq!(damage, Damage::Torn);
    assert!(cut > 0 && cut < len);
    assert_eq!(report.events_replayed, 1);
    assert_eq!(gross_paid(&recovered, 0), Some(100));

    // The cut log takes new batches, and the next recovery sees them whole.
    ingest(&journal, &recovered, &[payment(3, 0)]);
    journal.close().unwrap();
    drop(journal);
    let (again, _, report) = recover_into(dir.path());
    assert!(report.cut.is_none());
    assert_eq!(gross_paid(&again, 0), Some(200));
}

#[test]
fn a_flipped_byte_stops_replay_at_the_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, _) = recover_into(dir.path());
    let first = ingest(&journal, &store, &[payment(1, 0)]);
    ingest(&journal, &store, &[payment(2, 0)]);
    ingest(&journal, &store, &[payment(3, 0)]);
    journal.close().unwrap();
    drop(journal);

    // Flip one payload byte of the second record.
    let (start, segment) = wal::segments(dir.path()).unwrap().pop().unwrap();
    let mut file = OpenOptions::new()
        .write(true)
        .read(true)
        .open(&segment)
        .unwrap();
    let offset = first - start + wal::RECORD_HEADER_LEN as u64 + 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).unwrap();
    std::io::Read::read_exact(&mut file, &mut byte).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[byte[0] ^ 0x40]).unwrap();
    drop(file);

    let (recovered, _, report) = recover_into(dir.path());
    assert_eq!(report.cut.map(|(_, d)| d), Some(Damage::Corrupt));
    assert_eq!(
        report.events_replayed, 1,
        "nothing after the damage is replayed"
    );
    assert_eq!(gross_paid(&recovered, 0), Some(100));
    assert_eq!(fs::metadata(&segment).unwrap().len(), first - start);
}

#[test]
fn recovery_starts_from_the_snapshot_and_replays_only_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, _) = recover_into(dir.path());
    for i in 0..50 {
        ingest(&journal, &store, &[payment(i, i % 7)]);
    }
    let report = journal.snapshot(&store).unwrap();
    assert_eq!(report.written.debtors, 7);
    ingest(&journal, &store, &[payment(50, 0), payment(51, 8)]);
    journal.close().unwrap();
    drop(journal);

    let (recovered, _, recovery) = recover_into(dir.path());
    assert_eq!(recovery.snapshot.map(|s| s.debtors), Some(7));
    assert_eq!(recovery.events_replayed, 2);
    assert_eq!(recovered.len(), 8);
    for debtor in 0..9 {
        let state = |s: &Store| s.read(&format!("d-{debtor}"), |d| d.clone());
        assert_eq!(state(&recovered), state(&store), "debtor {debtor}");
    }
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, _) = recover_into(dir.path());
    ingest(&journal, &store, &[payment(1, 0)]);
    journal.snapshot(&store).unwrap();
    ingest(&journal, &store, &[payment(2, 0)]);
    let newest = journal.snapshot(&store).unwrap().written;
    ingest(&journal, &store, &[payment(3, 1)]);
    journal.close().unwrap();
    drop(journal);

    for damage in ["flip", "truncate"] {
        let copy = tempfile::tempdir().unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
        let snapshot = copy.path().join(newest.path.file_name().unwrap());
        let len = fs::metadata(&snapshot).unwrap().len();
        let file = OpenOptions::new().write(true).open(&snapshot).unwrap();
        if damage == "flip" {
            let mut bytes = fs::read(&snapshot).unwrap();
            bytes[len as usize / 2] ^= 0x01;
            fs::write(&snapshot, bytes).unwrap();
        } else {
            file.set_len(len - 5).unwrap();
        }

        let (recovered, _, report) = recover_into(copy.path());
        assert_eq!(report.damaged_snapshots.len(), 1, "{damage}");
        assert!(report.snapshot.unwrap().lsn < newest.lsn, "{damage}");
        assert_eq!(gross_paid(&recovered, 0), Some(200), "{damage}");
        assert_eq!(gross_paid(&recovered, 1), Some(100), "{damage}");
    }
}

#[test]
fn snapshots_remove_what_they_make_redundant() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal, _) = recover_into(dir.path());
    for round in 0..4 {
        for i in 0..60 {
            ingest(&journal, &store, &[payment(round * 100 + i, i % 5)]);
        }
        journal.snapshot(&store).unwrap();
    }
    journal.close().unwrap();
    drop(journal);
    assert_eq!(snapshot::snapshots(dir.path()).unwrap().len(), 2);
    let oldest_kept = snapshot::snapshots(dir.path()).unwrap()[1].0;
    let segments = wal::segments(dir.path()).unwrap();
    assert!(
        segments[0].0 <= oldest_kept,
        "the log still reaches the older snapshot"
    );
    assert!(
        segments.len() < 8,
        "covered segments are removed: {}",
        segments.len()
    );
    let (recovered, _, _) = recover_into(dir.path());
    assert_eq!(gross_paid(&recovered, 0), Some(48 * 100));
}

#[test]
fn a_state_directory_serves_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, journal, _) = recover_into(dir.path());
    let error = recover(
        dir.path(),
        &Store::new(),
        &config(FsyncPolicy::Never),
        0,
        &|_, _| {},
    )
    .unwrap_err();
    assert_eq!(error, DurabilityError::Locked(dir.path().to_owned()));
    drop(journal);
    recover_into(dir.path());
}

#[test]
fn ids_are_forgotten_two_epochs_later() {
    use crate::state::{Applied, DedupEpoch};
    let store = Store::new();
    let day = 86_400;
    let epoch = |days: i64| DedupEpoch::at(UnixTime(T0 + days * day), 10 * day);
    let apply = |id: usize, days: i64| store.apply_in(&payment(id, 0), epoch(days)).unwrap();

    assert_eq!(apply(1, 0), Applied::New);
    assert_eq!(apply(2, 10), Applied::New);
    assert_eq!(
        apply(1, 10),
        Applied::Duplicate,
        "remembered in the next epoch"
    );
    assert_eq!(apply(3, 20), Applied::New);
    assert_eq!(store.read("d-0", |d| d.remembered_ids()), Some(2));
    // Two epochs on, the id is gone; the late-event horizon refuses such a
    // re-send before it reaches the store.
    assert_eq!(apply(1, 20), Applied::New);
    assert_eq!(apply(2, 20), Applied::Duplicate);
    assert_eq!(store.read("d-0", |d| d.event_count()), Some(4));
}

/// `tests/fixtures/snapshot-v1.snap` was written in snapshot format 1, before
/// debtors kept account statuses, from the events beside it (40 simulated
/// debtors). Read today, it must hold exactly the states those events build.
#[test]
fn a_format_1_snapshot_loads_as_the_states_its_events_build() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let loaded = Store::default();
    let report = snapshot::load(&fixtures.join("snapshot-v1.snap"), &loaded, |_| {}).unwrap();
    assert_eq!(report.debtors, 40);

    let replayed = Store::default();
    let limits = crate::events::validation::EventLimits::default();
    let path = fixtures.join("snapshot-v1-events.jsonl.gz");
    crate::api::event_file::read(&path, &limits, |event| {
        replayed.apply(&event).unwrap();
    })
    .unwrap();
    assert_eq!(loaded.len(), replayed.len());
    assert_eq!(loaded.digest(), replayed.digest());
}
