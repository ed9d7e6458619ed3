//! Contact plans through the real server: the plan follows the hours and the
//! channel where a debtor answers, exploration is reproducible by seed, and
//! bad requests name their field.

mod common;

use chrono::{TimeZone, Timelike};
use chrono_tz::America::New_York;
use common::*;
use mora::api::proto::event::Kind;
use mora::api::proto::ingest_client::IngestClient;
use mora::api::proto::scoring_client::ScoringClient;
use mora::api::proto::{self, EventBatch, ScoreRequest};

const DEBTOR: &str = "answers-in-the-evening";

/// 09:00 on Friday 1 May 2026 in New York.
fn now() -> i64 {
    New_York
        .with_ymd_and_hms(2026, 5, 1, 9, 0, 0)
        .unwrap()
        .timestamp()
}

/// `hour`:00 in New York, `days` before [`now`].
fn local(days: i64, hour: u32) -> i64 {
    let date = New_York.timestamp_opt(now() - days * DAY, 0).unwrap();
    let at = date.with_hour(hour).unwrap();
    at.timestamp()
}

fn profile() -> Kind {
    Kind::Profile(proto::Profile {
        timezone: "America/New_York".into(),
        country: "US".into(),
        authorised_channels: vec![],
    })
}

async fn plan(
    scoring: &mut ScoringClient<tonic::transport::Channel>,
    explore: bool,
    seed: Option<u64>,
) -> proto::ScoreResponse {
    let request = ScoreRequest {
        debtor_id: DEBTOR.into(),
        as_of: at(now()),
        include_contact_plan: true,
        contact_slots: 5,
        explore,
        exploration_seed: seed,
    };
    scoring.score(request).await.unwrap().into_inner()
}

/// Sends the debtor's New York profile and an invoice 40 days overdue.
async fn send_overdue_debtor(ingest: &mut IngestClient<tonic::transport::Channel>) {
    let events = vec![
        event("p", DEBTOR, local(60, 12), profile()),
        event(
            "i",
            DEBTOR,
            local(60, 12),
            invoice("inv", 50_000, local(40, 0)),
        ),
    ];
    let batch = EventBatch {
        batch_seq: 1,
        events,
    };
    ingest.send(batch).await.unwrap();
}

