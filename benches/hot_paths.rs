//! Micro-benchmarks of the hot paths: applying an event, extracting features,
//! predicting, and a whole in-process score (store read + features + model +
//! reasons, and with a contact plan), on a debtor with the typical 20-event
//! history.
//!
//! ```text
//! cargo bench --bench hot_paths
//! ```

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mora::api::convert;
use mora::api::proto::ScoreBatchResponse;
use mora::events::{
    AccountStatus, Channel, ChannelSet, ContactOutcome, Event, EventKind, Money, Profile, UnixTime,
    validation,
};
use mora::features::extract;
use mora::models::{ContactModel, ModelFile, ModelRegistry, PaymentModel, ServedModel};
use mora::policy::ContactPolicy;
use mora::scoring::{ContactPlanConfig, PlanRequest, Scorer, ScoringConfig};
use mora::sim::SimConfig;
use mora::state::{DebtorState, DedupEpoch, Store};
use mora::train::{Algorithm, TrainConfig, train_on_simulation};
use prost::Message;

const T0: i64 = 1_767_571_200;
const DAY: i64 = 86_400;

fn usd(minor_units: i64) -> Money {
    Money {
        minor_units,
        currency: validation::currency("c", "USD").unwrap(),
    }
}

fn event(id: String, day: i64, kind: EventKind) -> Event {
    Event {
        event_id: id,
        debtor_id: "bench-debtor".into(),
        occurred_at: UnixTime(T0 + day * DAY),
        kind,
    }
}

/// A profile-less typical history: 3 invoices, 3 payments, a promise and 12
/// contacts (plus one more invoice to make 20 events).
fn typical_history() -> Vec<Event> {
    let mut events = Vec::new();
    for month in 0..4 {
        let due_at = UnixTime(T0 + (month * 30 + 20) * DAY);
        let kind = EventKind::InvoiceIssued {
            invoice_id: format!("inv-{month}"),
            amount: usd(12_000),
            due_at,
        };
        events.push(event(format!("i{month}"), month * 30, kind));
    }
    for month in 0..3 {
        events.push(event(
            format!("p{month}"),
            month * 30 + 18,
            EventKind::Payment {
                amount: usd(9_000),
                invoice_id: None,
            },
        ));
    }
    events.push(event(
        "pr".into(),
        95,
        EventKind::Promise {
            amount: usd(3_000),
            promised_for: UnixTime(T0 + 99 * DAY),
        },
    ));
    for i in 0..12 {
        let kind = EventKind::Contact {
            channel: Channel::ALL[i % 4],
            outcome: ContactOutcome::NoAnswer,
        };
        events.push(event(format!("c{i}"), 90 + i as i64, kind));
    }
    events
}

fn typical_state() -> DebtorState {
    let mut state = DebtorState::default();
    for e in typical_history() {
        state.apply(&e, DedupEpoch::FOREVER).unwrap();
    }
    state
}

fn shipped_model() -> PaymentModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
    PaymentModel::new(ModelFile::read(&path).unwrap()).unwrap()
}

/// A logistic regression trained on a small simulated portfolio.
fn logistic_model() -> PaymentModel {
    let sim = SimConfig {
        debtors: 1_000,
        ..SimConfig::default()
    };
    let config = TrainConfig {
        algorithm: Algorithm::LogisticRegression,
        ..TrainConfig::default()
    };
    let (file, _) = train_on_simulation(&sim, &config, |_, _| {}).unwrap();
    PaymentModel::new(file).unwrap()
}

