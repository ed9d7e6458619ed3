//! Contact plans never break the contact rules: table tests of the shipped
//! presets, read off whole plans, and a property test over random policies,
//! time zones (around daylight-saving changes), profiles and histories, each
//! slot judged by a reference reading of the rules written here from the
//! policy's own terms, not by the code that made the plan.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use mora::events::{Channel, ChannelSet, ContactOutcome, Profile, UnixTime, validation};
use mora::models::{ContactModel, ModelFile};
use mora::policy::file::WEEKDAYS;
use mora::policy::{ContactContext, ContactPolicy};
use mora::scoring::plan::{ContactPlan, ContactPlanConfig, PlanRequest, plan};
use mora::state::contacts::{ContactLog, ContactRecord};
use proptest::prelude::*;

const HOUR: i64 = 3_600;

fn contact_model() -> &'static ContactModel {
    static MODEL: OnceLock<ContactModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/contact.json");
        ContactModel::new(ModelFile::read(&path).expect("the shipped contact model reads"))
            .expect("the shipped contact model loads")
    })
}

fn at(zone: Tz, y: i32, mo: u32, d: u32, h: u32) -> UnixTime {
    UnixTime(
        zone.with_ymd_and_hms(y, mo, d, h, 0, 0)
            .unwrap()
            .timestamp(),
    )
}

fn local(zone: Tz, at: UnixTime) -> DateTime<Tz> {
    zone.timestamp_opt(at.0, 0).unwrap()
}

