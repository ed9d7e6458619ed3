//! Models: the model file format, the payment model (logistic regression or
//! boosted trees), and the registry that the scoring path reads without
//! taking a lock.
//!
//! A model is only accepted when its feature schema hash equals the server's
//! ([`crate::features::schema_hash`]) and its parameters are finite and of the
//! schema's length; a refused model never replaces the one being served.

pub mod file;
pub mod payment;
pub mod registry;
pub mod repository;
pub mod trees;

use std::path::PathBuf;

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
        "feature_schema.hash {model_hash} differs from this server's feature schema hash \
         {server_hash}; retrain the model with this version of mora"
    )]
    SchemaMismatch {
        model_hash: String,
        server_hash: String,
    },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}
