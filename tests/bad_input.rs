//! Hostile and malformed input, field by field, through a real server: each
//! malformed value of each event kind and request gets the documented status
//! or rejection, naming the field, and the whole debtor state (by digest) and
//! the model repository are exactly as they were.

mod common;

use common::*;
use mora::api::proto::{
    self, ActivateRequest, EventBatch, GetFeaturesRequest, ListModelsRequest, ModelChunk,
    RollbackRequest, ScoreBatchRequest, ScoreRequest, UploadHeader, event::Kind,
    ingest_client::IngestClient, model_chunk::Part, models_client::ModelsClient,
    scoring_client::ScoringClient,
};
use pbjson_types::Timestamp;
use tonic::Code;

/// An existing debtor: a malformed event wrongly applied would change it.
const DEBTOR: &str = "known-1";
const WHEN: i64 = T0 + 50 * DAY;
const LONG: usize = 129;

fn long() -> String {
    "x".repeat(LONG)
}

fn usd(minor_units: i64) -> Option<proto::Money> {
    money(minor_units, "USD")
}

fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn on_known(kind: Kind) -> proto::Event {
    event("bad-event", DEBTOR, WHEN, kind)
}

fn opt_out() -> Kind {
    Kind::OptOut(proto::OptOut { channel: 1 })
}

fn profile(timezone: &str, country: &str, channels: Vec<i32>) -> Kind {
    Kind::Profile(proto::Profile {
        timezone: timezone.into(),
        country: country.into(),
        authorised_channels: channels,
    })
}

fn issued(invoice_id: &str, amount: Option<proto::Money>, due: Option<Timestamp>) -> Kind {
    Kind::InvoiceIssued(proto::InvoiceIssued {
        invoice_id: invoice_id.into(),
        amount,
        due_at: due,
    })
}

fn adjusted(invoice_id: &str, new_amount: Option<proto::Money>) -> Kind {
    Kind::InvoiceAdjusted(proto::InvoiceAdjusted {
        invoice_id: invoice_id.into(),
        new_amount,
    })
}

fn paid(amount: Option<proto::Money>, invoice_id: Option<String>) -> Kind {
    Kind::Payment(proto::Payment { amount, invoice_id })
}

fn reversed(amount: Option<proto::Money>, payment_event_id: Option<String>) -> Kind {
    Kind::PaymentReversed(proto::PaymentReversed {
        amount,
        payment_event_id,
    })
}

fn promised(amount: Option<proto::Money>, promised_for: Option<Timestamp>) -> Kind {
    Kind::Promise(proto::Promise {
        amount,
        promised_for,
    })
}

fn contacted(channel: i32, outcome: i32) -> Kind {
    Kind::Contact(proto::Contact { channel, outcome })
}

