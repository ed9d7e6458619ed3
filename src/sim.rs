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

    #[test]
    fn reachability_peaks_at_the_best_hour_and_follows_the_weekend_factor() {
        let debtor = debtor(&SimConfig::default(), 3);
        let traits = &debtor.traits;
        for channel in crate::events::Channel::ALL {
            let best = traits.reach_probability(channel, traits.best_hour, false);
            for hour in 0..24 {
                let p = traits.reach_probability(channel, hour, false);
                assert!(
                    (0.0..=best).contains(&p),
                    "{channel:?} at {hour}: {p} > {best}"
                );
            }
            let weekend = traits.reach_probability(channel, traits.best_hour, true);
            let expected = (best * traits.weekend_factor).min(0.95);
            assert!(
                (weekend - expected).abs() < 1e-12,
                "{weekend} vs {expected}"
            );
        }
        let call = crate::events::Channel::Call;
        let far = (traits.best_hour + 12) % 24;
        assert!(
            traits.reach_probability(call, far, false)
                < traits.reach_probability(call, traits.best_hour, false)
        );
    }

    #[test]
    fn payments_cluster_after_the_pay_day() {
        let config = SimConfig {
            debtors: 300,
            ..SimConfig::default()
        };
        let (mut near, mut all) = (0usize, 0usize);
        for d in portfolio(&config) {
            let start = d
                .events
                .iter()
                .find(|e| matches!(e.kind, crate::events::EventKind::InvoiceIssued { .. }))
                .map(|e| e.occurred_at.0 - 3_600)
                .unwrap();
            for e in &d.events {
                if let crate::events::EventKind::Payment { .. } = e.kind {
                    let day = (e.occurred_at.0 - start).div_euclid(86_400);
                    let after = (day - i64::from(d.traits.payday)).rem_euclid(30);
                    near += usize::from(after < 3);
                    all += 1;
                }
            }
        }
        // Uniform days would put 10 % of payments in the three days after it.
        let share = near as f64 / all as f64;
        assert!(
            all > 500 && share > 0.3,
            "{near} of {all} payments near the pay day"
        );
    }
}
