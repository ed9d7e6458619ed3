//! The predict path: state → features → models → policy → answer.
//!
//! Reads state under a shard read lock only for the time it takes to extract
//! one feature vector (and to copy the contact history when a plan is asked
//! for), and reads models through the lock-free registry. Never blocks on I/O
//! and allocates little beyond the answer itself.

pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::events::{ChannelSet, Money, Profile, UnixTime};
use crate::features::{FEATURE_NAMES, FeatureVector, extract, extract_with_balances};
use crate::models::ModelRegistry;
use crate::policy::{ContactContext, ContactPolicy};
use crate::state::Store;
use crate::state::contacts::ContactLog;

pub use plan::{ContactPlan, ContactPlanConfig, PlanRequest};

/// How many reasons a score carries.
pub const REASON_COUNT: usize = 3;

/// Scoring settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Most debtors one `ScoreBatch` request may name.
    pub max_batch_debtors: usize,
    /// A debtor with `p_pay` at or above this is low risk.
    pub low_risk_min_p_pay: f64,
    /// A debtor with `p_pay` below this is high risk; in between, medium.
    pub high_risk_max_p_pay: f64,
    /// Share of scored debtors that a shadow model, when one is set, also
    /// scores for comparison (0 to 1).
    pub shadow_fraction: f64,
    /// Threads one large `ScoreBatch` is split across; 0: one per core.
    pub batch_threads: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            max_batch_debtors: 100_000,
            low_risk_min_p_pay: 0.6,
            high_risk_max_p_pay: 0.3,
            shadow_fraction: 0.1,
            batch_threads: 0,
        }
    }
}

/// Risk of not being paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskSegment {
    Low,
    Medium,
    High,
}

/// Batches smaller than this are scored on the calling thread: starting
/// threads would cost more than it saves.
const PARALLEL_BATCH_MIN: usize = 256;

impl ScoringConfig {
    /// Threads a batch of `debtors` is scored on.
    fn threads_for(&self, debtors: usize) -> usize {
        // Asking the system reads cgroup files: once per process is enough.
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let threads = match self.batch_threads {
            0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => n,
        };
        if debtors < PARALLEL_BATCH_MIN {
            1
        } else {
            threads.min(debtors / (PARALLEL_BATCH_MIN / 2)).max(1)
        }
    }

    /// The segment of a payment probability under these thresholds.
    pub fn segment(&self, p_pay: f64) -> RiskSegment {
        if p_pay >= self.low_risk_min_p_pay {
            RiskSegment::Low
        } else if p_pay < self.high_risk_max_p_pay {
            RiskSegment::High
        } else {
            RiskSegment::Medium
        }
    }
}

/// One feature's share in a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    pub feature: &'static str,
    pub value: f64,
    pub contribution: f64,
}

/// The answer for one debtor.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub debtor_id: String,
    /// False when no event was ever applied for this debtor.
    pub known: bool,
    pub p_pay: f64,
    pub horizon_days: u32,
    pub risk_segment: RiskSegment,
    /// Unpaid amount past due; `None` until an amount was seen for the debtor.
    pub overdue: Option<Money>,
    /// `p_pay × overdue`, rounded to minor units.
    pub expected_recovery: Option<Money>,
    /// Largest absolute contributions first.
    pub reasons: Vec<Reason>,
    pub payment_model_version: String,
    /// When asked for and the debtor is known.
    pub contact_plan: Option<ContactPlan>,
    /// The contact model the plan used; empty without one.
    pub contact_model_version: String,
}

impl Score {
    fn expected_recovery_minor(&self) -> i64 {
        self.expected_recovery.map_or(0, |m| m.minor_units)
    }
}

/// Why a score could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoringError {
    #[error("no payment model is loaded")]
    NoPaymentModel,
    #[error("debtor_ids: {requested} debtors requested, more than the limit of {limit}")]
    TooManyDebtors { requested: usize, limit: usize },
    #[error("contact_slots: {requested} slots requested, more than the limit of {limit}")]
    TooManySlots { requested: usize, limit: usize },
}

