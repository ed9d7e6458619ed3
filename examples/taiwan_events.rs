//! Converts the "default of credit card clients" data set (Taiwan, April to
//! September 2005; Yeh & Lien, 2009; UCI data set 350) into a mora event file
//! and a labels file, so that `mora train --labels` can be evaluated on real
//! card holders. `docs/taiwan-benchmark.md` documents the mapping.
//!
//! ```text
//! cargo run --release --example taiwan_events -- CSV OUT_DIR
//! ```
//!
//! writes `OUT_DIR/events.jsonl.gz` and `OUT_DIR/labels.csv`. The CSV needs
//! a header with a first, unnamed row-index column and the columns
//! `limit_bal`, `pay_0`, `pay_2` … `pay_6`, `bill_amt1` … `bill_amt6`,
//! `pay_amt1` … `pay_amt6` and `default_payment`. Only what happened up to
//! September 2005 becomes an event; the October outcome becomes the label.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{NaiveDate, TimeZone, Utc};
use mora::api::event_file::EventWriter;
use mora::events::{
    AccountStatus, ChannelSet, Currency, Event, EventKind, Money, Profile, UnixTime, validation,
};
use mora::train::labels::HEADER;

/// The moment of every decision: after September's statement, before
/// October's payment.
const DECISION: (i32, u32, u32) = (2005, 10, 1);
/// Statement months, oldest first: April … September 2005.
const MONTHS: [u32; 6] = [4, 5, 6, 7, 8, 9];
/// Day of the month of statements (and due dates) and of payments.
const STATEMENT_DAY: u32 = 5;
const PAYMENT_DAY: u32 = 2;

fn at(month: u32, day: u32) -> UnixTime {
    let date = NaiveDate::from_ymd_opt(2005, month, day).expect("a 2005 date");
    UnixTime(Utc.from_utc_datetime(&date.into()).timestamp())
}

/// One card holder's row, months oldest first.
struct Holder {
    index: u64,
    limit: i64,
    /// Repayment status: ≤ 0 paid duly, k ≥ 1 k months late.
    status: [i64; 6],
    bill: [i64; 6],
    paid: [i64; 6],
    defaulted: bool,
}

/// Column positions by header name.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn get(&self, name: &str) -> anyhow::Result<usize> {
        self.0
            .get(name)
            .copied()
            .with_context(|| format!("the header has no column {name:?}"))
    }
}

fn parse_holder(columns: &Columns, fields: &[&str]) -> anyhow::Result<Holder> {
    let number = |name: &str| -> anyhow::Result<i64> {
        let text = fields
            .get(columns.get(name)?)
            .with_context(|| format!("column {name:?} is missing"))?;
        let value: f64 = text
            .trim()
            .parse()
            .with_context(|| format!("{name}: {text:?} is not a number"))?;
        Ok(value.round() as i64)
    };
    // The data set names September's status pay_0 and the others pay_2 … pay_6;
    // amounts are numbered 1 (September) … 6 (April).
    let status_names = ["pay_6", "pay_5", "pay_4", "pay_3", "pay_2", "pay_0"];
    let mut holder = Holder {
        index: u64::try_from(number("")?).context("the row index is negative")?,
        limit: number("limit_bal")?,
        status: [0; 6],
        bill: [0; 6],
        paid: [0; 6],
        defaulted: number("default_payment")? == 1,
    };
    for (m, status) in status_names.iter().enumerate() {
        holder.status[m] = number(status)?;
        holder.bill[m] = number(&format!("bill_amt{}", 6 - m))?;
        holder.paid[m] = number(&format!("pay_amt{}", 6 - m))?;
    }
    Ok(holder)
}

/// The data set's repayment status as the creditor's account status: −2 no
/// consumption, −1 paid in full, 0 revolving (paid the minimum), k ≥ 1 k
/// months late.
fn account_status(code: i64) -> AccountStatus {
    match code {
        ..=-2 => AccountStatus::Inactive,
        -1 => AccountStatus::PaidInFull,
        0 => AccountStatus::Revolving,
        k => AccountStatus::Delinquent {
            cycles: k.min(i64::from(AccountStatus::MAX_CYCLES)) as u8,
        },
    }
}

