//! The models shipped in `models/` must match the feature schema of the code.

use std::path::Path;

#[test]
fn the_shipped_payment_model_matches_the_feature_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/payment.json");
    let result = mora::models::ModelFile::read(&path).and_then(mora::models::PaymentModel::new);
    if let Err(error) = result {
        panic!(
            "models/payment.json no longer loads: {error}\n\
             Retrain it with:\n    \
             scripts/retrain-default-models.sh"
        );
    }
}
