//! Contact rules: when, how often and through which channels a debtor may be
//! contacted, by jurisdiction.
//!
//! A debtor's profile country selects a jurisdiction (else `default`). Its
//! windows and holidays are read in the debtor's local time; without a known
//! time zone, a moment is allowed only if it is allowed in every time zone the
//! jurisdiction lists (the most restrictive reading), and not at all if it
//! lists none. Caps, channel limits and waits count the debtor's logged
//! contact attempts over rolling periods around the moment; when attempts
//! that may matter have fallen out of the log, the moment is refused.
//!
//! Invariant: [`Jurisdiction::check`] is the only judge of a contact; nothing
//! that recommends a contact may skip it. This module reads state and never
//! changes it.

pub mod file;
pub mod holidays;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};

use crate::events::{Channel, ChannelSet, ContactOutcome, Country, Profile, UnixTime};
use crate::state::DebtorState;
use crate::state::contacts::ContactLog;

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "jurisdiction {jurisdiction} loosens its preset: {}; set \
         jurisdictions.{jurisdiction}.allow_loosening = true to accept this",
        changes.join("; ")
    )]
    Loosened {
        jurisdiction: String,
        changes: Vec<String>,
    },
}

/// A span of local time on one day, in minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_minute: u16,
    /// Exclusive; up to 1440 (24:00).
    pub end_minute: u16,
}

impl Window {
    fn contains(&self, first_minute: u32, last_minute: u32) -> bool {
        u32::from(self.start_minute) <= first_minute && last_minute < u32::from(self.end_minute)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start_minute), hm(self.end_minute))
    }
}

/// At most `max` contacts on `channels` within `period_secs` of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub channels: ChannelSet,
    pub max: u32,
    pub period_secs: i64,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.channels.iter().map(Channel::name).collect();
        write!(
            f,
            "{} per {} h on {}",
            self.max,
            self.period_secs / 3_600,
            names.join("+")
        )
    }
}

/// At most `max_channels` distinct channels within `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimit {
    pub max_channels: u32,
    pub period_secs: i64,
}

impl fmt::Display for ChannelLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hours = self.period_secs / 3_600;
        write!(f, "{} channels per {hours} h", self.max_channels)
    }
}

/// After an attempt on `after_channels` that came to one of `after_outcomes`,
/// no contact on `blocks` for `secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub after_channels: ChannelSet,
    pub after_outcomes: Vec<ContactOutcome>,
    pub blocks: ChannelSet,
    pub secs: i64,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcomes: Vec<&str> = self.after_outcomes.iter().map(|o| o.name()).collect();
        let blocks: Vec<&str> = self.blocks.iter().map(Channel::name).collect();
        write!(
            f,
            "{} h without {} after {}",
            self.secs / 3_600,
            blocks.join("+"),
            outcomes.join("/")
        )
    }
}

/// The contact rules of one or more countries.
#[derive(Debug, Clone, PartialEq)]
pub struct Jurisdiction {
    pub name: String,
    pub description: String,
    pub countries: Vec<Country>,
    /// Where a debtor of these countries without a known time zone may be.
    pub timezones: Vec<chrono_tz::Tz>,
    /// Whether only channels the debtor authorised may be used.
    pub require_authorisation: bool,
    /// Allowed local times per weekday, Monday first.
    pub windows: [Vec<Window>; 7],
    /// Local dates on which no contact is allowed.
    pub holidays: BTreeSet<NaiveDate>,
    pub caps: Vec<Cap>,
    pub channel_limits: Vec<ChannelLimit>,
    pub waits: Vec<Wait>,
}

/// Why a contact is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    OptedOut,
    NotAuthorised,
    TimezoneUnknown,
    Holiday {
        date: NaiveDate,
    },
    OutsideWindow,
    Cap(Cap),
    ChannelLimit(ChannelLimit),
    Wait {
        rule: String,
        until: UnixTime,
    },
    /// Attempts that may count have fallen out of the contact log.
    HistoryIncomplete,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::OptedOut => write!(f, "the debtor opted out of this channel"),
            Denial::NotAuthorised => write!(f, "the debtor has not authorised this channel"),
            Denial::TimezoneUnknown => write!(
                f,
                "the debtor's time zone is unknown and the jurisdiction assumes none"
            ),
            Denial::Holiday { date } => write!(f, "{date} is a public holiday"),
            Denial::OutsideWindow => write!(f, "outside the allowed hours"),
            Denial::Cap(cap) => write!(f, "cap reached: {cap}"),
            Denial::ChannelLimit(limit) => write!(f, "channel limit reached: {limit}"),
            Denial::Wait { rule, until } => write!(f, "waiting until {until}: {rule}"),
            Denial::HistoryIncomplete => write!(
                f,
                "more attempts than the contact log keeps fall within a rule's period"
            ),
        }
    }
}