/// Every malformed event, with the field its rejection must name and its code.
fn malformed_events() -> Vec<(proto::Event, &'static str, &'static str)> {
    let invalid = "INVALID_ARGUMENT";
    let due = ts(WHEN + 20 * DAY, 0);
    let envelope = |edit: fn(&mut proto::Event)| {
        let mut event = on_known(opt_out());
        edit(&mut event);
        event
    };
    vec![
        (envelope(|e| e.event_id.clear()), "event_id", invalid),
        (envelope(|e| e.event_id = long()), "event_id", invalid),
        (envelope(|e| e.debtor_id.clear()), "debtor_id", invalid),
        (envelope(|e| e.debtor_id = long()), "debtor_id", invalid),
        (envelope(|e| e.occurred_at = None), "occurred_at", invalid),
        (
            envelope(|e| e.occurred_at = ts(WHEN, -1)),
            "occurred_at.nanos",
            invalid,
        ),
        (
            envelope(|e| e.occurred_at = ts(WHEN, 1_000_000_000)),
            "occurred_at.nanos",
            invalid,
        ),
        (
            envelope(|e| e.occurred_at = ts(i64::MAX, 0)),
            "occurred_at",
            invalid,
        ),
        (
            envelope(|e| e.occurred_at = ts(-1, 0)),
            "occurred_at",
            invalid,
        ),
        (
            envelope(|e| e.occurred_at = ts(4_102_444_800 + 1, 0)),
            "occurred_at",
            invalid,
        ),
        (envelope(|e| e.kind = None), "kind", invalid),
        // Older than the late-event horizon of this server (400 days).
        (
            envelope(|e| e.occurred_at = ts(T0 - 400 * DAY, 0)),
            "occurred_at",
            "OUT_OF_RANGE",
        ),
        (
            on_known(profile("Nowhere/City", "CO", vec![])),
            "profile.timezone",
            invalid,
        ),
        (
            on_known(profile(&long(), "CO", vec![])),
            "profile.timezone",
            invalid,
        ),
        (
            on_known(profile("America/Bogota", "col", vec![])),
            "profile.country",
            invalid,
        ),
        (
            on_known(profile("America/Bogota", "", vec![])),
            "profile.country",
            invalid,
        ),
        (
            on_known(profile("America/Bogota", "co", vec![])),
            "profile.country",
            invalid,
        ),
        (
            on_known(profile("", "CO", vec![1, 0])),
            "profile.authorised_channels[1]",
            invalid,
        ),
        (
            on_known(profile("", "CO", vec![99])),
            "profile.authorised_channels[0]",
            invalid,
        ),
        (
            on_known(issued("", usd(5), due)),
            "invoice_issued.invoice_id",
            invalid,
        ),
        (
            on_known(issued(&long(), usd(5), due)),
            "invoice_issued.invoice_id",
            invalid,
        ),
        (
            on_known(issued("i", None, due)),
            "invoice_issued.amount",
            invalid,
        ),
        (
            on_known(issued("i", usd(0), due)),
            "invoice_issued.amount.minor_units",
            invalid,
        ),
        (
            on_known(issued("i", usd(-5), due)),
            "invoice_issued.amount.minor_units",
            invalid,
        ),
        (
            on_known(issued("i", money(5, "usd"), due)),
            "invoice_issued.amount.currency",
            invalid,
        ),
        (
            on_known(issued("i", money(5, ""), due)),
            "invoice_issued.amount.currency",
            invalid,
        ),
        (
            on_known(issued("i", usd(5), None)),
            "invoice_issued.due_at",
            invalid,
        ),
        (
            on_known(issued("i", usd(5), ts(WHEN, -5))),
            "invoice_issued.due_at.nanos",
            invalid,
        ),
        (
            on_known(adjusted("", usd(0))),
            "invoice_adjusted.invoice_id",
            invalid,
        ),
        (
            on_known(adjusted(&long(), usd(0))),
            "invoice_adjusted.invoice_id",
            invalid,
        ),
        (
            on_known(adjusted("i", None)),
            "invoice_adjusted.new_amount",
            invalid,
        ),
        (
            on_known(adjusted("i", usd(-1))),
            "invoice_adjusted.new_amount.minor_units",
            invalid,
        ),
        (
            on_known(adjusted("i", money(1, "EURO"))),
            "invoice_adjusted.new_amount.currency",
            invalid,
        ),
        (on_known(paid(None, None)), "payment.amount", invalid),
        (
            on_known(paid(usd(0), None)),
            "payment.amount.minor_units",
            invalid,
        ),
        (
            on_known(paid(usd(i64::MIN), None)),
            "payment.amount.minor_units",
            invalid,
        ),
        (
            on_known(paid(money(5, "U$D"), None)),
            "payment.amount.currency",
            invalid,
        ),
        (
            on_known(paid(usd(5), Some(long()))),
            "payment.invoice_id",
            invalid,
        ),
        // A second currency for a debtor whose amounts are in USD.
        (
            on_known(paid(money(5, "EUR"), None)),
            "payment.amount.currency",
            "FAILED_PRECONDITION",
        ),
        (
            on_known(reversed(None, None)),
            "payment_reversed.amount",
            invalid,
        ),
        (
            on_known(reversed(usd(-3), None)),
            "payment_reversed.amount.minor_units",
            invalid,
        ),
        (
            on_known(reversed(usd(3), Some(long()))),
            "payment_reversed.payment_event_id",
            invalid,
        ),
        (on_known(promised(None, due)), "promise.amount", invalid),
        (
            on_known(promised(usd(0), due)),
            "promise.amount.minor_units",
            invalid,
        ),
        (
            on_known(promised(usd(5), None)),
            "promise.promised_for",
            invalid,
        ),
        (
            on_known(promised(usd(5), ts(0, 0))),
            "promise.promised_for",
            invalid,
        ),
        (on_known(contacted(0, 1)), "contact.channel", invalid),
        (on_known(contacted(99, 1)), "contact.channel", invalid),
        (on_known(contacted(1, 0)), "contact.outcome", invalid),
        (on_known(contacted(1, -7)), "contact.outcome", invalid),
        (
            on_known(Kind::OptOut(proto::OptOut { channel: 0 })),
            "opt_out.channel",
            invalid,
        ),
        (
            on_known(Kind::OptOut(proto::OptOut { channel: 5 })),
            "opt_out.channel",
            invalid,
        ),
        (
            on_known(Kind::CreditLimit(proto::CreditLimit { limit: None })),
            "credit_limit.limit",
            invalid,
        ),
        (
            on_known(Kind::CreditLimit(proto::CreditLimit { limit: usd(0) })),
            "credit_limit.limit.minor_units",
            invalid,
        ),
        (
            on_known(Kind::AccountStatus(proto::AccountStatus {
                standing: 0,
                cycles_past_due: 0,
            })),
            "account_status.standing",
            invalid,
        ),
        (
            on_known(Kind::AccountStatus(proto::AccountStatus {
                standing: proto::AccountStanding::Delinquent.into(),
                cycles_past_due: 0,
            })),
            "account_status.cycles_past_due",
            invalid,
        ),
        (
            on_known(Kind::AccountStatus(proto::AccountStatus {
                standing: proto::AccountStanding::Revolving.into(),
                cycles_past_due: 2,
            })),
            "account_status.cycles_past_due",
            invalid,
        ),
    ]
}

