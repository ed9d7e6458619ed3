//! Contact features: what a debtor's contact history says about reaching them
//! on a channel, at a local hour, on a weekday or at the weekend.
//!
//! [`ContactSummary`] condenses the contact log once — attempts and successes
//! by channel, by local hour (smoothed over neighbouring hours) and by day
//! type, each decayed by age — and [`ContactSummary::features`] then gives the
//! feature vector of any candidate slot cheaply. Training calls the same two
//! functions at every logged attempt, with the state as it was just before it.
//!
//! Local hours are read in the debtor's time zone, or in UTC when the profile
//! has none; attempts after the summary's `as_of` are not counted.

use std::sync::OnceLock;

use chrono::{Datelike, TimeZone, Timelike};

use super::hash_schema;
use crate::events::{Channel, ContactOutcome, UnixTime};
use crate::state::contacts::ContactLog;

/// Bumped whenever a contact feature's definition changes.
pub const CONTACT_SCHEMA_VERSION: u32 = 2;

/// Contact feature names, in the order of every contact feature vector.
pub const CONTACT_FEATURE_NAMES: [&str; CONTACT_FEATURE_COUNT] = [
    "channel_call",
    "channel_sms",
    "channel_whatsapp",
    "channel_email",
    "hour_sin",
    "hour_cos",
    "is_weekend",
    "success_rate_logit",
    "channel_success_rate_logit",
    "hour_success_rate_logit",
    "channel_hour_success_rate_logit",
    "day_type_success_rate_logit",
    "log_attempts",
    "log_channel_attempts",
    "log_channel_hour_attempts",
    "attempts_7d",
    "days_since_last_success",
    "days_since_last_channel_attempt",
    "log_channel_rate",
    "hour_lift_call",
    "hour_lift_sms",
    "hour_lift_whatsapp",
    "hour_lift_email",
    "day_type_lift",
    "log_reach_estimate",
    "log_reach_estimate_x_evidence",
    "log_channel_rate_x_evidence",
    "hour_lift_x_evidence",
];

/// Number of contact features.
pub const CONTACT_FEATURE_COUNT: usize = 28;

/// Half-life of an attempt's weight in the summary, in days.
const HALF_LIFE_DAYS: f64 = 180.0;

/// Weight, in attempts, with which hour and day-type rates are pulled
/// towards the debtor's overall rate before their lift is taken.
const LIFT_PRIOR_ATTEMPTS: f64 = 8.0;

/// Durations are capped here, and "never" counts as the cap.
const DAYS_CAP: f64 = 365.0;

/// Weight of an attempt `d` hours away (0..=12, around the clock) in an
/// hour's smoothed counts: a Gaussian of 1.5 hours.
fn hour_kernel() -> &'static [f64; 13] {
    static KERNEL: OnceLock<[f64; 13]> = OnceLock::new();
    KERNEL.get_or_init(|| std::array::from_fn(|d| (-((d * d) as f64) / (2.0 * 1.5 * 1.5)).exp()))
}

/// The contact schema hash, as [`super::schema_hash`] is for payment features.
pub fn contact_schema_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_schema("contact", CONTACT_SCHEMA_VERSION, &CONTACT_FEATURE_NAMES))
}

/// Which outcomes count as reaching the debtor, per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessDefinition {
    /// Per channel, bit [`ContactOutcome::index`] set for each success.
    outcomes: [u16; 4],
}

impl Default for SuccessDefinition {
    /// A call that reached the right party; a message replied to or clicked;
    /// an email opened, clicked or replied to.
    fn default() -> Self {
        let mut outcomes = [0u16; 4];
        for channel in Channel::ALL {
            for outcome in ContactOutcome::ALL {
                if outcome.is_success_on(channel) {
                    outcomes[channel.index()] |= 1 << outcome.index();
                }
            }
        }
        SuccessDefinition { outcomes }
    }
}