/// What a contact plan needs of a debtor, copied out of the store so that
/// planning holds no lock.
struct ContactSnapshot {
    profile: Option<Profile>,
    opted_out: ChannelSet,
    log: ContactLog,
}

/// Scores debtors from the shared store and the active models.
#[derive(Debug, Clone)]
pub struct Scorer {
    store: Arc<Store>,
    models: Arc<ModelRegistry>,
    policy: Arc<ContactPolicy>,
    config: ScoringConfig,
    plans: ContactPlanConfig,
}

/// The `n` largest contributions by absolute value, largest first.
fn top_reasons(features: &FeatureVector, contributions: &[f64]) -> Vec<Reason> {
    let mut order: [usize; FEATURE_NAMES.len()] = std::array::from_fn(|i| i);
    order.sort_unstable_by(|a, b| contributions[*b].abs().total_cmp(&contributions[*a].abs()));
    order[..REASON_COUNT]
        .iter()
        .map(|i| Reason {
            feature: FEATURE_NAMES[*i],
            value: features.values()[*i],
            contribution: contributions[*i],
        })
        .collect()
}

impl Scorer {
    /// A scorer over `store` and `models`, planning contacts under `policy`.
    pub fn new(
        store: Arc<Store>,
        models: Arc<ModelRegistry>,
        policy: Arc<ContactPolicy>,
        config: ScoringConfig,
        plans: ContactPlanConfig,
    ) -> Self {
        Scorer {
            store,
            models,
            policy,
            config,
            plans,
        }
    }

    /// The plan settings, for checking requests.
    pub fn plan_config(&self) -> &ContactPlanConfig {
        &self.plans
    }

    /// Scores `features` with the shadow model, if one is set, on a share of
    /// calls, and records how far it is from the active model's `p_pay`. The
    /// shadow's answer goes nowhere else.
    fn compare_with_shadow(&self, features: &FeatureVector, p_pay: f64) {
        if self.config.shadow_fraction <= 0.0 {
            return;
        }
        let Some(shadow) = self.models.payment_shadow() else {
            return;
        };
        if rand::random::<f64>() >= self.config.shadow_fraction {
            return;
        }
        let started = std::time::Instant::now();
        let shadow_p_pay = shadow.predict(features).p_pay;
        crate::telemetry::record_probability("payment", "shadow", shadow_p_pay);
        crate::telemetry::record_shadow(
            "payment",
            (shadow_p_pay - p_pay).abs(),
            started.elapsed().as_secs_f64(),
        );
    }

    /// Scores one debtor at `as_of`, with a contact plan when `plan` asks.
    pub fn score(
        &self,
        debtor_id: &str,
        as_of: UnixTime,
        plan: Option<PlanRequest>,
    ) -> Result<Score, ScoringError> {
        let model = self.models.payment().ok_or(ScoringError::NoPaymentModel)?;
        if let Some(request) = plan
            && request.slots > self.plans.max_slots
        {
            return Err(ScoringError::TooManySlots {
                requested: request.slots,
                limit: self.plans.max_slots,
            });
        }
        let seen = self.store.read(debtor_id, |debtor| {
            let (features, balances) = extract_with_balances(debtor, as_of);
            let contacts = plan.is_some().then(|| ContactSnapshot {
                profile: debtor.profile(),
                opted_out: debtor.opted_out(),
                log: debtor.contact_log().clone(),
            });
            (
                features,
                balances.overdue_minor,
                debtor.currency(),
                contacts,
            )
        });

        let mut score = Score {
            debtor_id: debtor_id.to_owned(),
            known: seen.is_some(),
            p_pay: model.base_rate(),
            horizon_days: model.horizon_days(),
            risk_segment: self.config.segment(model.base_rate()),
            overdue: None,
            expected_recovery: None,
            reasons: Vec::new(),
            payment_model_version: model.version().to_owned(),
            contact_plan: None,
            contact_model_version: String::new(),
        };
        let Some((features, overdue_minor, currency, contacts)) = seen else {
            return Ok(score);
        };
        if let (Some(request), Some(contacts)) = (plan, contacts) {
            let contact_model = self.models.contact();
            let context = ContactContext {
                profile: contacts.profile,
                opted_out: contacts.opted_out,
                log: &contacts.log,
            };
            let planned = plan::plan(
                &self.policy,
                contact_model.as_deref(),
                &context,
                as_of,
                request,
                &self.plans,
            );
            score.contact_model_version = planned.contact_model_version.clone();
            if let Some(best) = planned.slots.first() {
                crate::telemetry::record_probability("contact", "active", best.p_success);
            }
            score.contact_plan = Some(planned);
        }

        let prediction = model.predict(&features);
        crate::telemetry::record_probability("payment", "active", prediction.p_pay);
        self.compare_with_shadow(&features, prediction.p_pay);
        score.p_pay = prediction.p_pay;
        score.risk_segment = self.config.segment(prediction.p_pay);
        score.reasons = top_reasons(&features, &prediction.contributions);
        if let Some(currency) = currency {
            let expected = (prediction.p_pay * overdue_minor as f64).round() as i64;
            score.overdue = Some(Money {
                minor_units: overdue_minor,
                currency,
            });
            score.expected_recovery = Some(Money {
                minor_units: expected,
                currency,
            });
        }
        Ok(score)
    }

