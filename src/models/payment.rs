//! The payment model: P(paid within the horizon | features), from a linfa
//! logistic regression over standardised features or from boosted trees.

use super::file::{Estimator, Scaling};
use super::trees::CompiledTrees;
use super::{ModelError, ModelFile};
use crate::features::{FEATURE_COUNT, FeatureVector};

/// A payment model ready to score: parameters copied out of the file into
/// fixed arrays or one flat node array, so that predicting allocates nothing.
#[derive(Debug, Clone)]
pub struct PaymentModel {
    file: ModelFile,
    predictor: Predictor,
}

#[derive(Debug, Clone)]
enum Predictor {
    Linear(Box<Linear>),
    Trees(CompiledTrees),
}

/// Logistic regression parameters in the order of the feature schema.
#[derive(Debug, Clone)]
struct Linear {
    mean: [f64; FEATURE_COUNT],
    inv_std: [f64; FEATURE_COUNT],
    coefficients: [f64; FEATURE_COUNT],
    intercept: f64,
}

/// A probability and how each feature moved it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub p_pay: f64,
    /// Per feature, the signed effect on the log-odds of paying: coefficient ×
    /// standardised value for logistic regression; for trees, the sum of the
    /// changes in node value along each tree's path at the feature's splits.
    pub contributions: [f64; FEATURE_COUNT],
}

fn to_array(field: &'static str, values: &[f64]) -> Result<[f64; FEATURE_COUNT], ModelError> {
    let array: [f64; FEATURE_COUNT] = values.try_into().map_err(|_| ModelError::Invalid {
        field,
        reason: format!(
            "has {} values, the feature schema has {FEATURE_COUNT}",
            values.len()
        ),
    })?;
    if let Some(i) = array.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::Invalid {
            field,
            reason: format!("value {i} is not finite"),
        });
    }
    Ok(array)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Linear {
    fn new(
        scaling: &Scaling,
        fitted: &linfa_logistic::FittedLogisticRegression<f64, bool>,
    ) -> Result<Linear, ModelError> {
        let mean = to_array("model.scaling.mean", &scaling.mean)?;
        let std = to_array("model.scaling.std", &scaling.std)?;
        if let Some(i) = std.iter().position(|s| *s <= 0.0) {
            return Err(ModelError::Invalid {
                field: "model.scaling.std",
                reason: format!("value {i} is not positive"),
            });
        }
        let coefficients = to_array(
            "model.fitted.params",
            fitted.params().as_slice().unwrap_or(&[]),
        )?;
        let intercept = fitted.intercept();
        if !intercept.is_finite() {
            return Err(ModelError::Invalid {
                field: "model.fitted.intercept",
                reason: "is not finite".into(),
            });
        }
        Ok(Linear {
            mean,
            inv_std: std.map(|s| 1.0 / s),
            coefficients,
            intercept,
        })
    }

    fn predict(&self, features: &FeatureVector) -> (f64, [f64; FEATURE_COUNT]) {
        let mut contributions = [0.0; FEATURE_COUNT];
        let mut logit = self.intercept;
        for (i, x) in features.values().iter().enumerate() {
            let z = (x - self.mean[i]) * self.inv_std[i];
            contributions[i] = self.coefficients[i] * z;
            logit += contributions[i];
        }
        (logit, contributions)
    }
}

impl PaymentModel {
    /// Checks a parsed file and prepares it for scoring.
    pub fn new(file: ModelFile) -> Result<PaymentModel, ModelError> {
        if !(0.0..=1.0).contains(&file.base_rate) {
            return Err(ModelError::Invalid {
                field: "base_rate",
                reason: format!("{} is not within [0, 1]", file.base_rate),
            });
        }
        let predictor = match &file.model {
            Estimator::LogisticRegression { scaling, fitted } => {
                Predictor::Linear(Box::new(Linear::new(scaling, fitted)?))
            }
            Estimator::BoostedTrees(ensemble) => Predictor::Trees(CompiledTrees::new(ensemble)?),
        };
        Ok(PaymentModel { file, predictor })
    }

    /// P(paid within the horizon) and the contribution of each feature.
    pub fn predict(&self, features: &FeatureVector) -> Prediction {
        let (logit, contributions) = match &self.predictor {
            Predictor::Linear(linear) => linear.predict(features),
            Predictor::Trees(trees) => trees.predict(features),
        };
        Prediction {
            p_pay: sigmoid(logit),
            contributions,
        }
    }

