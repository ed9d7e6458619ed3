//! What operators rely on: `docs/metrics.md` against what a real server
//! serves at `/metrics` after traffic of every kind and against the names in
//! `src/telemetry.rs`; the examples in `deploy/` against the catalogue and the
//! configuration; and a real Prometheus scraping a real server.
//!
//! The Prometheus test needs `prometheus` and `promtool` on the `PATH`
//! (Debian's `prometheus` package); without them it says so and passes,
//! unless `REQUIRE_PROMETHEUS=1`, which CI sets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mora::api::proto::{
    EventBatch, GetFeaturesRequest, ScoreBatchRequest, ScoreRequest, ingest_client::IngestClient,
    scoring_client::ScoringClient,
};

/// One catalogue row: type and label names.
struct Entry {
    kind: String,
    labels: BTreeSet<String>,
}

/// The names between backticks in `cell`.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The series table and the label table of the catalogue.
fn catalogue() -> (BTreeMap<String, Entry>, BTreeMap<String, BTreeSet<String>>) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut series = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        // Cells after the leading `|`; only the last, free-text cell may
        // hold an escaped `\|`.
        let cells: Vec<&str> = line.split('|').skip(1).map(str::trim).collect();
        let name = quoted(cells[0]).remove(0);
        if name.starts_with("mora_") {
            let entry = Entry {
                kind: cells[1].trim().to_owned(),
                labels: quoted(cells[3]).into_iter().collect(),
            };
            assert!(series.insert(name.clone(), entry).is_none(), "{name} twice");
        } else {
            labels.entry(name).or_default().extend(quoted(cells[1]));
        }
    }
    (series, labels)
}

/// Every `"mora_…"` string constant in the telemetry module.
fn names_in_code() -> BTreeSet<String> {
    let code =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/telemetry.rs")).unwrap();
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("mora_") && !s.contains(' '))
        .map(str::to_owned)
        .collect()
}

/// A served sample: its family and its labels (without `le`).
type Sample = (String, Vec<(String, String)>);

/// Families by `# TYPE`, and every sample.
fn served(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, _) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        let labels = labels
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap();
                (key.to_owned(), value.trim_matches('"').to_owned())
            })
            .filter(|(key, _)| key != "le")
            .collect();
        samples.push((family.to_owned(), labels));
    }
    (types, samples)
}