impl SuccessDefinition {
    /// A definition with `successes` per channel; channels not given keep
    /// the default.
    pub fn with(mut self, channel: Channel, successes: &[ContactOutcome]) -> Self {
        self.outcomes[channel.index()] = successes.iter().fold(0, |b, o| b | 1 << o.index());
        self
    }

    /// Whether `outcome` on `channel` reached the debtor.
    pub fn is_success(&self, channel: Channel, outcome: ContactOutcome) -> bool {
        self.outcomes[channel.index()] & (1 << outcome.index()) != 0
    }

    /// The outcomes counted as success on `channel`.
    pub fn successes(&self, channel: Channel) -> Vec<ContactOutcome> {
        ContactOutcome::ALL
            .into_iter()
            .filter(|o| self.is_success(channel, *o))
            .collect()
    }
}

/// A candidate contact: a channel at a local hour on a kind of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub channel: Channel,
    /// 0..24, in the zone the summary reads local time in.
    pub local_hour: u32,
    pub is_weekend: bool,
}

impl Slot {
    /// The slot of a contact on `channel` at `at`, read in `zone` (UTC when
    /// `None`).
    pub fn at(channel: Channel, at: UnixTime, zone: Option<chrono_tz::Tz>) -> Slot {
        let (local_hour, weekday) = local_hour_and_weekday(at, zone);
        Slot {
            channel,
            local_hour,
            is_weekend: weekday >= 5,
        }
    }
}

/// Local hour (0..24) and weekday (Monday = 0) of `at` in `zone`.
fn local_hour_and_weekday(at: UnixTime, zone: Option<chrono_tz::Tz>) -> (u32, u32) {
    let zone = zone.unwrap_or(chrono_tz::UTC);
    match zone.timestamp_opt(at.0, 0).single() {
        Some(t) => (t.hour(), t.weekday().num_days_from_monday()),
        None => (0, 0),
    }
}

/// One slot's contact features, in schema order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactFeatures([f64; CONTACT_FEATURE_COUNT]);

impl ContactFeatures {
    /// A vector of given values (for model checks and tests).
    pub fn from_values(values: [f64; CONTACT_FEATURE_COUNT]) -> Self {
        ContactFeatures(values)
    }

    /// The values, in the order of [`CONTACT_FEATURE_NAMES`].
    pub fn values(&self) -> &[f64; CONTACT_FEATURE_COUNT] {
        &self.0
    }

    /// The value of the feature called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        CONTACT_FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
    }
}

/// Decayed attempts and successes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    attempts: f64,
    successes: f64,
}

impl Tally {
    fn add(&mut self, weight: f64, is_success: bool) {
        self.attempts += weight;
        if is_success {
            self.successes += weight;
        }
    }

    /// The success rate, shrunk towards `prior` with the weight of four
    /// attempts.
    fn rate(&self, prior: f64) -> f64 {
        self.rate_with(prior, 4.0)
    }

    /// The success rate, shrunk towards `prior` with the weight of `weight`
    /// attempts.
    fn rate_with(&self, prior: f64, weight: f64) -> f64 {
        (self.successes + weight * prior) / (self.attempts + weight)
    }
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln()
}

/// A debtor's contact history, condensed for scoring many slots.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSummary {
    all: Tally,
    by_channel: [Tally; 4],
    /// Per channel and local hour, smoothed over neighbouring hours.
    by_channel_hour: [[Tally; 24]; 4],
    /// Every channel together, per local hour, smoothed.
    by_hour: [Tally; 24],
    /// Weekdays, then weekends.
    by_day_type: [Tally; 2],
    attempts_7d: f64,
    last_success: Option<UnixTime>,
    last_attempt: [Option<UnixTime>; 4],
    as_of: UnixTime,
}