async fn start_guarded() -> TestServer {
    start_with(&shipped_models(), |config| {
        config.ingest.late_event_horizon_days = 400;
        config.ingest.max_batch_events = 50;
        config.scoring.max_batch_debtors = 10;
    })
    .await
}

#[tokio::test]
async fn each_malformed_event_field_is_rejected_by_name_and_changes_nothing() {
    let server = start_guarded().await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let mut history = good_payer(DEBTOR);
    history.extend(bad_payer("known-2"));
    let ack = ingest
        .send(EventBatch {
            batch_seq: 1,
            events: history,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
    let before = server.state_digest();

    let cases = malformed_events();
    for (seq, (event, field, code)) in cases.iter().enumerate() {
        let ack = ingest
            .send(EventBatch {
                batch_seq: seq as u64 + 2,
                events: vec![event.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ack.accepted, ack.duplicates, ack.rejected.len()),
            (0, 0, 1),
            "{field}: {event:?}"
        );
        let rejection = &ack.rejected[0];
        assert_eq!(
            (rejection.field.as_str(), rejection.code.as_str()),
            (*field, *code),
            "{rejection:?}"
        );
        assert!(
            rejection.reason.starts_with(field),
            "the reason names the field: {rejection:?}"
        );
        assert_eq!(server.state_digest(), before, "{field} changed the state");
    }

    // All of them in one batch: each rejected alone, at its own index.
    let ack = ingest
        .send(EventBatch {
            batch_seq: 1_000,
            events: cases
                .iter()
                .map(|(event, _, _)| event.clone())
                .take(50)
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.rejected.len(), 50);
    assert!(
        ack.rejected
            .iter()
            .enumerate()
            .all(|(i, r)| r.index as usize == i)
    );

    // A batch over the limit is refused whole, its valid events included.
    let oversize: Vec<_> = (0..51)
        .map(|i| event(&format!("ok-{i}"), DEBTOR, WHEN, opt_out()))
        .collect();
    let refused = ingest
        .send(EventBatch {
            batch_seq: 1_001,
            events: oversize,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("events: batch 1001 has 51 events"),
        "{refused:?}"
    );
    assert_eq!(
        server.state_digest(),
        before,
        "an oversize batch changed the state"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_malformed_request_field_gets_its_status_and_changes_nothing() {
    let server = start_guarded().await;
    let channel = channel(&server).await;
    IngestClient::new(channel.clone())
        .send(EventBatch {
            batch_seq: 1,
            events: good_payer(DEBTOR),
        })
        .await
        .unwrap();
    let mut scoring = ScoringClient::new(channel.clone());
    let mut models = ModelsClient::new(channel.clone());
    let listed = |models: &mut ModelsClient<_>| {
        let mut models = models.clone();
        async move {
            models
                .list(ListModelsRequest::default())
                .await
                .unwrap()
                .into_inner()
        }
    };
    let state_before = server.state_digest();
    let models_before = listed(&mut models).await;

    let score = |debtor_id: String, as_of: Option<Timestamp>| ScoreRequest {
        debtor_id,
        as_of,
        ..Default::default()
    };
    let mut outcomes: Vec<(&str, Result<(), tonic::Status>, Code, &str)> = Vec::new();
    for (name, request, field) in [
        ("Score empty id", score(String::new(), None), "debtor_id"),
        ("Score long id", score(long(), None), "debtor_id"),
        (
            "Score bad nanos",
            score(DEBTOR.into(), ts(WHEN, -1)),
            "as_of.nanos",
        ),
        (
            "Score too many slots",
            ScoreRequest {
                include_contact_plan: true,
                contact_slots: 51,
                ..score(DEBTOR.into(), None)
            },
            "contact_slots",
        ),
    ] {
        let result = scoring.score(request).await.map(drop);
        outcomes.push((name, result, Code::InvalidArgument, field));
    }
    for (name, ids, as_of, field) in [
        (
            "ScoreBatch empty id",
            vec![DEBTOR.into(), String::new()],
            None,
            "debtor_ids[1]",
        ),
        ("ScoreBatch long id", vec![long()], None, "debtor_ids[0]"),
        (
            "ScoreBatch too many",
            (0..11).map(|i| format!("d{i}")).collect(),
            None,
            "debtor_ids",
        ),
        (
            "ScoreBatch bad nanos",
            vec![DEBTOR.into()],
            ts(WHEN, 2_000_000_000),
            "as_of.nanos",
        ),
    ] {
        let request = ScoreBatchRequest {
            debtor_ids: ids,
            as_of,
        };
        let result = scoring.score_batch(request).await.map(drop);
        outcomes.push((name, result, Code::InvalidArgument, field));
    }
    for (name, debtor_id, as_of, field) in [
        ("GetFeatures empty id", String::new(), None, "debtor_id"),
        ("GetFeatures long id", long(), None, "debtor_id"),
        (
            "GetFeatures bad nanos",
            DEBTOR.to_owned(),
            ts(WHEN, -9),
            "as_of.nanos",
        ),
    ] {
        let result = scoring
            .get_features(GetFeaturesRequest { debtor_id, as_of })
            .await
            .map(drop);
        outcomes.push((name, result, Code::InvalidArgument, field));
    }

    let upload = |parts: Vec<Part>| {
        let mut models = models.clone();
        async move {
            let chunks: Vec<ModelChunk> = parts
                .into_iter()
                .map(|part| ModelChunk { part: Some(part) })
                .collect();
            models.upload(tokio_stream::iter(chunks)).await.map(drop)
        }
    };
    let header = |kind: &str, version: &str, sha256: &str| UploadHeader {
        kind: kind.into(),
        version: version.into(),
        sha256: sha256.into(),
        ..Default::default()
    };
    let zeros = "0".repeat(64);
    for (name, parts, code, field) in [
        (
            "Upload without header",
            vec![Part::Data(b"{}".to_vec())],
            Code::InvalidArgument,
            "header",
        ),
        (
            "Upload unknown kind",
            vec![
                Part::Header(header("weather", "v1", &zeros)),
                Part::Data(b"{}".to_vec()),
            ],
            Code::InvalidArgument,
            "kind",
        ),
        (
            "Upload bad version",
            vec![
                Part::Header(header("payment", "../v1", &zeros)),
                Part::Data(b"{}".to_vec()),
            ],
            Code::InvalidArgument,
            "version",
        ),
        (
            "Upload bad checksum format",
            vec![
                Part::Header(header("payment", "v9", "xyz")),
                Part::Data(b"{}".to_vec()),
            ],
            Code::InvalidArgument,
            "sha256",
        ),
        (
            "Upload checksum mismatch",
            vec![
                Part::Header(header("payment", "v9", &zeros)),
                Part::Data(b"{}".to_vec()),
            ],
            Code::DataLoss,
            "SHA-256",
        ),
    ] {
        outcomes.push((name, upload(parts).await, code, field));
    }
    let activate = |kind: &str, version: &str| ActivateRequest {
        kind: kind.into(),
        version: version.into(),
        shadow: false,
    };
    for (name, request, code, field) in [
        (
            "Activate unknown kind",
            activate("weather", "v1"),
            Code::InvalidArgument,
            "kind",
        ),
        (
            "Activate unknown version",
            activate("payment", "v404"),
            Code::NotFound,
            "v404",
        ),
    ] {
        outcomes.push((name, models.activate(request).await.map(drop), code, field));
    }
    let rollback = models
        .rollback(RollbackRequest {
            kind: "contact".into(),
        })
        .await
        .map(drop);
    outcomes.push((
        "Rollback without previous",
        rollback,
        Code::FailedPrecondition,
        "contact",
    ));

    for (name, result, code, field) in outcomes {
        let status = result.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert!(
            status.message().contains(field),
            "{name}: the message names {field}: {status:?}"
        );
        assert_eq!(
            server.state_digest(),
            state_before,
            "{name} changed the state"
        );
    }
    assert_eq!(
        listed(&mut models).await,
        models_before,
        "the models changed"
    );
    server.shutdown().await.unwrap();
}
