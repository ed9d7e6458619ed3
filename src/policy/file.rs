//! The policy file: jurisdictions in TOML, the presets shipped with mora, how
//! an operator's file is laid over them, and the guard that refuses to loosen
//! a preset unless the file says so.
//!
//! An operator's jurisdiction with a preset's name changes only the fields it
//! gives (each weekday's windows separately); one with a new name is added.
//! After the merge every preset is compared with what replaced it: a rule
//! removed or made weaker is refused unless that jurisdiction sets
//! `allow_loosening = true`, and then each weakening is reported.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::holidays;
use super::{Cap, ChannelLimit, Jurisdiction, PolicyError, Wait, Window};
use crate::events::{Channel, ChannelSet, ContactOutcome, Country, validation};

/// The rules shipped with mora: Colombia, the United States and a permissive
/// default. The text is documented in `docs/contact-policy.md`.
pub const PRESETS: &str = include_str!("presets.toml");

/// Years for which holiday calendars are expanded: the years event times may
/// have.
const HOLIDAY_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Weekday names, Monday first, as the file spells them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A whole policy file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub jurisdictions: BTreeMap<String, JurisdictionFile>,
}

/// One jurisdiction as written; every field may be left out of an
/// operator's file to keep the preset's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionFile {
    pub description: Option<String>,
    pub countries: Option<Vec<String>>,
    pub timezones: Option<Vec<String>>,
    pub require_authorisation: Option<bool>,
    pub holidays: Option<HolidaysFile>,
    pub windows: Option<WindowsFile>,
    pub caps: Option<Vec<CapFile>>,
    pub channel_limits: Option<Vec<ChannelLimitFile>>,
    pub waits: Option<Vec<WaitFile>>,
    pub allow_loosening: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidaysFile {
    #[serde(default)]
    pub calendars: Vec<String>,
    #[serde(default)]
    pub dates: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsFile {
    pub monday: Option<Vec<String>>,
    pub tuesday: Option<Vec<String>>,
    pub wednesday: Option<Vec<String>>,
    pub thursday: Option<Vec<String>>,
    pub friday: Option<Vec<String>>,
    pub saturday: Option<Vec<String>>,
    pub sunday: Option<Vec<String>>,
}

impl WindowsFile {
    fn days(&self) -> [&Option<Vec<String>>; 7] {
        [
            &self.monday,
            &self.tuesday,
            &self.wednesday,
            &self.thursday,
            &self.friday,
            &self.saturday,
            &self.sunday,
        ]
    }

    fn over(self, base: WindowsFile) -> WindowsFile {
        WindowsFile {
            monday: self.monday.or(base.monday),
            tuesday: self.tuesday.or(base.tuesday),
            wednesday: self.wednesday.or(base.wednesday),
            thursday: self.thursday.or(base.thursday),
            friday: self.friday.or(base.friday),
            saturday: self.saturday.or(base.saturday),
            sunday: self.sunday.or(base.sunday),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapFile {
    /// Channels counted and capped together; all when absent.
    pub channels: Option<Vec<String>>,
    pub max: u32,
    pub period_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimitFile {
    pub max_channels: u32,
    pub period_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFile {
    pub after_channels: Vec<String>,
    pub after_outcomes: Vec<String>,
    pub blocks: Vec<String>,
    pub hours: u32,
}

impl JurisdictionFile {
    /// `self`'s fields where given, else `base`'s.
    fn over(self, base: JurisdictionFile) -> JurisdictionFile {
        let windows = match (self.windows, base.windows) {
            (Some(new), Some(old)) => Some(new.over(old)),
            (new, old) => new.or(old),
        };
        JurisdictionFile {
            description: self.description.or(base.description),
            countries: self.countries.or(base.countries),
            timezones: self.timezones.or(base.timezones),
            require_authorisation: self.require_authorisation.or(base.require_authorisation),
            holidays: self.holidays.or(base.holidays),
            windows,
            caps: self.caps.or(base.caps),
            channel_limits: self.channel_limits.or(base.channel_limits),
            waits: self.waits.or(base.waits),
            allow_loosening: self.allow_loosening,
        }
    }
}

/// Parses policy TOML; `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<PolicyFile, PolicyError> {
    toml::from_str(text).map_err(|e| PolicyError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })
}

/// The presets, parsed.
pub fn presets() -> PolicyFile {
    parse(PRESETS, "presets").expect("the shipped presets parse")
}

/// Lays `operator` over the presets and compiles every jurisdiction. Returns
/// the jurisdictions and, for those allowed to loosen a preset, what they
/// loosened.
pub fn compile(operator: PolicyFile) -> Result<(Vec<Jurisdiction>, Vec<String>), PolicyError> {
    let presets = presets();
    let mut merged = presets.jurisdictions.clone();
    for (name, file) in operator.jurisdictions {
        let base = merged.remove(&name).unwrap_or_default();
        merged.insert(name, file.over(base));
    }

    let mut compiled = Vec::new();
    let mut reported = Vec::new();
    for (name, file) in merged {
        let allow_loosening = file.allow_loosening.unwrap_or(false);
        let jurisdiction = jurisdiction(&name, file)?;
        if let Some(preset) = presets.jurisdictions.get(&name) {
            let preset = self::jurisdiction(&name, preset.clone())?;
            let loosened = loosenings(&preset, &jurisdiction);
            if !loosened.is_empty() && !allow_loosening {
                return Err(PolicyError::Loosened {
                    jurisdiction: name,
                    changes: loosened,
                });
            }
            reported.extend(loosened.into_iter().map(|c| format!("{name}: {c}")));
        }
        compiled.push(jurisdiction);
    }

    let mut owners: BTreeMap<Country, &str> = BTreeMap::new();
    for j in &compiled {
        for country in &j.countries {
            if let Some(other) = owners.insert(*country, &j.name) {
                return Err(PolicyError::Invalid {
                    field: format!("jurisdictions.{}.countries", j.name),
                    reason: format!(
                        "{} is also listed by jurisdiction {other}",
                        country.as_str()
                    ),
                });
            }
        }
    }
    Ok((compiled, reported))
}

fn invalid(name: &str, field: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: format!("jurisdictions.{name}.{field}"),
        reason: reason.into(),
    }
}

fn channels(name: &str, field: &str, names: &[String]) -> Result<ChannelSet, PolicyError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Channel::from_name(n).ok_or_else(|| {
                invalid(
                    name,
                    &format!("{field}[{i}]"),
                    format!("unknown channel {n:?} (call, sms, whatsapp or email)"),
                )
            })
        })
        .collect()
}

