//! Memory per debtor of a running server: the release `mora` binary in its
//! own process (durability off), fed the typical 20-event history of each
//! debtor through `Ingest.Stream`, its resident size read from /proc at
//! each checkpoint. Unlike `state_memory`, this counts everything the server
//! holds for its debtors, as an operator's dashboard would see it.
//!
//! ```text
//! cargo bench --bench server_memory                                       # 1 million
//! MORA_SERVER_MEMORY_DEBTORS=10000000 cargo bench --bench server_memory   # 1, 5 and 10 million
//! ```
//!
//! Below 1 million, one checkpoint at that count, for profiling; and
//! `MORA_SERVER_MEMORY_WRAPPER="valgrind --tool=massif"` runs the server
//! under that command.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mora::api::convert::event_to_proto;
use mora::api::proto::EventBatch;
use tonic::transport::Channel;

/// Debtors per batch: 20 events each, so 1,000 events per batch.
const DEBTORS_PER_BATCH: usize = 50;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Streams the typical histories of debtors `from..to`; returns the events
/// accepted.
async fn feed(channel: Channel, from: usize, to: usize) -> usize {
    let batches = (from..to)
        .step_by(DEBTORS_PER_BATCH)
        .map(move |first| EventBatch {
            batch_seq: first as u64,
            events: (first..(first + DEBTORS_PER_BATCH).min(to))
                .flat_map(typical)
                .map(|event| event_to_proto(&event))
                .collect(),
        });
    stream_batches(channel, batches, (to - from).div_ceil(DEBTORS_PER_BATCH)).await
}

fn main() {
    let most = setting("MORA_SERVER_MEMORY_DEBTORS", 1_000_000);
    // Below a million, one checkpoint at the count given (for profiling).
    let checkpoints: Vec<usize> = [most.min(1_000_000), 5_000_000, 10_000_000]
        .into_iter()
        .filter(|n| *n <= most)
        .collect();
    // A command to run the server under, e.g. "valgrind --tool=massif".
    let wrapper = std::env::var("MORA_SERVER_MEMORY_WRAPPER").unwrap_or_default();
    let mut wrapper = wrapper.split_whitespace();
    let data = tempfile::tempdir().expect("a data directory");
    let (grpc, metrics) = (free_port(), free_port());
    let mut command = match wrapper.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(wrapper).arg(env!("CARGO_BIN_EXE_mora"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_mora")),
    };
    // The bench's own settings are MORA_* too; the server would refuse them.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("MORA_")) {
        command.env_remove(name);
    }
    let mut server = command
        .args(["serve", "--listen", &format!("127.0.0.1:{grpc}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .arg("--models-dir")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
        .arg("--data-dir")
        .arg(data.path())
        .env("MORA_DURABILITY__ENABLED", "false")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the mora binary starts");
    let pid = server.id().to_string();

    client_runtime().block_on(async move {
        let address = format!("http://127.0.0.1:{grpc}");
        let started = Instant::now();
        let channel = loop {
            match Channel::from_shared(address.clone())
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(_) if started.elapsed() < Duration::from_secs(120) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("the server did not start: {error}"),
            }
        };
        let baseline = resident_bytes_of(&pid);
        println!(
            "mora server_memory: the mora binary, durability off, typical 20-event histories \
             through Ingest.Stream; resident before: {:.1} MiB",
            baseline as f64 / (1 << 20) as f64
        );
        println!("| debtors | resident (MiB) | resident per debtor (B) | ingest (s) |");
        println!("|---|---|---|---|");
        let mut held = 0;
        for checkpoint in checkpoints {
            let started = Instant::now();
            let accepted = feed(channel.clone(), held, checkpoint).await;
            assert_eq!(accepted, (checkpoint - held) * 20);
            let took = started.elapsed();
            held = checkpoint;
            let resident = resident_bytes_of(&pid);
            println!(
                "| {checkpoint} | {:.1} | {:.0} | {:.1} |",
                resident as f64 / (1 << 20) as f64,
                resident.saturating_sub(baseline) as f64 / checkpoint as f64,
                took.as_secs_f64()
            );
        }
    });
    let _ = server.kill();
    let _ = server.wait();
}
