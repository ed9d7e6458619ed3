//! How the cost of a score grows, in process with the shipped models:
//! - with the number of debtors held (typical 20-event histories),
//! - with the open invoices of the debtor scored,
//! - with the debtor's contact history, with and without a contact plan.
//!
//! Each figure is the median and p99 of single timed calls (after a warm-up),
//! one thread. The transport adds the same cost to every row (see the load
//! bench), so it is left out here.
//!
//! ```text
//! cargo bench --bench growth
//! MORA_GROWTH_MAX_DEBTORS=10000000 cargo bench --bench growth
//! ```

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mora::events::{Channel, ContactOutcome, Event, EventKind, Money, UnixTime, validation};
use mora::models::{ContactModel, ModelFile, ModelRegistry, PaymentModel, ServedModel};
use mora::policy::ContactPolicy;
use mora::scoring::{ContactPlanConfig, PlanRequest, Scorer, ScoringConfig};
use mora::state::Store;

const DAY: i64 = 86_400;
/// When every history below has happened.
const AS_OF: UnixTime = UnixTime(T0 + 200 * DAY);

fn scorer(store: Arc<Store>) -> Scorer {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let read = |name: &str| ModelFile::read(&models.join(name)).expect("shipped model");
    let registry = ModelRegistry::empty();
    registry.set_payment(Arc::new(PaymentModel::new(read("payment.json")).unwrap()));
    registry.set_active(ServedModel::Contact(
        ContactModel::new(read("contact.json")).unwrap(),
    ));
    Scorer::new(
        store,
        Arc::new(registry),
        Arc::new(ContactPolicy::presets()),
        ScoringConfig::default(),
        ContactPlanConfig::default(),
    )
}

/// Median and p99 of `samples` calls of `call(i)`, after as many to warm up.
fn time(samples: usize, mut call: impl FnMut(usize)) -> (Duration, Duration) {
    for i in 0..samples {
        call(i);
    }
    let mut took: Vec<Duration> = (0..samples)
        .map(|i| {
            let started = Instant::now();
            call(i);
            started.elapsed()
        })
        .collect();
    took.sort_unstable();
    let latencies = Latencies(took);
    (latencies.percentile(50.0), latencies.percentile(99.0))
}

fn row(what: &str, (p50, p99): (Duration, Duration)) {
    println!("| {what} | {:.2} | {:.2} |", micros(p50), micros(p99));
}

/// The typical history of `debtor` with `extra` more events of `kind` a day
/// apart, after it.
fn history_with(debtor: usize, extra: usize, kind: impl Fn(usize) -> EventKind) -> Vec<Event> {
    let mut events = typical(debtor);
    let last = events.last().map_or(0, |e| e.occurred_at.0);
    let debtor_id = events[0].debtor_id.clone();
    events.extend((0..extra).map(|i| Event {
        event_id: format!("{debtor_id}-extra-{i}"),
        debtor_id: debtor_id.clone(),
        occurred_at: UnixTime(last + (i as i64 % 90 + 1) * DAY / 2),
        kind: kind(i),
    }));
    events
}

fn main() {
    let max_debtors = setting("MORA_GROWTH_MAX_DEBTORS", 1_000_000);
    let samples = setting("MORA_GROWTH_SAMPLES", 100_000);
    println!("mora growth: in process, one thread, {samples} timed calls per row (median, p99)");

    println!("\n| debtors held | Score p50 (µs) | p99 (µs) |");
    println!("|---|---|---|");
    let store = Arc::new(Store::new());
    let mut held = 0;
    let mut size = 10_000;
    while size <= max_debtors {
        for debtor in held..size {
            for event in typical(debtor) {
                store.apply(&event).unwrap();
            }
        }
        held = size;
        let scorer = scorer(store.clone());
        let ids: Vec<String> = (0..samples)
            .map(|i| format!("debtor-{:08}", (i * 7_919) % size))
            .collect();
        let timed = time(samples, |i| {
            black_box(scorer.score(&ids[i], AS_OF, None).unwrap());
        });
        row(&format!("{size}"), timed);
        size *= 10;
    }
    drop(store);

    let usd = |minor_units| Money {
        minor_units,
        currency: validation::currency("c", "USD").unwrap(),
    };
    println!("\n| open invoices | Score p50 (µs) | p99 (µs) |");
    println!("|---|---|---|");
    for invoices in [0, 10, 100, 1_000] {
        let store = Arc::new(Store::new());
        for event in history_with(0, invoices, |i| EventKind::InvoiceIssued {
            invoice_id: format!("open-{i}"),
            amount: usd(5_000),
            due_at: UnixTime(AS_OF.0 - (i as i64 % 60 + 1) * DAY),
        }) {
            store.apply(&event).unwrap();
        }
        let scorer = scorer(store);
        let timed = time(samples / 10, |_| {
            black_box(scorer.score("debtor-00000000", AS_OF, None).unwrap());
        });
        row(&format!("3 + {invoices}"), timed);
    }

    println!(
        "\n| contact attempts applied | Score p50 (µs) | p99 (µs) | with a 5-slot plan p50 (µs) | p99 (µs) |"
    );
    println!("|---|---|---|---|---|");
    let plan = PlanRequest {
        slots: 5,
        explore: None,
    };
    for contacts in [0, 16, 64, 256] {
        let store = Arc::new(Store::new());
        for event in history_with(0, contacts, |i| EventKind::Contact {
            channel: Channel::ALL[i % 4],
            outcome: if i % 3 == 0 {
                ContactOutcome::RightParty
            } else {
                ContactOutcome::NoAnswer
            },
        }) {
            store.apply(&event).unwrap();
        }
        let scorer = scorer(store);
        let (p50, p99) = time(samples / 10, |_| {
            black_box(scorer.score("debtor-00000000", AS_OF, None).unwrap());
        });
        let (plan50, plan99) = time(samples / 100, |_| {
            black_box(scorer.score("debtor-00000000", AS_OF, Some(plan)).unwrap());
        });
        println!(
            "| 12 + {contacts} | {:.2} | {:.2} | {:.1} | {:.1} |",
            micros(p50),
            micros(p99),
            micros(plan50),
            micros(plan99)
        );
    }
}
