//! Table tests of the shipped presets and of policy files laid over them.

use chrono::TimeZone;
use chrono_tz::America::{Bogota, New_York};
use chrono_tz::Tz;

use super::*;
use crate::events::validation;
use crate::state::contacts::ContactRecord;

const HOUR: i64 = 3_600;

fn at(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixTime {
    UnixTime(
        zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .timestamp(),
    )
}

fn profile(zone: Option<Tz>, country: &str, authorised: ChannelSet) -> Profile {
    Profile {
        timezone: zone,
        country: validation::country("c", country).unwrap(),
        authorised_channels: authorised,
    }
}

fn log(attempts: &[(UnixTime, Channel, ContactOutcome)]) -> ContactLog {
    let mut log = ContactLog::default();
    for (at, channel, outcome) in attempts {
        log.record(ContactRecord::new(*at, *channel, *outcome));
    }
    log
}

/// The decision of the debtor's jurisdiction on a one-hour contact.
fn decide(
    policy: &ContactPolicy,
    profile: Profile,
    history: &ContactLog,
    channel: Channel,
    start: UnixTime,
) -> Result<(), Denial> {
    let context = ContactContext {
        profile: Some(profile),
        opted_out: ChannelSet::EMPTY,
        log: history,
    };
    policy
        .jurisdiction(Some(profile.country))
        .check(&context, channel, start, HOUR)
}

#[test]
fn colombian_rules_follow_ley_2300() {
    let policy = ContactPolicy::presets();
    let debtor = profile(Some(Bogota), "CO", ChannelSet::ALL);
    let none = ContactLog::default();
    let ok = |start| decide(&policy, debtor, &none, Channel::Call, start);

    // Monday 7 December 2026: 07:00–19:00.
    assert_eq!(ok(at(Bogota, 2026, 12, 7, 7, 0)), Ok(()));
    assert_eq!(ok(at(Bogota, 2026, 12, 7, 18, 0)), Ok(()));
    assert_eq!(
        ok(at(Bogota, 2026, 12, 7, 6, 30)),
        Err(Denial::OutsideWindow)
    );
    assert_eq!(
        ok(at(Bogota, 2026, 12, 7, 18, 30)),
        Err(Denial::OutsideWindow)
    );
    // Saturday 12 December: 08:00–15:00; Sunday 13 December: never.
    assert_eq!(ok(at(Bogota, 2026, 12, 12, 14, 0)), Ok(()));
    assert_eq!(
        ok(at(Bogota, 2026, 12, 12, 7, 0)),
        Err(Denial::OutsideWindow)
    );
    assert_eq!(
        ok(at(Bogota, 2026, 12, 12, 14, 30)),
        Err(Denial::OutsideWindow)
    );
    for hour in 0..23 {
        assert!(
            ok(at(Bogota, 2026, 12, 13, hour, 0)).is_err(),
            "Sunday {hour}:00"
        );
    }
    // Tuesday 8 December is a public holiday (Immaculate Conception).
    let holiday = chrono::NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
    assert_eq!(
        ok(at(Bogota, 2026, 12, 8, 10, 0)),
        Err(Denial::Holiday { date: holiday })
    );

    // One contact a day; one channel a week.
    let sms_monday = log(&[(
        at(Bogota, 2026, 12, 7, 10, 0),
        Channel::Sms,
        ContactOutcome::Delivered,
    )]);
    let again = |channel, start| decide(&policy, debtor, &sms_monday, channel, start);
    assert!(matches!(
        again(Channel::Sms, at(Bogota, 2026, 12, 7, 16, 0)),
        Err(Denial::Cap(_))
    ));
    assert_eq!(again(Channel::Sms, at(Bogota, 2026, 12, 9, 10, 0)), Ok(()));
    assert!(matches!(
        again(Channel::Call, at(Bogota, 2026, 12, 10, 10, 0)),
        Err(Denial::ChannelLimit(_))
    ));
    assert_eq!(
        again(Channel::Call, at(Bogota, 2026, 12, 14, 11, 0)),
        Ok(())
    );

    // Only authorised channels.
    let sms_only = profile(Some(Bogota), "CO", ChannelSet::EMPTY.with(Channel::Sms));
    let start = at(Bogota, 2026, 12, 7, 10, 0);
    assert_eq!(
        decide(&policy, sms_only, &none, Channel::WhatsApp, start),
        Err(Denial::NotAuthorised)
    );
    assert_eq!(
        decide(&policy, sms_only, &none, Channel::Sms, start),
        Ok(())
    );
}

#[test]
fn united_states_rules_follow_regulation_f() {
    let policy = ContactPolicy::presets();
    let debtor = profile(Some(New_York), "US", ChannelSet::EMPTY);
    let none = ContactLog::default();
    let call = |history: &ContactLog, start| decide(&policy, debtor, history, Channel::Call, start);

    // 08:00–21:00 local, every day, authorisation not required.
    assert_eq!(call(&none, at(New_York, 2026, 12, 6, 8, 0)), Ok(()));
    assert_eq!(call(&none, at(New_York, 2026, 12, 6, 20, 0)), Ok(()));
    assert_eq!(
        call(&none, at(New_York, 2026, 12, 6, 7, 0)),
        Err(Denial::OutsideWindow)
    );
    assert_eq!(
        call(&none, at(New_York, 2026, 12, 6, 21, 0)),
        Err(Denial::OutsideWindow)
    );

    // Seven call attempts in seven days, then no eighth.
    let seven: Vec<_> = (0..7)
        .map(|d| {
            let start = at(New_York, 2026, 12, 1 + d, 9, 0);
            (start, Channel::Call, ContactOutcome::NoAnswer)
        })
        .collect();
    let history = log(&seven);
    assert!(matches!(
        call(&history, at(New_York, 2026, 12, 7, 15, 0)),
        Err(Denial::Cap(_))
    ));
    // Other channels are not capped; the first call falls out after 7 days.
    let sms = decide(
        &policy,
        debtor,
        &history,
        Channel::Sms,
        at(New_York, 2026, 12, 7, 15, 0),
    );
    assert_eq!(sms, Ok(()));
    assert_eq!(call(&history, at(New_York, 2026, 12, 8, 9, 0)), Ok(()));

    // No call within 7 days after a conversation.
    let talked = at(New_York, 2026, 12, 1, 10, 0);
    let history = log(&[(talked, Channel::Call, ContactOutcome::RightParty)]);
    assert!(matches!(
        call(&history, at(New_York, 2026, 12, 7, 10, 0)),
        Err(Denial::Wait { until, .. }) if until.0 == talked.0 + 7 * 24 * HOUR
    ));
    assert_eq!(call(&history, at(New_York, 2026, 12, 8, 10, 0)), Ok(()));
}

#[test]
fn an_unknown_time_zone_allows_only_what_every_assumed_zone_allows() {
    let policy = ContactPolicy::presets();
    let none = ContactLog::default();
    let unknown = profile(None, "US", ChannelSet::EMPTY);
    let call = |start| decide(&policy, unknown, &none, Channel::Call, start);
    // 08:00 in Honolulu is 13:00 in New York; 21:00 in New York is 16:00 there.
    assert_eq!(
        call(at(New_York, 2026, 12, 7, 12, 0)),
        Err(Denial::OutsideWindow)
    );
    assert_eq!(call(at(New_York, 2026, 12, 7, 13, 0)), Ok(()));
    assert_eq!(call(at(New_York, 2026, 12, 7, 20, 0)), Ok(()));

    // A jurisdiction that assumes no zone allows nothing without one.
    let elsewhere = profile(None, "MX", ChannelSet::ALL);
    let start = at(New_York, 2026, 12, 7, 13, 0);
    assert_eq!(
        decide(&policy, elsewhere, &none, Channel::Call, start),
        Err(Denial::TimezoneUnknown)
    );
}

#[test]
fn daylight_saving_days_keep_local_hours() {
    let policy = ContactPolicy::presets();
    let debtor = profile(Some(New_York), "US", ChannelSet::EMPTY);
    let none = ContactLog::default();
    // 8 March 2026: clocks go from 02:00 to 03:00; 1 November: 02:00 to 01:00.
    for (month, day) in [(3, 8), (11, 1)] {
        let morning = at(New_York, 2026, month, day, 8, 0);
        let early = at(New_York, 2026, month, day, 7, 0);
        let call = |start| decide(&policy, debtor, &none, Channel::Call, start);
        assert_eq!(call(morning), Ok(()), "{month}-{day} 08:00");
        assert_eq!(
            call(early),
            Err(Denial::OutsideWindow),
            "{month}-{day} 07:00"
        );
        assert_eq!(morning.0 - early.0, HOUR);
    }
}

#[test]
fn attempts_beyond_the_log_make_a_rule_refuse() {
    let policy = ContactPolicy::presets();
    let debtor = profile(Some(New_York), "US", ChannelSet::EMPTY);
    let start = at(New_York, 2026, 12, 7, 10, 0);
    let flood: Vec<_> = (0..ContactLog::CAPACITY as i64 + 5)
        .map(|i| {
            let at = UnixTime(start.0 - 24 * HOUR + i * 60);
            (at, Channel::Email, ContactOutcome::Delivered)
        })
        .collect();
    let history = log(&flood);
    assert_eq!(
        decide(&policy, debtor, &history, Channel::Call, start),
        Err(Denial::HistoryIncomplete)
    );
}

#[test]
fn an_operator_may_tighten_but_not_silently_loosen() {
    let tighter = r#"
        [jurisdictions.united_states]
        windows.monday = ["09:00-20:00"]
        caps = [{ channels = ["call", "sms"], max = 3, period_hours = 168 }]
    "#;
    let policy = ContactPolicy::from_toml(tighter, "tighter.toml").unwrap();
    assert!(policy.loosened().is_empty());
    let us = policy.jurisdiction(Some(validation::country("c", "US").unwrap()));
    assert_eq!(us.windows[0][0].to_string(), "09:00-20:00");
    assert_eq!(
        us.windows[1][0].to_string(),
        "08:00-21:00",
        "other days kept"
    );
    assert_eq!(us.waits.len(), 1, "fields not given are kept");

    let wider = "[jurisdictions.united_states]\nwindows.monday = [\"07:00-21:00\"]\n";
    let err = ContactPolicy::from_toml(wider, "wider.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("united_states"), "{err}");
    assert!(err.contains("monday window 07:00-21:00"), "{err}");
    assert!(err.contains("allow_loosening"), "{err}");

    let allowed = format!("{wider}allow_loosening = true\n");
    let policy = ContactPolicy::from_toml(&allowed, "wider.toml").unwrap();
    assert_eq!(policy.loosened().len(), 1, "{:?}", policy.loosened());

    let no_holidays = "[jurisdictions.colombia]\nholidays.calendars = []\n";
    let err = ContactPolicy::from_toml(no_holidays, "x").unwrap_err();
    assert!(err.to_string().contains("holidays"), "{err}");
    let no_cap = "[jurisdictions.colombia]\ncaps = []\n";
    let err = ContactPolicy::from_toml(no_cap, "x").unwrap_err();
    assert!(err.to_string().contains("cap 1 per 24 h"), "{err}");
}

#[test]
fn policy_errors_name_the_field() {
    let cases = [
        (
            "[jurisdictions.x]\nwindows.friday = [\"9-17\"]\n",
            "jurisdictions.x.windows.friday[0]",
        ),
        (
            "[jurisdictions.x]\ncaps = [{ channels = [\"fax\"], max = 1, period_hours = 1 }]\n",
            "jurisdictions.x.caps[0].channels[0]",
        ),
        (
            "[jurisdictions.x]\ntimezones = [\"Mars/Base\"]\n",
            "jurisdictions.x.timezones[0]",
        ),
        (
            "[jurisdictions.x]\ncountries = [\"CO\"]\n",
            "jurisdictions.x.countries",
        ),
        (
            "[jurisdictions.x]\nholidays.calendars = [\"narnia\"]\n",
            "jurisdictions.x.holidays.calendars[0]",
        ),
    ];
    for (text, field) in cases {
        let err = ContactPolicy::from_toml(text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(field), "{field}: {err}");
    }
    let err = ContactPolicy::from_toml("[jurisdictions.x]\nwindow = 1\n", "p.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("p.toml"), "{err}");
}

#[test]
fn a_new_jurisdiction_takes_its_countries() {
    let text = r#"
        [jurisdictions.mexico]
        countries = ["MX"]
        timezones = ["America/Mexico_City"]
        windows.monday = ["09:00-18:00"]
    "#;
    let policy = ContactPolicy::from_toml(text, "mx.toml").unwrap();
    let mx = policy.jurisdiction(Some(validation::country("c", "MX").unwrap()));
    assert_eq!(mx.name, "mexico");
    assert!(mx.windows[1].is_empty(), "unlisted days allow nothing");
    let other = policy.jurisdiction(Some(validation::country("c", "BR").unwrap()));
    assert_eq!(other.name, "default");
}
