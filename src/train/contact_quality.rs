//! How good contact plans are against the simulator's ground truth.
//!
//! At one moment, every simulated debtor's history up to then is applied to a
//! store, and each strategy picks one allowed slot for the debtor's next
//! contact from the same set — the slots the debtor's contact rules allow
//! over the coming week:
//!
//! - **recommended**: the plan's best slot;
//! - **exploring**: the plan's best slot ranked by a Thompson draw;
//! - **oracle**: the slot the hidden reachability makes most likely to reach;
//! - **ideal learner**: the slot with the highest expected reach under the
//!   posterior of the debtor's reachability given their logged attempts, for
//!   a learner that knows exactly how the simulator draws traits and outcomes
//!   (and the debtor's true time zone). No model trained on the same history
//!   can expect to do better, so it shows how much of the oracle the history
//!   makes reachable at all;
//! - **fixed schedule**: every debtor on one channel at one local hour (the
//!   first allowed such slot; failing that, the first allowed slot at that
//!   hour, then the first allowed slot), the pair chosen in hindsight as the
//!   best for the portfolio — the strongest fixed schedule there is;
//! - **random**: a uniformly drawn allowed slot.
//!
//! Each strategy's figure is its expected success rate: the mean, over
//! debtors, of the true probability that the picked slot reaches them.

use chrono::{Datelike, TimeZone, Timelike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::events::{Channel, UnixTime};
use crate::models::ContactModel;
use crate::policy::{ContactContext, ContactPolicy};
use crate::scoring::plan::{ContactPlanConfig, PlanRequest, PlannedSlot, plan};
use crate::sim::{SimulatedDebtor, Traits};
use crate::state::Store;

/// One strategy's result over a group of debtors.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyRate {
    /// Debtors the strategy placed a contact for.
    pub debtors: usize,
    /// Sum of the true reach probabilities of the picked slots.
    total: f64,
}

impl StrategyRate {
    fn add(&mut self, p: f64) {
        self.debtors += 1;
        self.total += p;
    }

    /// The expected success rate of the contacts placed.
    pub fn rate(&self) -> f64 {
        self.total / self.debtors.max(1) as f64
    }
}

/// Every strategy's result over one group of debtors.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyRates {
    pub recommended: StrategyRate,
    pub exploring: StrategyRate,
    pub oracle: StrategyRate,
    pub ideal: StrategyRate,
    pub fixed: StrategyRate,
    pub random: StrategyRate,
}

/// The comparison of contact strategies on a simulated portfolio.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactQuality {
    pub at: UnixTime,
    /// Debtors with at least one allowed slot in the coming week.
    pub all: StrategyRates,
    /// Of those, the ones whose contact log holds at least
    /// [`ContactQuality::HISTORY_ATTEMPTS`] attempts.
    pub with_history: StrategyRates,
    /// Debtors with no allowed slot in the week, left out.
    pub without_slots: usize,
    /// The fixed schedule's channel and local hour.
    pub fixed_schedule: (Channel, u32),
}

impl ContactQuality {
    /// Attempts that make a debtor count as having a contact history.
    pub const HISTORY_ATTEMPTS: usize = 5;
}

/// A slot's local hour and whether it falls on a weekend, in `zone`.
fn local_hour(zone: chrono_tz::Tz, at: UnixTime) -> (u32, bool) {
    match zone.timestamp_opt(at.0, 0).single() {
        Some(t) => (t.hour(), t.weekday().num_days_from_monday() >= 5),
        None => (0, false),
    }
}

/// The true probability that `slot` reaches the debtor of `traits`.
fn truth(traits: &Traits, slot: &PlannedSlot) -> f64 {
    let (hour, is_weekend) = local_hour(traits.timezone, slot.start);
    traits.reach_probability(slot.channel, hour, is_weekend)
}

/// The slot a fixed schedule of `channel` at local `hour` (read in `zone`)
/// places among `allowed`, which are in time order.
fn fixed_pick(
    allowed: &[PlannedSlot],
    zone: chrono_tz::Tz,
    channel: Channel,
    hour: u32,
) -> &PlannedSlot {
    let at_hour = |s: &&PlannedSlot| local_hour(zone, s.start).0 == hour;
    allowed
        .iter()
        .filter(at_hour)
        .find(|s| s.channel == channel)
        .or_else(|| allowed.iter().find(at_hour))
        .unwrap_or(&allowed[0])
}

