//! Durable state through a real server: a restart keeps every debtor, late
//! events are refused with their reason, and a full store refuses only new
//! debtors.

mod common;

use common::*;
use mora::api::proto::{
    EventBatch, GetFeaturesRequest, ingest_client::IngestClient, scoring_client::ScoringClient,
};

async fn features(server: &mora::server::RunningServer, debtor: &str) -> Vec<f64> {
    let mut scoring = ScoringClient::new(channel(server).await);
    let vector = scoring
        .get_features(GetFeaturesRequest {
            debtor_id: debtor.into(),
            as_of: at(T0 + 200 * DAY),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(vector.known, "{debtor} is known");
    vector.values
}

#[tokio::test]
async fn a_restart_recovers_every_debtor_from_snapshot_and_log() {
    let data = tempfile::tempdir().unwrap();
    let start = || async {
        let server = mora::server::start(config(&shipped_models(), data.path()))
            .await
            .unwrap();
        server.recovered().await;
        server
    };

    // First run: two debtors, then a graceful stop (which snapshots).
    let server = start().await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let mut events = good_payer("r1");
    events.extend(bad_payer("r2"));
    ingest
        .send(EventBatch {
            batch_seq: 1,
            events,
        })
        .await
        .unwrap();
    let before = (features(&server, "r1").await, features(&server, "r2").await);
    server.shutdown().await.unwrap();
    let state_dir = data.path().join("state");
    let snapshots = std::fs::read_dir(&state_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "snap")
        })
        .count();
    assert_eq!(snapshots, 1, "shutdown writes a snapshot");

    // Second run: a third debtor arrives after the snapshot; a third run
    // sees all three, and the first debtor's events again are duplicates.
    let server = start().await;
    assert_eq!(
        (features(&server, "r1").await, features(&server, "r2").await),
        before
    );
    let mut ingest = IngestClient::new(channel(&server).await);
    ingest
        .send(EventBatch {
            batch_seq: 2,
            events: good_payer("r3"),
        })
        .await
        .unwrap();
    let r3 = features(&server, "r3").await;
    server.shutdown().await.unwrap();

    let server = start().await;
    assert_eq!(features(&server, "r3").await, r3);
    let ack = IngestClient::new(channel(&server).await)
        .send(EventBatch {
            batch_seq: 3,
            events: good_payer("r1"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ack.accepted, ack.duplicates),
        (0, 8),
        "ids survive restarts"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_older_than_the_horizon_are_refused_as_late() {
    let server = start_with(&shipped_models(), |c| {
        c.ingest.late_event_horizon_days = 30;
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let ack = IngestClient::new(channel(&server).await)
        .send(EventBatch {
            batch_seq: 1,
            events: vec![
                event("recent", "l1", now - 10 * DAY, payment(100)),
                event("old", "l1", now - 40 * DAY, payment(100)),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted, 1);
    let rejection = &ack.rejected[0];
    assert_eq!(
        (
            rejection.index,
            rejection.event_id.as_str(),
            rejection.field.as_str()
        ),
        (1, "old", "occurred_at")
    );
    assert_eq!(rejection.code, "OUT_OF_RANGE");
    assert!(
        rejection
            .reason
            .contains("older than the late-event horizon of 30 days"),
        "{}",
        rejection.reason
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_store_refuses_new_debtors_and_keeps_updating_known_ones() {
    let server = start_with(&shipped_models(), |c| c.state.max_debtors = 2).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let first = ingest
        .send(EventBatch {
            batch_seq: 1,
            events: vec![
                event("a1", "a", T0, payment(100)),
                event("b1", "b", T0, payment(100)),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accepted, 2);

    let ack = ingest
        .send(EventBatch {
            batch_seq: 2,
            events: vec![
                event("c1", "c", T0, payment(100)),
                event("a2", "a", T0 + DAY, payment(100)),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted, 1, "the known debtor still updates");
    let rejection = &ack.rejected[0];
    assert_eq!(
        (rejection.index, rejection.field.as_str()),
        (0, "debtor_id")
    );
    assert_eq!(rejection.code, "RESOURCE_EXHAUSTED");
    assert!(
        rejection.reason.contains("maximum of 2 debtors"),
        "{}",
        rejection.reason
    );
    server.shutdown().await.unwrap();
}
