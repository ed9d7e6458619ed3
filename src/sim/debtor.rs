//! One simulated debtor: hidden traits, then a day-by-day history drawn from them.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveTime, TimeZone};
use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, LogNormal};

use super::{SimConfig, SimulatedDebtor};
use crate::events::{
    Channel, ChannelSet, ContactOutcome, Country, Currency, Event, EventKind, Money, Profile,
    SECONDS_PER_DAY, UnixTime, validation,
};

/// What the simulator knows and the service must infer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Traits {
    /// 0..1: how much of a bill the debtor can pay.
    pub ability: f64,
    /// 0..1: how much they want to.
    pub willingness: f64,
    /// 0..1: probability of keeping a promise once made.
    pub promise_keeping: f64,
    /// Day of the 30-day billing cycle (0..30, the cycle starting at the
    /// first invoice) on which the debtor's income arrives; payments cluster
    /// in the days after it.
    pub payday: u32,
    /// 0..1: how strongly being reached moves the debtor to pay soon.
    pub contact_response: f64,
    /// Per channel (call, SMS, WhatsApp, email), probability that an attempt
    /// at their best hour on a weekday reaches them.
    pub reachability: [f64; 4],
    /// Local hour at which they are easiest to reach.
    pub best_hour: u32,
    /// Hours from the best hour at which reachability has fallen by about
    /// 40 % on the most hour-sensitive channel.
    pub hour_spread: f64,
    /// Reachability on Saturdays and Sundays relative to weekdays.
    pub weekend_factor: f64,
    #[serde(serialize_with = "timezone_name")]
    pub timezone: chrono_tz::Tz,
}

/// How much the hour of an attempt matters per channel: a call must find the
/// debtor free; an email waits in the inbox.
const HOUR_SENSITIVITY: [f64; 4] = [1.0, 0.6, 0.8, 0.3];

/// The most any attempt reaches a debtor.
const MAX_REACH: f64 = 0.95;

impl Traits {
    /// Draws a debtor's traits, living in one of `timezones`: the prior that
    /// the simulator's debtors come from.
    pub fn draw(rng: &mut impl Rng, timezones: &[chrono_tz::Tz]) -> Traits {
        let beta = |a, b| Beta::new(a, b).expect("valid beta parameters");
        Traits {
            ability: beta(2.0, 2.0).sample(rng),
            willingness: beta(2.5, 2.0).sample(rng),
            promise_keeping: beta(2.0, 2.5).sample(rng),
            payday: rng.gen_range(0..DAYS_PER_MONTH as u32),
            contact_response: beta(2.0, 3.0).sample(rng),
            reachability: std::array::from_fn(|_| beta(1.5, 3.0).sample(rng)),
            best_hour: rng.gen_range(8..21),
            hour_spread: rng.gen_range(1.5..5.0),
            weekend_factor: rng.gen_range(0.4..1.4),
            timezone: timezones[rng.gen_range(0..timezones.len())],
        }
    }

    /// Probability that an attempt on `channel` at `local_hour` (0..24) of a
    /// weekday or weekend day reaches the debtor: the ground truth that
    /// contact recommendations are measured against.
    pub fn reach_probability(&self, channel: Channel, local_hour: u32, is_weekend: bool) -> f64 {
        let distance = f64::from((local_hour + 24 - self.best_hour) % 24);
        let distance = distance.min(24.0 - distance);
        let closeness = (-(distance * distance) / (2.0 * self.hour_spread.powi(2))).exp();
        let sensitivity = HOUR_SENSITIVITY[channel.index()];
        let by_hour = 1.0 - sensitivity + sensitivity * closeness;
        let by_day = if is_weekend { self.weekend_factor } else { 1.0 };
        (self.reachability[channel.index()] * by_hour * by_day).clamp(0.0, MAX_REACH)
    }
}

fn timezone_name<S: serde::Serializer>(
    tz: &chrono_tz::Tz,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(tz.name())
}

const DAYS_PER_MONTH: i64 = 30;
const DUE_AFTER_DAYS: i64 = 20;

struct Region {
    country: &'static str,
    currency: &'static str,
    timezones: &'static [chrono_tz::Tz],
    /// Median monthly bill, minor units.
    median_bill_minor: f64,
}

const REGIONS: [Region; 2] = [
    Region {
        country: "CO",
        currency: "COP",
        timezones: &[chrono_tz::America::Bogota],
        median_bill_minor: 25_000_000.0,
    },
    Region {
        country: "US",
        currency: "USD",
        timezones: &[
            chrono_tz::America::New_York,
            chrono_tz::America::Chicago,
            chrono_tz::America::Los_Angeles,
        ],
        median_bill_minor: 12_000.0,
    },
];

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Builds events for one debtor, numbering them in creation order.
struct History {
    debtor_id: String,
    currency: Currency,
    events: Vec<Event>,
}

impl History {
    fn push(&mut self, at: i64, kind: EventKind) {
        let event_id = format!("{}-e{}", self.debtor_id, self.events.len());
        self.events.push(Event {
            event_id,
            debtor_id: self.debtor_id.clone(),
            occurred_at: UnixTime(at),
            kind,
        });
    }