impl ContactSummary {
    /// Condenses the attempts of `log` up to `as_of`, reading local time in
    /// `zone` (UTC when `None`) and success by `success`.
    pub fn new(
        log: &ContactLog,
        zone: Option<chrono_tz::Tz>,
        as_of: UnixTime,
        success: &SuccessDefinition,
    ) -> ContactSummary {
        let mut summary = ContactSummary {
            all: Tally::default(),
            by_channel: [Tally::default(); 4],
            by_channel_hour: [[Tally::default(); 24]; 4],
            by_hour: [Tally::default(); 24],
            by_day_type: [Tally::default(); 2],
            attempts_7d: 0.0,
            last_success: None,
            last_attempt: [None; 4],
            as_of,
        };
        let kernel = hour_kernel();
        for record in log.records().iter().filter(|r| r.at() <= as_of) {
            let (at, channel) = (record.at(), record.channel());
            let is_success = success.is_success(channel, record.outcome());
            let age_days = as_of.days_since(at);
            let weight = (-std::f64::consts::LN_2 * age_days / HALF_LIFE_DAYS).exp();
            let (hour, weekday) = local_hour_and_weekday(at, zone);

            summary.all.add(weight, is_success);
            summary.by_channel[channel.index()].add(weight, is_success);
            summary.by_day_type[usize::from(weekday >= 5)].add(weight, is_success);
            for (h, (channel_hour, any_channel)) in summary.by_channel_hour[channel.index()]
                .iter_mut()
                .zip(summary.by_hour.iter_mut())
                .enumerate()
            {
                let d = (h as u32 + 24 - hour) % 24;
                let w = weight * kernel[d.min(24 - d) as usize];
                channel_hour.add(w, is_success);
                any_channel.add(w, is_success);
            }
            if age_days < 7.0 {
                summary.attempts_7d += 1.0;
            }
            if is_success {
                summary.last_success = summary.last_success.max(Some(at));
            }
            let last = &mut summary.last_attempt[channel.index()];
            *last = (*last).max(Some(at));
        }
        summary
    }

    /// The debtor's decayed, hour-smoothed attempts on the slot's channel at
    /// its hour: how much their own history says about it.
    pub fn attempts_in(&self, slot: Slot) -> f64 {
        self.by_channel_hour[slot.channel.index()][slot.local_hour.min(23) as usize].attempts
    }

