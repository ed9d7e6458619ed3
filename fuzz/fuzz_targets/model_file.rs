//! Model files from untrusted bytes, checked as an upload is; a model that
//! passes must then score without panicking (the canary runs inside).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mora::models::file::ModelKind;
use mora::models::repository::validate;

fuzz_target!(|data: &[u8]| {
    for kind in [ModelKind::Payment, ModelKind::Contact] {
        let version = std::str::from_utf8(data)
            .ok()
            .and_then(|text| text.split("\"version\"").nth(1))
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or("v1")
            .to_owned();
        let _ = validate(data, kind, &version);
    }
});
