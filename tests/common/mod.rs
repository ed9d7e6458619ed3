//! Shared helpers for integration tests: a real server on loopback, wire-event
//! builders, and a plain HTTP scrape of `/metrics`.

#![allow(dead_code)]

pub mod binary;

use std::path::{Path, PathBuf};

use mora::api::proto::{self, event::Kind};
use mora::config::Config;
use mora::server::RunningServer;
use pbjson_types::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

pub const DAY: i64 = 86_400;
/// A fixed past moment all test histories start from: 2026-03-02T00:00:00Z.
pub const T0: i64 = 1_772_409_600;

/// The models shipped with the repository.
pub fn shipped_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// A server for one test, with its own data directory, removed when the
/// server is dropped or shut down.
pub struct TestServer {
    server: RunningServer,
    data: tempfile::TempDir,
}

impl std::ops::Deref for TestServer {
    type Target = RunningServer;
    fn deref(&self) -> &RunningServer {
        &self.server
    }
}

impl TestServer {
    /// Stops the server and removes its data directory.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let TestServer { server, data } = self;
        let result = server.shutdown().await;
        drop(data);
        result
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

/// A configuration with ephemeral loopback ports, the models in `models_dir`
/// and `data_dir` for durable state.
pub fn config(models_dir: &Path, data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        models_dir: models_dir.to_owned(),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    }
}

/// Starts a server on ephemeral loopback ports with the models in
/// `models_dir` and a fresh data directory.
pub async fn start(models_dir: &Path) -> TestServer {
    start_with(models_dir, |_| {}).await
}

/// [`start`], with the configuration changed by `edit` first.
pub async fn start_with(models_dir: &Path, edit: impl FnOnce(&mut Config)) -> TestServer {
    let data = tempfile::tempdir().expect("a temporary data directory");
    let mut config = config(models_dir, data.path());
    edit(&mut config);
    let server = mora::server::start(config).await.expect("server starts");
    server.recovered().await;
    TestServer { server, data }
}

/// A channel to the server's gRPC port.
pub async fn channel(server: &RunningServer) -> Channel {
    Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await
        .expect("gRPC connection")
}

pub fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

pub fn money(minor_units: i64, currency: &str) -> Option<proto::Money> {
    Some(proto::Money {
        minor_units,
        currency: currency.into(),
    })
}

pub fn event(id: &str, debtor: &str, seconds: i64, kind: Kind) -> proto::Event {
    proto::Event {
        event_id: id.into(),
        debtor_id: debtor.into(),
        occurred_at: at(seconds),
        kind: Some(kind),
    }
}

pub fn invoice(invoice_id: &str, minor: i64, due: i64) -> Kind {
    Kind::InvoiceIssued(proto::InvoiceIssued {
        invoice_id: invoice_id.into(),
        amount: money(minor, "USD"),
        due_at: at(due),
    })
}

pub fn payment(minor: i64) -> Kind {
    Kind::Payment(proto::Payment {
        amount: money(minor, "USD"),
        invoice_id: None,
    })
}

pub fn contact(channel: proto::Channel, outcome: proto::ContactOutcome) -> Kind {
    Kind::Contact(proto::Contact {
        channel: channel.into(),
        outcome: outcome.into(),
    })
}

pub fn promise(minor: i64, promised_for: i64) -> Kind {
    Kind::Promise(proto::Promise {
        amount: money(minor, "USD"),
        promised_for: at(promised_for),
    })
}

/// The invoice of `month` (from 0): 100.00 USD issued at the month's start,
/// due 20 days later.
pub fn monthly_invoice(debtor: &str, month: i64) -> proto::Event {
    let issued = T0 + month * 30 * DAY;
    let kind = invoice(&format!("{debtor}-inv{month}"), 10_000, issued + 20 * DAY);
    event(&format!("{debtor}-i{month}"), debtor, issued, kind)
}

/// Four months of a debtor who pays every bill before it is due.
pub fn good_payer(debtor: &str) -> Vec<proto::Event> {
    let mut events = Vec::new();
    for month in 0..4 {
        let issued = T0 + month * 30 * DAY;
        events.push(monthly_invoice(debtor, month));
        events.push(event(
            &format!("{debtor}-p{month}"),
            debtor,
            issued + 15 * DAY,
            payment(10_000),
        ));
    }
    events
}

/// Four months of a debtor who never pays, dodges calls and breaks promises.
pub fn bad_payer(debtor: &str) -> Vec<proto::Event> {
    let mut events = Vec::new();
    for month in 0..4 {
        let issued = T0 + month * 30 * DAY;
        events.push(monthly_invoice(debtor, month));
        for attempt in 0..3 {
            let when = issued + (22 + attempt * 2) * DAY;
            events.push(event(
                &format!("{debtor}-c{month}-{attempt}"),
                debtor,
                when,
                contact(proto::Channel::Call, proto::ContactOutcome::NoAnswer),
            ));
        }
        events.push(event(
            &format!("{debtor}-pr{month}"),
            debtor,
            issued + 25 * DAY,
            promise(5_000, issued + 28 * DAY),
        ));
    }
    events
}

/// When the histories above have all happened.
pub const AS_OF: i64 = T0 + 125 * DAY;

/// Fetches `/metrics` with a plain HTTP/1.1 request.
pub async fn scrape(server: &RunningServer) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.metrics_addr)
        .await
        .unwrap();
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.metrics_addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "unexpected response: {response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of the sample `name{labels}` in a Prometheus text exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
