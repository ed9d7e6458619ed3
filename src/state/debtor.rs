//! The compact state mora keeps for one debtor, and how each event changes it.
//!
//! Every field is either a commutative sum, a max/min, a set, or a sorted list
//! of facts, so that the same events give the same state in any arrival order
//! (decayed sums within float rounding). Event ids are remembered as 64-bit
//! fingerprints, which makes applying an event twice a no-op.

use super::decay::{DecayedSums, Series};
use super::ledger::{Balances, Ledger};
use crate::events::{Channel, Country, Currency, Event, EventKind, Profile, UnixTime};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the state.
    New,
    /// The event id had been applied before; nothing changed.
    Duplicate,
}

/// Why an otherwise valid event cannot apply to this debtor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Each debtor's amounts are kept in one currency, set by its first amount.
    #[error("{field}.currency: {got} differs from the debtor's currency {expected}")]
    CurrencyMismatch {
        field: &'static str,
        got: Currency,
        expected: Currency,
    },
}

impl StateError {
    /// Wire path of the field at fault.
    pub fn field(&self) -> String {
        match self {
            StateError::CurrencyMismatch { field, .. } => format!("{field}.currency"),
        }
    }
}

/// A 64-bit fingerprint of an id, stable across versions and platforms.
pub fn fingerprint(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Attempts and successes on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub attempts: u32,
    pub successes: u32,
    /// Latest successful attempt, unix seconds; 0 when none.
    pub last_success_at: i64,
}

/// A payment as promises need it: when and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PaymentRecord {
    at: i64,
    minor: i64,
}

/// A promise to pay `minor` by `promised_for`, made at `made_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PromiseRecord {
    made_at: i64,
    promised_for: i64,
    minor: i64,
}

/// The latest profile, with the time that makes it the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProfileRecord {
    at: i64,
    fingerprint: u64,
    profile: Profile,
}

/// How the promises of a debtor stand at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromiseSummary {
    pub kept: u32,
    pub broken: u32,
    pub pending: u32,
}

/// Everything mora knows about one debtor.
#[derive(Debug, Clone, PartialEq)]
pub struct DebtorState {
    /// Sorted fingerprints of applied event ids.
    seen: Box<[u64]>,
    ledger: Ledger,
    /// Sorted by time: gross payments, for promise keeping and recency.
    payments: Box<[PaymentRecord]>,
    promises: Box<[PromiseRecord]>,
    decayed: DecayedSums,
    contacts: [ChannelStats; 4],
    profile: Option<ProfileRecord>,
    currency: Option<Currency>,
    /// Bit `Channel::index()` set when the debtor opted out of that channel.
    opted_out: u8,
    first_event_at: i64,
}

impl Default for DebtorState {
    fn default() -> Self {
        DebtorState {
            seen: Box::default(),
            ledger: Ledger::default(),
            payments: Box::default(),
            promises: Box::default(),
            decayed: DecayedSums::default(),
            contacts: [ChannelStats::default(); 4],
            profile: None,
            currency: None,
            opted_out: 0,
            first_event_at: i64::MAX,
        }
    }
}

/// `items` with `item` inserted at its sorted place, allocated to fit exactly.
fn with_sorted<T: Copy + Ord>(items: &[T], item: T) -> Box<[T]> {
    let at = items.partition_point(|x| *x < item);
    let mut all = Vec::with_capacity(items.len() + 1);
    all.extend_from_slice(&items[..at]);
    all.push(item);
    all.extend_from_slice(&items[at..]);
    all.into_boxed_slice()
}

impl DebtorState {
    /// Applies one validated event.
    pub fn apply(&mut self, event: &Event) -> Result<Applied, StateError> {
        let event_fp = fingerprint(&event.event_id);
        if self.seen.binary_search(&event_fp).is_ok() {
            return Ok(Applied::Duplicate);
        }
        if let Some((field, money)) = event.kind.money() {
            match self.currency {
                Some(expected) if expected != money.currency => {
                    return Err(StateError::CurrencyMismatch {
                        field,
                        got: money.currency,
                        expected,
                    });
                }
                _ => self.currency = Some(money.currency),
            }
        }

        self.apply_kind(&event.kind, event.occurred_at, event_fp);
        self.seen = with_sorted(&self.seen, event_fp);
        self.first_event_at = self.first_event_at.min(event.occurred_at.0);
        Ok(Applied::New)
    }

