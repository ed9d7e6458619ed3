//! Load generator: drives a real mora server over loopback through the
//! generated gRPC client and reports, from one run,
//! - ingest throughput through `Ingest.Stream` (events/s),
//! - `Score` latency beside `Ping`, an empty RPC on the same server and
//!   connection (the floor), as percentiles and ratios,
//! - `ScoreBatch` throughput (debtors/s).
//!
//! Server and client run in one process on two single-threaded runtimes, so
//! each has about one of the machine's two cores.
//!
//! ```text
//! cargo bench --bench load                 # defaults below
//! MORA_BENCH_DEBTORS=50000 MORA_BENCH_CONCURRENCY=32 cargo bench --bench load
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use mora::api::convert::event_to_proto;
use mora::api::proto::{
    EventBatch, PingRequest, ScoreBatchRequest, ScoreRequest, ingest_client::IngestClient,
    scoring_client::ScoringClient,
};
use mora::config::Config;
use mora::sim::{self, SimConfig};
use tokio::runtime::Builder;
use tonic::transport::Channel;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latency percentiles of one kind of request.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank]
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `call` from `concurrency` tasks in a closed loop for `duration`, and
/// returns every request's latency.
async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = task;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    call(n).await;
                    latencies.push(started.elapsed());
                    n += concurrency;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    all
}

async fn ingest(channel: Channel, debtors: usize, batch_events: usize) -> (usize, Duration) {
    let portfolio = sim::portfolio(&SimConfig {
        debtors,
        ..SimConfig::default()
    });
    let events: Vec<_> = portfolio
        .iter()
        .flat_map(|d| d.events.iter().map(event_to_proto))
        .collect();
    let batches: Vec<EventBatch> = events
        .chunks(batch_events)
        .enumerate()
        .map(|(i, chunk)| EventBatch {
            batch_seq: i as u64,
            events: chunk.to_vec(),
        })
        .collect();
    let count = batches.len();

    let started = Instant::now();
    let mut client = IngestClient::new(channel).max_decoding_message_size(64 << 20);
    let mut acks = client
        .stream(tokio_stream::iter(batches))
        .await
        .expect("stream")
        .into_inner();
    let mut accepted = 0usize;
    for _ in 0..count {
        let ack = acks
            .message()
            .await
            .expect("ack")
            .expect("one ack per batch");
        assert!(
            ack.rejected.is_empty(),
            "rejected: {:?}",
            ack.rejected.first()
        );
        accepted += ack.accepted as usize;
    }
    (accepted, started.elapsed())
}

fn main() {
    let debtors = setting("MORA_BENCH_DEBTORS", 20_000);
    let concurrency = setting("MORA_BENCH_CONCURRENCY", 16);
    let rounds = setting("MORA_BENCH_ROUNDS", 3);
    let round_secs = setting("MORA_BENCH_ROUND_SECS", 3) as u64;
    let batch_events = setting("MORA_BENCH_BATCH_EVENTS", 1_000);
    let score_batch = setting("MORA_BENCH_SCORE_BATCH", 10_000).min(debtors);

    // The server: its own single-threaded runtime, about one core.
    let server_runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().expect("a temporary data directory");
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let server = server_runtime
        .block_on(mora::server::start(config))
        .expect("server starts");
    let address = format!("http://{}", server.grpc_addr);

    // The client: the other runtime, one thread, one HTTP/2 connection.
    let client_runtime = Builder::new_current_thread().enable_all().build().unwrap();
    client_runtime.block_on(async move {
        let channel = Channel::from_shared(address).unwrap().connect().await.expect("connect");
        println!(
            "mora load: {debtors} simulated debtors, concurrency {concurrency}, {rounds} rounds of \
             {round_secs} s per RPC, server and client on one core each"
        );

        let (events, took) = ingest(channel.clone(), debtors, batch_events).await;
        println!(
            "ingest (Ingest.Stream, {batch_events} events per batch): {events} events in {:.2} s = {:.0} events/s",
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64()
        );

        // Ping and Score alternate, round by round, so that both see the same machine.
        let round = Duration::from_secs(round_secs);
        let (mut ping, mut score) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let client = ScoringClient::new(channel.clone());
            ping.extend(
                closed_loop(concurrency, round, move |_| {
                    let mut client = client.clone();
                    async move {
                        client.ping(PingRequest {}).await.expect("ping");
                    }
                })
                .await,
            );
            let client = ScoringClient::new(channel.clone());
            score.extend(
                closed_loop(concurrency, round, move |n| {
                    let mut client = client.clone();
                    let debtor_id = format!("sim-{:07}", n % debtors);
                    async move {
                        let request = ScoreRequest { debtor_id, as_of: None, include_contact_plan: false };
                        client.score(request).await.expect("score");
                    }
                })
                .await,
            );
        }
        let (ping, score) = (Latencies(ping), Latencies(score));
        println!("| RPC | requests | p50 (µs) | p99 (µs) | p99.9 (µs) |");
        println!("|---|---|---|---|---|");
        for (name, l) in [("Ping (floor)", &ping), ("Score", &score)] {
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} |",
                l.0.len(),
                micros(l.percentile(50.0)),
                micros(l.percentile(99.0)),
                micros(l.percentile(99.9))
            );
        }
        for p in [50.0, 99.0, 99.9] {
            let ratio = score.percentile(p).as_secs_f64() / ping.percentile(p).as_secs_f64();
            println!("Score / Ping at p{p}: {ratio:.2}");
        }

        let mut client = ScoringClient::new(channel.clone()).max_decoding_message_size(256 << 20);
        let ids: Vec<String> = (0..score_batch).map(|i| format!("sim-{i:07}")).collect();
        let started = Instant::now();
        let mut scored = 0usize;
        while started.elapsed() < round {
            let request = ScoreBatchRequest { debtor_ids: ids.clone(), as_of: None };
            scored += client.score_batch(request).await.expect("score batch").into_inner().results.len();
        }
        let took = started.elapsed().as_secs_f64();
        println!(
            "ScoreBatch ({score_batch} debtors per request): {scored} debtors in {took:.2} s = {:.0} debtors/s",
            scored as f64 / took
        );
    });
    // Close the client's connection before stopping the server.
    drop(client_runtime);
    server_runtime.block_on(server.shutdown()).unwrap();
}
