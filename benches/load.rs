//! Load generator: drives a real mora server over loopback through the
//! generated gRPC client and reports, from one run,
//! - ingest throughput through `Ingest.Stream` (events/s),
//! - `Score` latency beside `Ping`, an empty RPC on the same server and
//!   connection (the floor), as percentiles and ratios: in a closed loop at a
//!   fixed concurrency, then at a fixed open-loop rate,
//! - `ScoreBatch` throughput (debtors/s).
//!
//! Server and client run in one process on two single-threaded runtimes, so
//! each has about one of the machine's two cores. Durability is off here
//! (`benches/durability.rs` measures it).
//!
//! ```text
//! cargo bench --bench load                 # defaults below
//! MORA_BENCH_DEBTORS=50000 MORA_BENCH_CONCURRENCY=32 MORA_BENCH_RATE=10000 cargo bench --bench load
//! MORA_BENCH_BATCH_IN_FLIGHT=2 cargo bench --bench load   # two ScoreBatch requests at a time
//! ```

mod common;

use std::time::{Duration, Instant};

use common::*;
use mora::api::proto::{
    PingRequest, ScoreBatchRequest, ScoreRequest, scoring_client::ScoringClient,
};
use tonic::transport::Channel;

/// Prints the percentiles of `ping` and `score` and their ratios.
fn report(how: &str, ping: Latencies, score: Latencies) {
    println!("{how}:");
    print_percentiles("RPC", &[("Ping (floor)", &ping), ("Score", &score)]);
    for p in [50.0, 99.0, 99.9] {
        let ratio = score.percentile(p).as_secs_f64() / ping.percentile(p).as_secs_f64();
        println!("Score / Ping at p{p}: {ratio:.2}");
    }
}

/// How requests are sent: a fixed number in flight, or a fixed rate.
#[derive(Clone, Copy)]
enum Schedule {
    Closed { concurrency: usize },
    Open { rate: usize },
}

impl Schedule {
    async fn run<F, Fut>(self, round: Duration, call: F) -> Vec<Duration>
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        match self {
            Schedule::Closed { concurrency } => closed_loop(concurrency, round, call).await,
            Schedule::Open { rate } => open_loop(rate, round, call).await,
        }
    }
}

/// `Ping` and `Score` sent by `schedule`, alternating round by round so that
/// both see the same machine.
async fn ping_and_score(
    channel: &Channel,
    schedule: Schedule,
    rounds: usize,
    round: Duration,
    debtors: usize,
) -> (Latencies, Latencies) {
    let (mut ping, mut score) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let client = ScoringClient::new(channel.clone());
        ping.extend(
            schedule
                .run(round, move |_| {
                    let mut client = client.clone();
                    async move {
                        client.ping(PingRequest {}).await.expect("ping");
                    }
                })
                .await,
        );
        let client = ScoringClient::new(channel.clone());
        score.extend(
            schedule
                .run(round, move |n| {
                    let mut client = client.clone();
                    let debtor_id = format!("sim-{:07}", n % debtors);
                    async move {
                        let request = ScoreRequest {
                            debtor_id,
                            ..Default::default()
                        };
                        client.score(request).await.expect("score");
                    }
                })
                .await,
        );
    }
    (Latencies(ping), Latencies(score))
}

fn main() {
    let debtors = setting("MORA_BENCH_DEBTORS", 20_000);
    let concurrency = setting("MORA_BENCH_CONCURRENCY", 16);
    let rounds = setting("MORA_BENCH_ROUNDS", 3);
    let round_secs = setting("MORA_BENCH_ROUND_SECS", 3) as u64;
    let batch_events = setting("MORA_BENCH_BATCH_EVENTS", 1_000);
    let score_batch = setting("MORA_BENCH_SCORE_BATCH", 10_000).min(debtors);
    let batch_in_flight = setting("MORA_BENCH_BATCH_IN_FLIGHT", 1).max(1);
    let rate = setting("MORA_BENCH_RATE", 5_000);

    // Durability off: this measures the service itself; the durability
    // bench measures what each fsync policy adds.
    let bench = BenchServer::start_with(|config| config.durability.enabled = false);
    let address = bench.address.clone();

    // The client: the other runtime, one thread, one HTTP/2 connection.
    let client_runtime = client_runtime();
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

        let round = Duration::from_secs(round_secs);
        let closed = Schedule::Closed { concurrency };
        let (ping, score) = ping_and_score(&channel, closed, rounds, round, debtors).await;
        report(&format!("closed loop, concurrency {concurrency}"), ping, score);
        let open = Schedule::Open { rate };
        let (ping, score) = ping_and_score(&channel, open, rounds, round, debtors).await;
        report(&format!("open loop, {rate} requests/s"), ping, score);

        // Each of `batch_in_flight` tasks keeps one request in flight, so the
        // client decodes one answer while the server scores the next.
        let ids: std::sync::Arc<[String]> =
            (0..score_batch).map(|i| format!("sim-{i:07}")).collect();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..batch_in_flight {
            let mut client =
                ScoringClient::new(channel.clone()).max_decoding_message_size(256 << 20);
            let ids = ids.clone();
            tasks.spawn(async move {
                let mut scored = 0usize;
                while started.elapsed() < round {
                    let request = ScoreBatchRequest { debtor_ids: ids.to_vec(), as_of: None };
                    let response = client.score_batch(request).await.expect("score batch");
                    scored += response.into_inner().results.len();
                }
                scored
            });
        }
        let scored: usize = tasks.join_all().await.into_iter().sum();
        let took = started.elapsed().as_secs_f64();
        println!(
            "ScoreBatch ({score_batch} debtors per request, {batch_in_flight} in flight): \
             {scored} debtors in {took:.2} s = {:.0} debtors/s",
            scored as f64 / took
        );
    });
    // Close the client's connection before stopping the server.
    drop(client_runtime);
    bench.shutdown();
}