fn benches(c: &mut Criterion) {
    let as_of = UnixTime(T0 + 120 * DAY);
    let state = typical_state();

    // Each iteration applies to a fresh clone; the state is returned so that
    // dropping it falls outside the measurement.
    let apply = |c: &mut Criterion, name: &str, e: Event| {
        c.bench_function(name, |b| {
            b.iter_batched(
                || state.clone(),
                |mut s| {
                    let _ = black_box(s.apply(&e, DedupEpoch::FOREVER));
                    s
                },
                BatchSize::SmallInput,
            )
        });
    };
    let payment = EventKind::Payment {
        amount: usd(500),
        invoice_id: None,
    };
    apply(
        c,
        "apply/payment",
        event("new-payment".into(), 110, payment),
    );
    let contact = EventKind::Contact {
        channel: Channel::Sms,
        outcome: ContactOutcome::Replied,
    };
    apply(
        c,
        "apply/contact",
        event("new-contact".into(), 110, contact),
    );
    let invoice = EventKind::InvoiceIssued {
        invoice_id: "inv-9".into(),
        amount: usd(100),
        due_at: UnixTime(T0 + 140 * DAY),
    };
    apply(
        c,
        "apply/invoice_issued",
        event("new-invoice".into(), 110, invoice),
    );
    let status = EventKind::AccountStatus {
        status: AccountStatus::Delinquent { cycles: 2 },
    };
    apply(
        c,
        "apply/account_status",
        event("new-status".into(), 110, status),
    );
    apply(c, "apply/duplicate", typical_history()[5].clone());

    c.bench_function("features/extract", |b| {
        b.iter(|| extract(black_box(&state), as_of))
    });

    let model = shipped_model();
    let features = extract(&state, as_of);
    c.bench_function("models/payment_predict_trees", |b| {
        b.iter(|| model.predict(black_box(&features)))
    });
    let logistic = logistic_model();
    c.bench_function("models/payment_predict_logistic", |b| {
        b.iter(|| logistic.predict(black_box(&features)))
    });

    let store = Arc::new(Store::new());
    for e in typical_history() {
        store.apply(&e).unwrap();
    }
    // The same history with a profile in New York, for contact plans.
    let profile = EventKind::Profile(Profile {
        timezone: Some(chrono_tz::America::New_York),
        country: validation::country("c", "US").unwrap(),
        authorised_channels: ChannelSet::EMPTY,
    });
    for e in typical_history()
        .into_iter()
        .chain([event("profile".into(), 0, profile)])
    {
        store
            .apply(&Event {
                debtor_id: "bench-planned".into(),
                ..e
            })
            .unwrap();
    }
    // A thousand debtors with the same history, for ScoreBatch.
    let batch_ids: Vec<String> = (0..1_000).map(|i| format!("batch-{i:04}")).collect();
    for id in &batch_ids {
        for e in typical_history() {
            store
                .apply(&Event {
                    debtor_id: id.clone(),
                    ..e
                })
                .unwrap();
        }
    }
    let registry = ModelRegistry::empty();
    registry.set_payment(Arc::new(model));
    let contact_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/contact.json");
    let contact = ContactModel::new(ModelFile::read(&contact_path).unwrap()).unwrap();
    registry.set_active(ServedModel::Contact(contact));
    let (registry, policy) = (Arc::new(registry), Arc::new(ContactPolicy::presets()));
    let scorer_with = |config| {
        Scorer::new(
            store.clone(),
            registry.clone(),
            policy.clone(),
            config,
            ContactPlanConfig::default(),
        )
    };
    let scorer = scorer_with(ScoringConfig::default());
    let one_thread = scorer_with(ScoringConfig {
        batch_threads: 1,
        ..ScoringConfig::default()
    });
    c.bench_function("scoring/score_known", |b| {
        b.iter(|| scorer.score(black_box("bench-debtor"), as_of, None))
    });
    let plan = PlanRequest {
        slots: 5,
        explore: None,
    };
    c.bench_function("scoring/score_with_plan", |b| {
        b.iter(|| scorer.score(black_box("bench-planned"), as_of, Some(plan)))
    });
    c.bench_function("scoring/score_unknown", |b| {
        b.iter(|| scorer.score(black_box("nobody"), as_of, None))
    });

    // ScoreBatch's parts, per 1,000 debtors: scoring and ranking; building
    // and encoding the response (server); decoding it (client).
    c.bench_function("scoring/score_batch_1000_one_thread", |b| {
        b.iter(|| {
            one_thread
                .score_batch(black_box(&batch_ids), as_of)
                .unwrap()
        })
    });
    c.bench_function("scoring/score_batch_1000_all_cores", |b| {
        b.iter(|| scorer.score_batch(black_box(&batch_ids), as_of).unwrap())
    });
    let response = |scores: Vec<mora::scoring::Score>| ScoreBatchResponse {
        results: scores.into_iter().map(convert::score_response).collect(),
    };
    c.bench_function("api/score_batch_1000_build_and_encode", |b| {
        b.iter_batched(
            || scorer.score_batch(&batch_ids, as_of).unwrap(),
            |scores| response(scores).encode_to_vec(),
            BatchSize::SmallInput,
        )
    });
    let encoded = response(scorer.score_batch(&batch_ids, as_of).unwrap()).encode_to_vec();
    c.bench_function("api/score_batch_1000_decode", |b| {
        b.iter(|| ScoreBatchResponse::decode(black_box(encoded.as_slice())).unwrap())
    });
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = benches
}
criterion_main!(hot_paths);
