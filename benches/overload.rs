//! Overload: many more concurrent `ScoreBatch` requests than the server has
//! cores, with load shedding (`limits.max_in_flight`) and without (a limit
//! no run reaches), side by side. Reports the latency of admitted requests,
//! the requests shed and the debtors scored per second.
//!
//! A shed client waits the pushback the server suggests before trying again,
//! as gRPC retry policies do. Server and client run in one process on two
//! runtimes of one worker each; `ScoreBatch` runs on the server's blocking
//! pool, which is what the limit bounds.
//!
//! ```text
//! cargo bench --bench overload
//! MORA_BENCH_CONCURRENCY=128 MORA_OVERLOAD_LIMIT=2 cargo bench --bench overload
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mora::api::proto::{ScoreBatchRequest, scoring_client::ScoringClient};
use tonic::transport::Channel;

/// What one setting measured.
struct Outcome {
    admitted: Latencies,
    shed: usize,
    debtors: usize,
    took: Duration,
}

fn run(limit: usize, concurrency: usize, batch: usize, debtors: usize, secs: u64) -> Outcome {
    let bench = BenchServer::start_with(|config| {
        config.durability.enabled = false;
        config.limits.max_in_flight = limit;
        config.limits.retry_after_ms = 5;
    });
    let address = bench.address.clone();
    let client_runtime = client_runtime();
    let outcome = client_runtime.block_on(async move {
        let channel = Channel::from_shared(address)
            .unwrap()
            .connect()
            .await
            .expect("connect");
        ingest(channel.clone(), debtors, 1_000).await;
        let ids: Arc<Vec<String>> = Arc::new(
            (0..batch)
                .map(|i| format!("sim-{:07}", i % debtors))
                .collect(),
        );
        let started = Instant::now();
        let deadline = started + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let mut client =
                    ScoringClient::new(channel.clone()).max_decoding_message_size(256 << 20);
                let ids = ids.clone();
                tokio::spawn(async move {
                    let (mut admitted, mut shed, mut scored) = (Vec::new(), 0, 0);
                    while Instant::now() < deadline {
                        let request = ScoreBatchRequest {
                            debtor_ids: ids.to_vec(),
                            as_of: None,
                        };
                        let sent = Instant::now();
                        match client.score_batch(request).await {
                            Ok(response) => {
                                admitted.push(sent.elapsed());
                                scored += response.into_inner().results.len();
                            }
                            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                                shed += 1;
                                let pushback = status
                                    .metadata()
                                    .get("grpc-retry-pushback-ms")
                                    .and_then(|v| v.to_str().ok()?.parse().ok())
                                    .unwrap_or(5);
                                tokio::time::sleep(Duration::from_millis(pushback)).await;
                            }
                            Err(status) => panic!("ScoreBatch failed: {status:?}"),
                        }
                    }
                    (admitted, shed, scored)
                })
            })
            .collect();
        let mut outcome = Outcome {
            admitted: Latencies(Vec::new()),
            shed: 0,
            debtors: 0,
            took: Duration::ZERO,
        };
        for task in tasks {
            let (admitted, shed, scored) = task.await.expect("load task");
            outcome.admitted.0.extend(admitted);
            outcome.shed += shed;
            outcome.debtors += scored;
        }
        outcome.took = started.elapsed();
        outcome
    });
    drop(client_runtime);
    bench.shutdown();
    outcome
}

fn main() {
    let concurrency = setting("MORA_BENCH_CONCURRENCY", 64);
    let limit = setting("MORA_OVERLOAD_LIMIT", 2);
    let batch = setting("MORA_BENCH_SCORE_BATCH", 1_000);
    let debtors = setting("MORA_BENCH_DEBTORS", 5_000);
    let secs = setting("MORA_BENCH_ROUND_SECS", 5) as u64;
    let rounds = setting("MORA_BENCH_ROUNDS", 2);
    println!(
        "mora overload: {concurrency} clients in a closed loop of ScoreBatch ({batch} debtors each), \
         {rounds} rounds of {secs} s per setting, alternating; server and client on one core each"
    );
    let unlimited = 1_000_000;
    let mut results: Vec<(String, Outcome)> = Vec::new();
    for _ in 0..rounds {
        for setting in [limit, unlimited] {
            let name = if setting == unlimited {
                "no shedding".to_owned()
            } else {
                format!("max_in_flight = {setting}")
            };
            let outcome = run(setting, concurrency, batch, debtors, secs);
            match results.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => {
                    total.admitted.0.extend(outcome.admitted.0);
                    total.shed += outcome.shed;
                    total.debtors += outcome.debtors;
                    total.took += outcome.took;
                }
                None => results.push((name, outcome)),
            }
        }
    }
    println!("| setting | admitted | shed | p50 admitted (ms) | p99 admitted (ms) | debtors/s |");
    println!("|---|---|---|---|---|---|");
    for (name, o) in &results {
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {:.0} |",
            o.admitted.0.len(),
            o.shed,
            micros(o.admitted.percentile(50.0)) / 1e3,
            micros(o.admitted.percentile(99.0)) / 1e3,
            o.debtors as f64 / o.took.as_secs_f64()
        );
    }
}