    fn money(&self, minor_units: i64) -> Money {
        Money {
            minor_units,
            currency: self.currency,
        }
    }
}

/// A payment the debtor will make on a given day (index into the history).
#[derive(Debug, Clone)]
struct Planned {
    minor: i64,
    invoice: Option<String>,
}

pub(super) fn generate(config: &SimConfig, index: usize, rng: &mut impl Rng) -> SimulatedDebtor {
    let region = &REGIONS[rng.gen_range(0..REGIONS.len())];
    let traits = Traits::draw(rng, region.timezones);
    let debtor_id = format!("sim-{index:07}");
    let currency = validation::currency("currency", region.currency).expect("valid code");
    let country: Country = validation::country("country", region.country).expect("valid code");
    let mut history = History {
        debtor_id: debtor_id.clone(),
        currency,
        events: Vec::new(),
    };

    // Where authorisation is required the debtor signed up for some
    // channels; elsewhere the platform records all.
    let authorised: ChannelSet = if region.country == "CO" {
        let picked: ChannelSet = Channel::ALL
            .into_iter()
            .filter(|_| rng.gen_bool(0.7))
            .collect();
        if picked.is_empty() {
            ChannelSet::EMPTY.with(Channel::ALL[rng.gen_range(0..4)])
        } else {
            picked
        }
    } else {
        ChannelSet::ALL
    };
    let start = config.start.0 + rng.gen_range(0..5) * SECONDS_PER_DAY;
    history.push(
        start - SECONDS_PER_DAY,
        EventKind::Profile(Profile {
            // Now and then the platform does not know the debtor's zone.
            timezone: (!rng.gen_bool(0.05)).then_some(traits.timezone),
            country,
            authorised_channels: authorised,
        }),
    );

    // Invoices, and the payments the debtor intends for each.
    let bill = LogNormal::new(region.median_bill_minor.ln(), 0.5).expect("valid lognormal");
    let months = i64::from(config.months);
    let mut plan: BTreeMap<i64, Vec<Planned>> = BTreeMap::new();
    let mut invoices = Vec::new();
    for month in 0..months {
        let issued_day = month * DAYS_PER_MONTH;
        let due_day = issued_day + DUE_AFTER_DAYS;
        let amount = (bill.sample(rng) as i64).max(100);
        let invoice_id = format!("{debtor_id}-inv{month}");
        history.push(
            start + issued_day * SECONDS_PER_DAY + 3_600,
            EventKind::InvoiceIssued {
                invoice_id: invoice_id.clone(),
                amount: history.money(amount),
                due_at: UnixTime(start + due_day * SECONDS_PER_DAY),
            },
        );
        invoices.push((due_day, amount));

        // A monthly shock the service cannot see: a hard month or an easy one.
        let shock: f64 = rng.sample::<f64, _>(rand_distr::StandardNormal) * 0.8;
        let p_pays = sigmoid(4.0 * (traits.ability + 0.6 * traits.willingness - 0.75) + shock);
        if rng.gen_bool(p_pays) {
            let on_time = rng.gen_bool(traits.willingness.clamp(0.05, 0.95));
            let day = if on_time {
                // The last pay day before the due date, if the bill was out
                // by then; else a few days before it is due.
                let payday = next_payday(traits.payday, due_day - DAYS_PER_MONTH + 1);
                if payday > issued_day && payday <= due_day {
                    payday + rng.gen_range(0..3).min(due_day - payday)
                } else {
                    due_day - rng.gen_range(0..6)
                }
            } else {
                let mean_delay = 5.0 + 40.0 * (1.0 - traits.ability);
                let delay = Exp::new(1.0 / mean_delay).expect("valid rate").sample(rng) as i64;
                next_payday(traits.payday, due_day + 1 + delay / 2) + rng.gen_range(0..3)
            };
            let share = if rng.gen_bool(traits.ability.clamp(0.1, 0.95)) {
                1.0
            } else {
                rng.gen_range(0.3..0.8)
            };
            let named = rng.gen_bool(0.5).then(|| invoice_id.clone());
            plan.entry(day).or_default().push(Planned {
                minor: ((amount as f64) * share) as i64,
                invoice: named,
            });
        }
    }

    // Day by day: planned payments, then collection while anything is overdue.
    let last_day = months * DAYS_PER_MONTH + DUE_AFTER_DAYS;
    let mut paid = 0i64;
    let mut opted_out = [false; 4];
    for day in 0..last_day {
        let day_start = start + day * SECONDS_PER_DAY;
        for planned in plan.remove(&day).unwrap_or_default() {
            if planned.minor <= 0 {
                continue;
            }
            let at = day_start + rng.gen_range(8 * 3_600..22 * 3_600);
            history.push(
                at,
                EventKind::Payment {
                    amount: history.money(planned.minor),
                    invoice_id: planned.invoice,
                },
            );
            paid += planned.minor;
            if rng.gen_bool((0.04 * (1.2 - traits.ability)).clamp(0.0, 1.0)) {
                let reversed_at = at + rng.gen_range(2..6) * SECONDS_PER_DAY;
                history.push(
                    reversed_at,
                    EventKind::PaymentReversed {
                        amount: history.money(planned.minor),
                        payment_event_id: None,
                    },
                );
                paid -= planned.minor;
            }
        }

        let due: i64 = invoices
            .iter()
            .filter(|(d, _)| *d < day)
            .map(|(_, a)| a)
            .sum();
        let overdue = due - paid;
        if overdue <= 0 || !rng.gen_bool(0.3) {
            continue;
        }
        let open: Vec<Channel> = Channel::ALL
            .into_iter()
            .filter(|c| !opted_out[c.index()] && authorised.contains(*c))
            .collect();
        if open.is_empty() {
            continue;
        }
        let channel = open[rng.gen_range(0..open.len())];
        // The platform does not know the debtor's hours: any working hour.
        let hour = rng.gen_range(8..20);
        let minute = rng.gen_range(0..60);
        let local = traits
            .timezone
            .timestamp_opt(day_start + 12 * 3_600, 0)
            .single()
            .map(|t| t.date_naive())
            .and_then(|d| Some(d.and_time(NaiveTime::from_hms_opt(hour, minute, 0)?)));
        let Some(local) = local else { continue };
        let is_weekend = local.weekday().num_days_from_monday() >= 5;
        let p_reach = traits.reach_probability(channel, hour, is_weekend);
        let is_reached = rng.gen_bool(p_reach);
        let outcome = contact_outcome(channel, is_reached, rng);
        let at = traits
            .timezone
            .from_local_datetime(&local)
            .earliest()
            .map_or(day_start + i64::from(hour) * 3_600, |t| t.timestamp());
        history.push(at, EventKind::Contact { channel, outcome });

        if channel == Channel::Sms && rng.gen_bool(0.02) {
            opted_out[channel.index()] = true;
            history.push(at + 600, EventKind::OptOut { channel });
        }
        if !is_reached {
            continue;
        }
        // Reached: perhaps a promise, kept or not; perhaps a payment anyway.
        if rng.gen_bool((0.8 * traits.willingness).clamp(0.0, 1.0)) {
            let promised_day = day + rng.gen_range(2..10);
            let promised = (overdue as f64 * rng.gen_range(0.5..1.0)) as i64;
            if promised > 0 {
                history.push(
                    at + 300,
                    EventKind::Promise {
                        amount: history.money(promised),
                        promised_for: UnixTime(start + promised_day * SECONDS_PER_DAY + 20 * 3_600),
                    },
                );
                if rng.gen_bool(traits.promise_keeping.clamp(0.0, 1.0)) {
                    let pay_day = day + rng.gen_range(1..=(promised_day - day));
                    plan.entry(pay_day).or_default().push(Planned {
                        minor: promised,
                        invoice: None,
                    });
                }
            }
        } else if rng.gen_bool((traits.contact_response * traits.ability).clamp(0.0, 1.0)) {
            let pay_day = next_payday(traits.payday, day + 1).min(day + 10);
            plan.entry(pay_day).or_default().push(Planned {
                minor: overdue / 2,
                invoice: None,
            });
        }
    }

    // Credit notes: now and then an invoice is reduced after a dispute.
    if rng.gen_bool(0.05) {
        let (due_day, amount) = invoices[rng.gen_range(0..invoices.len())];
        let month = (due_day - DUE_AFTER_DAYS) / DAYS_PER_MONTH;
        history.push(
            start + (due_day + 3) * SECONDS_PER_DAY,
            EventKind::InvoiceAdjusted {
                invoice_id: format!("{debtor_id}-inv{month}"),
                new_amount: history.money(amount / 2),
            },
        );
    }

    let mut events = history.events;
    events.sort_by_key(|e| e.occurred_at);
    SimulatedDebtor {
        debtor_id,
        traits,
        events,
    }
}

/// The first day on or after `day` that is the debtor's pay day.
fn next_payday(payday: u32, day: i64) -> i64 {
    day + (i64::from(payday) - day).rem_euclid(DAYS_PER_MONTH)
}

fn contact_outcome(channel: Channel, is_reached: bool, rng: &mut impl Rng) -> ContactOutcome {
    use ContactOutcome::*;
    let pick = |options: &[ContactOutcome], rng: &mut dyn rand::RngCore| {
        options[rng.gen_range(0..options.len())]
    };
    match (channel, is_reached) {
        (Channel::Call, true) => RightParty,
        (Channel::Call, false) => pick(&[NoAnswer, Busy, Answered, WrongNumber, Failed], rng),
        (Channel::Sms | Channel::WhatsApp, true) => pick(&[Replied, Clicked], rng),
        (Channel::Sms | Channel::WhatsApp, false) => pick(&[Delivered, Delivered, Failed], rng),
        (Channel::Email, true) => pick(&[Opened, Clicked, Replied], rng),
        (Channel::Email, false) => pick(&[Delivered, Bounced], rng),
    }
}
