//! Training and serving compute the same features: for sampled decision points
//! of a simulated portfolio, the feature vector the trainer computed during
//! replay equals what a running server returns from `GetFeatures` after
//! receiving the same events through `Ingest`.

mod common;

use common::*;
use mora::api::convert::event_to_proto;
use mora::api::proto::{
    EventBatch, GetFeaturesRequest, ingest_client::IngestClient, scoring_client::ScoringClient,
};
use mora::events::{AccountStatus, Event, EventKind};
use mora::features::FEATURE_NAMES;
use mora::sim::{self, SimConfig};
use mora::train::{TrainConfig, decision_points};

#[tokio::test]
async fn replayed_features_equal_served_features() {
    let portfolio = sim::portfolio(&SimConfig {
        debtors: 40,
        ..SimConfig::default()
    });
    let mut events: Vec<Event> = portfolio.into_iter().flat_map(|d| d.events).collect();
    // The simulator reports no account statuses; a creditor's status with each
    // invoice puts the account-status features through the same comparison.
    let statuses: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::InvoiceIssued { .. }))
        .enumerate()
        .map(|(i, invoice)| Event {
            event_id: format!("{}-status", invoice.event_id),
            kind: EventKind::AccountStatus {
                status: match i % 5 {
                    0 => AccountStatus::Inactive,
                    1 => AccountStatus::PaidInFull,
                    2 => AccountStatus::Revolving,
                    k => AccountStatus::Delinquent { cycles: k as u8 },
                },
            },
            ..invoice.clone()
        })
        .collect();
    events.extend(statuses);
    let samples = decision_points(&mut events, TrainConfig::default().points, |_, _| {});
    assert!(
        samples.len() > 200,
        "only {} decision points",
        samples.len()
    );

    let compared = || samples.iter().step_by(7);
    let status_count = FEATURE_NAMES
        .iter()
        .position(|name| *name == "statuses_revolving_6m")
        .unwrap();
    assert!(
        compared().any(|s| s.features.values()[status_count] > 0.0),
        "no compared decision point has an account status"
    );

    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let mut scoring = ScoringClient::new(channel(&server).await);

    // Every 7th decision point, so that debtors and times both vary.
    for (n, sample) in compared().enumerate() {
        // A fresh debtor id per decision point, holding exactly the events the
        // trainer had applied: this debtor's, before the decision, in replay order.
        let served_id = format!("{}@{}", sample.debtor_id, sample.at.0);
        let history: Vec<_> = events
            .iter()
            .filter(|e| e.debtor_id == sample.debtor_id && e.occurred_at < sample.at)
            .map(|e| {
                let mut message = event_to_proto(e);
                message.debtor_id = served_id.clone();
                message
            })
            .collect();
        let sent = history.len() as u32;
        let ack = ingest
            .send(EventBatch {
                batch_seq: n as u64,
                events: history,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ack.accepted, ack.rejected.len()),
            (sent, 0),
            "{:?}",
            ack.rejected
        );

        let request = GetFeaturesRequest {
            debtor_id: served_id,
            as_of: at(sample.at.0),
        };
        let served = scoring.get_features(request).await.unwrap().into_inner();
        assert_eq!(
            served.values,
            sample.features.values().to_vec(),
            "debtor {} at {}",
            sample.debtor_id,
            sample.at.0
        );
    }
    server.shutdown().await.unwrap();
}
