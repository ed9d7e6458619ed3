//! A logistic regression ready to score: linfa's fitted parameters and the
//! file's standardisation copied into fixed arrays, so that predicting
//! allocates nothing. Shared by every model kind that uses one.

use linfa_logistic::FittedLogisticRegression;

use super::ModelError;
use super::file::Scaling;

/// `(x − mean) / std · coefficients + intercept` over `N` features.
#[derive(Debug, Clone)]
pub struct Linear<const N: usize> {
    mean: [f64; N],
    inv_std: [f64; N],
    coefficients: [f64; N],
    intercept: f64,
}

fn to_array<const N: usize>(field: &'static str, values: &[f64]) -> Result<[f64; N], ModelError> {
    let array: [f64; N] = values.try_into().map_err(|_| ModelError::Invalid {
        field,
        reason: format!("has {} values, the feature schema has {N}", values.len()),
    })?;
    if let Some(i) = array.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::Invalid {
            field,
            reason: format!("value {i} is not finite"),
        });
    }
    Ok(array)
}

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl<const N: usize> Linear<N> {
    /// Checks and copies `scaling` and `fitted`. linfa's positive class is
    /// whichever was the larger in training; the copy always gives the
    /// log-odds of `true`.
    pub fn new(
        scaling: &Scaling,
        fitted: &FittedLogisticRegression<f64, bool>,
    ) -> Result<Linear<N>, ModelError> {
        let mean = to_array("model.scaling.mean", &scaling.mean)?;
        let std: [f64; N] = to_array("model.scaling.std", &scaling.std)?;
        if let Some(i) = std.iter().position(|s| *s <= 0.0) {
            return Err(ModelError::Invalid {
                field: "model.scaling.std",
                reason: format!("value {i} is not positive"),
            });
        }
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        let coefficients: [f64; N] = to_array(
            "model.fitted.params",
            fitted.params().as_slice().unwrap_or(&[]),
        )?;
        let intercept = sign * fitted.intercept();
        if !intercept.is_finite() {
            return Err(ModelError::Invalid {
                field: "model.fitted.intercept",
                reason: "is not finite".into(),
            });
        }
        Ok(Linear {
            mean,
            inv_std: std.map(|s| 1.0 / s),
            coefficients: coefficients.map(|c| sign * c),
            intercept,
        })
    }

    /// The log-odds of `values` and each feature's share of it.
    pub fn predict(&self, values: &[f64; N]) -> (f64, [f64; N]) {
        let mut contributions = [0.0; N];
        let mut logit = self.intercept;
        for (i, x) in values.iter().enumerate() {
            let z = (x - self.mean[i]) * self.inv_std[i];
            contributions[i] = self.coefficients[i] * z;
            logit += contributions[i];
        }
        (logit, contributions)
    }

    /// The log-odds of `values` alone.
    pub fn logit(&self, values: &[f64; N]) -> f64 {
        let mut logit = self.intercept;
        for (i, x) in values.iter().enumerate() {
            logit += self.coefficients[i] * (x - self.mean[i]) * self.inv_std[i];
        }
        logit
    }
}
