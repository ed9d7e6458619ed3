//! Per-debtor state and the sharded store that holds it.
//!
//! Invariants: applying events is order-insensitive (same set of events, same
//! state, within float rounding for decayed sums) and idempotent per
//! `event_id`. Writers lock one shard for the duration of one event; readers
//! lock a shard for reading only while they compute one feature vector.
//!
//! The store can be bounded: past `max_debtors`, events of new debtors are
//! refused while known debtors keep updating; idle debtors that owe nothing
//! can be evicted.

pub mod contacts;
pub mod debtor;
pub mod decay;
pub mod ledger;
pub mod stamp;

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

pub use debtor::{Applied, DebtorState, DebtorStateV1, DedupEpoch, StateError};

use crate::events::{Event, UnixTime};

/// Shards of the debtor map. Many small shards keep the time a writer waits
/// for a snapshot reading one shard short.
const SHARDS: usize = 512;

/// All debtors' state, sharded for concurrent ingest and scoring.
#[derive(Debug)]
pub struct Store {
    /// Boxed, so that the map's spare capacity costs a pointer per slot rather
    /// than a whole state.
    debtors: DashMap<Box<str>, Box<DebtorState>>,
    /// Number of debtors, kept beside the map so that reading it locks nothing.
    len: AtomicUsize,
    max_debtors: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::with_max_debtors(usize::MAX)
    }
}

impl Store {
    /// An empty store without a bound.
    pub fn new() -> Self {
        Store::default()
    }

    /// An empty store that refuses new debtors beyond `max_debtors`.
    pub fn with_max_debtors(max_debtors: usize) -> Self {
        Store {
            debtors: DashMap::with_shard_amount(SHARDS),
            len: AtomicUsize::new(0),
            max_debtors,
        }
    }

    /// Applies one validated event to its debtor, creating the debtor if new;
    /// event ids are remembered forever.
    pub fn apply(&self, event: &Event) -> Result<Applied, StateError> {
        self.apply_in(event, DedupEpoch::FOREVER)
    }

    /// Applies one validated event, remembering its id in `epoch`.
    pub fn apply_in(&self, event: &Event, epoch: DedupEpoch) -> Result<Applied, StateError> {
        self.apply_bounded(event, epoch, self.max_debtors)
    }

    /// [`Store::apply_in`] without the bound on debtors, for replaying events
    /// that were accepted before.
    pub fn replay_in(&self, event: &Event, epoch: DedupEpoch) -> Result<Applied, StateError> {
        self.apply_bounded(event, epoch, usize::MAX)
    }

    fn apply_bounded(
        &self,
        event: &Event,
        epoch: DedupEpoch,
        max_debtors: usize,
    ) -> Result<Applied, StateError> {
        // The common case, an existing debtor, needs no key allocation.
        if let Some(mut debtor) = self.debtors.get_mut(event.debtor_id.as_str()) {
            return debtor.apply(event, epoch);
        }
        match self.debtors.entry(event.debtor_id.as_str().into()) {
            Entry::Occupied(mut debtor) => debtor.get_mut().apply(event, epoch),
            Entry::Vacant(slot) => {
                if self.len.load(Ordering::Relaxed) >= max_debtors {
                    return Err(StateError::StoreFull { max_debtors });
                }
                let mut debtor = Box::<DebtorState>::default();
                let applied = debtor.apply(event, epoch)?;
                slot.insert(debtor);
                self.len.fetch_add(1, Ordering::Relaxed);
                Ok(applied)
            }
        }
    }

