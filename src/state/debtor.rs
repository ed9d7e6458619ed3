//! The compact state mora keeps for one debtor, and how each event changes it.
//!
//! Every field is either a commutative sum, a max/min, a set, or a sorted list
//! of facts, so that the same events give the same state in any arrival order
//! (decayed sums within float rounding). Event ids are remembered as 64-bit
//! fingerprints, which makes applying an event twice a no-op.
//!
//! Ids are remembered in two [`DedupEpoch`]s, the current and the previous
//! one; an event of a later epoch forgets the older. With epochs at least as
//! long as the late-event horizon (plus clock skew), an id is forgotten only
//! once a re-sent copy of its event would be refused as late anyway.

use serde::{Deserialize, Serialize};

use super::contacts::{ContactLog, ContactRecord};
use super::decay::{DecayedSums, Series};
use super::ledger::{Balances, Ledger};
use super::stamp::Stamp;
use crate::events::{
    AccountStatus, Channel, ChannelSet, Currency, Event, EventKind, Profile, UnixTime,
};

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
    /// The store holds its configured maximum of debtors.
    #[error(
        "debtor_id: the store holds its maximum of {max_debtors} debtors; events of new \
         debtors are refused until idle debtors are evicted"
    )]
    StoreFull { max_debtors: usize },
}

impl StateError {
    /// Wire path of the field at fault.
    pub fn field(&self) -> String {
        match self {
            StateError::CurrencyMismatch { field, .. } => format!("{field}.currency"),
            StateError::StoreFull { .. } => "debtor_id".to_owned(),
        }
    }
}

/// The period an event was applied in, for forgetting old event ids.
///
/// Epoch `n` spans `[n·length, (n+1)·length)` seconds of server time. Epoch 0
/// with no length means ids are never forgotten.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupEpoch(u16);

impl DedupEpoch {
    /// The one epoch of a store that never forgets an id.
    pub const FOREVER: DedupEpoch = DedupEpoch(0);

    /// The epoch containing `now`, for epochs of `length_secs` seconds;
    /// [`DedupEpoch::FOREVER`] when `length_secs` is 0.
    pub fn at(now: UnixTime, length_secs: i64) -> DedupEpoch {
        if length_secs <= 0 {
            return DedupEpoch::FOREVER;
        }
        DedupEpoch(now.0.div_euclid(length_secs).clamp(0, i64::from(u16::MAX)) as u16)
    }
}

/// A 64-bit fingerprint of an id, stable across versions and platforms.
pub fn fingerprint(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Attempts and successes on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Saturates at `u16::MAX`.
    pub attempts: u16,
    /// Saturates at `u16::MAX`.
    pub successes: u16,
    /// Latest successful attempt.
    pub last_success: Stamp,
}

/// A payment as promises need it: when and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct PaymentRecord {
    at: Stamp,
    minor: i64,
}

/// A promise to pay `minor` by `promised_for`, made at `made_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct PromiseRecord {
    made_at: Stamp,
    promised_for: Stamp,
    minor: i64,
}

/// The latest profile, with the time that makes it the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ProfileRecord {
    at: Stamp,
    profile: Profile,
}

impl ProfileRecord {
    /// Later profiles win; at equal times, an arbitrary but fixed order of the
    /// contents decides, so that arrival order never does.
    fn order_key(&self) -> (Stamp, &'static str, &str, ChannelSet) {
        let profile = &self.profile;
        (
            self.at,
            profile.timezone.map_or("", |tz| tz.name()),
            profile.country.as_str(),
            profile.authorised_channels,
        )
    }
}

/// An account status with the time it was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusRecord {
    pub at: Stamp,
    pub status: AccountStatus,
}

/// The latest account statuses, at most [`KEPT_STATUSES`], sorted by time
/// (then by status): the greatest of all reported, so that arrival order
/// never decides which are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LatestStatuses(Box<[StatusRecord]>);

