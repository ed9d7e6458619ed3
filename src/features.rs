//! The feature schemas (ordered names and a stable hash) and the functions
//! that turn a debtor's state into the feature vectors models see: payment
//! features ([`extract`]) and contact features ([`contact`]).
//!
//! Training and serving both call these; there is no second copy of any
//! feature. Changing what a feature means requires bumping its schema
//! version, which changes the hash, so that old models are refused instead
//! of silently fed different inputs.

pub mod contact;
mod extract;

use std::sync::OnceLock;

pub use extract::{extract, extract_with_balances};

/// Bumped whenever a feature's definition changes, even if names do not.
pub const SCHEMA_VERSION: u32 = 3;

/// Feature names, in the order of every feature vector and model input.
pub const FEATURE_NAMES: [&str; FEATURE_COUNT] = [
    "days_past_due",
    "log_overdue_balance",
    "log_open_balance",
    "overdue_share",
    "log_credit_limit",
    "credit_utilisation",
    "open_invoices",
    "overdue_invoices",
    "log_paid_7d",
    "log_paid_30d",
    "log_paid_90d",
    "log_billed_90d",
    "pay_to_bill_ratio_30d",
    "pay_to_bill_ratio_90d",
    "days_since_last_payment",
    "payments_90d",
    "log_last_payment",
    "log_past_due_billed_90d",
    "has_ever_paid",
    "reversal_share",
    "promises_kept",
    "promises_broken",
    "promise_keep_rate",
    "has_pending_promise",
    "contact_attempts_7d",
    "contact_attempts_30d",
    "contact_successes_30d",
    "contact_success_rate",
    "days_since_last_contact_success",
    "channels_opted_out",
    "tenure_days",
    "status_cycles_past_due",
    "status_inactive",
    "status_paid_in_full",
    "status_revolving",
    "previous_status_cycles_past_due",
    "previous_status_inactive",
    "previous_status_paid_in_full",
    "previous_status_revolving",
    "days_since_status",
    "payments_6m",
    "log_previous_payment",
    "max_cycles_past_due_6m",
    "statuses_delinquent_6m",
    "statuses_inactive_6m",
    "statuses_paid_in_full_6m",
    "statuses_revolving_6m",
];

/// Number of features in the schema.
pub const FEATURE_COUNT: usize = 47;

/// The schema hash: 16 hex digits of XXH3-64 over the version and the names.
/// Stable across builds, platforms and versions of mora.
pub fn schema_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_schema("features", SCHEMA_VERSION, &FEATURE_NAMES))
}

/// 16 hex digits of XXH3-64 over a schema's kind, version and names.
fn hash_schema(kind: &str, version: u32, names: &[&str]) -> String {
    let text = format!("mora-{kind}-v{version}\n{}", names.join("\n"));
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// One debtor's features, in schema order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureVector([f64; FEATURE_COUNT]);

impl FeatureVector {
    /// A vector of given values, in schema order (for model checks and tests).
    pub fn from_values(values: [f64; FEATURE_COUNT]) -> Self {
        FeatureVector(values)
    }

    /// The values, in the order of [`FEATURE_NAMES`].
    pub fn values(&self) -> &[f64; FEATURE_COUNT] {
        &self.0
    }

    /// The value of the feature called `name`, if the schema has one.
    pub fn get(&self, name: &str) -> Option<f64> {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_hash_is_stable_and_names_are_unique() {
        assert_eq!(schema_hash().len(), 16);
        assert_eq!(schema_hash(), schema_hash());
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURE_COUNT);
    }

    /// The names in the first cell of each table row of `section`, in order.
    fn documented(section: &str) -> Vec<&str> {
        section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split(" |").next())
            .flat_map(|cell| cell.split(", ").map(|name| name.trim_matches('`')))
            .collect()
    }

    #[test]
    fn docs_list_exactly_the_schemas_in_order() {
        let doc = include_str!("../docs/features.md");
        let (payment, contact) = doc
            .split_once("## Contact features")
            .expect("docs/features.md has a contact features section");
        assert_eq!(
            documented(payment),
            FEATURE_NAMES.to_vec(),
            "docs/features.md must list every payment feature of the schema, in schema order"
        );
        assert_eq!(
            documented(contact),
            contact::CONTACT_FEATURE_NAMES.to_vec(),
            "docs/features.md must list every contact feature of the schema, in schema order"
        );
        for (section, hash) in [
            (payment, schema_hash()),
            (contact, contact::contact_schema_hash()),
        ] {
            assert!(
                section.contains(hash),
                "docs/features.md must state the current schema hash {hash}"
            );
        }
    }
}