/// One evaluated debtor: the truth of every strategy's pick, and of the
/// fixed schedule's pick for every channel and hour.
struct Picks {
    has_history: bool,
    recommended: f64,
    exploring: f64,
    oracle: f64,
    ideal: f64,
    random: f64,
    /// By channel index, then local hour.
    fixed: [[f64; 24]; 4],
}

/// Reach probability by channel, local hour and day type (weekday, then
/// weekend) for traits drawn from the simulator's prior: the ideal learner's
/// sample of possible debtors.
struct PriorSample {
    reach: Vec<[[[f64; 2]; 24]; 4]>,
}

impl PriorSample {
    fn draw(samples: usize, rng: &mut ChaCha8Rng) -> PriorSample {
        let reach = (0..samples)
            .map(|_| {
                let traits = Traits::draw(rng, &[chrono_tz::UTC]);
                std::array::from_fn(|c| {
                    std::array::from_fn(|h| {
                        std::array::from_fn(|w| {
                            traits.reach_probability(Channel::ALL[c], h as u32, w == 1)
                        })
                    })
                })
            })
            .collect();
        PriorSample { reach }
    }

    /// The posterior mean reach per channel, hour and day type, given
    /// `attempts` (channel index, local hour, weekend, reached), by
    /// importance weighting the prior sample with their likelihood.
    fn posterior_mean(&self, attempts: &[(usize, usize, usize, bool)]) -> [[[f64; 2]; 24]; 4] {
        let log_likelihood: Vec<f64> = self
            .reach
            .iter()
            .map(|table| {
                attempts
                    .iter()
                    .map(|&(c, h, w, reached)| {
                        let p = table[c][h][w].clamp(1e-9, 1.0 - 1e-9);
                        if reached { p.ln() } else { (1.0 - p).ln() }
                    })
                    .sum()
            })
            .collect();
        let top = log_likelihood.iter().copied().fold(f64::MIN, f64::max);
        let mut mean = [[[0.0; 2]; 24]; 4];
        let mut total = 0.0;
        for (table, ll) in self.reach.iter().zip(&log_likelihood) {
            let weight = (ll - top).exp();
            total += weight;
            for (m, t) in mean.iter_mut().flatten().zip(table.iter().flatten()) {
                m[0] += weight * t[0];
                m[1] += weight * t[1];
            }
        }
        for m in mean.iter_mut().flatten().flatten() {
            *m /= total;
        }
        mean
    }
}

