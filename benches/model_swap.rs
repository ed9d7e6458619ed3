//! Hot swap under load: `Score` latency while the active payment model is
//! swapped every second, beside the same load without swaps, and the
//! process's memory before and after many swaps.
//!
//! Two versions of the shipped model are uploaded through `Models.Upload`,
//! then each round runs the same closed loop of `Score` calls twice: once
//! steady, once while another task calls `Models.Activate` every second,
//! alternating the two versions. Rounds alternate so that both phases see the
//! same machine. Server and client run in one process, on one core each.
//!
//! ```text
//! cargo bench --bench model_swap                 # defaults below
//! MORA_BENCH_SWAPS=200 cargo bench --bench model_swap
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mora::api::client;
use mora::api::proto::{
    ActivateRequest, ScoreRequest, models_client::ModelsClient, scoring_client::ScoringClient,
};
use serde_json::Value;
use tonic::transport::Channel;

/// The shipped model under another version, its log-odds moved by `shift`.
fn variant(version: &str, shift: f64) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
    let mut model: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    model["version"] = version.into();
    let base = model["model"]["base_score"].as_f64().unwrap();
    model["model"]["base_score"] = (base + shift).into();
    serde_json::to_vec(&model).unwrap()
}

fn activate(version: &str) -> ActivateRequest {
    ActivateRequest {
        kind: "payment".into(),
        version: version.into(),
        shadow: false,
    }
}

/// Scores from `concurrency` tasks for `duration`; counts failed calls.
async fn score_load(
    channel: &Channel,
    concurrency: usize,
    debtors: usize,
    duration: Duration,
    failures: &Arc<AtomicUsize>,
) -> Vec<Duration> {
    let client = ScoringClient::new(channel.clone());
    let failures = failures.clone();
    closed_loop(concurrency, duration, move |n| {
        let mut client = client.clone();
        let failures = failures.clone();
        let debtor_id = format!("sim-{:07}", n % debtors);
        async move {
            let request = ScoreRequest {
                debtor_id,
                as_of: None,
                include_contact_plan: false,
                ..Default::default()
            };
            if client.score(request).await.is_err() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
    .await
}

fn main() {
    let debtors = setting("MORA_BENCH_DEBTORS", 20_000);
    let concurrency = setting("MORA_BENCH_CONCURRENCY", 16);
    let rounds = setting("MORA_BENCH_ROUNDS", 4);
    let round_secs = setting("MORA_BENCH_ROUND_SECS", 5) as u64;
    let swaps = setting("MORA_BENCH_SWAPS", 1_000);

    let bench = BenchServer::start();
    let address = bench.address.clone();
    let runtime = client_runtime();
    runtime.block_on(async move {
        let remote = client::Remote {
            address,
            ..client::Remote::default()
        };
        let channel = remote.connect().await.expect("connect");
        println!(
            "mora model_swap: {debtors} simulated debtors, concurrency {concurrency}, {rounds} \
             rounds of {round_secs} s steady and {round_secs} s swapping every second, server \
             and client on one core each"
        );
        ingest(channel.clone(), debtors, 1_000).await;

        let mut models = ModelsClient::new(channel.clone());
        let versions = ["swap-a", "swap-b"];
        for (i, version) in versions.iter().enumerate() {
            let bytes = variant(version, 0.01 * (i as f64 * 2.0 - 1.0));
            let header = client::header_for(&bytes, None).unwrap();
            models
                .upload(tokio_stream::iter(client::chunks(header, &bytes)))
                .await
                .expect("upload");
        }

        let round = Duration::from_secs(round_secs);
        let failures = Arc::new(AtomicUsize::new(0));
        let (mut steady, mut swapping, mut activations) = (Vec::new(), Vec::new(), Vec::new());
        let mut swapped = 0usize;
        for _ in 0..rounds {
            steady.extend(score_load(&channel, concurrency, debtors, round, &failures).await);
            let mut swapper = models.clone();
            let swap_task = tokio::spawn(async move {
                let deadline = Instant::now() + round;
                let mut took = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    swapper
                        .activate(activate(versions[n % 2]))
                        .await
                        .expect("activate");
                    took.push(started.elapsed());
                    n += 1;
                    tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()))
                        .await;
                }
                took
            });
            swapping.extend(score_load(&channel, concurrency, debtors, round, &failures).await);
            let took = swap_task.await.expect("swap task");
            swapped += took.len();
            activations.extend(took);
        }
        let (steady, swapping) = (Latencies(steady), Latencies(swapping));
        print_percentiles(
            "Score",
            &[("steady", &steady), ("swapping every second", &swapping)],
        );
        for p in [50.0, 99.0, 99.9] {
            let ratio = swapping.percentile(p).as_secs_f64() / steady.percentile(p).as_secs_f64();
            println!("swapping / steady at p{p}: {ratio:.3}");
        }
        let activations = Latencies(activations);
        println!(
            "{swapped} swaps under load; Models.Activate p50 {:.1} ms; failed Score calls: {}",
            activations.percentile(50.0).as_secs_f64() * 1e3,
            failures.load(Ordering::Relaxed)
        );

        // Memory: many swaps back to back, a little scoring between them so
        // that no request holds an old model.
        let mut scoring = ScoringClient::new(channel.clone());
        let before = resident_bytes();
        let started = Instant::now();
        for n in 0..swaps {
            models
                .activate(activate(versions[n % 2]))
                .await
                .expect("activate");
            let request = ScoreRequest {
                debtor_id: format!("sim-{:07}", n % debtors),
                ..Default::default()
            };
            scoring.score(request).await.expect("score");
        }
        let after = resident_bytes();
        println!(
            "resident memory (whole process): {:.1} MiB before {swaps} swaps, {:.1} MiB after \
             ({:+.1} MiB) in {:.1} s",
            before as f64 / (1 << 20) as f64,
            after as f64 / (1 << 20) as f64,
            (after as f64 - before as f64) / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );
    });
    drop(runtime);
    bench.shutdown();
}
