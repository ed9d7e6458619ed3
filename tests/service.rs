//! The service end to end, through the generated gRPC client against a real
//! server on loopback.

mod common;

use common::*;
use mora::api::proto::{
    self, EventBatch, GetFeaturesRequest, ScoreBatchRequest, ScoreRequest, event::Kind,
    ingest_client::IngestClient, scoring_client::ScoringClient,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use tonic::Code;

async fn send(
    client: &mut IngestClient<tonic::transport::Channel>,
    seq: u64,
    events: Vec<proto::Event>,
) -> proto::IngestAck {
    client
        .send(EventBatch {
            batch_seq: seq,
            events,
        })
        .await
        .expect("batch accepted")
        .into_inner()
}

async fn score(
    client: &mut ScoringClient<tonic::transport::Channel>,
    debtor: &str,
) -> proto::ScoreResponse {
    let request = ScoreRequest {
        debtor_id: debtor.into(),
        as_of: at(AS_OF),
        include_contact_plan: false,
        ..Default::default()
    };
    client.score(request).await.expect("score").into_inner()
}

#[tokio::test]
async fn a_stream_acks_every_batch_with_accepted_duplicates_and_named_rejections() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);

    let mut first = good_payer("alice");
    first.extend(bad_payer("bob"));
    let valid = first.len() as u32;
    // Three bad events among the good ones, each with its own reason.
    first.push(event(
        "bad-currency",
        "alice",
        T0,
        Kind::Payment(proto::Payment {
            amount: money(5, "usd"),
            invoice_id: None,
        }),
    ));
    first.push(proto::Event {
        kind: None,
        ..event("no-kind", "alice", T0, payment(5))
    });
    first.push(event(
        "future",
        "alice",
        chrono::Utc::now().timestamp() + 3_600,
        payment(5),
    ));
    let second = good_payer("alice")[..3].to_vec();

    let batches = vec![
        EventBatch {
            batch_seq: 1,
            events: first,
        },
        EventBatch {
            batch_seq: 2,
            events: second,
        },
    ];
    let mut acks = ingest
        .stream(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let ack1 = acks.message().await.unwrap().expect("first ack");
    let ack2 = acks.message().await.unwrap().expect("second ack");
    assert!(acks.message().await.unwrap().is_none(), "one ack per batch");

    assert_eq!(
        (ack1.batch_seq, ack1.accepted, ack1.duplicates),
        (1, valid, 0)
    );
    let rejected: Vec<(u32, &str, &str)> = ack1
        .rejected
        .iter()
        .map(|r| (r.index, r.event_id.as_str(), r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (valid, "bad-currency", "payment.amount.currency"),
            (valid + 1, "no-kind", "kind"),
            (valid + 2, "future", "occurred_at"),
        ]
    );
    assert!(
        ack1.rejected[0]
            .reason
            .starts_with("payment.amount.currency: "),
        "{}",
        ack1.rejected[0].reason
    );
    assert_eq!(
        (
            ack2.batch_seq,
            ack2.accepted,
            ack2.duplicates,
            ack2.rejected.len()
        ),
        (2, 0, 3, 0)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_oversize_batch_is_refused_whole() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let events: Vec<_> = (0..10_001)
        .map(|i| event(&format!("e{i}"), "carol", T0, payment(1)))
        .collect();
    let status = ingest
        .send(EventBatch {
            batch_seq: 9,
            events,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("more than the limit of 10000"),
        "{}",
        status.message()
    );

    let mut scoring = ScoringClient::new(channel(&server).await);
    assert!(
        !score(&mut scoring, "carol").await.known,
        "nothing of the batch was applied"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn debtors_who_pay_score_higher_than_debtors_who_do_not() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    send(&mut ingest, 1, good_payer("good")).await;
    send(&mut ingest, 2, bad_payer("bad")).await;

    let mut scoring = ScoringClient::new(channel(&server).await);
    let good = score(&mut scoring, "good").await;
    let bad = score(&mut scoring, "bad").await;
    assert!(good.known && bad.known);
    assert!(
        good.p_pay > bad.p_pay,
        "good {} vs bad {}",
        good.p_pay,
        bad.p_pay
    );
    assert_eq!(bad.overdue, money(40_000, "USD"));
    assert_eq!(good.overdue, money(0, "USD"));
    let expected = (bad.p_pay * 40_000.0).round() as i64;
    assert_eq!(bad.expected_recovery, money(expected, "USD"));
    assert_eq!(bad.horizon_days, 30);
    assert_eq!(bad.payment_model_version, good.payment_model_version);
    assert!(!bad.payment_model_version.is_empty());

    // Reasons: three, largest effect first, each a real feature.
    assert_eq!(bad.reasons.len(), 3);
    let sizes: Vec<f64> = bad.reasons.iter().map(|r| r.contribution.abs()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert!(
        bad.reasons
            .iter()
            .all(|r| mora::features::FEATURE_NAMES.contains(&r.feature.as_str()))
    );
    assert_eq!(
        bad.risk_segment == proto::RiskSegment::High as i32,
        bad.p_pay < 0.3
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_debtor_gets_the_population_prior() {
    let server = start(&shipped_models()).await;
    let mut scoring = ScoringClient::new(channel(&server).await);
    let unknown = score(&mut scoring, "nobody").await;
    assert!(!unknown.known);
    let shipped = mora::models::ModelFile::read(&shipped_models().join("payment.json")).unwrap();
    assert_eq!(unknown.p_pay, shipped.base_rate);
    assert!(unknown.reasons.is_empty());
    assert_eq!(unknown.overdue, None);

    let status = scoring
        .score(ScoreRequest {
            debtor_id: String::new(),
            as_of: None,
            include_contact_plan: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("debtor_id: "),
        "{}",
        status.message()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_in_shuffled_order_give_identical_scores_and_features() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);

    let mut history = bad_payer("x");
    history.extend(good_payer("x").into_iter().skip(4).map(|mut e| {
        e.event_id = format!("g-{}", e.event_id);
        e
    }));
    let renamed = |debtor: &str, events: &[proto::Event]| -> Vec<proto::Event> {
        events
            .iter()
            .cloned()
            .map(|mut e| {
                e.debtor_id = debtor.into();
                e
            })
            .collect()
    };
    send(&mut ingest, 1, renamed("in-order", &history)).await;
    let mut shuffled = renamed("shuffled", &history);
    shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
    // Send the shuffled events one batch at a time, in three batches.
    for (i, chunk) in shuffled.chunks(7).enumerate() {
        send(&mut ingest, 10 + i as u64, chunk.to_vec()).await;
    }

    let mut scoring = ScoringClient::new(channel(&server).await);
    let a = score(&mut scoring, "in-order").await;
    let b = score(&mut scoring, "shuffled").await;
    assert!(
        (a.p_pay - b.p_pay).abs() < 1e-12,
        "{} vs {}",
        a.p_pay,
        b.p_pay
    );
    assert_eq!(
        (a.overdue, a.expected_recovery, a.risk_segment),
        (b.overdue, b.expected_recovery, b.risk_segment)
    );

    let features = |debtor: &str| GetFeaturesRequest {
        debtor_id: debtor.into(),
        as_of: at(AS_OF),
    };
    let fa = scoring
        .get_features(features("in-order"))
        .await
        .unwrap()
        .into_inner();
    let fb = scoring
        .get_features(features("shuffled"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fa.names, fb.names);
    for ((name, x), y) in fa.names.iter().zip(&fa.values).zip(&fb.values) {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{name}: {x} vs {y}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn score_batch_ranks_by_expected_recovery() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    send(&mut ingest, 1, good_payer("paid-up")).await;
    send(&mut ingest, 2, bad_payer("big-debt")).await;
    // A small debt: one unpaid invoice.
    send(
        &mut ingest,
        3,
        vec![event(
            "s1",
            "small-debt",
            T0,
            invoice("s-inv", 2_000, T0 + 20 * DAY),
        )],
    )
    .await;

    let mut scoring = ScoringClient::new(channel(&server).await);
    let ids = ["paid-up", "small-debt", "nobody", "big-debt", "small-debt"];
    let request = ScoreBatchRequest {
        debtor_ids: ids.iter().map(|s| s.to_string()).collect(),
        as_of: at(AS_OF),
    };
    let results = scoring
        .score_batch(request)
        .await
        .unwrap()
        .into_inner()
        .results;
    let order: Vec<&str> = results.iter().map(|r| r.debtor_id.as_str()).collect();
    assert_eq!(order.len(), 4, "each distinct debtor once: {order:?}");
    assert_eq!(&order[..2], ["big-debt", "small-debt"]);
    let recovery =
        |r: &proto::ScoreResponse| r.expected_recovery.as_ref().map_or(0, |m| m.minor_units);
    assert!(
        results
            .windows(2)
            .all(|w| recovery(&w[0]) >= recovery(&w[1]))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_batch_split_across_threads_answers_as_single_scores_do() {
    let server = start_with(&shipped_models(), |config| config.scoring.batch_threads = 3).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let debtors: Vec<String> = (0..700).map(|i| format!("split-{i:03}")).collect();
    for (seq, chunk) in debtors.chunks(50).enumerate() {
        let events = chunk
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                if i % 3 == 0 {
                    good_payer(d)
                } else {
                    bad_payer(d)
                }
            })
            .collect();
        send(&mut ingest, seq as u64, events).await;
    }
    let mut scoring = ScoringClient::new(channel(&server).await);
    let mut ids = debtors.clone();
    ids.push("nobody".into());
    let batch = scoring
        .score_batch(ScoreBatchRequest {
            debtor_ids: ids.clone(),
            as_of: at(AS_OF),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(batch.len(), ids.len());
    let mut answered: Vec<&str> = batch.iter().map(|r| r.debtor_id.as_str()).collect();
    answered.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(answered, expected, "every debtor once");
    for result in batch.iter().step_by(7) {
        let single = scoring
            .score(ScoreRequest {
                debtor_id: result.debtor_id.clone(),
                as_of: at(AS_OF),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(result, &single, "{}", result.debtor_id);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_features_returns_the_schema_and_the_values() {
    let server = start(&shipped_models()).await;
    let mut ingest = IngestClient::new(channel(&server).await);
    send(&mut ingest, 1, bad_payer("bob")).await;
    let mut scoring = ScoringClient::new(channel(&server).await);
    let request = GetFeaturesRequest {
        debtor_id: "bob".into(),
        as_of: at(AS_OF),
    };
    let vector = scoring.get_features(request).await.unwrap().into_inner();
    assert!(vector.known);
    assert_eq!(vector.schema_hash, mora::features::schema_hash());
    assert_eq!(vector.names, mora::features::FEATURE_NAMES);
    let value = |name: &str| vector.values[vector.names.iter().position(|n| n == name).unwrap()];
    // The oldest invoice fell due 20 days after T0: 105 days before AS_OF.
    assert_eq!(value("days_past_due"), 105.0);
    assert_eq!(value("overdue_invoices"), 4.0);
    assert_eq!(value("promises_broken"), 4.0);
    assert_eq!(value("has_ever_paid"), 0.0);
    server.shutdown().await.unwrap();
}
