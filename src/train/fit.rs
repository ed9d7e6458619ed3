//! Fitting the payment model: logistic regression over standardised features
//! (linfa) or boosted trees; evaluation on the held-out set through the
//! serving model; and the model file that records it all.

use chrono::{DateTime, Utc};
use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use super::boost::{BoostConfig, fit_boosted_trees};
use super::replay::{DecisionPoint, Sample};
use super::{Evaluation, TrainError};
use crate::events::UnixTime;
use crate::features::FEATURE_COUNT;
use crate::models::file::{
    Estimator, FORMAT_VERSION, FeatureSchemaRecord, LabelDefinition, Scaling, SplitRecord,
    TrainingData,
};
use crate::models::{ModelFile, ModelKind, PaymentModel};

/// Which estimator to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// linfa's L2-penalised logistic regression over standardised features.
    LogisticRegression,
    /// Gradient-boosted decision trees (log loss), sized by a budget.
    BoostedTrees,
}

/// Everything that decides how a payment model is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub points: DecisionPoint,
    /// Share of the decision-time range held out, at its end, for evaluation.
    pub test_fraction: f64,
    pub algorithm: Algorithm,
    /// L2 penalty of the logistic regression.
    pub l2_penalty: f64,
    pub max_iterations: u64,
    pub boost: BoostConfig,
    /// Version written into the model file.
    pub version: String,
    /// Description of the training data, written into the model file.
    pub source: String,
    /// Creation time written into the model file.
    pub created_at: DateTime<Utc>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            points: DecisionPoint {
                step_days: 7,
                warmup_days: 30,
                horizon_days: 30,
                min_paid_share: 0.5,
            },
            test_fraction: 0.3,
            algorithm: Algorithm::LogisticRegression,
            l2_penalty: 100.0,
            max_iterations: 300,
            boost: BoostConfig::default(),
            version: "payment-dev".into(),
            source: "unspecified".into(),
            created_at: DateTime::UNIX_EPOCH,
        }
    }
}

impl TrainConfig {
    /// The label definition of decision points taken from event history.
    pub fn replayed_label(&self) -> LabelDefinition {
        LabelDefinition {
            min_paid_share: Some(self.points.min_paid_share),
            success_outcomes: None,
            description: format!(
                "paid: payments net of reversals within {} days after the decision cover at \
                 least {}% of the amount overdue at the decision",
                self.points.horizon_days,
                self.points.min_paid_share * 100.0
            ),
        }
    }
}

/// Samples divided into a training and an evaluation set.
#[derive(Debug, Clone)]
pub struct Split<'a> {
    pub train: Vec<&'a Sample>,
    pub test: Vec<&'a Sample>,
    pub record: SplitRecord,
}

/// Samples split by time: training decisions whose horizon ends before the
/// test period starts, and test decisions from the test period on.
pub fn split_by_time(samples: &[Sample], test_fraction: f64, horizon_days: i64) -> Split<'_> {
    let first = samples.iter().map(|s| s.at).min().unwrap_or_default();
    let last = samples.iter().map(|s| s.at).max().unwrap_or_default();
    let test_from = UnixTime(last.0 - ((last.0 - first.0) as f64 * test_fraction) as i64);
    Split {
        train: samples
            .iter()
            .filter(|s| s.at.plus_days(horizon_days) <= test_from)
            .collect(),
        test: samples.iter().filter(|s| s.at >= test_from).collect(),
        record: SplitRecord::ByTime {
            test_from: to_utc(test_from),
        },
    }
}

/// Per-feature mean and standard deviation (1 where a feature is constant)
/// of `rows`, each of `width` values.
pub(super) fn scaling(rows: &[&[f64]], width: usize) -> Scaling {
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0.0; width];
    for row in rows {
        for (m, x) in mean.iter_mut().zip(row.iter()) {
            *m += x / n;
        }
    }
    let mut std = vec![0.0; width];
    for row in rows {
        for ((s, x), m) in std.iter_mut().zip(row.iter()).zip(&mean) {
            *s += (x - m).powi(2) / n;
        }
    }
    let std = std
        .into_iter()
        .map(|v| if v.sqrt() > 1e-9 { v.sqrt() } else { 1.0 })
        .collect();
    Scaling { mean, std }
}

