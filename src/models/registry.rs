//! The models being served. Readers take an `Arc` snapshot without locking;
//! a swap never waits for readers, a request keeps the model it started with
//! until it finishes, and a replaced model is freed when its last request
//! ends.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::{ContactModel, ModelKind, PaymentModel, ServedModel};

/// The active and shadow model of each kind.
#[derive(Debug, Default)]
pub struct ModelRegistry {
    payment: ArcSwapOption<PaymentModel>,
    payment_shadow: ArcSwapOption<PaymentModel>,
    contact: ArcSwapOption<ContactModel>,
    contact_shadow: ArcSwapOption<ContactModel>,
}

impl ModelRegistry {
    /// A registry with no model.
    pub fn empty() -> Self {
        ModelRegistry::default()
    }

    /// A registry serving `model` as the active payment model.
    pub fn with_payment(model: PaymentModel) -> Self {
        let registry = ModelRegistry::empty();
        registry.set_payment(Arc::new(model));
        registry
    }

    /// Makes `model` the active payment model.
    pub fn set_payment(&self, model: Arc<PaymentModel>) {
        self.payment.store(Some(model));
    }

    /// Makes `model` the shadow payment model, or removes the shadow.
    pub fn set_payment_shadow(&self, model: Option<Arc<PaymentModel>>) {
        self.payment_shadow.store(model);
    }

    /// The active payment model, if any.
    pub fn payment(&self) -> Option<Arc<PaymentModel>> {
        self.payment.load_full()
    }

    /// The shadow payment model, if any.
    pub fn payment_shadow(&self) -> Option<Arc<PaymentModel>> {
        self.payment_shadow.load_full()
    }

    /// Makes `model` the active model of its kind.
    pub fn set_active(&self, model: ServedModel) {
        match model {
            ServedModel::Payment(m) => self.payment.store(Some(Arc::new(m))),
            ServedModel::Contact(m) => self.contact.store(Some(Arc::new(m))),
        }
    }

    /// Makes `model` the shadow model of its kind.
    pub fn set_shadow(&self, model: ServedModel) {
        match model {
            ServedModel::Payment(m) => self.payment_shadow.store(Some(Arc::new(m))),
            ServedModel::Contact(m) => self.contact_shadow.store(Some(Arc::new(m))),
        }
    }

    /// Removes the shadow model of `kind`.
    pub fn clear_shadow(&self, kind: ModelKind) {
        match kind {
            ModelKind::Payment => self.payment_shadow.store(None),
            ModelKind::Contact => self.contact_shadow.store(None),
        }
    }

    /// The active contact model, if any.
    pub fn contact(&self) -> Option<Arc<ContactModel>> {
        self.contact.load_full()
    }

    /// The shadow contact model, if any.
    pub fn contact_shadow(&self) -> Option<Arc<ContactModel>> {
        self.contact_shadow.load_full()
    }

    /// Whether every model needed to serve scores is loaded: the payment
    /// model (contact plans are optional).
    pub fn is_ready(&self) -> bool {
        self.payment.load().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Weak;

    use super::*;
    use crate::models::ModelFile;

    fn model(version: &str) -> Arc<PaymentModel> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
        let mut file = ModelFile::read(&path).expect("the shipped model loads");
        file.version = version.into();
        Arc::new(PaymentModel::new(file).unwrap())
    }

    #[test]
    fn a_request_keeps_its_model_and_a_replaced_model_is_freed() {
        let registry = ModelRegistry::empty();
        assert!(!registry.is_ready());
        registry.set_payment(model("a"));
        let in_flight = registry.payment().unwrap();
        let a: Weak<PaymentModel> = Arc::downgrade(&in_flight);

        registry.set_payment(model("b"));
        assert_eq!(registry.payment().unwrap().version(), "b");
        assert_eq!(in_flight.version(), "a", "a request finishes on its model");
        assert!(a.upgrade().is_some());

        drop(in_flight);
        assert!(
            a.upgrade().is_none(),
            "the last request frees the old model"
        );
    }
}