fn outcomes(name: &str, field: &str, names: &[String]) -> Result<Vec<ContactOutcome>, PolicyError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            ContactOutcome::from_name(n).ok_or_else(|| {
                let known: Vec<&str> = ContactOutcome::ALL.iter().map(|o| o.name()).collect();
                invalid(
                    name,
                    &format!("{field}[{i}]"),
                    format!("unknown outcome {n:?} (one of {})", known.join(", ")),
                )
            })
        })
        .collect()
}

/// Minutes after midnight of `HH:MM`, up to `24:00`.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
}

fn window(name: &str, field: &str, text: &str) -> Result<Window, PolicyError> {
    let parsed = text
        .split_once('-')
        .and_then(|(a, b)| Some((minutes(a.trim())?, minutes(b.trim())?)));
    match parsed {
        Some((start, end)) if start < end => Ok(Window {
            start_minute: start,
            end_minute: end,
        }),
        _ => Err(invalid(
            name,
            field,
            format!("{text:?} is not a window of local time such as \"08:00-21:00\""),
        )),
    }
}

fn period_secs(name: &str, field: &str, hours: u32) -> Result<i64, PolicyError> {
    if hours == 0 {
        return Err(invalid(name, field, "must be at least 1"));
    }
    Ok(i64::from(hours) * 3_600)
}

