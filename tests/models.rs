//! The model lifecycle over real gRPC on loopback: upload, list, activate,
//! roll back, refusals, shadow scoring, and what survives a restart.

mod common;

use std::path::Path;

use common::*;
use mora::api::client;
use mora::api::proto::{
    ActivateRequest, EventBatch, ListModelsRequest, ModelInfo, RollbackRequest, ScoreRequest,
    ScoreResponse, UploadHeader, ingest_client::IngestClient, models_client::ModelsClient,
    scoring_client::ScoringClient,
};
use mora::config::{Config, ModelsConfig};
use mora::models::repository::{Role, sha256_hex};
use mora::scoring::ScoringConfig;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const SHIPPED_VERSION: &str = "payment-sim-s42-schema3";

fn shipped_json() -> Value {
    let bytes = std::fs::read(shipped_models().join("payment.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The shipped model under another version, its log-odds moved by `shift`.
fn variant(version: &str, shift: f64) -> Vec<u8> {
    let mut model = shipped_json();
    model["version"] = json!(version);
    let base = model["model"]["base_score"].as_f64().unwrap();
    model["model"]["base_score"] = json!(base + shift);
    serde_json::to_vec_pretty(&model).unwrap()
}

/// A logistic regression whose two largest coefficients overflow to +∞ and
/// −∞ on large inputs: its margin, and so its probability, becomes NaN.
fn nan_producing(version: &str) -> Vec<u8> {
    let mut model = shipped_json();
    model["version"] = json!(version);
    let n = model["feature_schema"]["names"].as_array().unwrap().len();
    let mut params = vec![0.0; n];
    params[0] = 1e308;
    params[1] = -1e308;
    model["model"] = json!({
        "algorithm": "logistic_regression",
        "scaling": { "mean": vec![0.0; n], "std": vec![1.0; n] },
        "fitted": {
            "threshold": 0.5,
            "intercept": 0.0,
            "params": { "v": 1, "dim": [n], "data": params },
            "labels": {
                "pos": { "class": true, "label": 1.0 },
                "neg": { "class": false, "label": -1.0 }
            }
        }
    });
    serde_json::to_vec_pretty(&model).unwrap()
}

async fn upload(
    models: &mut ModelsClient<Channel>,
    header: UploadHeader,
    bytes: &[u8],
) -> Result<ModelInfo, tonic::Status> {
    let stream = tokio_stream::iter(client::chunks(header, bytes));
    models.upload(stream).await.map(|r| r.into_inner())
}

async fn upload_model(
    models: &mut ModelsClient<Channel>,
    bytes: &[u8],
    role: Option<Role>,
) -> Result<ModelInfo, tonic::Status> {
    upload(models, client::header_for(bytes, role).unwrap(), bytes).await
}

async fn score(scoring: &mut ScoringClient<Channel>, debtor: &str) -> ScoreResponse {
    let request = ScoreRequest {
        debtor_id: debtor.into(),
        as_of: at(AS_OF),
        include_contact_plan: false,
        ..Default::default()
    };
    scoring.score(request).await.unwrap().into_inner()
}

async fn ingest(channel: Channel, events: Vec<mora::api::proto::Event>) {
    let ack = IngestClient::new(channel)
        .send(EventBatch {
            batch_seq: 1,
            events,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
}

async fn list(models: &mut ModelsClient<Channel>) -> Vec<(String, bool, bool)> {
    let response = models
        .list(ListModelsRequest {
            kind: "payment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut versions: Vec<_> = response
        .models
        .into_iter()
        .map(|m| (m.version, m.active, m.shadow))
        .collect();
    versions.sort();
    versions
}

fn activate(version: &str) -> ActivateRequest {
    ActivateRequest {
        kind: "payment".into(),
        version: version.into(),
        shadow: false,
    }
}

fn rollback() -> RollbackRequest {
    RollbackRequest {
        kind: "payment".into(),
    }
}

async fn start_in(
    data_dir: &Path,
    change: impl FnOnce(&mut Config),
) -> mora::server::RunningServer {
    let mut config = config(&shipped_models(), data_dir);
    change(&mut config);
    let server = mora::server::start(config).await.expect("server starts");
    server.recovered().await;
    server
}

#[tokio::test]
async fn upload_activate_rollback_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start_in(data.path(), |_| {}).await;
    let grpc = channel(&server).await;
    ingest(grpc.clone(), good_payer("d1")).await;
    let mut models = ModelsClient::new(grpc.clone());
    let mut scoring = ScoringClient::new(grpc.clone());

    let before = score(&mut scoring, "d1").await;
    assert_eq!(before.payment_model_version, SHIPPED_VERSION);

    // Stored but not active: scores do not move.
    let shifted = variant("shifted-v2", 2.0);
    let info = upload_model(&mut models, &shifted, None).await.unwrap();
    assert_eq!(
        (info.version.as_str(), info.active, info.shadow),
        ("shifted-v2", false, false)
    );
    assert_eq!(info.sha256, sha256_hex(&shifted));
    assert_eq!(info.size_bytes, shifted.len() as u64);
    assert_eq!(info.algorithm, "boosted_trees");
    assert!(info.metrics.contains_key("auc"));
    assert!(info.created_at.is_some() && info.uploaded_at.is_some());
    assert_eq!(
        list(&mut models).await,
        [
            (SHIPPED_VERSION.to_owned(), true, false),
            ("shifted-v2".to_owned(), false, false)
        ]
    );
    assert_eq!(score(&mut scoring, "d1").await, before);

    // Uploading the same content again is accepted (a trainer's retry); other
    // content under a stored version is not.
    upload_model(&mut models, &shifted, None).await.unwrap();
    let other = variant("shifted-v2", 3.0);
    let refused = upload_model(&mut models, &other, None).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");

    // Activated: the new version answers, with a higher probability.
    let info = models.activate(activate("shifted-v2")).await.unwrap();
    assert!(info.into_inner().active);
    let after = score(&mut scoring, "d1").await;
    assert_eq!(after.payment_model_version, "shifted-v2");
    assert!(
        after.p_pay > before.p_pay,
        "{} ≤ {}",
        after.p_pay,
        before.p_pay
    );

    // Rolled back: the old version again, exactly.
    let info = models.rollback(rollback()).await.unwrap().into_inner();
    assert_eq!(
        (info.version.as_str(), info.active),
        (SHIPPED_VERSION, true)
    );
    assert_eq!(score(&mut scoring, "d1").await, before);
    let refused = models.rollback(rollback()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let unknown = models
        .activate(activate("no-such-version"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(unknown.message().contains("no-such-version"));

    // Active again, then a restart on the same data directory: still active,
    // and the version it replaced is still the rollback target.
    models.activate(activate("shifted-v2")).await.unwrap();
    server.shutdown().await.unwrap();
    let server = start_in(data.path(), |_| {}).await;
    let grpc = channel(&server).await;
    let mut models = ModelsClient::new(grpc.clone());
    let mut scoring = ScoringClient::new(grpc.clone());
    assert_eq!(
        score(&mut scoring, "d1").await.payment_model_version,
        "shifted-v2"
    );
    assert_eq!(
        list(&mut models).await,
        [
            (SHIPPED_VERSION.to_owned(), false, false),
            ("shifted-v2".to_owned(), true, false)
        ]
    );
    let info = models.rollback(rollback()).await.unwrap().into_inner();
    assert_eq!(info.version, SHIPPED_VERSION);
    models.activate(activate("shifted-v2")).await.unwrap();
    server.shutdown().await.unwrap();

    // A damaged stored model is skipped, never served: the server falls back
    // to the version active before it.
    let stored = data.path().join("models/payment/shifted-v2/model.json");
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
    let server = start_in(data.path(), |_| {}).await;
    let grpc = channel(&server).await;
    let mut models = ModelsClient::new(grpc.clone());
    let mut scoring = ScoringClient::new(grpc);
    assert_eq!(
        score(&mut scoring, "d1").await.payment_model_version,
        SHIPPED_VERSION
    );
    assert_eq!(
        list(&mut models).await,
        [(SHIPPED_VERSION.to_owned(), true, false)]
    );
    server.shutdown().await.unwrap();
}

/// A server upgraded to a new feature schema finds its stored models of the
/// old schema: they no longer load, and the newly shipped model, a version
/// of its own name, serves instead.
#[tokio::test]
async fn after_a_schema_change_the_new_shipped_model_serves() {
    let data = tempfile::tempdir().unwrap();
    let old_release = tempfile::tempdir().unwrap();
    let mut old_model = shipped_json();
    old_model["version"] = json!("payment-sim-s42");
    std::fs::write(
        old_release.path().join("payment.json"),
        serde_json::to_vec_pretty(&old_model).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        shipped_models().join("contact.json"),
        old_release.path().join("contact.json"),
    )
    .unwrap();
    let models_dir = old_release.path().to_owned();
    let server = start_in(data.path(), |config| config.models_dir = models_dir).await;
    server.shutdown().await.unwrap();

    // What the old release stored, as if trained on another schema: its
    // checksum kept consistent, so that only the schema keeps it out.
    let stored = data.path().join("models/payment/payment-sim-s42");
    let mut model: Value =
        serde_json::from_slice(&std::fs::read(stored.join("model.json")).unwrap()).unwrap();
    model["feature_schema"]["hash"] = json!("00ff103f3ec46636");
    let bytes = serde_json::to_vec_pretty(&model).unwrap();
    let mut record: Value =
        serde_json::from_slice(&std::fs::read(stored.join("upload.json")).unwrap()).unwrap();
    record["sha256"] = json!(sha256_hex(&bytes));
    record["size_bytes"] = json!(bytes.len());
    std::fs::write(stored.join("model.json"), bytes).unwrap();
    std::fs::write(stored.join("upload.json"), record.to_string()).unwrap();

    let server = start_in(data.path(), |_| {}).await;
    let grpc = channel(&server).await;
    ingest(grpc.clone(), good_payer("d1")).await;
    let mut scoring = ScoringClient::new(grpc.clone());
    let answer = score(&mut scoring, "d1").await;
    assert_eq!(answer.payment_model_version, SHIPPED_VERSION);
    assert!(answer.known && answer.p_pay > 0.0);
    let mut models = ModelsClient::new(grpc);
    assert_eq!(
        list(&mut models).await,
        [(SHIPPED_VERSION.to_owned(), true, false)]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_refused_upload_names_its_check_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let limit = variant("any", 0.0).len() + 64 * 1024;
    let server = start_in(data.path(), |c| {
        c.models = ModelsConfig {
            max_upload_bytes: limit,
        }
    })
    .await;
    let grpc = channel(&server).await;
    ingest(grpc.clone(), bad_payer("d2")).await;
    let mut models = ModelsClient::new(grpc.clone());
    let mut scoring = ScoringClient::new(grpc);
    let before = score(&mut scoring, "d2").await;

    // Bad checksum: the header announces other content.
    let good = variant("checksum-v", 1.0);
    let mut header = client::header_for(&good, Some(Role::Active)).unwrap();
    header.sha256 = sha256_hex(b"something else");
    let status = upload(&mut models, header, &good).await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert!(status.message().starts_with("checksum:"), "{status:?}");

    // Wrong feature schema.
    let mut model: Value = serde_json::from_slice(&variant("schema-v", 1.0)).unwrap();
    model["feature_schema"]["hash"] = json!("0123456789abcdef");
    let bytes = serde_json::to_vec(&model).unwrap();
    let status = upload_model(&mut models, &bytes, Some(Role::Active))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().starts_with("schema:"), "{status:?}");
    assert!(status.message().contains("0123456789abcdef"), "{status:?}");

    // Garbage with a correct checksum.
    let garbage = b"\x00\x01 this is not a model file".to_vec();
    let header = UploadHeader {
        kind: "payment".into(),
        version: "garbage-v".into(),
        activate: true,
        shadow: false,
        sha256: sha256_hex(&garbage),
    };
    let status = upload(&mut models, header, &garbage).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("parse:"), "{status:?}");

    // A model that parses but scores NaN.
    let status = upload_model(&mut models, &nan_producing("nan-v"), Some(Role::Active))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("canary:"), "{status:?}");

    // Larger than the configured limit: refused while streaming.
    let mut big = variant("big-v", 1.0);
    big.extend(std::iter::repeat_n(b' ', limit));
    let status = upload_model(&mut models, &big, Some(Role::Active))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().starts_with("size:"), "{status:?}");

    // A header naming an unknown kind.
    let mut header = client::header_for(&good, None).unwrap();
    header.kind = "weather".into();
    let status = upload(&mut models, header, &good).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("weather"), "{status:?}");

    // Nothing changed: the same version answers the same, nothing was stored.
    assert_eq!(score(&mut scoring, "d2").await, before);
    assert_eq!(
        list(&mut models).await,
        [(SHIPPED_VERSION.to_owned(), true, false)]
    );
    let stored: Vec<_> = std::fs::read_dir(data.path().join("models/payment"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "roles.json")
        .collect();
    assert_eq!(stored, [SHIPPED_VERSION]);

    let text = scrape(&server).await;
    for outcome in ["checksum", "schema", "parse", "canary", "size"] {
        let series = format!(r#"mora_model_uploads_total{{kind="payment",outcome="{outcome}"}}"#);
        assert_eq!(sample(&text, &series), Some(1.0), "{series} in\n{text}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_shadow_model_is_scored_beside_the_active_one_and_never_answers() {
    let data = tempfile::tempdir().unwrap();
    let server = start_in(data.path(), |c| {
        c.scoring = ScoringConfig {
            shadow_fraction: 1.0,
            ..c.scoring.clone()
        }
    })
    .await;
    let grpc = channel(&server).await;
    ingest(grpc.clone(), good_payer("d3")).await;
    let mut models = ModelsClient::new(grpc.clone());
    let mut scoring = ScoringClient::new(grpc);
    let before = score(&mut scoring, "d3").await;

    let shadow = variant("shadow-v", -1.5);
    let info = upload_model(&mut models, &shadow, Some(Role::Shadow))
        .await
        .unwrap();
    assert!(info.shadow && !info.active);
    for _ in 0..5 {
        assert_eq!(score(&mut scoring, "d3").await, before);
    }
    let text = scrape(&server).await;
    let series = r#"mora_shadow_abs_difference_count{kind="payment"}"#;
    assert_eq!(sample(&text, series), Some(5.0), "{series} in\n{text}");
    let series = r#"mora_shadow_abs_difference_sum{kind="payment"}"#;
    assert!(sample(&text, series).unwrap() > 0.0, "{series} in\n{text}");
    assert!(text.contains(r#"mora_model_info{kind="payment",version="shadow-v",role="shadow"} 1"#));

    // Removing the shadow stops the comparison.
    let clear = ActivateRequest {
        kind: "payment".into(),
        version: String::new(),
        shadow: true,
    };
    models.activate(clear).await.unwrap();
    score(&mut scoring, "d3").await;
    let text = scrape(&server).await;
    assert_eq!(
        sample(&text, r#"mora_shadow_abs_difference_count{kind="payment"}"#),
        Some(5.0)
    );
    assert_eq!(
        list(&mut models).await,
        [
            (SHIPPED_VERSION.to_owned(), true, false),
            ("shadow-v".to_owned(), false, false)
        ]
    );
    server.shutdown().await.unwrap();
}

/// Runs the `mora` binary with `args`; returns its stdout, or panics with its
/// stderr.
async fn mora_cli(args: Vec<String>) -> String {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mora"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "mora failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_command_line_uploads_lists_and_rolls_back() {
    let server = start(&shipped_models()).await;
    let address = format!("http://{}", server.grpc_addr);
    let file = server.data_dir().join("cli-v.json");
    std::fs::write(&file, variant("cli-v", 0.5)).unwrap();
    let args = |list: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        args.extend(["--server".to_owned(), address.clone()]);
        args
    };

    let printed = mora_cli(args(&["upload", "--activate", file.to_str().unwrap()])).await;
    assert!(printed.starts_with("payment cli-v (active)\n"), "{printed}");
    assert!(printed.contains("algorithm   boosted_trees"), "{printed}");
    let mut scoring = ScoringClient::new(channel(&server).await);
    assert_eq!(
        score(&mut scoring, "d4").await.payment_model_version,
        "cli-v"
    );

    let printed = mora_cli(args(&["models", "list"])).await;
    assert!(printed.contains("payment cli-v (active)\n"), "{printed}");
    assert!(
        printed.contains(&format!("payment {SHIPPED_VERSION}\n")),
        "{printed}"
    );

    let printed = mora_cli(args(&["models", "rollback", "payment"])).await;
    assert!(
        printed.starts_with(&format!("payment {SHIPPED_VERSION} (active)\n")),
        "{printed}"
    );
    assert_eq!(
        score(&mut scoring, "d4").await.payment_model_version,
        SHIPPED_VERSION
    );
    server.shutdown().await.unwrap();
}
