//! What a debtor owes: invoices, the payments against them, and reversals.
//!
//! Only sums and per-invoice facts are stored; how payments settle invoices is
//! worked out when balances are read. That keeps the ledger independent of the
//! order in which events arrive: a payment naming an invoice that has not been
//! seen yet simply waits on a placeholder entry.
//!
//! Settlement rules, applied at read time:
//! 1. a payment naming an invoice settles that invoice; what exceeds the
//!    invoice's amount joins the unnamed pool;
//! 2. the unnamed pool settles open invoices oldest due date first;
//! 3. reversals are taken back from the unnamed pool; when they exceed it, they
//!    reopen invoices newest due date first (undoing the last settlements).

use serde::{Deserialize, Serialize};

use super::stamp::Stamp;
use crate::events::UnixTime;

/// One invoice, or a placeholder for an invoice known only from a payment or
/// an adjustment that arrived before the invoice itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Fingerprint of the invoice id.
    pub id: u64,
    pub issued_minor: i64,
    pub adjusted_minor: i64,
    /// Sum of payments that named this invoice.
    pub named_paid_minor: i64,
    /// Due date; [`Stamp::NEVER`] while the invoice has not been issued.
    pub due: Stamp,
    /// Occurrence of the latest adjustment; [`Stamp::NEVER`] when none.
    pub adjusted_at: Stamp,
}

impl Invoice {
    fn placeholder(id: u64) -> Self {
        Invoice {
            id,
            issued_minor: 0,
            adjusted_minor: 0,
            named_paid_minor: 0,
            due: Stamp::NEVER,
            adjusted_at: Stamp::NEVER,
        }
    }

    fn is_issued(&self) -> bool {
        self.due != Stamp::NEVER
    }

    /// Position in the ledger: due date, placeholders last.
    fn sort_key(&self) -> (bool, Stamp, u64) {
        (!self.is_issued(), self.due, self.id)
    }

    /// What the invoice is worth now: the latest adjustment, else the issued amount.
    fn amount_minor(&self) -> i64 {
        if self.adjusted_at != Stamp::NEVER {
            self.adjusted_minor
        } else {
            self.issued_minor
        }
    }

    /// Named payments beyond the invoice's amount, which join the unnamed pool.
    fn named_excess_minor(&self) -> i64 {
        if self.is_issued() {
            (self.named_paid_minor - self.amount_minor()).max(0)
        } else {
            self.named_paid_minor
        }
    }
}

/// Balances of a debtor at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// Unpaid amount of every issued invoice.
    pub open_minor: i64,
    /// Unpaid amount of invoices whose due date has passed.
    pub overdue_minor: i64,
    pub open_invoices: u32,
    pub overdue_invoices: u32,
    /// Due date of the oldest invoice that is overdue and unpaid.
    pub oldest_overdue_due_at: Option<Stamp>,
}

impl Balances {
    fn add(&mut self, due: Stamp, remaining_minor: i64, as_of: Stamp) {
        if remaining_minor <= 0 {
            return;
        }
        self.open_minor += remaining_minor;
        self.open_invoices += 1;
        if due < as_of {
            self.overdue_minor += remaining_minor;
            self.overdue_invoices += 1;
            let oldest = self.oldest_overdue_due_at.map_or(due, |t| t.min(due));
            self.oldest_overdue_due_at = Some(oldest);
        }
    }
}

/// Invoices and payments of one debtor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Sorted by [`Invoice::sort_key`]: due date, placeholders last.
    invoices: Box<[Invoice]>,
    unnamed_paid_minor: i64,
    reversed_minor: i64,
}

impl Ledger {
    /// Records an issued invoice. If the same invoice was issued twice with
    /// different terms, the larger amount (then the later due date) wins.
    pub fn issue(&mut self, id: u64, amount_minor: i64, due_at: UnixTime) {
        let mut invoice = self.take(id);
        let due = Stamp::new(due_at);
        if !invoice.is_issued() || (amount_minor, due) > (invoice.issued_minor, invoice.due) {
            invoice.issued_minor = amount_minor;
            invoice.due = due;
        }
        self.put(invoice);
    }

    /// Records an adjustment. The latest adjustment wins; at equal times, the
    /// smaller amount.
    pub fn adjust(&mut self, id: u64, new_amount_minor: i64, at: UnixTime) {
        let at = Stamp::new(at);
        self.update(id, |invoice| {
            if (at, -new_amount_minor) >= (invoice.adjusted_at, -invoice.adjusted_minor) {
                invoice.adjusted_at = at;
                invoice.adjusted_minor = new_amount_minor;
            }
        });
    }

    /// Records a payment, naming an invoice or not.
    pub fn pay(&mut self, invoice: Option<u64>, amount_minor: i64) {
        match invoice {
            None => self.unnamed_paid_minor += amount_minor,
            Some(id) => self.update(id, |invoice| invoice.named_paid_minor += amount_minor),
        }
    }

    /// Records a reversal of a payment.
    pub fn reverse(&mut self, amount_minor: i64) {
        self.reversed_minor += amount_minor;
    }

    /// Total reversed so far.
    pub fn reversed_minor(&self) -> i64 {
        self.reversed_minor
    }

