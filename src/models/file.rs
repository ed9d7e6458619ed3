//! The model file: one JSON document describing a trained model, what it was
//! trained on, how well it did, and the fitted estimator: a linfa logistic
//! regression as serde writes it, or a boosted tree ensemble. serde_json is
//! built with `float_roundtrip`, so a write/read round trip is bit-exact.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use linfa_logistic::FittedLogisticRegression;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::trees::TreeEnsemble;
use crate::features;

/// The file format version this server reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// Which question a model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Probability that a debtor pays within the horizon.
    Payment,
    /// Probability that a contact attempt in a slot reaches the debtor.
    Contact,
}

impl ModelKind {
    /// Every kind.
    pub const ALL: [ModelKind; 2] = [ModelKind::Payment, ModelKind::Contact];

    /// The kind's name, for labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Payment => "payment",
            ModelKind::Contact => "contact",
        }
    }

    /// The hash of the feature schema this build gives models of this kind.
    pub fn schema_hash(self) -> &'static str {
        match self {
            ModelKind::Payment => features::schema_hash(),
            ModelKind::Contact => features::contact::contact_schema_hash(),
        }
    }

    /// The kind called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The features a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchemaRecord {
    pub version: u32,
    pub hash: String,
    pub names: Vec<String>,
}

impl FeatureSchemaRecord {
    /// The schema this build of mora gives models of `kind`.
    pub fn of(kind: ModelKind) -> Self {
        let (version, names): (u32, &[&str]) = match kind {
            ModelKind::Payment => (features::SCHEMA_VERSION, &features::FEATURE_NAMES),
            ModelKind::Contact => (
                features::contact::CONTACT_SCHEMA_VERSION,
                &features::contact::CONTACT_FEATURE_NAMES,
            ),
        };
        FeatureSchemaRecord {
            version,
            hash: kind.schema_hash().to_owned(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// What a model's positive class means: "paid" for a payment model,
/// "reached" for a contact model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelDefinition {
    /// Share of the overdue amount at the decision point that payments within
    /// the horizon must cover; absent when labels were given from outside
    /// the event history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_paid_share: Option<f64>,
    /// For contact models: per channel name, the outcomes that count as
    /// reaching the debtor. Serving reads contact history by the same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_outcomes: Option<BTreeMap<String, Vec<String>>>,
    /// The definition in words.
    pub description: String,
}

/// How decision points were divided into training and evaluation sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SplitRecord {
    /// Decision points from `test_from` on were held out; training points'
    /// horizons all end before it.
    ByTime { test_from: DateTime<Utc> },
    /// Each decision point's set was given with its label.
    Given { description: String },
}

/// The data a model was trained and evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// Where the events came from, e.g. a simulator seed or a file name.
    pub source: String,
    /// Time of the first decision point.
    pub from: DateTime<Utc>,
    /// Time of the last decision point.
    pub to: DateTime<Utc>,
    pub split: SplitRecord,
    pub train_rows: usize,
    pub test_rows: usize,
}

/// Per-feature standardisation applied before the model: `(x − mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// The fitted estimator, tagged by `algorithm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Estimator {
    /// linfa's logistic regression over standardised features; its positive
    /// class is "paid".
    LogisticRegression {
        scaling: Scaling,
        fitted: FittedLogisticRegression<f64, bool>,
    },
    /// Gradient-boosted trees over raw feature values, in log-odds of "paid".
    BoostedTrees(TreeEnsemble),
}

impl Estimator {
    /// The algorithm's name as the file spells it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::BoostedTrees(_) => "boosted_trees",
        }
    }
}

/// A model file, as written by `mora train` or any batch trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub format_version: u32,
    pub kind: ModelKind,
    pub version: String,
    pub created_at: DateTime<Utc>,
    pub feature_schema: FeatureSchemaRecord,
    /// Days within which a payment model's "paid" is measured; absent for
    /// contact models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
    pub label: LabelDefinition,
    pub training: TrainingData,
    /// Evaluation on the held-out split: `auc`, `brier`, `log_loss`, `base_rate`.
    pub metrics: BTreeMap<String, f64>,
    /// Share of positive labels in training: the prior for unknown debtors
    /// (payment) or slots without history (contact).
    pub base_rate: f64,
    pub model: Estimator,
}

/// Just enough of a file to give a clear error before parsing the rest.
#[derive(Deserialize)]
struct Header {
    format_version: u32,
    kind: Option<ModelKind>,
    feature_schema: Option<HeaderSchema>,
}

#[derive(Deserialize)]
struct HeaderSchema {
    hash: String,
}

impl ModelFile {
    /// Parses and checks a model file's bytes against this server's schema.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<ModelFile, ModelError> {
        let parse_error = |source| ModelError::Parse {
            path: path.to_owned(),
            source,
        };
        let header: Header = serde_json::from_slice(bytes).map_err(parse_error)?;
        if header.format_version != FORMAT_VERSION {
            return Err(ModelError::FormatVersion {
                found: header.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if let (Some(kind), Some(schema)) = (header.kind, header.feature_schema)
            && schema.hash != kind.schema_hash()
        {
            return Err(ModelError::SchemaMismatch {
                kind: kind.as_str(),
                model_hash: schema.hash,
                server_hash: kind.schema_hash().to_owned(),
            });
        }
        serde_json::from_slice(bytes).map_err(parse_error)
    }

    /// Reads and checks a model file from disk.
    pub fn read(path: &Path) -> Result<ModelFile, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        ModelFile::from_json(&bytes, path)
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        // A ModelFile holds only serialisable data: plain fields, maps with
        // string keys, linfa's derived impl and finite tree values.
        serde_json::to_string_pretty(self).expect("model files always serialise")
    }
}