/// Compares contact strategies for `debtors` at `at`, planning with `model`
/// under `policy`. `seed` drives the random strategy, exploration and the
/// ideal learner's `prior_samples` draws of possible traits.
pub fn compare_contact_strategies(
    debtors: &[SimulatedDebtor],
    model: &ContactModel,
    policy: &ContactPolicy,
    at: UnixTime,
    seed: u64,
    prior_samples: usize,
) -> ContactQuality {
    let store = Store::new();
    for event in debtors.iter().flat_map(|d| &d.events) {
        if event.occurred_at < at {
            // Simulated events are valid; one the store refuses (a currency
            // mismatch) would be refused by the server too.
            let _ = store.apply(event);
        }
    }
    let config = ContactPlanConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let prior = PriorSample::draw(prior_samples, &mut rng);
    let mut picks = Vec::new();
    let mut without_slots = 0;
    for debtor in debtors {
        let Some((profile, opted_out, log)) = store.read(&debtor.debtor_id, |state| {
            (
                state.profile(),
                state.opted_out(),
                state.contact_log().clone(),
            )
        }) else {
            continue;
        };
        let context = ContactContext {
            profile,
            opted_out,
            log: &log,
        };
        let request = |explore| PlanRequest {
            slots: usize::MAX,
            explore,
        };
        let full = plan(policy, Some(model), &context, at, request(None), &config);
        let Some(best) = full.slots.first() else {
            without_slots += 1;
            continue;
        };
        let explored = plan(
            policy,
            Some(model),
            &context,
            at,
            PlanRequest {
                slots: 1,
                explore: Some(rng.r#gen()),
            },
            &config,
        );
        let traits = &debtor.traits;
        let mut allowed = full.slots.clone();
        allowed.sort_by_key(|s| (s.start, s.channel.index()));
        // The platform reads local hours in the zone it knows (or assumes).
        let zone = full.timezone.unwrap_or(chrono_tz::UTC);
        let attempts: Vec<_> = log
            .records()
            .iter()
            .filter(|r| r.at() < at)
            .map(|r| {
                let (hour, is_weekend) = local_hour(traits.timezone, r.at());
                let reached = model.success().is_success(r.channel(), r.outcome());
                (
                    r.channel().index(),
                    hour as usize,
                    usize::from(is_weekend),
                    reached,
                )
            })
            .collect();
        let posterior = prior.posterior_mean(&attempts);
        let expected = |s: &PlannedSlot| {
            let (hour, is_weekend) = local_hour(traits.timezone, s.start);
            posterior[s.channel.index()][hour as usize][usize::from(is_weekend)]
        };
        let ideal = allowed
            .iter()
            .max_by(|a, b| expected(a).total_cmp(&expected(b)))
            .unwrap_or(best);
        picks.push(Picks {
            ideal: truth(traits, ideal),
            has_history: log.records().len() >= ContactQuality::HISTORY_ATTEMPTS,
            recommended: truth(traits, best),
            exploring: explored.slots.first().map_or(0.0, |s| truth(traits, s)),
            oracle: allowed.iter().map(|s| truth(traits, s)).fold(0.0, f64::max),
            random: truth(traits, &allowed[rng.gen_range(0..allowed.len())]),
            fixed: std::array::from_fn(|c| {
                std::array::from_fn(|h| {
                    truth(
                        traits,
                        fixed_pick(&allowed, zone, Channel::ALL[c], h as u32),
                    )
                })
            }),
        });
    }

    // The best fixed schedule in hindsight.
    let (mut fixed_schedule, mut best_total) = ((Channel::Call, 0), f64::MIN);
    for channel in Channel::ALL {
        for hour in 0..24 {
            let total: f64 = picks.iter().map(|p| p.fixed[channel.index()][hour]).sum();
            if total > best_total {
                (fixed_schedule, best_total) = ((channel, hour as u32), total);
            }
        }
    }

    let mut all = StrategyRates::default();
    let mut with_history = StrategyRates::default();
    let (channel, hour) = fixed_schedule;
    for p in &picks {
        let groups: &mut [&mut StrategyRates] = if p.has_history {
            &mut [&mut all, &mut with_history]
        } else {
            &mut [&mut all]
        };
        for rates in groups.iter_mut() {
            rates.recommended.add(p.recommended);
            rates.exploring.add(p.exploring);
            rates.oracle.add(p.oracle);
            rates.ideal.add(p.ideal);
            rates.fixed.add(p.fixed[channel.index()][hour as usize]);
            rates.random.add(p.random);
        }
    }
    ContactQuality {
        at,
        all,
        with_history,
        without_slots,
        fixed_schedule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelFile;
    use crate::sim::{SimConfig, portfolio};

    #[test]
    fn plans_beat_random_and_never_beat_the_oracle() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/contact.json");
        let model = ContactModel::new(ModelFile::read(&path).unwrap()).unwrap();
        let sim = SimConfig {
            debtors: 300,
            months: 4,
            seed: 7,
            ..SimConfig::default()
        };
        let at = sim.start.plus_days(4 * 30);
        let debtors = portfolio(&sim);
        let quality =
            compare_contact_strategies(&debtors, &model, &ContactPolicy::presets(), at, 1, 2_000);
        let all = quality.all;
        assert!(all.recommended.debtors > 200, "{quality:?}");
        assert!(all.oracle.rate() >= all.recommended.rate());
        assert!(all.oracle.rate() >= all.fixed.rate());
        assert!(all.oracle.rate() >= all.ideal.rate());
        assert!(all.ideal.rate() > all.random.rate(), "{quality:?}");
        assert!(
            all.recommended.rate() > 1.2 * all.random.rate(),
            "{quality:?}"
        );
        assert!(quality.with_history.recommended.debtors <= all.recommended.debtors);
    }
}