/// How many account statuses a debtor keeps: six monthly cycles.
pub const KEPT_STATUSES: usize = 6;

impl LatestStatuses {
    fn record(&mut self, record: StatusRecord) {
        if self.0.binary_search(&record).is_ok() {
            return;
        }
        let all = with_sorted(&self.0, record);
        let from = all.len().saturating_sub(KEPT_STATUSES);
        self.0 = all[from..].into();
    }
}

/// How the promises of a debtor stand at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromiseSummary {
    pub kept: u32,
    pub broken: u32,
    pub pending: u32,
}

/// Everything mora knows about one debtor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebtorState {
    /// Fingerprints of applied event ids: `seen[..current_from]` from the
    /// epoch before `epoch`, `seen[current_from..]` from `epoch`; each part
    /// sorted.
    seen: Box<[u64]>,
    current_from: u32,
    epoch: DedupEpoch,
    /// Events applied, all time (ids may have been forgotten since).
    event_count: u32,
    ledger: Ledger,
    /// Sorted by time: gross payments, for promise keeping and recency.
    payments: Box<[PaymentRecord]>,
    promises: Box<[PromiseRecord]>,
    decayed: DecayedSums,
    contacts: [ChannelStats; 4],
    contact_log: ContactLog,
    profile: Option<ProfileRecord>,
    currency: Option<Currency>,
    /// The latest credit limit: the later one wins, then the larger.
    credit_limit: Option<(Stamp, i64)>,
    /// Channels the debtor opted out of.
    opted_out: ChannelSet,
    first_event: Stamp,
    last_event: Stamp,
    /// Last, so that a state of snapshot format 1 is this without it.
    statuses: LatestStatuses,
}

impl Default for DebtorState {
    fn default() -> Self {
        DebtorState {
            seen: Box::default(),
            current_from: 0,
            epoch: DedupEpoch::FOREVER,
            event_count: 0,
            ledger: Ledger::default(),
            payments: Box::default(),
            promises: Box::default(),
            decayed: DecayedSums::default(),
            contacts: [ChannelStats::default(); 4],
            contact_log: ContactLog::default(),
            profile: None,
            currency: None,
            credit_limit: None,
            opted_out: ChannelSet::EMPTY,
            first_event: Stamp::NEVER,
            last_event: Stamp::NEVER,
            statuses: LatestStatuses::default(),
        }
    }
}

/// A debtor's state as snapshot format 1 stored it: before account statuses.
#[derive(Deserialize)]
pub struct DebtorStateV1 {
    seen: Box<[u64]>,
    current_from: u32,
    epoch: DedupEpoch,
    event_count: u32,
    ledger: Ledger,
    payments: Box<[PaymentRecord]>,
    promises: Box<[PromiseRecord]>,
    decayed: DecayedSums,
    contacts: [ChannelStats; 4],
    contact_log: ContactLog,
    profile: Option<ProfileRecord>,
    currency: Option<Currency>,
    credit_limit: Option<(Stamp, i64)>,
    opted_out: ChannelSet,
    first_event: Stamp,
    last_event: Stamp,
}