    /// Scores a fixed set of feature vectors (all zeros, ordinary values,
    /// and extremes of both signs) and checks that every probability is
    /// finite and within [0, 1] and every contribution finite: a model that
    /// would answer garbage is refused before it is served.
    pub fn check_canary(&self) -> Result<(), String> {
        let vectors: [[f64; FEATURE_COUNT]; 6] = [
            [0.0; FEATURE_COUNT],
            [1.0; FEATURE_COUNT],
            std::array::from_fn(|i| (i % 7) as f64 * 3.5),
            std::array::from_fn(|i| if i % 2 == 0 { 365.0 } else { 0.0 }),
            [1e12; FEATURE_COUNT],
            [-1e12; FEATURE_COUNT],
        ];
        for (n, values) in vectors.iter().enumerate() {
            let prediction = self.predict(&FeatureVector::from_values(*values));
            if !(0.0..=1.0).contains(&prediction.p_pay) {
                return Err(format!(
                    "canary vector {n} scored {}, not a probability",
                    prediction.p_pay
                ));
            }
            if let Some(i) = prediction.contributions.iter().position(|c| !c.is_finite()) {
                return Err(format!(
                    "canary vector {n} gave a non-finite contribution for feature {}",
                    crate::features::FEATURE_NAMES[i]
                ));
            }
        }
        Ok(())
    }

    /// The model's version string.
    pub fn version(&self) -> &str {
        &self.file.version
    }

    /// Days within which "paid" is measured.
    pub fn horizon_days(&self) -> u32 {
        self.file.horizon_days
    }

    /// The prior used for debtors mora knows nothing about.
    pub fn base_rate(&self) -> f64 {
        self.file.base_rate
    }

    /// The model file this model was built from.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::file::ModelFile;
    use linfa::Dataset;
    use linfa::traits::Fit;
    use ndarray::{Array1, Array2};
    use std::path::Path;

    fn shipped() -> ModelFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
        ModelFile::read(&path).expect("the shipped payment model loads")
    }

    /// The shipped file's metadata around a logistic regression fitted on
    /// noisy synthetic rows.
    fn logistic() -> ModelFile {
        let records = Array2::from_shape_fn((300, FEATURE_COUNT), |(r, c)| {
            ((r * 7 + c * 13) as f64 * 0.61).sin()
        });
        let targets: Array1<bool> = records
            .rows()
            .into_iter()
            .enumerate()
            .map(|(r, row)| row[0] + row[4] + (r as f64 * 1.3).cos() > 0.0)
            .collect();
        let fitted = linfa_logistic::LogisticRegression::default()
            .fit(&Dataset::new(records, targets))
            .unwrap();
        let scaling = Scaling {
            mean: (0..FEATURE_COUNT).map(|i| i as f64 * 0.1).collect(),
            std: (0..FEATURE_COUNT).map(|i| 1.0 + i as f64 * 0.05).collect(),
        };
        ModelFile {
            model: Estimator::LogisticRegression { scaling, fitted },
            ..shipped()
        }
    }

    #[test]
    fn scoring_from_parameters_equals_linfa_prediction() {
        let file = logistic();
        let Estimator::LogisticRegression { scaling, fitted } = &file.model else {
            unreachable!()
        };
        let features =
            FeatureVector::from_values(std::array::from_fn(|i| (i as f64 * 0.37).sin() * 3.0));
        let scaled = Array2::from_shape_fn((1, FEATURE_COUNT), |(_, c)| {
            (features.values()[c] - scaling.mean[c]) / scaling.std[c]
        });
        let linfa = fitted.predict_probabilities(&scaled)[0];
        let ours = PaymentModel::new(file.clone()).unwrap().predict(&features);
        assert!(
            (ours.p_pay - linfa).abs() < 1e-12,
            "{} vs {linfa}",
            ours.p_pay
        );
    }

    #[test]
    fn a_round_trip_through_json_is_bit_exact() {
        for file in [shipped(), logistic()] {
            let again = ModelFile::from_json(file.to_json().as_bytes(), Path::new("x")).unwrap();
            assert_eq!(again, file);
        }
    }

    #[test]
    fn a_model_of_another_schema_is_refused_naming_both_hashes() {
        let mut file = shipped();
        file.feature_schema.hash = "0123456789abcdef".into();
        let err = ModelFile::from_json(file.to_json().as_bytes(), Path::new("x")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("0123456789abcdef"), "{message}");
        assert!(
            message.contains(crate::features::schema_hash()),
            "{message}"
        );
    }

    #[test]
    fn malformed_parameters_are_refused() {
        let broken = |change: fn(&mut Scaling)| {
            let mut file = logistic();
            if let Estimator::LogisticRegression { scaling, .. } = &mut file.model {
                change(scaling);
            }
            PaymentModel::new(file).unwrap_err().to_string()
        };
        let message = broken(|s| s.std[3] = 0.0);
        assert!(message.starts_with("model.scaling.std"), "{message}");
        let message = broken(|s| {
            s.mean.pop();
        });
        assert!(
            message.contains(&format!("has {} values", FEATURE_COUNT - 1)),
            "{message}"
        );

        let mut file = shipped();
        file.base_rate = 1.5;
        let message = PaymentModel::new(file).unwrap_err().to_string();
        assert!(message.starts_with("base_rate"), "{message}");

        let err =
            ModelFile::from_json(b"{\"format_version\": 2}", Path::new("m.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("m.json is not a valid model file"),
            "{err}"
        );
        let err =
            ModelFile::from_json(b"{\"format_version\": 1}", Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("format_version 1"), "{err}");
    }
}