/// What the rules need to know about a debtor.
#[derive(Debug, Clone, Copy)]
pub struct ContactContext<'a> {
    pub profile: Option<Profile>,
    pub opted_out: ChannelSet,
    pub log: &'a ContactLog,
}

impl<'a> ContactContext<'a> {
    /// The context of a debtor as state holds it.
    pub fn of(debtor: &'a DebtorState) -> Self {
        ContactContext {
            profile: debtor.profile(),
            opted_out: debtor.opted_out(),
            log: debtor.contact_log(),
        }
    }
}

/// The time zones a moment must be allowed in: the debtor's own, or every
/// zone the jurisdiction assumes when it is unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zones<'a> {
    Known(chrono_tz::Tz),
    Assumed(&'a [chrono_tz::Tz]),
}

impl Zones<'_> {
    /// Each zone to check.
    pub fn iter(&self) -> impl Iterator<Item = chrono_tz::Tz> + '_ {
        let zones: &[chrono_tz::Tz] = match self {
            Zones::Known(zone) => std::slice::from_ref(zone),
            Zones::Assumed(zones) => zones,
        };
        zones.iter().copied()
    }

    /// The zone to show local times in: the debtor's, or the first assumed.
    pub fn display_zone(&self) -> Option<chrono_tz::Tz> {
        self.iter().next()
    }
}

impl Jurisdiction {
    /// The zones that `profile`'s moments must be allowed in.
    pub fn zones(&self, profile: Option<&Profile>) -> Zones<'_> {
        match profile.and_then(|p| p.timezone) {
            Some(zone) => Zones::Known(zone),
            None => Zones::Assumed(&self.timezones),
        }
    }

    /// Whether a contact on `channel` starting at `start` and lasting
    /// `duration_secs` is allowed for the debtor of `context`.
    pub fn check(
        &self,
        context: &ContactContext<'_>,
        channel: Channel,
        start: UnixTime,
        duration_secs: i64,
    ) -> Result<(), Denial> {
        self.check_channel(context, channel)?;
        self.check_time(self.zones(context.profile.as_ref()), start, duration_secs)?;
        self.check_history(context.log, channel, start)
    }

    /// The rules that do not depend on time: opt-outs and authorisation.
    pub fn check_channel(
        &self,
        context: &ContactContext<'_>,
        channel: Channel,
    ) -> Result<(), Denial> {
        if context.opted_out.contains(channel) {
            return Err(Denial::OptedOut);
        }
        let authorised = context
            .profile
            .is_some_and(|p| p.authorised_channels.contains(channel));
        if self.require_authorisation && !authorised {
            return Err(Denial::NotAuthorised);
        }
        Ok(())
    }

    /// The rules of the clock, for any channel: holidays and windows, in
    /// every zone of `zones`. The contact must start and end on one local day
    /// within one window.
    pub fn check_time(
        &self,
        zones: Zones<'_>,
        start: UnixTime,
        duration_secs: i64,
    ) -> Result<(), Denial> {
        let mut zones = zones.iter().peekable();
        if zones.peek().is_none() {
            return Err(Denial::TimezoneUnknown);
        }
        let last = start.0 + duration_secs.max(1) - 1;
        for zone in zones {
            let (Some(first), Some(last)) = (local(zone, start.0), local(zone, last)) else {
                return Err(Denial::OutsideWindow);
            };
            let date = first.date_naive();
            if self.holidays.contains(&date) {
                return Err(Denial::Holiday { date });
            }
            if last.date_naive() != date {
                return Err(Denial::OutsideWindow);
            }
            let minute = |t: &chrono::DateTime<chrono_tz::Tz>| t.hour() * 60 + t.minute();
            let day = date.weekday().num_days_from_monday() as usize;
            let fits = self.windows[day]
                .iter()
                .any(|w| w.contains(minute(&first), minute(&last)));
            if !fits {
                return Err(Denial::OutsideWindow);
            }
        }
        Ok(())
    }

    /// The rules of the debtor's history: caps, channel limits and waits,
    /// each over attempts within its period of `at`, before or after.
    pub fn check_history(
        &self,
        log: &ContactLog,
        channel: Channel,
        at: UnixTime,
    ) -> Result<(), Denial> {
        let within = |period: i64| {
            log.records()
                .iter()
                .filter(move |r| (r.at().0 - at.0).abs() < period)
        };
        let complete = |period: i64| log.is_complete_since(UnixTime(at.0 - period + 1));

        for cap in self.caps.iter().filter(|c| c.channels.contains(channel)) {
            if !complete(cap.period_secs) {
                return Err(Denial::HistoryIncomplete);
            }
            let count = within(cap.period_secs)
                .filter(|r| cap.channels.contains(r.channel()))
                .count();
            if count as u64 >= u64::from(cap.max) {
                return Err(Denial::Cap(*cap));
            }
        }
        for limit in &self.channel_limits {
            if !complete(limit.period_secs) {
                return Err(Denial::HistoryIncomplete);
            }
            let used: ChannelSet = within(limit.period_secs).map(|r| r.channel()).collect();
            if used.with(channel).len() as u64 > u64::from(limit.max_channels) {
                return Err(Denial::ChannelLimit(*limit));
            }
        }
        for wait in self.waits.iter().filter(|w| w.blocks.contains(channel)) {
            if !complete(wait.secs) {
                return Err(Denial::HistoryIncomplete);
            }
            let trigger = within(wait.secs)
                .filter(|r| {
                    wait.after_channels.contains(r.channel())
                        && wait.after_outcomes.contains(&r.outcome())
                })
                .map(|r| r.at().0)
                .max();
            if let Some(trigger) = trigger {
                return Err(Denial::Wait {
                    rule: wait.to_string(),
                    until: UnixTime(trigger + wait.secs),
                });
            }
        }
        Ok(())
    }
}