    /// Balances at `as_of`, settling payments as the module documents.
    pub fn balances(&self, as_of: UnixTime) -> Balances {
        let pool: i64 = self.unnamed_paid_minor - self.reversed_minor
            + self
                .invoices
                .iter()
                .map(Invoice::named_excess_minor)
                .sum::<i64>();
        let issued = self.invoices.iter().filter(|i| i.is_issued());
        let as_of = Stamp::new(as_of);
        let mut balances = Balances::default();

        if pool >= 0 {
            // Oldest due date first.
            let mut pool = pool;
            for invoice in issued {
                let unpaid = (invoice.amount_minor() - invoice.named_paid_minor).max(0);
                let settled = unpaid.min(pool);
                pool -= settled;
                balances.add(invoice.due, unpaid - settled, as_of);
            }
        } else {
            // Reversals beyond the pool undo named settlements, newest due first.
            let mut deficit = -pool;
            for invoice in issued.rev() {
                let amount = invoice.amount_minor();
                let named_settled = invoice.named_paid_minor.min(amount);
                let reopened = named_settled.min(deficit);
                deficit -= reopened;
                balances.add(invoice.due, amount - named_settled + reopened, as_of);
            }
        }
        balances
    }

    /// Applies `change` to the entry for `id` (a new placeholder if none).
    /// `change` must not alter the entry's sort key, so an existing entry is
    /// changed where it stands and only a new one is inserted.
    fn update(&mut self, id: u64, change: impl FnOnce(&mut Invoice)) {
        if let Some(invoice) = self.invoices.iter_mut().find(|i| i.id == id) {
            change(invoice);
            return;
        }
        let mut invoice = Invoice::placeholder(id);
        change(&mut invoice);
        self.put(invoice);
    }

    /// Removes and returns the entry for `id`, or a new placeholder.
    fn take(&mut self, id: u64) -> Invoice {
        match self.invoices.iter().position(|i| i.id == id) {
            Some(at) => {
                let invoice = self.invoices[at];
                let mut rest = Vec::with_capacity(self.invoices.len() - 1);
                rest.extend_from_slice(&self.invoices[..at]);
                rest.extend_from_slice(&self.invoices[at + 1..]);
                self.invoices = rest.into_boxed_slice();
                invoice
            }
            None => Invoice::placeholder(id),
        }
    }

    /// Inserts an entry at its sorted place.
    fn put(&mut self, invoice: Invoice) {
        let at = self
            .invoices
            .partition_point(|i| i.sort_key() < invoice.sort_key());
        let mut all = Vec::with_capacity(self.invoices.len() + 1);
        all.extend_from_slice(&self.invoices[..at]);
        all.push(invoice);
        all.extend_from_slice(&self.invoices[at..]);
        self.invoices = all.into_boxed_slice();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_700_000_000;

    fn ledger_with_two_invoices() -> Ledger {
        let mut ledger = Ledger::default();
        ledger.issue(1, 1_000, UnixTime(T0 + 10 * DAY));
        ledger.issue(2, 500, UnixTime(T0 + 40 * DAY));
        ledger
    }

    #[test]
    fn unnamed_payments_settle_the_oldest_invoice_first() {
        let mut ledger = ledger_with_two_invoices();
        ledger.pay(None, 1_200);
        let b = ledger.balances(UnixTime(T0 + 50 * DAY));
        assert_eq!(
            (b.open_minor, b.overdue_minor, b.open_invoices),
            (300, 300, 1)
        );
        assert_eq!(
            b.oldest_overdue_due_at,
            Some(Stamp::new(UnixTime(T0 + 40 * DAY)))
        );
    }

    #[test]
    fn a_named_payment_settles_its_invoice_and_the_excess_flows_on() {
        let mut ledger = ledger_with_two_invoices();
        ledger.pay(Some(2), 700);
        let b = ledger.balances(UnixTime(T0 + 20 * DAY));
        // 500 settle invoice 2, the 200 left settle part of invoice 1.
        assert_eq!(
            (b.open_minor, b.overdue_minor, b.overdue_invoices),
            (800, 800, 1)
        );
    }

    #[test]
    fn a_payment_before_its_invoice_waits_for_it() {
        let mut ledger = Ledger::default();
        ledger.pay(Some(7), 400);
        assert_eq!(ledger.balances(UnixTime(T0)).open_minor, 0);
        ledger.issue(7, 1_000, UnixTime(T0));
        assert_eq!(ledger.balances(UnixTime(T0 + DAY)).overdue_minor, 600);
    }

    #[test]
    fn reversals_beyond_the_pool_reopen_the_newest_invoice() {
        let mut ledger = ledger_with_two_invoices();
        ledger.pay(Some(1), 1_000);
        ledger.pay(Some(2), 500);
        ledger.reverse(300);
        let b = ledger.balances(UnixTime(T0 + 50 * DAY));
        assert_eq!((b.open_minor, b.open_invoices), (300, 1));
        assert_eq!(
            b.oldest_overdue_due_at,
            Some(Stamp::new(UnixTime(T0 + 40 * DAY)))
        );
    }

    #[test]
    fn an_adjustment_to_zero_closes_the_invoice_whenever_it_arrives() {
        let mut early = Ledger::default();
        early.adjust(1, 0, UnixTime(T0 + DAY));
        early.issue(1, 1_000, UnixTime(T0 + 10 * DAY));
        let mut late = Ledger::default();
        late.issue(1, 1_000, UnixTime(T0 + 10 * DAY));
        late.adjust(1, 0, UnixTime(T0 + DAY));
        assert_eq!(early, late);
        assert_eq!(early.balances(UnixTime(T0 + 20 * DAY)), Balances::default());
    }
}