/// The events of one card holder; see `docs/taiwan-benchmark.md`.
fn holder_events(holder: &Holder, twd: Currency, profile: Profile) -> Vec<Event> {
    let debtor_id = format!("tw-{}", holder.index);
    let money = |major: i64| Money {
        minor_units: major * 100,
        currency: twd,
    };
    let mut events = Vec::new();
    let mut push = |id: String, occurred_at: UnixTime, kind: EventKind| {
        events.push(Event {
            event_id: format!("{debtor_id}/{id}"),
            debtor_id: debtor_id.clone(),
            occurred_at,
            kind,
        })
    };
    let opened = at(3, STATEMENT_DAY);
    push("profile".into(), opened, EventKind::Profile(profile));
    if holder.limit > 0 {
        push(
            "limit".into(),
            opened,
            EventKind::CreditLimit {
                limit: money(holder.limit),
            },
        );
    }
    // The statement before April is known only through April's payment on it.
    let mut previous_statement = None;
    if holder.paid[0] > 0 {
        push(
            "statement-03".into(),
            opened,
            EventKind::InvoiceIssued {
                invoice_id: "statement-03".into(),
                amount: money(holder.paid[0]),
                due_at: at(4, STATEMENT_DAY),
            },
        );
        previous_statement = Some("statement-03".to_owned());
    }
    let mut previous_arrears: Option<String> = None;
    for (m, &month) in MONTHS.iter().enumerate() {
        let paid = holder.paid[m];
        if paid > 0 {
            push(
                format!("payment-{month:02}"),
                at(month, PAYMENT_DAY),
                EventKind::Payment {
                    amount: money(paid),
                    invoice_id: previous_statement.clone(),
                },
            );
        }
        let statement_at = at(month, STATEMENT_DAY);
        // The new statement restates the balance: last month's statement is
        // closed at what was paid on it, last month's arrears at zero.
        if let Some(id) = previous_statement.take() {
            push(
                format!("close-{id}"),
                statement_at,
                EventKind::InvoiceAdjusted {
                    invoice_id: id,
                    new_amount: money(paid),
                },
            );
        }
        if let Some(id) = previous_arrears.take() {
            push(
                format!("close-{id}"),
                statement_at,
                EventKind::InvoiceAdjusted {
                    invoice_id: id,
                    new_amount: money(0),
                },
            );
        }
        let months_late = holder.status[m];
        push(
            format!("status-{month:02}"),
            statement_at,
            EventKind::AccountStatus {
                status: account_status(months_late),
            },
        );
        let bill = holder.bill[m].max(0);
        // What was billed before and not paid, and is part of this bill.
        let carried = if m == 0 {
            if months_late >= 1 { bill } else { 0 }
        } else {
            (holder.bill[m - 1] - paid).clamp(0, bill)
        };
        let mut new_amount = bill;
        if months_late >= 1 && carried > 0 {
            // k months late: the carried amount has been due since the due
            // date of the statement k months back.
            let due_month = month as i64 - months_late + 1;
            let due_at = if due_month >= 1 {
                at(due_month as u32, STATEMENT_DAY)
            } else {
                at(1, 1)
            };
            let id = format!("arrears-{month:02}");
            push(
                id.clone(),
                statement_at,
                EventKind::InvoiceIssued {
                    invoice_id: id.clone(),
                    amount: money(carried),
                    due_at,
                },
            );
            previous_arrears = Some(id);
            new_amount = bill - carried;
        }
        if new_amount > 0 {
            let id = format!("statement-{month:02}");
            push(
                id.clone(),
                statement_at,
                EventKind::InvoiceIssued {
                    invoice_id: id.clone(),
                    amount: money(new_amount),
                    due_at: at(month + 1, STATEMENT_DAY),
                },
            );
            previous_statement = Some(id);
        }
    }
    events
}

