//! Offline training: replay event history through the serving `state` and
//! `features` code, take labelled decision points, split them by time, fit a
//! model and evaluate it on the later, held-out period.
//!
//! Nothing here computes a feature: decision points read features with
//! [`crate::features::extract`] from a [`crate::state::Store`] that has seen
//! exactly the events that happened before the decision.

pub mod boost;
pub mod contact;
pub mod contact_quality;
pub mod evaluate;
pub mod fit;
pub mod labels;
pub mod replay;
pub mod report;

pub use boost::BoostConfig;
pub use contact::{ContactSample, contact_samples, split_contacts_by_time, train_contact_model};
pub use evaluate::Evaluation;
pub use fit::{Algorithm, Split, TrainConfig, split_by_time, train_payment_model};
pub use replay::{DecisionPoint, Label, Sample, decision_points, labelled_points};
pub use report::Report;

/// Why training could not produce a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no events to train on")]
    NoEvents,
    #[error("{0}")]
    TooFewSamples(String),
    #[error("fitting the model failed: {0}")]
    Fit(String),
}

/// Simulates a portfolio and trains a payment model on it: the recipe of the
/// default model shipped in `models/`.
pub fn train_on_simulation(
    sim: &crate::sim::SimConfig,
    config: &TrainConfig,
    progress: impl FnMut(usize, usize),
) -> Result<(crate::models::ModelFile, Evaluation), TrainError> {
    let mut events: Vec<_> = crate::sim::portfolio(sim)
        .into_iter()
        .flat_map(|d| d.events)
        .collect();
    if events.is_empty() {
        return Err(TrainError::NoEvents);
    }
    let samples = decision_points(&mut events, config.points, progress);
    let split = split_by_time(&samples, config.test_fraction, config.points.horizon_days);
    train_payment_model(&split, config.replayed_label(), config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;

    fn small() -> (SimConfig, TrainConfig) {
        let sim = SimConfig {
            debtors: 1_500,
            ..SimConfig::default()
        };
        (sim, TrainConfig::default())
    }

    #[test]
    fn a_model_trained_on_simulation_beats_the_base_rate_on_later_data() {
        let (sim, config) = small();
        let (file, evaluation) = train_on_simulation(&sim, &config, |_, _| {}).unwrap();
        assert!(evaluation.auc > 0.62, "held-out AUC {}", evaluation.auc);
        let base = evaluation.base_rate;
        let base_brier = base * (1.0 - base);
        assert!(
            evaluation.brier < base_brier,
            "Brier {} vs base-rate Brier {base_brier}",
            evaluation.brier
        );

        // Split by time: every training label is known before the test period.
        let crate::models::file::SplitRecord::ByTime { test_from } = file.training.split else {
            panic!("a replayed portfolio is split by time");
        };
        let test_from = test_from.timestamp();
        let mut events: Vec<_> = crate::sim::portfolio(&sim)
            .into_iter()
            .flat_map(|d| d.events)
            .collect();
        let samples = decision_points(&mut events, config.points, |_, _| {});
        let Split { train, test, .. } =
            split_by_time(&samples, config.test_fraction, config.points.horizon_days);
        assert!(
            train
                .iter()
                .all(|s| s.at.plus_days(config.points.horizon_days).0 <= test_from)
        );
        assert!(test.iter().all(|s| s.at.0 >= test_from));
        assert_eq!(
            (train.len(), test.len()),
            (file.training.train_rows, file.training.test_rows)
        );
    }

    #[test]
    fn training_is_deterministic_by_seed() {
        let (sim, config) = small();
        let sim = SimConfig {
            debtors: 400,
            ..sim
        };
        for algorithm in [Algorithm::LogisticRegression, Algorithm::BoostedTrees] {
            let config = TrainConfig {
                algorithm,
                ..config.clone()
            };
            let (a, _) = train_on_simulation(&sim, &config, |_, _| {}).unwrap();
            let (b, _) = train_on_simulation(&sim, &config, |_, _| {}).unwrap();
            assert_eq!(a.to_json(), b.to_json(), "{algorithm:?}");
        }
    }
}
