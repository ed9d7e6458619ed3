//! A synthetic portfolio with known ground truth, for training default models
//! and for tests.
//!
//! Each debtor has hidden traits — ability and willingness to pay, how well
//! they keep promises, how reachable they are on each channel, how they react
//! to contact — and a month-by-month history is drawn from them: invoices,
//! payments (on time, late, partial), reversals, collection contacts with
//! outcomes, promises, opt-outs and a profile. Generation is deterministic by
//! seed: each debtor draws from its own ChaCha stream, so a debtor's history
//! does not depend on how many debtors are generated.

mod debtor;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use debtor::Traits;

use crate::events::{Event, UnixTime};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub debtors: usize,
    /// Months of history; one invoice per month.
    pub months: u32,
    pub seed: u64,
    /// Time of the first invoice.
    pub start: UnixTime,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            debtors: 1_000,
            months: 6,
            seed: 42,
            // 2026-01-05T00:00:00Z
            start: UnixTime(1_767_571_200),
        }
    }
}

/// One generated debtor: its hidden traits and its events in time order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulatedDebtor {
    pub debtor_id: String,
    pub traits: Traits,
    #[serde(skip)]
    pub events: Vec<Event>,
}

/// Generates debtor `index` of the portfolio described by `config`.
pub fn debtor(config: &SimConfig, index: usize) -> SimulatedDebtor {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(index as u64);
    debtor::generate(config, index, &mut rng)
}

/// Generates the whole portfolio.
pub fn portfolio(config: &SimConfig) -> Vec<SimulatedDebtor> {
    (0..config.debtors).map(|i| debtor(config, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_per_debtor() {
        let config = SimConfig {
            debtors: 20,
            ..SimConfig::default()
        };
        let a = portfolio(&config);
        let b = portfolio(&config);
        assert_eq!(a.len(), 20);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.events, y.events);
        }
        let bigger = SimConfig {
            debtors: 40,
            ..config.clone()
        };
        assert_eq!(debtor(&bigger, 7).events, a[7].events);
        let other_seed = SimConfig { seed: 7, ..config };
        assert_ne!(debtor(&other_seed, 7).events, a[7].events);
    }

    #[test]
    fn histories_are_sorted_unique_and_varied() {
        let config = SimConfig {
            debtors: 200,
            ..SimConfig::default()
        };
        let debtors = portfolio(&config);
        let mut kinds = std::collections::HashSet::new();
        for d in &debtors {
            assert!(
                d.events
                    .windows(2)
                    .all(|w| w[0].occurred_at <= w[1].occurred_at)
            );
            let ids: std::collections::HashSet<_> = d.events.iter().map(|e| &e.event_id).collect();
            assert_eq!(ids.len(), d.events.len());
            kinds.extend(d.events.iter().map(|e| e.kind.name()));
        }
        assert_eq!(kinds.len(), 8, "every event kind appears: {kinds:?}");
    }
}
