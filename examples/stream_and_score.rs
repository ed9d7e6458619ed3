//! Streams a few events for two debtors into a running mora server, then scores
//! them and prints the answers.
//!
//! Start a server first (`cargo run --release -- serve`), then:
//!
//! ```text
//! cargo run --example stream_and_score -- http://127.0.0.1:50051
//! ```

use mora::api::proto::{
    self, EventBatch, ScoreRequest, event::Kind, ingest_client::IngestClient,
    scoring_client::ScoringClient,
};
use pbjson_types::Timestamp;

const DAY: i64 = 86_400;

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn usd(minor_units: i64) -> Option<proto::Money> {
    Some(proto::Money {
        minor_units,
        currency: "USD".into(),
    })
}

fn event(id: &str, debtor: &str, seconds: i64, kind: Kind) -> proto::Event {
    proto::Event {
        event_id: id.into(),
        debtor_id: debtor.into(),
        occurred_at: at(seconds),
        kind: Some(kind),
    }
}

/// Three months of invoices; `ana` pays them, `ben` does not and misses calls.
fn history(now: i64) -> Vec<proto::Event> {
    let start = now - 100 * DAY;
    let mut events = Vec::new();
    for debtor in ["ana", "ben"] {
        let profile = proto::Profile {
            timezone: "America/New_York".into(),
            country: "US".into(),
            authorised_channels: vec![proto::Channel::Call.into(), proto::Channel::Sms.into()],
        };
        events.push(event(
            &format!("{debtor}-profile"),
            debtor,
            start,
            Kind::Profile(profile),
        ));
        for month in 0..3 {
            let issued = start + month * 30 * DAY;
            let invoice_id = format!("{debtor}-{month}");
            let invoice = proto::InvoiceIssued {
                invoice_id,
                amount: usd(25_000),
                due_at: at(issued + 20 * DAY),
            };
            events.push(event(
                &format!("{debtor}-i{month}"),
                debtor,
                issued,
                Kind::InvoiceIssued(invoice),
            ));
            let kind = if debtor == "ana" {
                Kind::Payment(proto::Payment {
                    amount: usd(25_000),
                    invoice_id: None,
                })
            } else {
                let outcome = proto::ContactOutcome::NoAnswer;
                Kind::Contact(proto::Contact {
                    channel: proto::Channel::Call.into(),
                    outcome: outcome.into(),
                })
            };
            events.push(event(
                &format!("{debtor}-x{month}"),
                debtor,
                issued + 18 * DAY,
                kind,
            ));
        }
    }
    events
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let now = chrono::Utc::now().timestamp();

    // One stream, one batch, one ack.
    let mut ingest = IngestClient::connect(address.clone()).await?;
    let batch = EventBatch {
        batch_seq: 1,
        events: history(now),
    };
    let mut acks = ingest
        .stream(tokio_stream::iter(vec![batch]))
        .await?
        .into_inner();
    while let Some(ack) = acks.message().await? {
        println!(
            "batch {}: {} accepted, {} duplicates, {} rejected",
            ack.batch_seq,
            ack.accepted,
            ack.duplicates,
            ack.rejected.len()
        );
    }

    let mut scoring = ScoringClient::connect(address).await?;
    for debtor in ["ana", "ben", "nobody"] {
        let request = ScoreRequest {
            debtor_id: debtor.into(),
            as_of: None,
            include_contact_plan: false,
            ..Default::default()
        };
        let score = scoring.score(request).await?.into_inner();
        let overdue = score.overdue.map_or(0, |m| m.minor_units);
        println!(
            "{debtor}: known={} p_pay={:.3} segment={:?} overdue={overdue} model={}",
            score.known,
            score.p_pay,
            proto::RiskSegment::try_from(score.risk_segment).unwrap_or_default(),
            score.payment_model_version,
        );
        for reason in score.reasons {
            println!(
                "    {:<28} value {:>10.3}  contribution {:+.3}",
                reason.feature, reason.value, reason.contribution
            );
        }
    }
    Ok(())
}
