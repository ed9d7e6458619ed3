//! Crash recovery and graceful shutdown of the real binary.
//!
//! Crash: stream payments, kill the server with SIGKILL at a random moment,
//! restart it on the same data directory, and check that every acknowledged
//! payment is there and none is counted twice, also after the client re-sends
//! what was never acknowledged. Shutdown: SIGTERM during a stream ends it with
//! every applied batch acknowledged, within the grace period.
//!
//! `CRASH_TEST_CYCLES` sets the number of kill/restart cycles (10 by
//! default) and `CRASH_TEST_SEED` the seed of the kill times (printed).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::binary::Server;
use common::{DAY, T0, at, event, invoice, payment};
use mora::api::proto::{
    EventBatch, ScoreRequest, ingest_client::IngestClient, scoring_client::ScoringClient,
};
use rand::{Rng, SeedableRng};
use tokio_stream::StreamExt;

const DEBTORS: usize = 20;
const EVENTS_PER_BATCH: usize = 50;
const OWED: i64 = 1_000_000_000;
/// Batches the client sends ahead of their acks, as a real client's window.
const WINDOW: usize = 16;

/// Starts the binary with small log segments and frequent snapshots, so that
/// kills also land on segment rolls and snapshot writes.
async fn start(data_dir: &std::path::Path) -> Server {
    let env = [
        ("MORA_DURABILITY__SEGMENT_BYTES", "65536"),
        ("MORA_DURABILITY__SNAPSHOT_INTERVAL_SECS", "1"),
        ("MORA_SHUTDOWN_GRACE_SECS", "5"),
    ];
    Server::start_with(data_dir, &env).await
}

/// Batch `seq` of payments: 50 events over the debtors, 1–3 minor units each.
fn batch(seq: u64) -> EventBatch {
    let events = (0..EVENTS_PER_BATCH)
        .map(|i| {
            let n = seq as usize * EVENTS_PER_BATCH + i;
            let id = format!("p-{seq}-{i}");
            event(
                &id,
                &debtor(n),
                T0 + 1 + (n % 1000) as i64,
                payment(amount(n)),
            )
        })
        .collect();
    EventBatch {
        batch_seq: seq,
        events,
    }
}

fn debtor(n: usize) -> String {
    format!("d-{}", n % DEBTORS)
}

fn amount(n: usize) -> i64 {
    1 + (n % 3) as i64
}

/// What the batches in `seqs` pay each debtor, in total.
fn paid_by(seqs: impl IntoIterator<Item = u64>) -> Vec<i64> {
    let mut paid = vec![0; DEBTORS];
    for seq in seqs {
        for i in 0..EVENTS_PER_BATCH {
            let n = seq as usize * EVENTS_PER_BATCH + i;
            paid[n % DEBTORS] += amount(n);
        }
    }
    paid
}

/// What the server holds as paid by each debtor (owed minus overdue).
async fn paid_on(server: &Server) -> Vec<i64> {
    let mut scoring = ScoringClient::new(server.channel().await);
    let mut paid = Vec::with_capacity(DEBTORS);
    for d in 0..DEBTORS {
        let score = scoring
            .score(ScoreRequest {
                debtor_id: debtor(d),
                as_of: at(T0 + 30 * DAY),
                ..ScoreRequest::default()
            })
            .await
            .expect("score")
            .into_inner();
        assert!(score.known, "debtor {d} lost");
        paid.push(OWED - score.overdue.map_or(0, |m| m.minor_units));
    }
    paid
}

