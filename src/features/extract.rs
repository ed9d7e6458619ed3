//! Feature extraction: state at a moment → feature vector. Pure, allocation-free.

use super::{FEATURE_COUNT, FeatureVector};
use crate::events::{AccountStatus, Channel, UnixTime};
use crate::state::DebtorState;
use crate::state::debtor::StatusRecord;
use crate::state::decay::Series;
use crate::state::ledger::Balances;
use crate::state::stamp::Stamp;

/// Durations are capped here, and "never" counts as the cap.
const DAYS_CAP: f64 = 365.0;

/// The window of the six-month features (payments, account statuses), in days.
const SIX_MONTHS_DAYS: i64 = 183;

/// Utilisation beyond this (a balance three times the limit) counts as this.
const UTILISATION_CAP: f64 = 3.0;

/// `ln(1 + amount)` with the amount in major units (minor units / 100); a
/// negative amount counts as 0.
fn log_amount(minor: f64) -> f64 {
    (minor.max(0.0) / 100.0).ln_1p()
}

/// Paid over billed, 0 to 3, with one major unit added to the bill so that a
/// debtor billed nothing does not divide by zero.
fn pay_to_bill(paid_minor: f64, billed_minor: f64) -> f64 {
    (paid_minor.max(0.0) / (billed_minor.max(0.0) + 100.0)).min(3.0)
}

fn days_since(as_of: UnixTime, at: Option<UnixTime>) -> f64 {
    at.map_or(DAYS_CAP, |t| as_of.days_since(t).clamp(0.0, DAYS_CAP))
}

/// An account status as four features: cycles past due (0 unless
/// delinquent), then one-hot inactive, paid in full, revolving; all 0 when
/// no status was reported.
fn status_features(record: Option<StatusRecord>) -> [f64; 4] {
    match record.map(|r| r.status) {
        None => [0.0; 4],
        Some(AccountStatus::Delinquent { cycles }) => [f64::from(cycles), 0.0, 0.0, 0.0],
        Some(AccountStatus::Inactive) => [0.0, 1.0, 0.0, 0.0],
        Some(AccountStatus::PaidInFull) => [0.0, 0.0, 1.0, 0.0],
        Some(AccountStatus::Revolving) => [0.0, 0.0, 0.0, 1.0],
    }
}

/// The feature vector of `debtor` at `as_of`. See `docs/features.md` for
/// every feature's definition.
pub fn extract(debtor: &DebtorState, as_of: UnixTime) -> FeatureVector {
    extract_with_balances(debtor, as_of).0
}

