//! Contact policy files from untrusted text: parsed, laid over the presets
//! and compiled, as the server does at start. Nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mora::policy::ContactPolicy;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ContactPolicy::from_toml(text, "fuzz.toml");
    }
});