    fn apply_kind(&mut self, kind: &EventKind, at: UnixTime, event_fp: u64) {
        match kind {
            EventKind::Profile(profile) => {
                let record = ProfileRecord {
                    at: at.0,
                    fingerprint: event_fp,
                    profile: *profile,
                };
                let is_latest = self
                    .profile
                    .is_none_or(|old| (record.at, record.fingerprint) > (old.at, old.fingerprint));
                if is_latest {
                    self.profile = Some(record);
                }
            }
            EventKind::InvoiceIssued {
                invoice_id,
                amount,
                due_at,
            } => {
                self.ledger
                    .issue(fingerprint(invoice_id), amount.minor_units, *due_at, at);
                self.add_decayed(
                    &[Series::Billed30d, Series::Billed90d],
                    amount.minor_units,
                    at,
                );
            }
            EventKind::InvoiceAdjusted {
                invoice_id,
                new_amount,
            } => self
                .ledger
                .adjust(fingerprint(invoice_id), new_amount.minor_units, at),
            EventKind::Payment { amount, invoice_id } => {
                self.ledger
                    .pay(invoice_id.as_deref().map(fingerprint), amount.minor_units);
                let record = PaymentRecord {
                    at: at.0,
                    minor: amount.minor_units,
                };
                self.payments = with_sorted(&self.payments, record);
                self.add_decayed(&PAID, amount.minor_units, at);
            }
            EventKind::PaymentReversed { amount, .. } => {
                self.ledger.reverse(amount.minor_units);
                self.add_decayed(&PAID, -amount.minor_units, at);
            }
            EventKind::Promise {
                amount,
                promised_for,
            } => {
                let record = PromiseRecord {
                    made_at: at.0,
                    promised_for: promised_for.0,
                    minor: amount.minor_units,
                };
                self.promises = with_sorted(&self.promises, record);
            }
            EventKind::Contact { channel, outcome } => {
                let stats = &mut self.contacts[channel.index()];
                stats.attempts += 1;
                self.decayed.add(Series::Attempts7d, 1.0, at);
                self.decayed.add(Series::Attempts30d, 1.0, at);
                if outcome.is_success_on(*channel) {
                    stats.successes += 1;
                    stats.last_success_at = stats.last_success_at.max(at.0);
                    self.decayed.add(Series::Successes30d, 1.0, at);
                }
            }
            EventKind::OptOut { channel } => self.opted_out |= 1 << channel.index(),
        }
    }

    fn add_decayed(&mut self, series: &[Series], minor: i64, at: UnixTime) {
        for s in series {
            self.decayed.add(*s, minor as f64, at);
        }
    }

    /// Balances at `as_of`.
    pub fn balances(&self, as_of: UnixTime) -> Balances {
        self.ledger.balances(as_of)
    }

    /// A decayed series at `as_of`.
    pub fn decayed(&self, series: Series, as_of: UnixTime) -> f64 {
        self.decayed.value_at(series, as_of)
    }

    /// The currency of the debtor's amounts, once any amount was seen.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// The latest profile.
    pub fn profile(&self) -> Option<Profile> {
        self.profile.map(|p| p.profile)
    }

    /// The debtor's country, from the latest profile.
    pub fn country(&self) -> Option<Country> {
        self.profile().map(|p| p.country)
    }

    /// Attempts and successes on `channel`.
    pub fn channel(&self, channel: Channel) -> ChannelStats {
        self.contacts[channel.index()]
    }

    /// Whether the debtor opted out of `channel`.
    pub fn has_opted_out(&self, channel: Channel) -> bool {
        self.opted_out & (1 << channel.index()) != 0
    }

    /// Time of the latest payment at or before `as_of`.
    pub fn last_payment_at(&self, as_of: UnixTime) -> Option<UnixTime> {
        let upto = self.payments.partition_point(|p| p.at <= as_of.0);
        upto.checked_sub(1).map(|i| UnixTime(self.payments[i].at))
    }

    /// Sum of gross payments, all time.
    pub fn gross_paid_minor(&self) -> i64 {
        self.payments.iter().map(|p| p.minor).sum()
    }

    /// Sum of reversed payments, all time.
    pub fn reversed_minor(&self) -> i64 {
        self.ledger.reversed_minor()
    }

    /// Promises at `as_of`: kept when the payments made between the promise and
    /// its date cover it; broken when its date has passed uncovered.
    pub fn promises(&self, as_of: UnixTime) -> PromiseSummary {
        let mut summary = PromiseSummary::default();
        for promise in self.promises.iter().filter(|p| p.made_at <= as_of.0) {
            let window_end = promise.promised_for.min(as_of.0);
            let from = self.payments.partition_point(|p| p.at < promise.made_at);
            let paid: i64 = self.payments[from..]
                .iter()
                .take_while(|p| p.at <= window_end)
                .map(|p| p.minor)
                .sum();
            if paid >= promise.minor {
                summary.kept += 1;
            } else if as_of.0 > promise.promised_for {
                summary.broken += 1;
            } else {
                summary.pending += 1;
            }
        }
        summary
    }

    /// Time of the first event of this debtor.
    pub fn first_event_at(&self) -> Option<UnixTime> {
        (self.first_event_at != i64::MAX).then_some(UnixTime(self.first_event_at))
    }

    /// Number of distinct events applied.
    pub fn event_count(&self) -> usize {
        self.seen.len()
    }

    /// Bytes on the heap owned by this state (excluding the allocator's own
    /// bookkeeping).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of_val;
        size_of_val(&*self.seen)
            + size_of_val(&*self.payments)
            + size_of_val(&*self.promises)
            + self.ledger.len() * size_of::<super::ledger::Invoice>()
    }
}

const PAID: [Series; 3] = [Series::Paid7d, Series::Paid30d, Series::Paid90d];