/// [`extract`], also returning the balances the features were computed from,
/// for callers that need the amounts themselves.
pub fn extract_with_balances(debtor: &DebtorState, as_of: UnixTime) -> (FeatureVector, Balances) {
    let balances = debtor.balances(as_of);
    let decayed = |series| debtor.decayed(series, as_of);
    let (paid_30d, paid_90d) = (decayed(Series::Paid30d), decayed(Series::Paid90d));
    let (billed_30d, billed_90d) = (decayed(Series::Billed30d), decayed(Series::Billed90d));

    let gross_paid = debtor.gross_paid_minor() as f64;
    let reversal_share = if gross_paid > 0.0 {
        (debtor.reversed_minor() as f64 / gross_paid).min(1.0)
    } else {
        0.0
    };

    let promises = debtor.promises(as_of);
    let resolved = f64::from(promises.kept + promises.broken);

    let channels = Channel::ALL.map(|c| debtor.channel(c));
    let attempts: u32 = channels.iter().map(|c| u32::from(c.attempts)).sum();
    let successes: u32 = channels.iter().map(|c| u32::from(c.successes)).sum();
    let last_success = channels
        .iter()
        .map(|c| c.last_success)
        .max()
        .and_then(|t| t.unix());
    let opted_out = Channel::ALL
        .iter()
        .filter(|c| debtor.has_opted_out(**c))
        .count();

    let last_payment = debtor.last_payment_at(as_of);
    let statuses = debtor.account_statuses(as_of);
    let latest_status = statuses.last().copied();
    let [
        latest_cycles,
        latest_inactive,
        latest_paid_in_full,
        latest_revolving,
    ] = status_features(latest_status);
    let [
        previous_cycles,
        previous_inactive,
        previous_paid_in_full,
        previous_revolving,
    ] = status_features(statuses.len().checked_sub(2).map(|i| statuses[i]));
    let recent = Stamp::new(as_of.plus_days(-SIX_MONTHS_DAYS));
    let mut window = [0.0; 4];
    let mut max_cycles = 0.0f64;
    for record in statuses.iter().filter(|s| s.at > recent) {
        let [cycles, inactive, paid_in_full, revolving] = status_features(Some(*record));
        max_cycles = max_cycles.max(cycles);
        window[0] += if cycles > 0.0 { 1.0 } else { 0.0 };
        window[1] += inactive;
        window[2] += paid_in_full;
        window[3] += revolving;
    }
    let values: [f64; FEATURE_COUNT] = [
        balances
            .oldest_overdue_due_at
            .and_then(|due| due.unix())
            .map_or(0.0, |due| as_of.days_since(due).clamp(0.0, DAYS_CAP)),
        log_amount(balances.overdue_minor as f64),
        log_amount(balances.open_minor as f64),
        if balances.open_minor > 0 {
            balances.overdue_minor as f64 / balances.open_minor as f64
        } else {
            0.0
        },
        debtor
            .credit_limit_minor()
            .map_or(0.0, |limit| log_amount(limit as f64)),
        debtor.credit_limit_minor().map_or(0.0, |limit| {
            (balances.open_minor.max(0) as f64 / limit as f64).min(UTILISATION_CAP)
        }),
        f64::from(balances.open_invoices),
        f64::from(balances.overdue_invoices),
        log_amount(decayed(Series::Paid7d)),
        log_amount(paid_30d),
        log_amount(paid_90d),
        log_amount(billed_90d),
        pay_to_bill(paid_30d, billed_30d),
        pay_to_bill(paid_90d, billed_90d),
        days_since(as_of, last_payment),
        debtor.payments_within(as_of, 90) as f64,
        log_amount(debtor.last_payment_minor(as_of).unwrap_or(0) as f64),
        log_amount(decayed(Series::PastDueBilled90d)),
        if last_payment.is_some() { 1.0 } else { 0.0 },
        reversal_share,
        f64::from(promises.kept),
        f64::from(promises.broken),
        (f64::from(promises.kept) + 1.0) / (resolved + 2.0),
        if promises.pending > 0 { 1.0 } else { 0.0 },
        decayed(Series::Attempts7d),
        decayed(Series::Attempts30d),
        decayed(Series::Successes30d),
        (f64::from(successes) + 1.0) / (f64::from(attempts) + 2.0),
        days_since(as_of, last_success),
        opted_out as f64,
        debtor
            .first_event_at()
            .map_or(0.0, |t| as_of.days_since(t).clamp(0.0, 3650.0)),
        latest_cycles,
        latest_inactive,
        latest_paid_in_full,
        latest_revolving,
        previous_cycles,
        previous_inactive,
        previous_paid_in_full,
        previous_revolving,
        days_since(as_of, latest_status.and_then(|r| r.at.unix())),
        debtor.payments_within(as_of, SIX_MONTHS_DAYS) as f64,
        log_amount(debtor.previous_payment_minor(as_of).unwrap_or(0) as f64),
        max_cycles,
        window[0],
        window[1],
        window[2],
        window[3],
    ];
    (FeatureVector(values), balances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ContactOutcome, Event, EventKind, Money, validation};

    const T0: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    fn event(id: &str, day: i64, kind: EventKind) -> Event {
        Event {
            event_id: id.into(),
            debtor_id: "d".into(),
            occurred_at: UnixTime(T0 + day * DAY),
            kind,
        }
    }

    fn cop(minor_units: i64) -> Money {
        Money {
            minor_units,
            currency: validation::currency("c", "COP").unwrap(),
        }
    }

    #[test]
    fn a_late_partial_payer_has_the_expected_features() {
        let mut debtor = DebtorState::default();
        let events = [
            event(
                "i1",
                0,
                EventKind::InvoiceIssued {
                    invoice_id: "A".into(),
                    amount: cop(100_000),
                    due_at: UnixTime(T0 + 10 * DAY),
                },
            ),
            event(
                "p1",
                20,
                EventKind::Payment {
                    amount: cop(40_000),
                    invoice_id: None,
                },
            ),
            event(
                "c1",
                21,
                EventKind::Contact {
                    channel: Channel::Call,
                    outcome: ContactOutcome::RightParty,
                },
            ),
            event(
                "c2",
                22,
                EventKind::Contact {
                    channel: Channel::Sms,
                    outcome: ContactOutcome::Delivered,
                },
            ),
            event(
                "pr",
                21,
                EventKind::Promise {
                    amount: cop(60_000),
                    promised_for: UnixTime(T0 + 25 * DAY),
                },
            ),
            event(
                "o1",
                22,
                EventKind::OptOut {
                    channel: Channel::Sms,
                },
            ),
        ];
        for e in &events {
            debtor.apply(e, crate::state::DedupEpoch::FOREVER).unwrap();
        }
        let f = extract(&debtor, UnixTime(T0 + 30 * DAY));
        assert_eq!(f.get("days_past_due"), Some(20.0));
        assert!((f.get("log_overdue_balance").unwrap() - 601f64.ln()).abs() < 1e-12);
        assert_eq!(f.get("overdue_share"), Some(1.0));
        assert_eq!(f.get("days_since_last_payment"), Some(10.0));
        assert_eq!(f.get("promises_broken"), Some(1.0));
        assert_eq!(f.get("promise_keep_rate"), Some(1.0 / 3.0));
        assert_eq!(f.get("contact_success_rate"), Some(2.0 / 4.0));
        assert_eq!(f.get("days_since_last_contact_success"), Some(9.0));
        assert_eq!(f.get("channels_opted_out"), Some(1.0));
        assert_eq!(f.get("tenure_days"), Some(30.0));
        assert!(f.values().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn an_empty_state_gives_finite_neutral_features() {
        let f = extract(&DebtorState::default(), UnixTime(T0));
        assert_eq!(f.get("days_past_due"), Some(0.0));
        assert_eq!(f.get("days_since_last_payment"), Some(DAYS_CAP));
        assert!(f.values().iter().all(|v| v.is_finite()));
    }
}