#[tokio::test]
async fn the_plan_moves_to_where_the_debtor_answers() {
    let server = start(&shipped_models()).await;
    let channel = channel(&server).await;
    let mut ingest = IngestClient::new(channel.clone());
    let mut scoring = ScoringClient::new(channel);

    send_overdue_debtor(&mut ingest).await;
    let before = plan(&mut scoring, false, None).await;
    let plan_before = before.contact_plan.expect("a plan");
    assert_eq!(plan_before.jurisdiction, "united_states");
    assert_eq!(plan_before.timezone, "America/New_York");
    assert!(!plan_before.timezone_assumed);
    assert_eq!(plan_before.slots.len(), 5);
    assert_eq!(plan_before.next_allowed.len(), 4);
    assert!(!before.contact_model_version.is_empty());

    // Five weeks of attempts: evening WhatsApp messages are answered, morning
    // calls and midday e-mails are not.
    let mut history = Vec::new();
    for week in 0..5 {
        let day = 35 - week * 7;
        let attempts = [
            (
                day,
                18,
                proto::Channel::Whatsapp,
                proto::ContactOutcome::Replied,
            ),
            (
                day - 2,
                10,
                proto::Channel::Call,
                proto::ContactOutcome::NoAnswer,
            ),
            (
                day - 4,
                13,
                proto::Channel::Email,
                proto::ContactOutcome::Delivered,
            ),
        ];
        for (n, (day, hour, channel, outcome)) in attempts.into_iter().enumerate() {
            history.push(event(
                &format!("c{week}-{n}"),
                DEBTOR,
                local(day, hour),
                contact(channel, outcome),
            ));
        }
    }
    let batch = EventBatch {
        batch_seq: 2,
        events: history,
    };
    let ack = ingest.send(batch).await.unwrap().into_inner();
    assert_eq!(ack.accepted, 15, "{ack:?}");

    let after = plan(&mut scoring, false, None).await;
    let plan_after = after.contact_plan.expect("a plan");
    let best = &plan_after.slots[0];
    let start = best.start.unwrap().seconds;
    let hour = New_York.timestamp_opt(start, 0).unwrap().hour();
    assert_eq!(
        best.channel(),
        proto::Channel::Whatsapp,
        "best slot {best:?}"
    );
    assert!(
        (16..=20).contains(&hour),
        "best slot at {}",
        best.local_start
    );
    let whatsapp_before = plan_before
        .slots
        .iter()
        .filter(|s| s.channel() == proto::Channel::Whatsapp)
        .map(|s| s.p_success)
        .fold(0.0, f64::max);
    assert!(
        best.p_success > whatsapp_before,
        "{} after the history, {whatsapp_before} before",
        best.p_success
    );
    assert!(
        plan_after
            .slots
            .iter()
            .all(|s| s.channel() != proto::Channel::Call),
        "{:?}",
        plan_after.slots
    );
    for slot in &plan_after.slots {
        assert!(slot.sampled_p_success.is_none());
        let local_start = chrono::DateTime::parse_from_rfc3339(&slot.local_start).unwrap();
        assert_eq!(local_start.timestamp(), slot.start.unwrap().seconds);
    }

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exploration_is_reproducible_by_seed_and_still_allowed() {
    let server = start(&shipped_models()).await;
    let channel = channel(&server).await;
    let mut ingest = IngestClient::new(channel.clone());
    let mut scoring = ScoringClient::new(channel);
    send_overdue_debtor(&mut ingest).await;

    let first = plan(&mut scoring, true, Some(7))
        .await
        .contact_plan
        .unwrap();
    let again = plan(&mut scoring, true, Some(7))
        .await
        .contact_plan
        .unwrap();
    assert_eq!(first, again);
    assert!(first.slots.iter().all(|s| s.sampled_p_success.is_some()));

    let mut orders = std::collections::HashSet::new();
    for seed in 0..10 {
        let plan = plan(&mut scoring, true, Some(seed))
            .await
            .contact_plan
            .unwrap();
        for slot in &plan.slots {
            let hour = New_York
                .timestamp_opt(slot.start.unwrap().seconds, 0)
                .unwrap()
                .hour();
            assert!((8..=20).contains(&hour), "{}", slot.local_start);
        }
        let order: Vec<(i64, i32)> = plan
            .slots
            .iter()
            .map(|s| (s.start.unwrap().seconds, s.channel))
            .collect();
        orders.insert(order);
    }
    assert!(orders.len() > 1, "every seed gave the same plan");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn too_many_slots_is_refused_by_name() {
    let server = start(&shipped_models()).await;
    let mut scoring = ScoringClient::new(channel(&server).await);
    let request = ScoreRequest {
        debtor_id: DEBTOR.into(),
        as_of: at(now()),
        include_contact_plan: true,
        contact_slots: 51,
        ..Default::default()
    };
    let status = scoring.score(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("contact_slots:"),
        "{}",
        status.message()
    );

    // An unknown debtor has no plan rather than a plan for nobody.
    let request = ScoreRequest {
        debtor_id: "nobody".into(),
        as_of: at(now()),
        include_contact_plan: true,
        ..Default::default()
    };
    let response = scoring.score(request).await.unwrap().into_inner();
    assert!(!response.known);
    assert!(response.contact_plan.is_none());

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_uploaded_contact_model_plans_once_activated() {
    use mora::api::client;
    use mora::api::proto::models_client::ModelsClient;
    use mora::models::repository::Role;

    let server = start(&shipped_models()).await;
    let channel = channel(&server).await;
    let mut ingest = IngestClient::new(channel.clone());
    let mut scoring = ScoringClient::new(channel.clone());
    let mut models = ModelsClient::new(channel);
    send_overdue_debtor(&mut ingest).await;
    let shipped = plan(&mut scoring, false, None).await.contact_model_version;

    // The shipped contact model under a new version, its intercept moved.
    let path = shipped_models().join("contact.json");
    let mut model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    model["version"] = "contact-nightly".into();
    let intercept = &mut model["model"]["fitted"]["intercept"];
    *intercept = (intercept.as_f64().unwrap() + 0.5).into();
    let bytes = serde_json::to_vec(&model).unwrap();
    let header = client::header_for(&bytes, Some(Role::Active)).unwrap();
    let stream = tokio_stream::iter(client::chunks(header, &bytes));
    let info = models.upload(stream).await.unwrap().into_inner();
    assert_eq!(info.version, "contact-nightly");

    let response = plan(&mut scoring, false, None).await;
    assert_eq!(response.contact_model_version, "contact-nightly");
    assert_ne!(response.contact_model_version, shipped);
    assert_eq!(
        response.contact_plan.unwrap().slots.len(),
        5,
        "the new model plans"
    );

    // A contact model trained on another contact feature schema is refused.
    model["version"] = "contact-old-schema".into();
    model["feature_schema"]["hash"] = "0000000000000000".into();
    let bytes = serde_json::to_vec(&model).unwrap();
    let header = client::header_for(&bytes, Some(Role::Active)).unwrap();
    let stream = tokio_stream::iter(client::chunks(header, &bytes));
    let status = models.upload(stream).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("contact"), "{}", status.message());
    let response = plan(&mut scoring, false, None).await;
    assert_eq!(response.contact_model_version, "contact-nightly");

    server.shutdown().await.unwrap();
}
