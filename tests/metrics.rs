//! `/metrics` scraped over real HTTP after real traffic. This file runs in its
//! own process, so the process-wide counters see only its traffic.

mod common;

use common::*;
use mora::api::proto::{
    EventBatch, ScoreRequest, ingest_client::IngestClient, scoring_client::ScoringClient,
};

#[tokio::test]
async fn counters_match_the_events_sent() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let mut events = good_payer("m1");
    events.extend(bad_payer("m2"));
    events.push(event("bad", "m1", T0, invoice("x", -5, T0)));
    let ack = ingest
        .send(EventBatch {
            batch_seq: 1,
            events: events.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.accepted, ack.rejected.len()), (28, 1));
    // The same batch again: all duplicates but the rejected one.
    ingest
        .send(EventBatch {
            batch_seq: 2,
            events,
        })
        .await
        .unwrap();

    let mut scoring = ScoringClient::new(channel(&server).await);
    for debtor in ["m1", "m2", "m3"] {
        let request = ScoreRequest {
            debtor_id: debtor.into(),
            as_of: at(AS_OF),
            include_contact_plan: false,
            ..Default::default()
        };
        scoring.score(request).await.unwrap();
    }

    let text = scrape(&server).await;
    let value = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    };
    assert_eq!(
        value(r#"mora_events_applied_total{kind="invoice_issued"}"#),
        8.0
    );
    assert_eq!(value(r#"mora_events_applied_total{kind="payment"}"#), 4.0);
    assert_eq!(value(r#"mora_events_applied_total{kind="contact"}"#), 12.0);
    assert_eq!(value(r#"mora_events_applied_total{kind="promise"}"#), 4.0);
    assert_eq!(
        value(r#"mora_events_duplicate_total{kind="contact"}"#),
        12.0
    );
    assert_eq!(
        value(r#"mora_events_rejected_total{kind="invoice_issued"}"#),
        2.0
    );
    assert_eq!(value("mora_debtors"), 2.0);
    assert_eq!(
        value(r#"mora_rpc_requests_total{method="score",code="ok"}"#),
        3.0
    );
    assert_eq!(
        value(r#"mora_rpc_requests_total{method="ingest_send",code="ok"}"#),
        2.0
    );
    assert_eq!(
        value(r#"mora_rpc_duration_seconds_count{method="score"}"#),
        3.0
    );
    assert_eq!(value("mora_ingest_batch_events_count"), 2.0);
    let version = mora::models::ModelFile::read(&shipped_models().join("payment.json"))
        .unwrap()
        .version;
    assert_eq!(
        value(&format!(
            r#"mora_model_info{{kind="payment",version="{version}",role="active"}}"#
        )),
        1.0
    );
    assert!(value(r#"mora_model_age_seconds{kind="payment",role="active"}"#) > 0.0);
    assert!(text.contains("# TYPE mora_rpc_duration_seconds histogram"));
    server.shutdown().await.unwrap();
}
