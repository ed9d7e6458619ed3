//! The models shipped in `models/` must match the feature schemas of the code,
//! and their versions must name those schemas.

use std::path::Path;

use mora::models::{ModelFile, ServedModel};

#[test]
fn the_shipped_models_match_the_feature_schemas() {
    for (name, kind) in [("payment", "payment"), ("contact", "contact")] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/{name}.json"));
        match ModelFile::read(&path).and_then(ServedModel::new) {
            Ok(model) => {
                assert_eq!(model.file().kind.as_str(), kind);
                model.check_canary().unwrap();
                let schema = model.file().feature_schema.version;
                assert!(
                    model.file().version.ends_with(&format!("-schema{schema}")),
                    "models/{name}.json is version {:?}, which does not name its feature \
                     schema version {schema}: a server upgraded from an older schema would \
                     keep its stored model of that name and serve no {name} model. Retrain \
                     with scripts/retrain-default-models.sh",
                    model.file().version
                );
            }
            Err(error) => panic!(
                "models/{name}.json no longer loads: {error}\n\
                 Retrain the shipped models with:\n    \
                 scripts/retrain-default-models.sh"
            ),
        }
    }
}