/// Traffic that touches every series but the shadow, upload and eviction ones.
async fn traffic(server: &mora::server::RunningServer) {
    let mut ingest = IngestClient::new(channel(server).await);
    let mut events = good_payer("c1");
    events.extend(bad_payer("c2"));
    events.push(event("bad", "c1", T0, invoice("x", -5, T0)));
    ingest
        .send(EventBatch {
            batch_seq: 1,
            events,
        })
        .await
        .unwrap();
    let mut scoring = ScoringClient::new(channel(server).await);
    scoring
        .score(ScoreRequest {
            debtor_id: "c2".into(),
            as_of: at(T0 + 130 * DAY),
            include_contact_plan: true,
            ..Default::default()
        })
        .await
        .unwrap();
    scoring
        .score_batch(ScoreBatchRequest {
            debtor_ids: vec!["c1".into(), "c2".into()],
            as_of: at(T0 + 130 * DAY),
        })
        .await
        .unwrap();
    scoring
        .get_features(GetFeaturesRequest {
            debtor_id: "c1".into(),
            as_of: None,
        })
        .await
        .unwrap();
    let refused = scoring.score(ScoreRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn the_catalogue_is_what_is_served_and_what_the_code_names() {
    let (catalogue, label_values) = catalogue();
    let documented: BTreeSet<String> = catalogue.keys().cloned().collect();
    assert_eq!(
        documented,
        names_in_code(),
        "docs/metrics.md against src/telemetry.rs"
    );

    let server = start_with(&shipped_models(), |config| {
        config.durability.snapshot_interval_secs = 1;
        config.state.sweep_interval_secs = 1;
    })
    .await;
    traffic(&server).await;
    // The first snapshot and sweep come a second after the start.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(&server).await;
        if text.contains("mora_snapshots_total") && text.contains("mora_promises{") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot or sweep in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Lags are bucketed in seconds to weeks, not in request-sized steps.
    assert!(
        text.contains(r#"mora_event_lag_seconds_bucket{le="86400"}"#),
        "{text}"
    );
    let (types, samples) = served(&text);
    for (family, kind) in &types {
        let entry = catalogue
            .get(family)
            .unwrap_or_else(|| panic!("{family} is served but not in docs/metrics.md"));
        assert_eq!(&entry.kind, kind, "type of {family}");
    }
    for (family, labels) in &samples {
        let entry = &catalogue[family];
        for (key, value) in labels {
            assert!(
                entry.labels.contains(key),
                "{family} has undocumented label {key}"
            );
            if key == "version" {
                continue;
            }
            let allowed = label_values
                .get(key)
                .is_some_and(|values| values.contains(value));
            assert!(
                allowed,
                "{family}: {key}=\"{value}\" is not a documented value"
            );
        }
    }
    let needs_setup = [
        "mora_shadow_abs_difference",
        "mora_shadow_predict_seconds",
        "mora_model_uploads_total",
        "mora_debtors_evicted_total",
        // Served only with auth on or under overload: tests/security.rs.
        "mora_auth_refusals_total",
        "mora_requests_shed_total",
    ];
    for name in &documented {
        assert!(
            types.contains_key(name) || needs_setup.contains(&name.as_str()),
            "{name} is documented but was not served after traffic of every kind"
        );
    }
    server.shutdown().await.unwrap();
}

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metric families an expression names (`_bucket` and friends folded).
fn families_in(expression: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find("mora_") {
        let name: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[start + name.len()..];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_owned();
        found.push(family);
    }
    found
}

#[test]
fn deploy_examples_use_only_catalogued_series_and_valid_settings() {
    let (catalogue, _) = catalogue();
    let dashboard: serde_json::Value =
        serde_json::from_str(&repository_file("deploy/grafana/mora.json")).unwrap();
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            expressions.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let alerts = repository_file("deploy/prometheus/alerts.yml");
    expressions.push(alerts.clone());
    for expression in &expressions {
        for family in families_in(expression) {
            assert!(
                catalogue.contains_key(&family),
                "{family} is not in docs/metrics.md"
            );
        }
    }
    assert!(expressions.len() > 10, "the dashboard has panels");

    // The configuration the Kubernetes example mounts loads as a mora config.
    let manifest = repository_file("deploy/kubernetes/mora.yaml");
    let toml: String = manifest
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("mora.toml: |"))
        .skip(1)
        .take_while(|line| line.starts_with("    ") || line.is_empty())
        .map(|line| format!("{}\n", line.trim_start()))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &toml).unwrap();
    let config = mora::config::Config::load(Some(file.path()), &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.state.max_debtors, 3_000_000);
}

/// Whether `tool` runs; the Prometheus test needs both tools.
fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A plain HTTP GET on loopback; the body.
async fn http_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_mora_and_loads_the_alert_rules() {
    if !has("prometheus") || !has("promtool") {
        assert!(
            std::env::var("REQUIRE_PROMETHEUS").is_err(),
            "prometheus and promtool are required (REQUIRE_PROMETHEUS is set)"
        );
        eprintln!("skipped: prometheus and promtool are not installed");
        return;
    }
    let server = start(&shipped_models()).await;
    traffic(&server).await;

    // The exposition passes promtool's own checks.
    let exposition = scrape(&server).await;
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The shipped scrape config, pointed at this server, with the alert rules.
    let dir = tempfile::tempdir().unwrap();
    let config = repository_file("deploy/prometheus/prometheus.yml")
        .replace("15s", "1s")
        .replace("127.0.0.1:9464", &server.metrics_addr.to_string());
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .unwrap();
    let checked = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait for a scrape that found the target up and a mora series stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let scraped = loop {
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if tokio::net::TcpStream::connect(&address).await.is_err() {
            continue;
        }
        let up = http_get(&address, "/api/v1/query?query=up%7Bjob%3D%22mora%22%7D").await;
        let applied = http_get(
            &address,
            "/api/v1/query?query=mora_events_applied_total%7Bkind%3D%22payment%22%7D",
        )
        .await;
        last = format!("{up}\n{applied}");
        if up.contains(r#""value":["#) && up.contains(r#","1"]"#) && applied.contains("payment") {
            break true;
        }
    };
    let rules = http_get(&address, "/api/v1/rules").await;
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    server.shutdown().await.unwrap();
    assert!(scraped, "Prometheus never stored a scrape of mora: {last}");
    for alert in [
        "MoraIngestStalled",
        "MoraEventLagHigh",
        "MoraErrorRate",
        "MoraModelStale",
    ] {
        assert!(rules.contains(alert), "rule {alert} not loaded: {rules}");
    }
}