    /// Scores each distinct debtor once, highest expected recovery first (then
    /// highest `p_pay`, then debtor id).
    pub fn score_batch(
        &self,
        debtor_ids: &[String],
        as_of: UnixTime,
    ) -> Result<Vec<Score>, ScoringError> {
        if debtor_ids.len() > self.config.max_batch_debtors {
            return Err(ScoringError::TooManyDebtors {
                requested: debtor_ids.len(),
                limit: self.config.max_batch_debtors,
            });
        }
        let mut seen = HashSet::with_capacity(debtor_ids.len());
        let distinct: Vec<&str> = debtor_ids
            .iter()
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect();
        let score_all = |ids: &[&str]| {
            ids.iter()
                .map(|id| self.score(id, as_of, None))
                .collect::<Result<Vec<_>, _>>()
        };
        // Debtors are independent: a large batch is split across cores.
        let threads = self.config.threads_for(distinct.len());
        let mut scores = if threads > 1 {
            let chunk = distinct.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let parts: Vec<_> = distinct
                    .chunks(chunk)
                    .map(|part| scope.spawn(move || score_all(part)))
                    .collect();
                let mut scores = Vec::with_capacity(distinct.len());
                for part in parts {
                    scores.extend(part.join().expect("a scoring thread panicked")?);
                }
                Ok::<_, ScoringError>(scores)
            })?
        } else {
            score_all(&distinct)?
        };
        scores.sort_by(|a, b| {
            b.expected_recovery_minor()
                .cmp(&a.expected_recovery_minor())
                .then(b.p_pay.total_cmp(&a.p_pay))
                .then_with(|| a.debtor_id.cmp(&b.debtor_id))
        });
        Ok(scores)
    }

    /// The feature vector of a debtor at `as_of`, or `None` when unknown.
    pub fn features(&self, debtor_id: &str, as_of: UnixTime) -> Option<FeatureVector> {
        self.store.read(debtor_id, |debtor| extract(debtor, as_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_are_split_and_small_ones_are_not() {
        let config = |batch_threads| ScoringConfig {
            batch_threads,
            ..ScoringConfig::default()
        };
        assert_eq!(config(4).threads_for(100), 1);
        assert_eq!(config(4).threads_for(256), 2);
        assert_eq!(config(4).threads_for(10_000), 4);
        assert_eq!(config(1).threads_for(10_000), 1);
        assert!(config(0).threads_for(10_000) >= 1);
    }

    #[test]
    fn segments_follow_the_thresholds() {
        let config = ScoringConfig::default();
        assert_eq!(config.segment(0.6), RiskSegment::Low);
        assert_eq!(config.segment(0.45), RiskSegment::Medium);
        assert_eq!(config.segment(0.3), RiskSegment::Medium);
        assert_eq!(config.segment(0.29), RiskSegment::High);
    }
}