/// Checks and compiles one jurisdiction.
fn jurisdiction(name: &str, file: JurisdictionFile) -> Result<Jurisdiction, PolicyError> {
    let countries = file
        .countries
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, code)| {
            validation::country("", code)
                .map_err(|e| invalid(name, &format!("countries[{i}]"), e.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timezones = file
        .timezones
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, zone)| {
            validation::timezone("", zone)
                .map_err(|e| invalid(name, &format!("timezones[{i}]"), e.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let windows_file = file.windows.unwrap_or_default();
    let mut windows: [Vec<Window>; 7] = Default::default();
    for (day, texts) in windows_file.days().into_iter().enumerate() {
        for (i, text) in texts.iter().flatten().enumerate() {
            let field = format!("windows.{}[{i}]", WEEKDAYS[day]);
            windows[day].push(window(name, &field, text)?);
        }
        windows[day].sort_by_key(|w| w.start_minute);
    }

    let holidays_file = file.holidays.unwrap_or_default();
    let mut holidays = BTreeSet::new();
    for (i, calendar) in holidays_file.calendars.iter().enumerate() {
        if holidays::calendar(calendar, 2000).is_none() {
            return Err(invalid(
                name,
                &format!("holidays.calendars[{i}]"),
                format!(
                    "unknown calendar {calendar:?} (known: {})",
                    holidays::CALENDARS.join(", ")
                ),
            ));
        }
        for year in HOLIDAY_YEARS {
            holidays.extend(holidays::calendar(calendar, year).unwrap_or_default());
        }
    }
    for (i, text) in holidays_file.dates.iter().enumerate() {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            invalid(
                name,
                &format!("holidays.dates[{i}]"),
                format!("{text:?} is not a date such as \"2026-12-24\""),
            )
        })?;
        holidays.insert(date);
    }

    let mut caps = Vec::new();
    for (i, cap) in file.caps.unwrap_or_default().iter().enumerate() {
        let field = |f: &str| format!("caps[{i}].{f}");
        let channels = match &cap.channels {
            Some(names) => channels(name, &field("channels"), names)?,
            None => ChannelSet::ALL,
        };
        if cap.max == 0 {
            return Err(invalid(name, &field("max"), "must be at least 1"));
        }
        caps.push(Cap {
            channels,
            max: cap.max,
            period_secs: period_secs(name, &field("period_hours"), cap.period_hours)?,
        });
    }
    let mut channel_limits = Vec::new();
    for (i, limit) in file.channel_limits.unwrap_or_default().iter().enumerate() {
        let field = |f: &str| format!("channel_limits[{i}].{f}");
        if limit.max_channels == 0 {
            return Err(invalid(name, &field("max_channels"), "must be at least 1"));
        }
        channel_limits.push(ChannelLimit {
            max_channels: limit.max_channels,
            period_secs: period_secs(name, &field("period_hours"), limit.period_hours)?,
        });
    }
    let mut waits = Vec::new();
    for (i, wait) in file.waits.unwrap_or_default().iter().enumerate() {
        let field = |f: &str| format!("waits[{i}].{f}");
        waits.push(Wait {
            after_channels: channels(name, &field("after_channels"), &wait.after_channels)?,
            after_outcomes: outcomes(name, &field("after_outcomes"), &wait.after_outcomes)?,
            blocks: channels(name, &field("blocks"), &wait.blocks)?,
            secs: period_secs(name, &field("hours"), wait.hours)?,
        });
    }

    Ok(Jurisdiction {
        name: name.to_owned(),
        description: file.description.unwrap_or_else(|| name.to_owned()),
        countries,
        timezones,
        require_authorisation: file.require_authorisation.unwrap_or(false),
        windows,
        holidays,
        caps,
        channel_limits,
        waits,
    })
}

/// Whether `inner` lies within the union of `outer`.
fn is_covered(inner: &Window, outer: &[Window]) -> bool {
    let mut reached = inner.start_minute;
    for w in outer {
        if w.start_minute <= reached && w.end_minute > reached {
            reached = w.end_minute;
        }
        if reached >= inner.end_minute {
            return true;
        }
    }
    false
}

/// Each way in which `new` allows what `preset` forbids, in words.
fn loosenings(preset: &Jurisdiction, new: &Jurisdiction) -> Vec<String> {
    let mut found = Vec::new();
    for country in &preset.countries {
        if !new.countries.contains(country) {
            found.push(format!("country {} is no longer covered", country.as_str()));
        }
    }
    for zone in &preset.timezones {
        if !new.timezones.contains(zone) {
            found.push(format!("time zone {} is no longer assumed", zone.name()));
        }
    }
    if preset.require_authorisation && !new.require_authorisation {
        found.push("channels no longer need the debtor's authorisation".into());
    }
    for (day, windows) in new.windows.iter().enumerate() {
        for w in windows {
            if !is_covered(w, &preset.windows[day]) {
                found.push(format!(
                    "{} window {w} is wider than the preset's",
                    WEEKDAYS[day]
                ));
            }
        }
    }
    let dropped = preset.holidays.difference(&new.holidays).count();
    if dropped > 0 {
        found.push(format!(
            "{dropped} holidays of the preset are no longer kept"
        ));
    }
    for cap in &preset.caps {
        let kept = new.caps.iter().any(|c| {
            cap.channels.is_subset(c.channels)
                && c.max <= cap.max
                && c.period_secs >= cap.period_secs
        });
        if !kept {
            found.push(format!("cap {cap} is gone or weaker"));
        }
    }
    for limit in &preset.channel_limits {
        let kept = new
            .channel_limits
            .iter()
            .any(|l| l.max_channels <= limit.max_channels && l.period_secs >= limit.period_secs);
        if !kept {
            found.push(format!("channel limit {limit} is gone or weaker"));
        }
    }
    for wait in &preset.waits {
        let kept = new.waits.iter().any(|w| {
            wait.after_channels.is_subset(w.after_channels)
                && wait
                    .after_outcomes
                    .iter()
                    .all(|o| w.after_outcomes.contains(o))
                && wait.blocks.is_subset(w.blocks)
                && w.secs >= wait.secs
        });
        if !kept {
            found.push(format!("wait {wait} is gone or shorter"));
        }
    }
    found
}