    /// The features of contacting in `slot`.
    pub fn features(&self, slot: Slot) -> ContactFeatures {
        let c = slot.channel.index();
        let h = slot.local_hour.min(23) as usize;
        let angle = std::f64::consts::TAU * f64::from(slot.local_hour) / 24.0;
        let overall = (self.all.successes + 1.0) / (self.all.attempts + 4.0);
        let channel_rate = self.by_channel[c].rate(overall);
        let days_since = |t: Option<UnixTime>| {
            t.map_or(DAYS_CAP, |t| self.as_of.days_since(t).clamp(0.0, DAYS_CAP))
        };
        let one_hot = |i: usize| if i == c { 1.0 } else { 0.0 };
        // Reachability as the product of a channel's rate, an hour's lift and
        // a day type's lift over the debtor's overall rate; the hour's lift
        // is given per channel, for channels differ in how much the hour
        // matters.
        let lift = |tally: &Tally| (tally.rate_with(overall, LIFT_PRIOR_ATTEMPTS) / overall).ln();
        let hour_lift = lift(&self.by_hour[h]);
        let day_type_lift = lift(&self.by_day_type[usize::from(slot.is_weekend)]);
        let log_channel_rate = channel_rate.ln();
        let log_reach_estimate = log_channel_rate + hour_lift + day_type_lift;
        ContactFeatures([
            one_hot(0),
            one_hot(1),
            one_hot(2),
            one_hot(3),
            angle.sin(),
            angle.cos(),
            if slot.is_weekend { 1.0 } else { 0.0 },
            logit(overall),
            logit(channel_rate),
            logit(self.by_hour[h].rate(overall)),
            logit(self.by_channel_hour[c][h].rate(channel_rate)),
            logit(self.by_day_type[usize::from(slot.is_weekend)].rate(overall)),
            self.all.attempts.ln_1p(),
            self.by_channel[c].attempts.ln_1p(),
            self.by_channel_hour[c][h].attempts.ln_1p(),
            self.attempts_7d,
            days_since(self.last_success),
            days_since(self.last_attempt[c]),
            log_channel_rate,
            one_hot(0) * hour_lift,
            one_hot(1) * hour_lift,
            one_hot(2) * hour_lift,
            one_hot(3) * hour_lift,
            day_type_lift,
            log_reach_estimate,
            // The same estimates scaled by how much history they rest on, so
            // that a linear model can trust them more the more there is.
            log_reach_estimate * self.all.attempts.ln_1p(),
            log_channel_rate * self.by_channel[c].attempts.ln_1p(),
            hour_lift * self.all.attempts.ln_1p(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{SECONDS_PER_DAY, SECONDS_PER_HOUR};
    use crate::state::contacts::ContactRecord;
    use chrono_tz::America::Bogota;

    const T0: i64 = 1_767_571_200; // 2026-01-05T00:00:00Z, a Monday

    fn at_local(day: i64, hour: i64) -> UnixTime {
        // Bogotá is UTC−5 all year.
        UnixTime(T0 + day * SECONDS_PER_DAY + (hour + 5) * SECONDS_PER_HOUR)
    }

    #[test]
    fn a_debtor_who_answers_evening_whatsapp_scores_that_slot_higher() {
        let mut log = ContactLog::default();
        for day in 0..20 {
            let (channel, hour, outcome) = if day % 2 == 0 {
                (Channel::WhatsApp, 18, ContactOutcome::Replied)
            } else {
                (Channel::Call, 9, ContactOutcome::NoAnswer)
            };
            log.record(ContactRecord::new(at_local(day, hour), channel, outcome));
        }
        let as_of = at_local(21, 0);
        let summary = ContactSummary::new(&log, Some(Bogota), as_of, &SuccessDefinition::default());
        let slot = |channel, local_hour| Slot {
            channel,
            local_hour,
            is_weekend: false,
        };
        let whatsapp_evening = summary.features(slot(Channel::WhatsApp, 18));
        let whatsapp_morning = summary.features(slot(Channel::WhatsApp, 9));
        let call_morning = summary.features(slot(Channel::Call, 9));
        let name = "channel_hour_success_rate_logit";
        assert!(whatsapp_evening.get(name) > whatsapp_morning.get(name));
        let name = "channel_success_rate_logit";
        assert!(whatsapp_evening.get(name) > call_morning.get(name));
        assert_eq!(whatsapp_evening.get("channel_whatsapp"), Some(1.0));
        assert_eq!(call_morning.get("channel_whatsapp"), Some(0.0));
        assert!(whatsapp_evening.values().iter().all(|v| v.is_finite()));
        assert_eq!(
            summary
                .features(slot(Channel::Call, 9))
                .get("days_since_last_channel_attempt"),
            Some(as_of.days_since(at_local(19, 9)))
        );

        // Attempts after `as_of` do not count.
        let earlier = ContactSummary::new(
            &log,
            Some(Bogota),
            at_local(1, 0),
            &SuccessDefinition::default(),
        );
        let weight = 0.5f64.powf(0.25 / HALF_LIFE_DAYS);
        let log_attempts = earlier.features(slot(Channel::Call, 9)).get("log_attempts");
        assert!((log_attempts.unwrap() - weight.ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn success_is_configurable_per_channel() {
        let default = SuccessDefinition::default();
        assert!(default.is_success(Channel::Call, ContactOutcome::RightParty));
        assert!(!default.is_success(Channel::Call, ContactOutcome::Answered));
        let lenient = default.with(
            Channel::Call,
            &[ContactOutcome::Answered, ContactOutcome::RightParty],
        );
        assert!(lenient.is_success(Channel::Call, ContactOutcome::Answered));
        assert!(lenient.is_success(Channel::Email, ContactOutcome::Opened));
        assert_eq!(
            lenient.successes(Channel::Call),
            [ContactOutcome::Answered, ContactOutcome::RightParty]
        );
    }
}
