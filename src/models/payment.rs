//! The payment model: P(paid within the horizon | features), from a linfa
//! logistic regression over standardised features or from boosted trees.

use super::file::Estimator;
use super::linear::{Linear, sigmoid};
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
    Linear(Box<Linear<FEATURE_COUNT>>),
    Trees(CompiledTrees),
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

impl PaymentModel {
    /// Checks a parsed file and prepares it for scoring.
    pub fn new(file: ModelFile) -> Result<PaymentModel, ModelError> {
        if file.horizon_days.is_none_or(|d| d == 0) {
            return Err(ModelError::Invalid {
                field: "horizon_days",
                reason: "a payment model needs a horizon of at least one day".into(),
            });
        }
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
            Predictor::Linear(linear) => linear.predict(features.values()),
            Predictor::Trees(trees) => trees.predict(features),
        };
        Prediction {
            p_pay: sigmoid(logit),
            contributions,
        }
    }

    /// Scores the fixed canary vectors and checks that every probability is
    /// finite and within [0, 1] and every contribution finite: a model that
    /// would answer garbage is refused before it is served.
    pub fn check_canary(&self) -> Result<(), String> {
        let vectors = super::canary_vectors::<FEATURE_COUNT>();
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
        // Checked present by `PaymentModel::new`.
        self.file.horizon_days.unwrap_or_default()
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
    use crate::models::file::{ModelFile, Scaling};
    use linfa::Dataset;
    use linfa::traits::Fit;
    use ndarray::{Array1, Array2};
    use std::path::Path;

    fn shipped() -> ModelFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
        ModelFile::read(&path).expect("the shipped payment model loads")
    }

    /// The shipped file's metadata around a logistic regression fitted on
    /// noisy synthetic rows, where "paid" is the larger class or, with
    /// `paid_is_rare`, the smaller.
    fn logistic_with(paid_is_rare: bool) -> ModelFile {
        let records = Array2::from_shape_fn((300, FEATURE_COUNT), |(r, c)| {
            ((r * 7 + c * 13) as f64 * 0.61).sin()
        });
        let threshold = if paid_is_rare { 0.8 } else { 0.0 };
        let targets: Array1<bool> = records
            .rows()
            .into_iter()
            .enumerate()
            .map(|(r, row)| row[0] + row[4] + (r as f64 * 1.3).cos() > threshold)
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

    fn logistic() -> ModelFile {
        logistic_with(false)
    }

    #[test]
    fn scoring_from_parameters_equals_linfa_prediction() {
        for paid_is_rare in [false, true] {
            let file = logistic_with(paid_is_rare);
            let Estimator::LogisticRegression { scaling, fitted } = &file.model else {
                unreachable!()
            };
            assert_eq!(
                fitted.labels().pos.class,
                !paid_is_rare,
                "linfa's positive class"
            );
            let features =
                FeatureVector::from_values(std::array::from_fn(|i| (i as f64 * 0.37).sin() * 3.0));
            let scaled = Array2::from_shape_fn((1, FEATURE_COUNT), |(_, c)| {
                (features.values()[c] - scaling.mean[c]) / scaling.std[c]
            });
            let p_positive = fitted.predict_probabilities(&scaled)[0];
            let p_paid = if fitted.labels().pos.class {
                p_positive
            } else {
                1.0 - p_positive
            };
            let ours = PaymentModel::new(file.clone()).unwrap().predict(&features);
            assert!(
                (ours.p_pay - p_paid).abs() < 1e-12,
                "{} vs {p_paid}",
                ours.p_pay
            );
        }
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
