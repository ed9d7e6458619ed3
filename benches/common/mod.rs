//! Shared by the load benchmarks: settings from the environment, a real
//! server on its own runtime, a closed-loop driver, and percentiles.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use mora::api::convert::event_to_proto;
use mora::api::proto::{EventBatch, ingest_client::IngestClient};
use mora::config::Config;
use mora::events::{
    ChannelSet, ContactOutcome, Event, EventKind, Money, Profile, UnixTime, validation,
};
use mora::server::RunningServer;
use mora::sim::{self, SimConfig};
use tokio::runtime::{Builder, Runtime};
use tonic::transport::Channel;

pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latency percentiles of one kind of request.
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank]
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `call` from `concurrency` tasks in a closed loop for `duration`, and
/// returns every request's latency.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Vec<Duration>
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

/// Sends `call` on a fixed schedule of `rate` requests per second for
/// `duration`, whatever the answers, and returns each request's latency from
/// the moment it was due: a slow answer delays nothing after it, so queueing
/// shows in the figures instead of slowing the load (no coordinated omission).
/// The schedule is kept by yielding rather than sleeping, since the timer's
/// millisecond granularity would send in bursts.
pub async fn open_loop<F, Fut>(rate: usize, duration: Duration, call: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = (duration.as_secs_f64() * rate as f64) as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        let due = start + period.mul_f64(n as f64);
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
        let request = call(n);
        tasks.push(tokio::spawn(async move {
            request.await;
            due.elapsed()
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.push(task.await.expect("load task"));
    }
    all
}

pub async fn ingest(channel: Channel, debtors: usize, batch_events: usize) -> (usize, Duration) {
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
    let accepted = stream_batches(channel, batches, count).await;
    (accepted, started.elapsed())
}

/// Streams `count` batches through one `Ingest.Stream`, checks that nothing
/// was rejected, and returns the events accepted.
pub async fn stream_batches(
    channel: Channel,
    batches: impl IntoIterator<Item = EventBatch, IntoIter: Send + 'static>,
    count: usize,
) -> usize {
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
    accepted
}

/// Prints one row of percentiles per `(name, latencies)`, headed by `what`.
pub fn print_percentiles(what: &str, rows: &[(&str, &Latencies)]) {
    println!("| {what} | requests | p50 (µs) | p99 (µs) | p99.9 (µs) |");
    println!("|---|---|---|---|---|");
    for (name, l) in rows {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} |",
            l.0.len(),
            micros(l.percentile(50.0)),
            micros(l.percentile(99.0)),
            micros(l.percentile(99.9))
        );
    }
}

/// A server on its own one-thread runtime (about one of the two cores), with
/// the shipped models and a temporary data directory.
pub struct BenchServer {
    pub runtime: Runtime,
    pub server: RunningServer,
    pub address: String,
    _data: tempfile::TempDir,
}

impl BenchServer {
    pub fn start() -> BenchServer {
        BenchServer::start_with(|_| {})
    }

    /// [`BenchServer::start`] with the configuration changed by `edit`.
    pub fn start_with(edit: impl FnOnce(&mut Config)) -> BenchServer {
        // As the `mora` binary does at start.
        mora::allocator::pin_mmap_threshold();
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let data = tempfile::tempdir().expect("a temporary data directory");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        edit(&mut config);
        let server = runtime
            .block_on(mora::server::start(config))
            .expect("server starts");
        runtime.block_on(server.recovered());
        let address = format!("http://{}", server.grpc_addr);
        BenchServer {
            runtime,
            server,
            address,
            _data: data,
        }
    }

    pub fn shutdown(self) {
        let BenchServer {
            runtime, server, ..
        } = self;
        runtime.block_on(server.shutdown()).unwrap();
    }
}

/// The client's runtime: one thread, the other core.
pub fn client_runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Resident memory of this process, in bytes.
pub fn resident_bytes() -> u64 {
    resident_bytes_of("self")
}

/// Resident size of process `pid` (a number, or `self`).
pub fn resident_bytes_of(pid: &str) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

pub const T0: i64 = 1_767_571_200;
const DAY: i64 = 86_400;

/// The "typical history": a profile, 3 invoices, 3 payments, a
/// promise and 12 contacts — 20 events.
pub fn typical(debtor: usize) -> Vec<Event> {
    let usd = |minor_units| Money {
        minor_units,
        currency: validation::currency("c", "USD").unwrap(),
    };
    let debtor_id = format!("debtor-{debtor:08}");
    let mut kinds = vec![EventKind::Profile(Profile {
        timezone: Some(chrono_tz::America::New_York),
        country: validation::country("c", "US").unwrap(),
        authorised_channels: ChannelSet::ALL,
    })];
    for month in 0..3 {
        kinds.push(EventKind::InvoiceIssued {
            invoice_id: format!("{debtor_id}-inv-{month}"),
            amount: usd(12_000),
            due_at: UnixTime(T0 + (month * 30 + 20) * DAY),
        });
        kinds.push(EventKind::Payment {
            amount: usd(9_000),
            invoice_id: None,
        });
    }
    kinds.push(EventKind::Promise {
        amount: usd(3_000),
        promised_for: UnixTime(T0 + 95 * DAY),
    });
    for i in 0..12 {
        let channel = mora::events::Channel::ALL[i % 4];
        kinds.push(EventKind::Contact {
            channel,
            outcome: ContactOutcome::Delivered,
        });
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            event_id: format!("{debtor_id}-event-{i:03}"),
            debtor_id: debtor_id.clone(),
            occurred_at: UnixTime(T0 + i as i64 * 4 * DAY),
            kind,
        })
        .collect()
}