impl From<DebtorStateV1> for DebtorState {
    fn from(v1: DebtorStateV1) -> DebtorState {
        let DebtorStateV1 {
            seen,
            current_from,
            epoch,
            event_count,
            ledger,
            payments,
            promises,
            decayed,
            contacts,
            contact_log,
            profile,
            currency,
            credit_limit,
            opted_out,
            first_event,
            last_event,
        } = v1;
        DebtorState {
            seen,
            current_from,
            epoch,
            event_count,
            ledger,
            payments,
            promises,
            decayed,
            contacts,
            contact_log,
            profile,
            currency,
            credit_limit,
            opted_out,
            first_event,
            last_event,
            statuses: LatestStatuses::default(),
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
    /// Applies one validated event, remembering its id in `epoch` (an epoch
    /// older than the debtor's counts as the debtor's own).
    pub fn apply(&mut self, event: &Event, epoch: DedupEpoch) -> Result<Applied, StateError> {
        let event_fp = fingerprint(&event.event_id);
        if self.has_seen(event_fp) {
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

        self.apply_kind(&event.kind, event.occurred_at);
        self.remember(event_fp, epoch);
        self.event_count = self.event_count.saturating_add(1);
        let at = Stamp::new(event.occurred_at);
        if self.first_event == Stamp::NEVER || at < self.first_event {
            self.first_event = at;
        }
        self.last_event = self.last_event.max(at);
        Ok(Applied::New)
    }

    fn has_seen(&self, event_fp: u64) -> bool {
        let (previous, current) = self.seen.split_at(self.current_from as usize);
        current.binary_search(&event_fp).is_ok() || previous.binary_search(&event_fp).is_ok()
    }

    /// Adds `event_fp` to the ids of `epoch`, first forgetting the ids of
    /// epochs that `epoch` leaves behind.
    fn remember(&mut self, event_fp: u64, epoch: DedupEpoch) {
        let split = self.current_from as usize;
        let kept = if epoch <= self.epoch {
            &self.seen[..]
        } else if epoch.0 - self.epoch.0 == 1 {
            &self.seen[split..]
        } else {
            &[]
        };
        let current_from = if epoch <= self.epoch {
            split
        } else {
            kept.len()
        };
        let (previous, current) = kept.split_at(current_from);
        let at = current_from + current.partition_point(|fp| *fp < event_fp);
        let mut seen = Vec::with_capacity(kept.len() + 1);
        seen.extend_from_slice(previous);
        seen.extend_from_slice(&kept[current_from..at]);
        seen.push(event_fp);
        seen.extend_from_slice(&kept[at..]);
        self.seen = seen.into_boxed_slice();
        self.current_from = current_from as u32;
        self.epoch = self.epoch.max(epoch);
    }

    fn apply_kind(&mut self, kind: &EventKind, at: UnixTime) {
        match kind {
            EventKind::Profile(profile) => {
                let record = ProfileRecord {
                    at: Stamp::new(at),
                    profile: *profile,
                };
                let is_latest = self
                    .profile
                    .is_none_or(|old| record.order_key() > old.order_key());
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
                    .issue(fingerprint(invoice_id), amount.minor_units, *due_at);
                self.add_decayed(
                    &[Series::Billed30d, Series::Billed90d],
                    amount.minor_units,
                    at,
                );
                if *due_at < at {
                    self.add_decayed(&[Series::PastDueBilled90d], amount.minor_units, at);
                }
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
                    at: Stamp::new(at),
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
                    made_at: Stamp::new(at),
                    promised_for: Stamp::new(*promised_for),
                    minor: amount.minor_units,
                };
                self.promises = with_sorted(&self.promises, record);
            }
            EventKind::Contact { channel, outcome } => {
                self.contact_log
                    .record(ContactRecord::new(at, *channel, *outcome));
                let stats = &mut self.contacts[channel.index()];
                stats.attempts = stats.attempts.saturating_add(1);
                self.decayed.add(Series::Attempts7d, 1.0, at);
                self.decayed.add(Series::Attempts30d, 1.0, at);
                if outcome.is_success_on(*channel) {
                    stats.successes = stats.successes.saturating_add(1);
                    stats.last_success = stats.last_success.max(Stamp::new(at));
                    self.decayed.add(Series::Successes30d, 1.0, at);
                }
            }
            EventKind::OptOut { channel } => self.opted_out = self.opted_out.with(*channel),
            EventKind::CreditLimit { limit } => {
                let record = (Stamp::new(at), limit.minor_units);
                self.credit_limit = self.credit_limit.max(Some(record));
            }
            EventKind::AccountStatus { status } => self.statuses.record(StatusRecord {
                at: Stamp::new(at),
                status: *status,
            }),
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

    /// Attempts and successes on `channel`.
    pub fn channel(&self, channel: Channel) -> ChannelStats {
        self.contacts[channel.index()]
    }

    /// The latest credit limit, in minor units.
    pub fn credit_limit_minor(&self) -> Option<i64> {
        self.credit_limit.map(|(_, minor)| minor)
    }

    /// The account statuses kept that were reported at or before `as_of`,
    /// oldest first.
    pub fn account_statuses(&self, as_of: UnixTime) -> &[StatusRecord] {
        let as_of = Stamp::new(as_of);
        let upto = self.statuses.0.partition_point(|s| s.at <= as_of);
        &self.statuses.0[..upto]
    }

    /// Whether the debtor opted out of `channel`.
    pub fn has_opted_out(&self, channel: Channel) -> bool {
        self.opted_out.contains(channel)
    }

    /// The channels the debtor opted out of.
    pub fn opted_out(&self) -> ChannelSet {
        self.opted_out
    }

    /// The latest contact attempts.
    pub fn contact_log(&self) -> &ContactLog {
        &self.contact_log
    }

    /// Time of the latest payment at or before `as_of`.
    pub fn last_payment_at(&self, as_of: UnixTime) -> Option<UnixTime> {
        let as_of = Stamp::new(as_of);
        let upto = self.payments.partition_point(|p| p.at <= as_of);
        upto.checked_sub(1).and_then(|i| self.payments[i].at.unix())
    }

    /// Number of payments in `(as_of − days, as_of]`.
    pub fn payments_within(&self, as_of: UnixTime, days: i64) -> usize {
        let (from, to) = (Stamp::new(as_of.plus_days(-days)), Stamp::new(as_of));
        let start = self.payments.partition_point(|p| p.at <= from);
        let end = self.payments.partition_point(|p| p.at <= to);
        end.saturating_sub(start)
    }

    /// Amount of the latest payment at or before `as_of`.
    pub fn last_payment_minor(&self, as_of: UnixTime) -> Option<i64> {
        let as_of = Stamp::new(as_of);
        let upto = self.payments.partition_point(|p| p.at <= as_of);
        upto.checked_sub(1).map(|i| self.payments[i].minor)
    }

    /// Amount of the payment before the latest one at or before `as_of`.
    pub fn previous_payment_minor(&self, as_of: UnixTime) -> Option<i64> {
        let as_of = Stamp::new(as_of);
        let upto = self.payments.partition_point(|p| p.at <= as_of);
        upto.checked_sub(2).map(|i| self.payments[i].minor)
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
        let as_of = Stamp::new(as_of);
        for promise in self.promises.iter().filter(|p| p.made_at <= as_of) {
            let window_end = promise.promised_for.min(as_of);
            let from = self.payments.partition_point(|p| p.at < promise.made_at);
            let paid: i64 = self.payments[from..]
                .iter()
                .take_while(|p| p.at <= window_end)
                .map(|p| p.minor)
                .sum();
            if paid >= promise.minor {
                summary.kept += 1;
            } else if as_of > promise.promised_for {
                summary.broken += 1;
            } else {
                summary.pending += 1;
            }
        }
        summary
    }

    /// Time of the first event of this debtor.
    pub fn first_event_at(&self) -> Option<UnixTime> {
        self.first_event.unix()
    }

    /// Number of distinct events applied.
    pub fn event_count(&self) -> usize {
        self.event_count as usize
    }

    /// Time of the latest event of this debtor.
    pub fn last_event_at(&self) -> Option<UnixTime> {
        self.last_event.unix()
    }

    /// Number of event ids remembered for spotting duplicates.
    pub fn remembered_ids(&self) -> usize {
        self.seen.len()
    }
}

const PAID: [Series; 3] = [Series::Paid7d, Series::Paid30d, Series::Paid90d];
