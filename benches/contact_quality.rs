//! Contact plans against the simulator's ground truth: the expected success
//! rate of one contact per debtor placed at the plan's best slot, beside the
//! oracle that knows each debtor's hidden reachability, the best fixed
//! schedule (one channel at one local hour for everybody) and a random
//! allowed slot. All strategies choose among the same allowed slots.
//!
//! Beside them, the ideal learner: the best slot by the exact posterior of
//! the debtor's hidden reachability given their logged attempts, which
//! bounds what any model trained on that history can expect to reach.
//!
//! The portfolio is simulated with another seed than the one the shipped
//! contact model was trained on, and judged after `MORA_QUALITY_MONTHS` months
//! of history.
//!
//! ```text
//! cargo bench --bench contact_quality                    # defaults below
//! MORA_QUALITY_DEBTORS=2000 cargo bench --bench contact_quality
//! ```

mod common;

use std::path::Path;
use std::time::Instant;

use common::setting;
use mora::models::{ContactModel, ModelFile};
use mora::policy::ContactPolicy;
use mora::sim::{SimConfig, portfolio};
use mora::train::contact_quality::{ContactQuality, StrategyRates, compare_contact_strategies};

fn row(name: &str, rate: f64, rates: &StrategyRates) {
    println!(
        "| {name} | {rate:.4} | {:.3} | {:.3} | {:.3} | {:.3} |",
        rate / rates.oracle.rate(),
        rate / rates.ideal.rate(),
        rate / rates.fixed.rate(),
        rate / rates.random.rate()
    );
}

fn table(title: &str, rates: &StrategyRates) {
    println!("\n{title}: {} debtors\n", rates.recommended.debtors);
    println!(
        "| strategy | expected success rate | ÷ oracle | ÷ ideal learner | ÷ fixed | ÷ random |"
    );
    println!("|---|---|---|---|---|---|");
    row(
        "recommended (plan's best slot)",
        rates.recommended.rate(),
        rates,
    );
    row("exploring (Thompson draw)", rates.exploring.rate(), rates);
    row("oracle", rates.oracle.rate(), rates);
    row("ideal learner", rates.ideal.rate(), rates);
    row("fixed schedule", rates.fixed.rate(), rates);
    row("random allowed slot", rates.random.rate(), rates);
}

fn main() {
    let debtors = setting("MORA_QUALITY_DEBTORS", 20_000);
    let months = setting("MORA_QUALITY_MONTHS", 6) as u32;
    let seed = setting("MORA_QUALITY_SEED", 7) as u64;
    let prior_samples = setting("MORA_QUALITY_PRIOR_SAMPLES", 20_000);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/contact.json");
    let model = ContactModel::new(ModelFile::read(&path).expect("models/contact.json reads"))
        .expect("models/contact.json loads");
    let sim = SimConfig {
        debtors,
        months,
        seed,
        ..SimConfig::default()
    };
    let at = sim.start.plus_days(i64::from(months) * 30);
    let started = Instant::now();
    let quality = compare_contact_strategies(
        &portfolio(&sim),
        &model,
        &ContactPolicy::presets(),
        at,
        seed,
        prior_samples,
    );
    let ContactQuality {
        all,
        with_history,
        without_slots,
        fixed_schedule: (channel, hour),
        ..
    } = quality;
    println!(
        "contact model {}; {debtors} simulated debtors (seed {seed}), judged at {at} \
         after {months} months; {without_slots} had no allowed slot in the week; \
         fixed schedule: {} at {hour:02}:00 local; {:.1} s",
        model.version(),
        channel.name(),
        started.elapsed().as_secs_f64()
    );
    table("Every debtor with an allowed slot", &all);
    table(
        &format!(
            "Debtors with at least {} logged attempts",
            ContactQuality::HISTORY_ATTEMPTS
        ),
        &with_history,
    );
}