/// The local time of Unix second `at` in `zone`.
fn local(zone: chrono_tz::Tz, at: i64) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    zone.timestamp_opt(at, 0).single()
}

/// Every jurisdiction, and which one each country falls under.
#[derive(Debug, Clone)]
pub struct ContactPolicy {
    jurisdictions: Vec<Jurisdiction>,
    default: usize,
    loosened: Vec<String>,
}

impl ContactPolicy {
    /// The presets alone: Colombia, the United States and the permissive
    /// default.
    pub fn presets() -> ContactPolicy {
        ContactPolicy::from_file(file::PolicyFile::default()).expect("the presets compile")
    }

    /// The presets with the policy file at `path` laid over them.
    pub fn load(path: &Path) -> Result<ContactPolicy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        ContactPolicy::from_toml(&text, &path.display().to_string())
    }

    /// The presets with policy TOML `text` laid over them.
    pub fn from_toml(text: &str, origin: &str) -> Result<ContactPolicy, PolicyError> {
        ContactPolicy::from_file(file::parse(text, origin)?)
    }

    fn from_file(operator: file::PolicyFile) -> Result<ContactPolicy, PolicyError> {
        let (jurisdictions, loosened) = file::compile(operator)?;
        let default = jurisdictions
            .iter()
            .position(|j| j.name == "default")
            .expect("the presets define the default jurisdiction");
        Ok(ContactPolicy {
            jurisdictions,
            default,
            loosened,
        })
    }

    /// The jurisdiction of a debtor from `country`, or the default.
    pub fn jurisdiction(&self, country: Option<Country>) -> &Jurisdiction {
        country
            .and_then(|c| self.jurisdictions.iter().find(|j| j.countries.contains(&c)))
            .unwrap_or(&self.jurisdictions[self.default])
    }

    /// Every jurisdiction.
    pub fn jurisdictions(&self) -> &[Jurisdiction] {
        &self.jurisdictions
    }

    /// The ways the policy file loosened a preset, with its leave.
    pub fn loosened(&self) -> &[String] {
        &self.loosened
    }
}

#[cfg(test)]
mod tests;
