//! The models being served. Readers take an `Arc` snapshot without locking;
//! a swap never waits for readers, and a request keeps the model it started
//! with until it finishes.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::{ModelError, ModelFile, ModelKind, PaymentModel};

/// The active model of each kind.
#[derive(Debug, Default)]
pub struct ModelRegistry {
    payment: ArcSwapOption<PaymentModel>,
}

impl ModelRegistry {
    /// A registry with no model.
    pub fn empty() -> Self {
        ModelRegistry::default()
    }

    /// Loads every `*.json` model file in `dir`; at most one per kind.
    pub fn load_dir(dir: &Path) -> Result<ModelRegistry, ModelError> {
        let io_error = |source| ModelError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io_error)?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();

        let registry = ModelRegistry::empty();
        let mut payment_path: Option<&Path> = None;
        for path in &paths {
            let file = ModelFile::read(path)?;
            match file.kind {
                ModelKind::Payment => {
                    if let Some(first) = payment_path {
                        return Err(ModelError::Duplicate {
                            kind: ModelKind::Payment.as_str(),
                            dir: dir.to_owned(),
                            first: first.display().to_string(),
                            second: path.display().to_string(),
                        });
                    }
                    payment_path = Some(path);
                    registry.set_payment(PaymentModel::new(file)?);
                }
            }
        }
        Ok(registry)
    }

    /// Makes `model` the active payment model.
    pub fn set_payment(&self, model: PaymentModel) {
        self.payment.store(Some(Arc::new(model)));
    }

    /// The active payment model, if any.
    pub fn payment(&self) -> Option<Arc<PaymentModel>> {
        self.payment.load_full()
    }

    /// Whether every model needed to serve scores is loaded.
    pub fn is_ready(&self) -> bool {
        self.payment.load().is_some()
    }
}