/// Streams new batches from `next_seq` until the server dies; returns the
/// batches sent and those acknowledged.
async fn stream_until_killed(
    server: Server,
    next_seq: &mut u64,
    kill_after: Duration,
) -> (Vec<u64>, Vec<u64>) {
    let mut ingest = IngestClient::new(server.channel().await);
    let (batches, outbound) = tokio::sync::mpsc::channel(8);
    let inbound = tokio_stream::wrappers::ReceiverStream::new(outbound);
    let mut acks = ingest
        .stream(inbound)
        .await
        .expect("stream opens")
        .into_inner();

    let killer = tokio::spawn(async move {
        tokio::time::sleep(kill_after).await;
        server.kill();
    });
    let mut sent = Vec::new();
    let mut acked = Vec::new();
    loop {
        tokio::select! {
            permit = batches.reserve(), if sent.len() < acked.len() + WINDOW => {
                let Ok(permit) = permit else { break };
                permit.send(batch(*next_seq));
                sent.push(*next_seq);
                *next_seq += 1;
            }
            ack = acks.next() => match ack {
                Some(Ok(ack)) => {
                    assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
                    acked.push(ack.batch_seq);
                }
                _ => break,
            },
        }
    }
    killer.await.unwrap();
    (sent, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_and_none_counts_twice() {
    let cycles: usize = std::env::var("CRASH_TEST_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("CRASH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test: {cycles} cycles, CRASH_TEST_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data = tempfile::tempdir().unwrap();

    // Every debtor owes one large invoice, due before the payments.
    let server = start(data.path()).await;
    open_invoices(&server).await;

    let mut server = Some(server);
    let mut next_seq = 0;
    let mut sent_all = BTreeSet::new();
    let mut acked_all = BTreeSet::new();
    let mut batches_acked = 0;
    for cycle in 0..cycles {
        let running = server.take().expect("a running server");
        let kill_after = Duration::from_millis(rng.gen_range(20..600));
        let (sent, acked) = stream_until_killed(running, &mut next_seq, kill_after).await;
        batches_acked += acked.len();
        sent_all.extend(sent);
        acked_all.extend(acked);

        // After the restart: everything acknowledged is there, nothing more
        // than what was sent.
        let restarted = start(data.path()).await;
        let held = paid_on(&restarted).await;
        let (floor, ceiling) = (paid_by(acked_all.clone()), paid_by(sent_all.clone()));
        for d in 0..DEBTORS {
            assert!(
                floor[d] <= held[d] && held[d] <= ceiling[d],
                "cycle {cycle}, debtor {d}: holds {} paid, acknowledged {}, sent {}",
                held[d],
                floor[d],
                ceiling[d]
            );
        }

        // The client re-sends what was never acknowledged, and one batch that
        // was: afterwards each payment counts exactly once.
        let mut ingest = IngestClient::new(restarted.channel().await);
        let unacked: Vec<u64> = sent_all.difference(&acked_all).copied().collect();
        let again = acked_all.iter().next_back().copied();
        for seq in unacked.iter().copied().chain(again) {
            let ack = ingest.send(batch(seq)).await.expect("re-send").into_inner();
            assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
            assert_eq!(
                (ack.accepted + ack.duplicates) as usize,
                EVENTS_PER_BATCH,
                "batch {seq}"
            );
            if Some(seq) == again {
                assert_eq!(
                    ack.duplicates as usize, EVENTS_PER_BATCH,
                    "batch {seq} again"
                );
            }
            acked_all.insert(seq);
        }
        assert_eq!(
            paid_on(&restarted).await,
            paid_by(sent_all.clone()),
            "cycle {cycle}: exactly once after re-sending"
        );
        server = Some(restarted);
    }
    server.take().unwrap().kill();
    println!(
        "crash test: {cycles} cycles passed, {batches_acked} batches acknowledged before kills, \
         {} batches in all",
        sent_all.len()
    );
    assert!(
        batches_acked > 0,
        "some batches were acknowledged before the kills"
    );
}

/// Sends the invoice every debtor's payments are set against.
async fn open_invoices(server: &Server) {
    let invoices = (0..DEBTORS)
        .map(|d| event(&format!("inv-{d}"), &debtor(d), T0, invoice("i", OWED, T0)))
        .collect();
    let ack = IngestClient::new(server.channel().await)
        .send(EventBatch {
            batch_seq: u64::MAX,
            events: invoices,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted as usize, DEBTORS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_streams_and_exits_within_the_grace_period() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    open_invoices(&server).await;

    let mut ingest = IngestClient::new(server.channel().await);
    let (batches, outbound) = tokio::sync::mpsc::channel(WINDOW);
    let inbound = tokio_stream::wrappers::ReceiverStream::new(outbound);
    let mut acks = ingest.stream(inbound).await.unwrap().into_inner();
    let mut sent = Vec::new();
    let mut acked = Vec::new();
    let mut end = None;
    let mut signalled = None;
    let mut can_send = true;
    while end.is_none() {
        tokio::select! {
            permit = batches.reserve(), if can_send && sent.len() < acked.len() + WINDOW => {
                // Once the call ends its request side closes: read on for the status.
                let Ok(permit) = permit else {
                    can_send = false;
                    continue;
                };
                permit.send(batch(sent.len() as u64));
                sent.push(sent.len() as u64);
            }
            ack = acks.next() => match ack {
                Some(Ok(ack)) => {
                    acked.push(ack.batch_seq);
                    if acked.len() == 50 {
                        server.terminate();
                        signalled = Some(std::time::Instant::now());
                    }
                }
                Some(Err(status)) => end = Some(status),
                None => break,
            },
        }
    }
    let status = end.expect("the stream ends with a status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    let exit = server
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("exits within the grace period and a margin");
    assert!(exit.success(), "{exit}");
    let took = signalled.expect("signalled").elapsed();
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?}, grace is 5 s"
    );

    // Every acknowledged batch is kept; a clean stop leaves nothing half done.
    let restarted = start(data.path()).await;
    let held = paid_on(&restarted).await;
    let (floor, ceiling) = (paid_by(acked.clone()), paid_by(sent.clone()));
    for d in 0..DEBTORS {
        assert!(floor[d] <= held[d] && held[d] <= ceiling[d], "debtor {d}");
    }
    restarted.kill();
}