    /// Puts a debtor's whole state in place, as recovery does from a snapshot.
    pub fn insert(&self, debtor_id: Box<str>, state: DebtorState) {
        if self.debtors.insert(debtor_id, Box::new(state)).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes every debtor.
    pub fn clear(&self) {
        self.debtors.clear();
        self.len.store(0, Ordering::Relaxed);
    }

    /// Removes the debtors that owe nothing at `now` and whose latest event
    /// is older than `idle_since`; returns how many were removed.
    pub fn evict_idle(&self, idle_since: UnixTime, now: UnixTime) -> usize {
        let mut evicted = 0;
        self.debtors.retain(|_, debtor| {
            let is_idle = debtor.last_event_at().is_none_or(|at| at < idle_since)
                && debtor.balances(now).open_minor <= 0;
            evicted += usize::from(is_idle);
            !is_idle
        });
        self.len.fetch_sub(evicted, Ordering::Relaxed);
        evicted
    }

    /// Runs `read` on a debtor's state, or returns `None` for an unknown debtor.
    pub fn read<R>(&self, debtor_id: &str, read: impl FnOnce(&DebtorState) -> R) -> Option<R> {
        self.debtors.get(debtor_id).map(|debtor| read(&debtor))
    }

    /// Calls `visit` with every debtor, one shard locked for reading at a time.
    pub fn for_each(&self, mut visit: impl FnMut(&str, &DebtorState)) {
        for entry in self.debtors.iter() {
            visit(entry.key(), entry.value());
        }
    }

    /// A digest of every debtor's whole state, independent of the order in
    /// which debtors were inserted: equal digests mean the same debtors in
    /// the same states (barring a 64-bit collision). For checking that a
    /// request changed nothing; it reads the whole store.
    pub fn digest(&self) -> u64 {
        let mut entries: Vec<(Box<str>, Vec<u8>)> = Vec::with_capacity(self.len());
        self.for_each(|id, state| {
            let bytes = postcard::to_stdvec(state).expect("debtor state encodes");
            entries.push((id.into(), bytes));
        });
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (id, bytes) in &entries {
            for part in [id.as_bytes(), bytes.as_slice()] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
        }
        hasher.digest()
    }

    /// Number of debtors held.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no debtor is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{
        AccountStatus, Channel, ContactOutcome, Currency, EventKind, Money, UnixTime, validation,
    };
    use crate::features::{FeatureVector, extract};
    use proptest::prelude::*;

    const T0: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    fn usd(minor_units: i64) -> Money {
        let currency: Currency = validation::currency("c", "USD").unwrap();
        Money {
            minor_units,
            currency,
        }
    }

    /// Any event kind for debtor `d`, with few distinct invoice ids so that
    /// payments, adjustments and invoices meet.
    fn any_kind() -> impl Strategy<Value = EventKind> {
        let invoice = (0..3u8).prop_map(|i| format!("inv-{i}"));
        let channel = prop::sample::select(Channel::ALL.to_vec());
        let outcome = prop::sample::select(vec![
            ContactOutcome::RightParty,
            ContactOutcome::NoAnswer,
            ContactOutcome::Replied,
            ContactOutcome::Opened,
        ]);
        prop_oneof![
            (invoice.clone(), 1..50_000i64, 0..90i64).prop_map(|(id, amount, due)| {
                EventKind::InvoiceIssued {
                    invoice_id: id,
                    amount: usd(amount),
                    due_at: UnixTime(T0 + due * DAY),
                }
            }),
            (invoice.clone(), 0..50_000i64).prop_map(|(id, amount)| EventKind::InvoiceAdjusted {
                invoice_id: id,
                new_amount: usd(amount),
            }),
            (prop::option::of(invoice), 1..30_000i64).prop_map(|(id, amount)| {
                EventKind::Payment {
                    amount: usd(amount),
                    invoice_id: id,
                }
            }),
            (1..10_000i64).prop_map(|amount| EventKind::PaymentReversed {
                amount: usd(amount),
                payment_event_id: None,
            }),
            (1..20_000i64, 0..90i64).prop_map(|(amount, day)| EventKind::Promise {
                amount: usd(amount),
                promised_for: UnixTime(T0 + day * DAY),
            }),
            (channel.clone(), outcome)
                .prop_map(|(channel, outcome)| EventKind::Contact { channel, outcome }),
            channel.prop_map(|channel| EventKind::OptOut { channel }),
            (1..500_000i64).prop_map(|amount| EventKind::CreditLimit { limit: usd(amount) }),
            (0..4u8, 1..=AccountStatus::MAX_CYCLES).prop_map(|(standing, cycles)| {
                EventKind::AccountStatus {
                    status: match standing {
                        0 => AccountStatus::Inactive,
                        1 => AccountStatus::PaidInFull,
                        2 => AccountStatus::Revolving,
                        _ => AccountStatus::Delinquent { cycles },
                    },
                }
            }),
            (any::<bool>(), any::<bool>(), 0..16u8).prop_map(|(has_zone, is_us, channels)| {
                EventKind::Profile(crate::events::Profile {
                    timezone: has_zone.then_some(chrono_tz::America::Bogota),
                    country: validation::country("c", if is_us { "US" } else { "CO" }).unwrap(),
                    authorised_channels: Channel::ALL
                        .into_iter()
                        .filter(|c| channels & (1 << c.index()) != 0)
                        .collect(),
                })
            }),
        ]
    }

