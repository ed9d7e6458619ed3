//! Offline training: replay event history through the serving `state` and
//! `features` code, take labelled decision points, split them by time, fit a
//! model and evaluate it on the later, held-out period.
//!
//! Nothing here computes a feature: decision points read features with
//! [`crate::features::extract`] from a [`crate::state::Store`] that has seen
//! exactly the events that happened before the decision.

pub mod evaluate;
pub mod fit;
pub mod replay;

pub use evaluate::Evaluation;
pub use fit::{TrainConfig, train_payment_model};
pub use replay::{DecisionPoint, Sample, decision_points};

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
    train_payment_model(&samples, config)
}