/// Fits linfa's L2-penalised logistic regression to `rows` (standardised by
/// their own scaling) and `targets`.
pub(super) fn fit_logistic_rows(
    rows: &[&[f64]],
    targets: Array1<bool>,
    width: usize,
    config: &TrainConfig,
) -> Result<Estimator, TrainError> {
    let scaling = scaling(rows, width);
    let records = Array2::from_shape_fn((rows.len(), width), |(r, c)| {
        (rows[r][c] - scaling.mean[c]) / scaling.std[c]
    });
    let fitted = LogisticRegression::default()
        .alpha(config.l2_penalty)
        .max_iterations(config.max_iterations)
        .fit(&Dataset::new(records, targets))
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    Ok(Estimator::LogisticRegression { scaling, fitted })
}

/// What a model file records of its training data: the source, the time
/// range of every sample at `times`, the split and the row counts.
pub(super) fn training_data(
    config: &TrainConfig,
    times: impl Iterator<Item = UnixTime> + Clone,
    split: SplitRecord,
    train_rows: usize,
    test_rows: usize,
) -> TrainingData {
    TrainingData {
        source: config.source.clone(),
        from: to_utc(times.clone().min().unwrap_or_default()),
        to: to_utc(times.max().unwrap_or_default()),
        split,
        train_rows,
        test_rows,
    }
}

pub(super) fn to_utc(at: UnixTime) -> DateTime<Utc> {
    DateTime::from_timestamp(at.0, 0).unwrap_or_default()
}

/// Trains a payment model on the training set of `split` and evaluates it on
/// its test set.
pub fn train_payment_model(
    split: &Split<'_>,
    label: LabelDefinition,
    config: &TrainConfig,
) -> Result<(ModelFile, Evaluation), TrainError> {
    let (train, test) = (&split.train, &split.test);
    let positives = train.iter().filter(|s| s.is_paid).count();
    if train.len() < 100 || test.is_empty() || positives == 0 || positives == train.len() {
        return Err(TrainError::TooFewSamples(format!(
            "need at least 100 training samples with both outcomes and some test samples; \
             got {} training ({positives} paid) and {} test",
            train.len(),
            test.len()
        )));
    }

    let model = match config.algorithm {
        Algorithm::LogisticRegression => fit_logistic(train, config)?,
        Algorithm::BoostedTrees => {
            Estimator::BoostedTrees(fit_boosted_trees(train, &config.boost)?)
        }
    };
    let mut file = ModelFile {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Payment,
        version: config.version.clone(),
        created_at: config.created_at,
        feature_schema: FeatureSchemaRecord::of(ModelKind::Payment),
        horizon_days: Some(config.points.horizon_days as u32),
        label,
        training: training_data(
            config,
            train.iter().chain(test.iter()).map(|s| s.at),
            split.record.clone(),
            train.len(),
            test.len(),
        ),
        metrics: Default::default(),
        base_rate: positives as f64 / train.len() as f64,
        model,
    };

    // Evaluate through the serving model, exactly as the server will score.
    let model = PaymentModel::new(file.clone()).map_err(|e| TrainError::Fit(e.to_string()))?;
    let predicted: Vec<f64> = test
        .iter()
        .map(|s| model.predict(&s.features).p_pay)
        .collect();
    let actual: Vec<bool> = test.iter().map(|s| s.is_paid).collect();
    let evaluation = Evaluation::new(&predicted, &actual);
    file.metrics = evaluation.to_map();
    Ok((file, evaluation))
}

fn fit_logistic(train: &[&Sample], config: &TrainConfig) -> Result<Estimator, TrainError> {
    let rows: Vec<&[f64]> = train.iter().map(|s| &s.features.values()[..]).collect();
    let targets: Array1<bool> = train.iter().map(|s| s.is_paid).collect();
    fit_logistic_rows(&rows, targets, FEATURE_COUNT, config)
}
