//! The payment model: P(paid within the horizon | features), a linfa logistic
//! regression over standardised features.

use linfa_logistic::FittedLogisticRegression;

use super::{ModelError, ModelFile};
use crate::features::{FEATURE_COUNT, FeatureVector};

/// A payment model ready to score: parameters copied out of the file into
/// fixed arrays, so that predicting allocates nothing.
#[derive(Debug, Clone)]
pub struct PaymentModel {
    file: ModelFile,
    mean: [f64; FEATURE_COUNT],
    inv_std: [f64; FEATURE_COUNT],
    coefficients: [f64; FEATURE_COUNT],
    intercept: f64,
}

/// A probability and how each feature moved it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub p_pay: f64,
    /// Per feature: coefficient × standardised value, the signed effect on the
    /// log-odds of paying.
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

impl PaymentModel {
    /// Checks a parsed file and prepares it for scoring.
    pub fn new(file: ModelFile) -> Result<PaymentModel, ModelError> {
        let mean = to_array("scaling.mean", &file.scaling.mean)?;
        let std = to_array("scaling.std", &file.scaling.std)?;
        if let Some(i) = std.iter().position(|s| *s <= 0.0) {
            return Err(ModelError::Invalid {
                field: "scaling.std",
                reason: format!("value {i} is not positive"),
            });
        }
        let coefficients = to_array(
            "model.params",
            file.model.params().as_slice().unwrap_or(&[]),
        )?;
        let intercept = file.model.intercept();
        if !intercept.is_finite() || !(0.0..=1.0).contains(&file.base_rate) {
            return Err(ModelError::Invalid {
                field: "model.intercept",
                reason: "intercept must be finite and base_rate within [0, 1]".into(),
            });
        }
        Ok(PaymentModel {
            mean,
            inv_std: std.map(|s| 1.0 / s),
            coefficients,
            intercept,
            file,
        })
    }

    /// P(paid within the horizon) and the contribution of each feature.
    pub fn predict(&self, features: &FeatureVector) -> Prediction {
        let mut contributions = [0.0; FEATURE_COUNT];
        let mut logit = self.intercept;
        for (i, x) in features.values().iter().enumerate() {
            let z = (x - self.mean[i]) * self.inv_std[i];
            contributions[i] = self.coefficients[i] * z;
            logit += contributions[i];
        }
        Prediction {
            p_pay: sigmoid(logit),
            contributions,
        }
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

    /// The fitted linfa model.
    pub fn fitted(&self) -> &FittedLogisticRegression<f64, bool> {
        &self.file.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::file::ModelFile;
    use ndarray::Array2;
    use std::path::Path;

    fn shipped() -> ModelFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
        ModelFile::read(&path).expect("the shipped payment model loads")
    }

    #[test]
    fn scoring_from_parameters_equals_linfa_prediction() {
        let model = PaymentModel::new(shipped()).unwrap();
        let features =
            FeatureVector::from_values(std::array::from_fn(|i| (i as f64 * 0.37).sin() * 3.0));
        let ours = model.predict(&features).p_pay;

        let scaled = Array2::from_shape_fn((1, FEATURE_COUNT), |(_, c)| {
            (features.values()[c] - model.mean[c]) * model.inv_std[c]
        });
        let linfa = model.fitted().predict_probabilities(&scaled)[0];
        assert!((ours - linfa).abs() < 1e-12, "{ours} vs {linfa}");
    }

    #[test]
    fn a_round_trip_through_json_is_bit_exact() {
        let file = shipped();
        let again = ModelFile::from_json(file.to_json().as_bytes(), Path::new("x")).unwrap();
        assert_eq!(again, file);
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
        let mut file = shipped();
        file.scaling.std[3] = 0.0;
        assert!(
            PaymentModel::new(file)
                .unwrap_err()
                .to_string()
                .starts_with("scaling.std")
        );
        let mut file = shipped();
        file.scaling.mean.pop();
        assert!(
            PaymentModel::new(file)
                .unwrap_err()
                .to_string()
                .contains("has 25 values")
        );
        let err =
            ModelFile::from_json(b"{\"format_version\": 1}", Path::new("m.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("m.json is not a valid model file"),
            "{err}"
        );
    }
}
