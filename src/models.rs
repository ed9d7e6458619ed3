//! Models: the model file format, the payment model (logistic regression or
//! boosted trees), the contact model (logistic regression over contact
//! features), the repository that stores and validates versions, and the
//! registry that the scoring path reads without taking a lock.
//!
//! A model is only accepted when its feature schema hash equals the server's
//! ([`crate::features::schema_hash`]) and its parameters are finite and of the
//! schema's length; a refused model never replaces the one being served.

pub mod contact;
pub mod file;
pub mod linear;
pub mod payment;
pub mod registry;
pub mod repository;
pub mod trees;

use std::path::PathBuf;

pub use contact::ContactModel;
pub use file::{ModelFile, ModelKind};
pub use payment::{PaymentModel, Prediction};
pub use registry::ModelRegistry;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid model file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("format_version {found} is not supported (this server reads version {supported})")]
    FormatVersion { found: u32, supported: u32 },
    #[error(
        "feature_schema.hash {model_hash} differs from this server's {kind} feature schema \
         hash {server_hash}; retrain the model with this version of mora"
    )]
    SchemaMismatch {
        kind: &'static str,
        model_hash: String,
        server_hash: String,
    },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// A validated model of any kind, ready to serve.
#[derive(Debug, Clone)]
pub enum ServedModel {
    Payment(PaymentModel),
    Contact(ContactModel),
}

impl ServedModel {
    /// Prepares `file` for scoring as the model of its kind.
    pub fn new(file: ModelFile) -> Result<ServedModel, ModelError> {
        match file.kind {
            ModelKind::Payment => PaymentModel::new(file).map(ServedModel::Payment),
            ModelKind::Contact => ContactModel::new(file).map(ServedModel::Contact),
        }
    }

    /// Checks that fixed inputs score to probabilities.
    pub fn check_canary(&self) -> Result<(), String> {
        match self {
            ServedModel::Payment(model) => model.check_canary(),
            ServedModel::Contact(model) => model.check_canary(),
        }
    }

    /// The file the model was built from.
    pub fn file(&self) -> &ModelFile {
        match self {
            ServedModel::Payment(model) => model.file(),
            ServedModel::Contact(model) => model.file(),
        }
    }
}

/// Fixed feature vectors every model must score to a probability before it
/// is served: zeros, ones, a pattern, alternating 365 and 0, and extremes of
/// both signs.
pub fn canary_vectors<const N: usize>() -> [[f64; N]; 6] {
    [
        [0.0; N],
        [1.0; N],
        std::array::from_fn(|i| (i % 7) as f64 * 3.5),
        std::array::from_fn(|i| if i % 2 == 0 { 365.0 } else { 0.0 }),
        [1e12; N],
        [-1e12; N],
    ]
}