fn profile(zone: Option<Tz>, country: &str, authorised: ChannelSet) -> Profile {
    Profile {
        timezone: zone,
        country: validation::country("country", country).unwrap(),
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

/// Every slot the plan would offer over the next 7 days, best first.
fn full_plan(
    policy: &ContactPolicy,
    profile: Profile,
    history: &ContactLog,
    now: UnixTime,
) -> ContactPlan {
    let context = ContactContext {
        profile: Some(profile),
        opted_out: ChannelSet::EMPTY,
        log: history,
    };
    let request = PlanRequest {
        slots: usize::MAX,
        explore: None,
    };
    plan(
        policy,
        Some(contact_model()),
        &context,
        now,
        request,
        &ContactPlanConfig::default(),
    )
}

#[test]
fn a_colombian_debtor_is_never_offered_sunday_a_holiday_or_a_second_channel() {
    let policy = ContactPolicy::presets();
    let bogota = chrono_tz::America::Bogota;
    let debtor = profile(Some(bogota), "CO", ChannelSet::ALL);

    // From Sunday 6 December 2026, 20:00: the week holds Tuesday 8 December
    // (a public holiday) and Sunday 13 December.
    let plan = full_plan(
        &policy,
        debtor,
        &ContactLog::default(),
        at(bogota, 2026, 12, 6, 20),
    );
    assert_eq!(plan.jurisdiction, "colombia");
    assert!(plan.slots.len() > 100, "{} slots", plan.slots.len());
    for slot in &plan.slots {
        let start = local(bogota, slot.start);
        let end = local(bogota, UnixTime(slot.start.0 + HOUR - 1));
        let (weekday, hour) = (start.weekday().num_days_from_monday(), start.hour());
        assert_ne!(weekday, 6, "Sunday offered: {}", slot.local_start);
        assert_ne!(
            start.date_naive(),
            NaiveDate::from_ymd_opt(2026, 12, 8).unwrap()
        );
        let (open, close) = if weekday == 5 { (8, 15) } else { (7, 19) };
        assert!(hour >= open && end.hour() < close, "{}", slot.local_start);
        assert_eq!(slot.local_start, start.to_rfc3339());
    }

    // After an SMS on Monday at 10:00: no second contact that day, nor on
    // another channel for a week.
    let sms = at(bogota, 2026, 12, 7, 10);
    let history = log(&[(sms, Channel::Sms, ContactOutcome::Delivered)]);
    let plan = full_plan(&policy, debtor, &history, at(bogota, 2026, 12, 7, 12));
    assert!(plan.slots.iter().any(|s| s.channel == Channel::Sms));
    for slot in &plan.slots {
        assert!(slot.start.0 >= sms.0 + 24 * HOUR, "{}", slot.local_start);
        if slot.channel != Channel::Sms {
            assert!(
                slot.start.0 >= sms.0 + 168 * HOUR,
                "{:?} at {}",
                slot.channel,
                slot.local_start
            );
        }
    }
    let call = plan
        .next_allowed
        .iter()
        .find(|a| a.channel == Channel::Call)
        .unwrap();
    assert_eq!(call.next_allowed, Some(UnixTime(sms.0 + 168 * HOUR)));
    assert!(
        call.blocked_reason.contains("cap reached"),
        "{}",
        call.blocked_reason
    );
}

#[test]
fn a_united_states_debtor_is_never_offered_a_call_out_of_hours_or_an_eighth_in_a_week() {
    let policy = ContactPolicy::presets();
    let new_york = chrono_tz::America::New_York;
    let debtor = profile(Some(new_york), "US", ChannelSet::EMPTY);

    let now = at(new_york, 2026, 12, 7, 6);
    let plan = full_plan(&policy, debtor, &ContactLog::default(), now);
    assert_eq!(plan.jurisdiction, "united_states");
    let calls: Vec<_> = plan
        .slots
        .iter()
        .filter(|s| s.channel == Channel::Call)
        .collect();
    assert_eq!(calls.len(), 7 * 13, "one call slot per allowed hour");
    for slot in &calls {
        let hour = local(new_york, slot.start).hour();
        assert!((8..=20).contains(&hour), "a call at {}", slot.local_start);
    }

    // Seven unanswered calls, one a day from 1 to 7 December at 09:00: the
    // next call is allowed 7 days after the first.
    let seven: Vec<_> = (0..7)
        .map(|d| {
            (
                at(new_york, 2026, 12, 1 + d, 9),
                Channel::Call,
                ContactOutcome::NoAnswer,
            )
        })
        .collect();
    let history = log(&seven);
    let plan = full_plan(&policy, debtor, &history, at(new_york, 2026, 12, 7, 10));
    let first_call = plan
        .slots
        .iter()
        .filter(|s| s.channel == Channel::Call)
        .map(|s| s.start)
        .min()
        .unwrap();
    assert_eq!(first_call, at(new_york, 2026, 12, 8, 9));
    assert!(
        plan.slots
            .iter()
            .any(|s| s.channel == Channel::Sms && s.start < first_call)
    );
}

/// A policy drawn at random, kept in the test's own terms.
#[derive(Debug, Clone)]
struct RandomRules {
    /// Per weekday, Monday first: windows as [start, end) minutes.
    windows: [Vec<(u32, u32)>; 7],
    holidays: Vec<NaiveDate>,
    require_authorisation: bool,
    /// Zones assumed without a known one.
    timezones: Vec<Tz>,
    /// (channels, max, period hours)
    caps: Vec<(ChannelSet, u32, i64)>,
    /// (max channels, period hours)
    channel_limits: Vec<(u32, i64)>,
    /// (after channels, after outcomes, blocked channels, hours)
    waits: Vec<(ChannelSet, Vec<ContactOutcome>, ChannelSet, i64)>,
}

fn names(channels: ChannelSet) -> String {
    let quoted: Vec<String> = channels.iter().map(|c| format!("{:?}", c.name())).collect();
    format!("[{}]", quoted.join(", "))
}

impl RandomRules {
    /// The rules as a policy file, for a jurisdiction of country `XX`.
    fn toml(&self) -> String {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let mut text = String::from("[jurisdictions.random]\ncountries = [\"XX\"]\n");
        let zones: Vec<String> = self
            .timezones
            .iter()
            .map(|z| format!("{:?}", z.name()))
            .collect();
        text += &format!("timezones = [{}]\n", zones.join(", "));
        text += &format!("require_authorisation = {}\n", self.require_authorisation);
        let dates: Vec<String> = self.holidays.iter().map(|d| format!("\"{d}\"")).collect();
        text += &format!("holidays.dates = [{}]\n", dates.join(", "));
        for (day, windows) in WEEKDAYS.iter().zip(&self.windows) {
            let spans: Vec<String> = windows
                .iter()
                .map(|(s, e)| format!("\"{}-{}\"", hm(*s), hm(*e)))
                .collect();
            text += &format!("windows.{day} = [{}]\n", spans.join(", "));
        }
        let caps: Vec<String> = self
            .caps
            .iter()
            .map(|(c, max, hours)| {
                format!(
                    "{{ channels = {}, max = {max}, period_hours = {hours} }}",
                    names(*c)
                )
            })
            .collect();
        text += &format!("caps = [{}]\n", caps.join(", "));
        let limits: Vec<String> = self
            .channel_limits
            .iter()
            .map(|(max, hours)| format!("{{ max_channels = {max}, period_hours = {hours} }}"))
            .collect();
        text += &format!("channel_limits = [{}]\n", limits.join(", "));
        let waits: Vec<String> = self
            .waits
            .iter()
            .map(|(after, outcomes, blocks, hours)| {
                let outcomes: Vec<String> = outcomes.iter().map(|o| format!("{:?}", o.name())).collect();
                format!(
                    "{{ after_channels = {}, after_outcomes = [{}], blocks = {}, hours = {hours} }}",
                    names(*after),
                    outcomes.join(", "),
                    names(*blocks)
                )
            })
            .collect();
        text += &format!("waits = [{}]\n", waits.join(", "));
        text
    }

    /// Why a one-hour contact on `channel` at `start` breaks the rules, if
    /// it does.
    fn breach(
        &self,
        profile: &Profile,
        opted_out: ChannelSet,
        history: &[(UnixTime, Channel, ContactOutcome)],
        channel: Channel,
        start: UnixTime,
    ) -> Option<String> {
        if opted_out.contains(channel) {
            return Some("opted out".into());
        }
        if self.require_authorisation && !profile.authorised_channels.contains(channel) {
            return Some("not authorised".into());
        }
        let zones = match profile.timezone {
            Some(zone) => vec![zone],
            None => self.timezones.clone(),
        };
        if zones.is_empty() {
            return Some("no time zone to read local time in".into());
        }
        for zone in zones {
            let first = local(zone, start);
            let last = local(zone, UnixTime(start.0 + HOUR - 1));
            if first.date_naive() != last.date_naive() {
                return Some(format!("spans midnight in {zone}"));
            }
            if self.holidays.contains(&first.date_naive()) {
                return Some(format!("holiday in {zone}"));
            }
            let minute = |t: &DateTime<Tz>| t.hour() * 60 + t.minute();
            let day = first.weekday().num_days_from_monday() as usize;
            let inside = self.windows[day]
                .iter()
                .any(|(s, e)| *s <= minute(&first) && minute(&last) < *e);
            if !inside {
                return Some(format!("outside the windows in {zone} at {first}"));
            }
        }
        let near = |hours: i64| {
            history
                .iter()
                .filter(move |(t, _, _)| (t.0 - start.0).abs() < hours * HOUR)
        };
        for (channels, max, hours) in &self.caps {
            let count = near(*hours)
                .filter(|(_, c, _)| channels.contains(*c))
                .count();
            if channels.contains(channel) && count >= *max as usize {
                return Some(format!("cap {max} per {hours} h"));
            }
        }
        for (max, hours) in &self.channel_limits {
            let used: ChannelSet = near(*hours).map(|(_, c, _)| *c).collect();
            if used.with(channel).len() > *max as usize {
                return Some(format!("{max} channels per {hours} h"));
            }
        }
        for (after, outcomes, blocks, hours) in &self.waits {
            let triggered =
                near(*hours).any(|(_, c, o)| after.contains(*c) && outcomes.contains(o));
            if blocks.contains(channel) && triggered {
                return Some(format!("wait of {hours} h"));
            }
        }
        None
    }
}

/// Zones with daylight saving (including half-hour shifts) and odd offsets.
const ZONES: [Tz; 8] = [
    chrono_tz::America::New_York,
    chrono_tz::America::Santiago,
    chrono_tz::Europe::London,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::Bogota,
    chrono_tz::Asia::Kolkata,
];

/// Moments of 2026 when some zone above changes its clocks.
const TRANSITIONS: [i64; 8] = [
    1_772_953_200, // 2026-03-08T07:00Z, New York springs forward
    1_774_746_000, // 2026-03-29T01:00Z, London springs forward
    1_775_311_200, // 2026-04-04T14:00Z, Chatham falls back
    1_775_314_800, // 2026-04-04T15:00Z, Lord Howe falls back half an hour
    1_775_358_000, // 2026-04-05T03:00Z, Santiago falls back
    1_788_667_200, // 2026-09-06T04:00Z, Santiago springs forward
    1_791_041_400, // 2026-10-03T15:30Z, Lord Howe springs forward half an hour
    1_793_512_800, // 2026-11-01T06:00Z, New York falls back
];

fn channel_set() -> impl Strategy<Value = ChannelSet> {
    proptest::bits::u8::between(0, 4).prop_map(|bits| {
        Channel::ALL
            .into_iter()
            .filter(|c| bits & (1 << c.index()) != 0)
            .collect()
    })
}

fn outcome() -> impl Strategy<Value = ContactOutcome> {
    proptest::sample::select(ContactOutcome::ALL.to_vec())
}

fn window() -> impl Strategy<Value = (u32, u32)> {
    (0u32..48, 1u32..20).prop_map(|(start, length)| (start * 30, (start + length).min(48) * 30))
}

fn rules(now: UnixTime) -> impl Strategy<Value = RandomRules> {
    let day =
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new((now.0 / 86_400) as u64);
    (
        proptest::array::uniform7(proptest::collection::vec(window(), 0..3)),
        proptest::collection::vec(0u64..9, 0..3),
        any::<bool>(),
        proptest::sample::subsequence(ZONES.to_vec(), 0..4),
        proptest::collection::vec((channel_set(), 1u32..5, 1i64..200), 0..3),
        proptest::collection::vec((1u32..4, 1i64..200), 0..2),
        proptest::collection::vec(
            (
                channel_set(),
                proptest::collection::vec(outcome(), 1..4),
                channel_set(),
                1i64..200,
            ),
            0..2,
        ),
    )
        .prop_map(
            move |(
                windows,
                holidays,
                require_authorisation,
                timezones,
                caps,
                channel_limits,
                waits,
            )| {
                RandomRules {
                    windows,
                    holidays: holidays
                        .into_iter()
                        .map(|d| day + chrono::Days::new(d))
                        .collect(),
                    require_authorisation,
                    timezones,
                    caps: caps.into_iter().filter(|(c, _, _)| !c.is_empty()).collect(),
                    channel_limits,
                    waits,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    now: UnixTime,
    rules: RandomRules,
    zone: Option<Tz>,
    authorised: ChannelSet,
    opted_out: ChannelSet,
    history: Vec<(UnixTime, Channel, ContactOutcome)>,
    explore: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(TRANSITIONS.to_vec()),
        0i64..96 * HOUR,
    )
        .prop_map(|(transition, before)| UnixTime(transition - before))
        .prop_flat_map(|now| {
            let attempt = (
                1i64..10 * 86_400,
                proptest::sample::select(Channel::ALL.to_vec()),
                outcome(),
            )
                .prop_map(move |(ago, channel, outcome)| (UnixTime(now.0 - ago), channel, outcome));
            (
                Just(now),
                rules(now),
                proptest::option::weighted(0.8, proptest::sample::select(ZONES.to_vec())),
                channel_set(),
                channel_set(),
                proptest::collection::vec(attempt, 0..20),
                proptest::option::of(any::<u64>()),
            )
        })
        .prop_map(
            |(now, rules, zone, authorised, opted_out, history, explore)| Case {
                now,
                rules,
                zone,
                authorised,
                opted_out,
                history,
                explore,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_recommended_slot_breaks_the_rules(case in case()) {
        let policy = ContactPolicy::from_toml(&case.rules.toml(), "random policy")
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", case.rules.toml())))?;
        let debtor = profile(case.zone, "XX", case.authorised);
        let history = log(&case.history);
        let context = ContactContext {
            profile: Some(debtor),
            opted_out: case.opted_out,
            log: &history,
        };
        let request = PlanRequest { slots: usize::MAX, explore: case.explore };
        let config = ContactPlanConfig::default();
        let plan = plan(&policy, Some(contact_model()), &context, case.now, request, &config);
        prop_assert_eq!(plan.jurisdiction.as_str(), "random");

        for slot in &plan.slots {
            prop_assert!(slot.start >= case.now);
            prop_assert!(slot.start.0 < case.now.0 + 169 * HOUR);
            prop_assert!((0.0..=1.0).contains(&slot.p_success));
            let breach = case.rules.breach(&debtor, case.opted_out, &case.history, slot.channel, slot.start);
            prop_assert!(breach.is_none(), "{:?} at {} breaks the rules: {:?}", slot.channel, slot.local_start, breach);
        }
        for availability in &plan.next_allowed {
            if let Some(start) = availability.next_allowed {
                let breach = case.rules.breach(&debtor, case.opted_out, &case.history, availability.channel, start);
                prop_assert!(breach.is_none(), "next allowed {:?} at {} breaks the rules: {:?}", availability.channel, start, breach);
            }
        }
        // The plan holds every allowed hour and channel, not only some: it is
        // the model's ranking, not the rules, that decides which come first.
        let first = UnixTime(case.now.0 + (HOUR - case.now.0.rem_euclid(HOUR)) % HOUR);
        let allowed = (0..168)
            .flat_map(|h| Channel::ALL.map(|c| (c, UnixTime(first.0 + h * HOUR))))
            .filter(|(c, s)| case.rules.breach(&debtor, case.opted_out, &case.history, *c, *s).is_none())
            .count();
        prop_assert_eq!(plan.slots.len(), allowed);
    }
}

#[test]
fn the_documented_policy_file_is_accepted() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/contact-policy.md"),
    )
    .unwrap();
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/contact-policy.md has a TOML example");
    let policy = ContactPolicy::from_toml(example, "docs/contact-policy.md").unwrap();
    let mexico = validation::country("country", "MX").unwrap();
    assert_eq!(policy.jurisdiction(Some(mexico)).name, "mexico");

    let broken = example.replace("15:00-20:00", "15:00-25:00");
    let error = ContactPolicy::from_toml(&broken, "docs")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("jurisdictions.mexico.windows.monday[1]"),
        "{error}"
    );
}