fn run(csv: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let input =
        BufReader::new(File::open(csv).with_context(|| format!("opening {}", csv.display()))?);
    let mut lines = input.lines();
    let header = lines.next().context("the file is empty")??;
    let columns = Columns(
        header
            .split(',')
            .enumerate()
            .map(|(i, name)| (name.trim().to_owned(), i))
            .collect(),
    );

    let twd = validation::currency("currency", "TWD")?;
    let profile = Profile {
        timezone: Some(validation::timezone("timezone", "Asia/Taipei")?),
        country: validation::country("country", "TW")?,
        authorised_channels: ChannelSet::EMPTY,
    };
    let (year, month, day) = DECISION;
    let decision = Utc
        .with_ymd_and_hms(year, month, day, 0, 0, 0)
        .single()
        .context("the decision time")?;

    let events_path = out.join("events.jsonl.gz");
    let labels_path = out.join("labels.csv");
    let mut events = EventWriter::create(&events_path)?;
    let mut labels = BufWriter::new(File::create(&labels_path)?);
    writeln!(labels, "{HEADER}")?;
    let (mut holders, mut written, mut held_out) = (0u64, 0usize, 0u64);
    for (i, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let holder = parse_holder(&columns, &fields)
            .with_context(|| format!("{}: line {}", csv.display(), i + 2))?;
        for event in holder_events(&holder, twd, profile) {
            events.write(&event)?;
            written += 1;
        }
        // The benchmark's split: rows whose index ends in 0, 1 or 2 are held out.
        let test = holder.index % 10 <= 2;
        held_out += u64::from(test);
        writeln!(
            labels,
            "tw-{},{},{},{}",
            holder.index,
            decision.format("%Y-%m-%dT%H:%M:%SZ"),
            u8::from(!holder.defaulted),
            if test { "test" } else { "train" }
        )?;
        holders += 1;
    }
    events.finish()?;
    labels.flush()?;
    if holders == 0 {
        bail!("{} has no card holders", csv.display());
    }
    eprintln!(
        "Wrote {written} events for {holders} card holders to {} and their labels \
         ({held_out} held out) to {}",
        events_path.display(),
        labels_path.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [csv, out] = &args[..] else {
        bail!("usage: taiwan_events CSV OUT_DIR");
    };
    run(csv, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mora::features::extract;
    use mora::state::Store;

    fn features_at_decision(holder: &Holder) -> mora::features::FeatureVector {
        let twd = validation::currency("c", "TWD").unwrap();
        let profile = Profile {
            timezone: Some(validation::timezone("t", "Asia/Taipei").unwrap()),
            country: validation::country("c", "TW").unwrap(),
            authorised_channels: ChannelSet::EMPTY,
        };
        let store = Store::new();
        let mut events = holder_events(holder, twd, profile);
        events.reverse(); // the state does not depend on arrival order
        for event in &events {
            store.apply(event).unwrap();
        }
        let decision = at(DECISION.1, DECISION.2);
        store
            .read(&format!("tw-{}", holder.index), |d| extract(d, decision))
            .unwrap()
    }

    #[test]
    fn a_holder_two_months_late_owes_arrears_overdue_since_the_missed_statement() {
        let holder = Holder {
            index: 7,
            limit: 20_000,
            status: [-1, -1, 0, 0, 1, 2],
            bill: [1_000, 2_000, 3_000, 4_000, 5_000, 6_000],
            paid: [500, 1_000, 1_000, 1_000, 0, 0],
            defaulted: true,
        };
        let f = features_at_decision(&holder);
        // Two months late in September: missed the July statement, due 5 August.
        assert_eq!(f.get("days_past_due"), Some(57.0));
        // Carried from August's bill of 5,000 with nothing paid in September.
        let overdue = f.get("log_overdue_balance").unwrap();
        assert!((overdue - 5_001f64.ln()).abs() < 1e-9, "{overdue}");
        // The open balance is September's bill.
        let utilisation = f.get("credit_utilisation").unwrap();
        assert!((utilisation - 6_000.0 / 20_000.0).abs() < 1e-12);
        assert!((f.get("log_credit_limit").unwrap() - 20_001f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn a_holder_who_pays_duly_has_nothing_overdue() {
        let holder = Holder {
            index: 8,
            limit: 50_000,
            status: [-1; 6],
            bill: [1_000, 1_200, 900, 1_500, 1_100, 1_300],
            paid: [800, 1_000, 1_200, 900, 1_500, 1_100],
            defaulted: false,
        };
        let f = features_at_decision(&holder);
        assert_eq!(f.get("days_past_due"), Some(0.0));
        assert_eq!(f.get("overdue_invoices"), Some(0.0));
        assert_eq!(f.get("open_invoices"), Some(1.0));
        assert!((f.get("log_open_balance").unwrap() - 1_301f64.ln()).abs() < 1e-9);
        // Payments on 2 August and 2 September; 2 July is 91 days back.
        assert_eq!(f.get("payments_90d"), Some(2.0));
    }
}