    fn any_events() -> impl Strategy<Value = Vec<Event>> {
        prop::collection::vec((0..3u8, 0..120i64, any_kind()), 1..40).prop_map(|drafts| {
            drafts
                .into_iter()
                .enumerate()
                .map(|(i, (debtor, day, kind))| Event {
                    event_id: format!("e-{i}"),
                    debtor_id: format!("d-{debtor}"),
                    occurred_at: UnixTime(T0 + day * DAY + i as i64),
                    kind,
                })
                .collect()
        })
    }

    fn features_of(store: &Store, debtor: &str) -> Option<FeatureVector> {
        store.read(debtor, |d| extract(d, UnixTime(T0 + 150 * DAY)))
    }

    fn assert_same_features(a: &Store, b: &Store) {
        for debtor in ["d-0", "d-1", "d-2"] {
            match (features_of(a, debtor), features_of(b, debtor)) {
                (None, None) => {}
                (Some(x), Some(y)) => {
                    for (i, (u, v)) in x.values().iter().zip(y.values()).enumerate() {
                        let tolerance = 1e-9 * u.abs().max(1.0);
                        assert!((u - v).abs() <= tolerance, "feature {i}: {u} vs {v}");
                    }
                }
                other => panic!("debtor {debtor} known in one store only: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_same_state(
            events in any_events(),
            seed in any::<u64>(),
        ) {
            let in_order = Store::new();
            for event in &events {
                in_order.apply(event).unwrap();
            }
            let mut shuffled = events.clone();
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            rand::seq::SliceRandom::shuffle(shuffled.as_mut_slice(), &mut rng);
            let out_of_order = Store::new();
            for event in &shuffled {
                out_of_order.apply(event).unwrap();
            }
            assert_same_features(&in_order, &out_of_order);
            for debtor in ["d-0", "d-1", "d-2"] {
                let facts = |d: &DebtorState| {
                    let balances = d.balances(UnixTime(T0 + 100 * DAY));
                    (balances, d.event_count(), d.profile(), d.contact_log().clone(), d.opted_out())
                };
                let a = in_order.read(debtor, facts);
                let b = out_of_order.read(debtor, facts);
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn applying_events_twice_changes_nothing(events in any_events()) {
            let once = Store::new();
            for event in &events {
                prop_assert_eq!(once.apply(event).unwrap(), Applied::New);
            }
            let twice = Store::new();
            for event in events.iter().chain(&events) {
                twice.apply(event).unwrap();
            }
            for debtor in ["d-0", "d-1", "d-2"] {
                let a = once.read(debtor, |d| d.clone());
                let b = twice.read(debtor, |d| d.clone());
                prop_assert_eq!(a, b);
            }
            for event in &events {
                prop_assert_eq!(twice.apply(event).unwrap(), Applied::Duplicate);
            }
            prop_assert_eq!(once.digest(), twice.digest());
        }
    }

    #[test]
    fn the_digest_ignores_debtor_order_and_sees_any_change() {
        let one = |debtor: &str, id: &str, amount: i64| Event {
            event_id: id.into(),
            debtor_id: debtor.into(),
            occurred_at: UnixTime(T0),
            kind: EventKind::Payment {
                amount: usd(amount),
                invoice_id: None,
            },
        };
        let (a, b) = (Store::new(), Store::new());
        for event in [one("x", "1", 5), one("y", "2", 7)] {
            a.apply(&event).unwrap();
        }
        for event in [one("y", "2", 7), one("x", "1", 5)] {
            b.apply(&event).unwrap();
        }
        assert_eq!(a.digest(), b.digest());
        b.apply(&one("x", "3", 1)).unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_ne!(Store::new().digest(), a.digest());
    }

    #[test]
    fn eviction_takes_only_idle_debtors_that_owe_nothing() {
        let store = Store::new();
        let at = |day: i64| UnixTime(T0 + day * DAY);
        let event = |id: &str, debtor: &str, day: i64, kind: EventKind| Event {
            event_id: id.into(),
            debtor_id: debtor.into(),
            occurred_at: at(day),
            kind,
        };
        let invoice = |amount| EventKind::InvoiceIssued {
            invoice_id: "i".into(),
            amount: usd(amount),
            due_at: at(10),
        };
        let paid = |amount| EventKind::Payment {
            amount: usd(amount),
            invoice_id: None,
        };
        // Settled long ago; owing long ago; settled recently.
        for e in [
            event("1", "settled", 0, invoice(500)),
            event("2", "settled", 5, paid(500)),
            event("3", "owing", 0, invoice(500)),
            event("4", "recent", 80, invoice(500)),
            event("5", "recent", 85, paid(500)),
        ] {
            store.apply(&e).unwrap();
        }
        assert_eq!(store.evict_idle(at(60), at(100)), 1);
        assert_eq!(store.len(), 2);
        assert!(store.read("settled", |_| ()).is_none());
        assert!(store.read("owing", |_| ()).is_some());
    }

    #[test]
    fn a_full_store_refuses_only_new_debtors() {
        let store = Store::with_max_debtors(1);
        let payment = |id: &str, debtor: &str| Event {
            event_id: id.into(),
            debtor_id: debtor.into(),
            occurred_at: UnixTime(T0),
            kind: EventKind::Payment {
                amount: usd(100),
                invoice_id: None,
            },
        };
        store.apply(&payment("1", "a")).unwrap();
        let error = store.apply(&payment("2", "b")).unwrap_err();
        assert_eq!(error, StateError::StoreFull { max_debtors: 1 });
        assert_eq!(store.apply(&payment("3", "a")).unwrap(), Applied::New);
        assert_eq!(
            store
                .replay_in(&payment("2", "b"), DedupEpoch::FOREVER)
                .unwrap(),
            Applied::New
        );
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_second_currency_is_refused_and_changes_nothing() {
        let store = Store::new();
        let mut event = Event {
            event_id: "e-1".into(),
            debtor_id: "d".into(),
            occurred_at: UnixTime(T0),
            kind: EventKind::Payment {
                amount: usd(100),
                invoice_id: None,
            },
        };
        store.apply(&event).unwrap();
        let before = store.read("d", |d| d.clone());
        event.event_id = "e-2".into();
        event.kind = EventKind::Payment {
            amount: Money {
                minor_units: 100,
                currency: validation::currency("c", "EUR").unwrap(),
            },
            invoice_id: None,
        };
        let err = store.apply(&event).unwrap_err();
        assert_eq!(err.field(), "payment.amount.currency");
        assert_eq!(
            err.to_string(),
            "payment.amount.currency: EUR differs from the debtor's currency USD"
        );
        assert_eq!(store.read("d", |d| d.clone()), before);
    }
}
