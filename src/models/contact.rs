//! The contact model: P(an attempt in a slot reaches the debtor | contact
//! features), a linfa logistic regression over standardised features. Its
//! file also says which outcomes count as reaching the debtor, so that the
//! server reads contact history by the rule the model was trained on.

use std::collections::BTreeMap;

use super::file::Estimator;
use super::linear::{Linear, sigmoid};
use super::{ModelError, ModelFile, ModelKind, canary_vectors};
use crate::events::{Channel, ContactOutcome};
use crate::features::contact::{CONTACT_FEATURE_COUNT, ContactFeatures, SuccessDefinition};

/// A contact model ready to score.
#[derive(Debug, Clone)]
pub struct ContactModel {
    file: ModelFile,
    linear: Box<Linear<CONTACT_FEATURE_COUNT>>,
    success: SuccessDefinition,
}

/// `definition` as a model file writes it: channel name → outcome names.
pub fn success_record(definition: &SuccessDefinition) -> BTreeMap<String, Vec<String>> {
    Channel::ALL
        .into_iter()
        .map(|c| {
            let outcomes = definition.successes(c).into_iter();
            (
                c.name().to_owned(),
                outcomes.map(|o| o.name().to_owned()).collect(),
            )
        })
        .collect()
}

/// The definition a model file writes; channels it leaves out keep the
/// default.
fn success_definition(
    record: &BTreeMap<String, Vec<String>>,
) -> Result<SuccessDefinition, ModelError> {
    let invalid = |reason: String| ModelError::Invalid {
        field: "label.success_outcomes",
        reason,
    };
    let mut definition = SuccessDefinition::default();
    for (name, outcomes) in record {
        let channel =
            Channel::from_name(name).ok_or_else(|| invalid(format!("unknown channel {name:?}")))?;
        let outcomes = outcomes
            .iter()
            .map(|o| {
                ContactOutcome::from_name(o)
                    .ok_or_else(|| invalid(format!("unknown outcome {o:?} for {name}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        definition = definition.with(channel, &outcomes);
    }
    Ok(definition)
}

impl ContactModel {
    /// Checks a parsed contact model file and prepares it for scoring.
    pub fn new(file: ModelFile) -> Result<ContactModel, ModelError> {
        if file.kind != ModelKind::Contact {
            return Err(ModelError::Invalid {
                field: "kind",
                reason: format!("is {}, not contact", file.kind.as_str()),
            });
        }
        if !(0.0..=1.0).contains(&file.base_rate) {
            return Err(ModelError::Invalid {
                field: "base_rate",
                reason: format!("{} is not within [0, 1]", file.base_rate),
            });
        }
        let linear = match &file.model {
            Estimator::LogisticRegression { scaling, fitted } => {
                Box::new(Linear::new(scaling, fitted)?)
            }
            other => {
                return Err(ModelError::Invalid {
                    field: "model.algorithm",
                    reason: format!(
                        "contact models are logistic regressions, not {}",
                        other.algorithm()
                    ),
                });
            }
        };
        let success = match &file.label.success_outcomes {
            Some(record) => success_definition(record)?,
            None => SuccessDefinition::default(),
        };
        Ok(ContactModel {
            file,
            linear,
            success,
        })
    }

    /// P(an attempt with `features` reaches the debtor).
    pub fn predict(&self, features: &ContactFeatures) -> f64 {
        sigmoid(self.linear.logit(features.values()))
    }

    /// Scores fixed feature vectors and checks every probability is finite
    /// and within [0, 1].
    pub fn check_canary(&self) -> Result<(), String> {
        for (n, values) in canary_vectors::<CONTACT_FEATURE_COUNT>().iter().enumerate() {
            let p = self.predict(&ContactFeatures::from_values(*values));
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("canary vector {n} scored {p}, not a probability"));
            }
        }
        Ok(())
    }

    /// Which outcomes count as reaching the debtor.
    pub fn success(&self) -> &SuccessDefinition {
        &self.success
    }

    /// The model's version string.
    pub fn version(&self) -> &str {
        &self.file.version
    }

    /// The model file this model was built from.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }
}
