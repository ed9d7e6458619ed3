//! The checks that turn untrusted values into event fields. Every failure is an
//! [`EventError`] naming the field by its wire path (`payment.amount.currency`),
//! so that a client can fix the event without reading mora's code.

use super::{Country, Currency, Money, UnixTime};
use serde::{Deserialize, Serialize};

/// Why one event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EventError {
    /// Wire path of the offending field, e.g. `invoice_issued.due_at`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
    /// Whether the event is well formed but older than the late-event horizon.
    pub is_late: bool,
}

impl EventError {
    /// An error on `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EventError {
            field: field.into(),
            reason: reason.into(),
            is_late: false,
        }
    }
}

/// Bounds applied to every incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventLimits {
    /// Longest accepted id (event, debtor, invoice), in bytes.
    pub max_id_len: usize,
    /// How far in the future (by the server's clock) `occurred_at` may be.
    pub max_clock_skew_secs: i64,
    /// How far in the past `occurred_at` may be, in seconds; 0 for no limit.
    pub late_horizon_secs: i64,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_id_len: 128,
            max_clock_skew_secs: 300,
            late_horizon_secs: 0,
        }
    }
}

/// Earliest accepted time: 2000-01-01T00:00:00Z. Older facts are data errors.
pub const EARLIEST_TIME: UnixTime = UnixTime(946_684_800);

/// Latest accepted time: 2100-01-01T00:00:00Z. Later dates are data errors;
/// the bound also lets state store times in 32 bits.
pub const LATEST_TIME: UnixTime = UnixTime(4_102_444_800);

/// Checks an id: present, bounded, printable.
pub fn check_id(field: &str, value: &str, limits: &EventLimits) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::new(field, "is required"));
    }
    if value.len() > limits.max_id_len {
        return Err(EventError::new(
            field,
            format!(
                "is {} bytes, longer than the limit of {}",
                value.len(),
                limits.max_id_len
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(EventError::new(field, "contains control characters"));
    }
    Ok(())
}

/// [`check_id`], passing the id through.
pub fn id(field: &str, value: String, limits: &EventLimits) -> Result<String, EventError> {
    check_id(field, &value, limits).map(|()| value)
}

/// Checks an optional id: absent and empty both mean "none".
pub fn optional_id(
    field: &str,
    value: Option<String>,
    limits: &EventLimits,
) -> Result<Option<String>, EventError> {
    match value {
        Some(v) if !v.is_empty() => id(field, v, limits).map(Some),
        _ => Ok(None),
    }
}

/// Whether an amount may be zero or must be strictly positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Positive,
    NonNegative,
}

/// Checks money: present, of the right sign, with a valid currency code.
pub fn money(field: &str, value: Option<(i64, &str)>, sign: Sign) -> Result<Money, EventError> {
    let Some((minor_units, code)) = value else {
        return Err(EventError::new(field, "is required"));
    };
    let currency = currency(&format!("{field}.currency"), code)?;
    let is_ok = match sign {
        Sign::Positive => minor_units > 0,
        Sign::NonNegative => minor_units >= 0,
    };
    if !is_ok {
        let expected = match sign {
            Sign::Positive => "greater than 0",
            Sign::NonNegative => "0 or more",
        };
        return Err(EventError::new(
            format!("{field}.minor_units"),
            format!("must be {expected}, got {minor_units}"),
        ));
    }
    Ok(Money {
        minor_units,
        currency,
    })
}

/// Checks an ISO 4217 code: exactly three upper-case ASCII letters.
pub fn currency(field: &str, code: &str) -> Result<Currency, EventError> {
    match code.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Currency([*a, *b, *c])),
        _ => Err(EventError::new(
            field,
            format!("must be an ISO 4217 code of 3 upper-case letters, got {code:?}"),
        )),
    }
}

/// Checks an ISO 3166-1 alpha-2 code: exactly two upper-case ASCII letters.
pub fn country(field: &str, code: &str) -> Result<Country, EventError> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Country([*a, *b])),
        _ => Err(EventError::new(
            field,
            format!("must be an ISO 3166-1 alpha-2 code of 2 upper-case letters, got {code:?}"),
        )),
    }
}

/// Checks an IANA time zone name against the bundled time-zone database.
pub fn timezone(field: &str, name: &str) -> Result<chrono_tz::Tz, EventError> {
    if name.is_empty() {
        return Err(EventError::new(field, "is required"));
    }
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| EventError::new(field, format!("is not an IANA time zone name: {name:?}")))
}

/// [`timezone`], where an empty name means "unknown".
pub fn optional_timezone(field: &str, name: &str) -> Result<Option<chrono_tz::Tz>, EventError> {
    if name.is_empty() {
        return Ok(None);
    }
    timezone(field, name).map(Some)
}

/// Checks a timestamp: present and within [`EARLIEST_TIME`, `LATEST_TIME`].
pub fn time(field: &str, seconds: Option<i64>) -> Result<UnixTime, EventError> {
    let Some(seconds) = seconds else {
        return Err(EventError::new(field, "is required"));
    };
    if seconds < EARLIEST_TIME.0 {
        return Err(EventError::new(
            field,
            format!("is before 2000-01-01 (unix seconds {seconds})"),
        ));
    }
    if seconds > LATEST_TIME.0 {
        return Err(EventError::new(
            field,
            format!("is after 2100-01-01 (unix seconds {seconds})"),
        ));
    }
    Ok(UnixTime(seconds))
}

/// Checks that `occurred_at` is not further in the future than the allowed skew.
pub fn not_in_future(
    field: &str,
    at: UnixTime,
    now: UnixTime,
    limits: &EventLimits,
) -> Result<(), EventError> {
    let ahead_secs = at.0 - now.0;
    if ahead_secs > limits.max_clock_skew_secs {
        return Err(EventError::new(
            field,
            format!(
                "is {ahead_secs} s in the future, more than the allowed clock skew of {} s",
                limits.max_clock_skew_secs
            ),
        ));
    }
    Ok(())
}

/// Checks that `at` is within the late-event horizon before `now`.
pub fn not_too_late(
    field: &str,
    at: UnixTime,
    now: UnixTime,
    limits: &EventLimits,
) -> Result<(), EventError> {
    let horizon_secs = limits.late_horizon_secs;
    let age_secs = now.0 - at.0;
    if horizon_secs > 0 && age_secs > horizon_secs {
        let days = |secs: i64| secs as f64 / super::SECONDS_PER_DAY as f64;
        return Err(EventError {
            is_late: true,
            ..EventError::new(
                field,
                format!(
                    "is {:.1} days old, older than the late-event horizon of {} days",
                    days(age_secs),
                    days(horizon_secs)
                ),
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_required_bounded_and_printable() {
        let limits = EventLimits::default();
        assert_eq!(id("event_id", "e-1".into(), &limits).unwrap(), "e-1");
        assert_eq!(
            id("event_id", String::new(), &limits).unwrap_err().reason,
            "is required"
        );
        let long = "x".repeat(limits.max_id_len + 1);
        assert!(
            id("debtor_id", long, &limits)
                .unwrap_err()
                .reason
                .contains("longer")
        );
        assert!(id("debtor_id", "a\nb".into(), &limits).is_err());
        assert_eq!(
            optional_id("payment.invoice_id", Some(String::new()), &limits),
            Ok(None)
        );
    }

    #[test]
    fn money_names_the_failing_part() {
        let err = money("payment.amount", Some((100, "usd")), Sign::Positive).unwrap_err();
        assert_eq!(err.field, "payment.amount.currency");
        let err = money("payment.amount", Some((0, "USD")), Sign::Positive).unwrap_err();
        assert_eq!(err.field, "payment.amount.minor_units");
        assert!(
            money(
                "invoice_adjusted.new_amount",
                Some((0, "USD")),
                Sign::NonNegative
            )
            .is_ok()
        );
        let err = money("payment.amount", None, Sign::Positive).unwrap_err();
        assert_eq!(err.to_string(), "payment.amount: is required");
    }

    #[test]
    fn timezones_and_countries_are_checked() {
        assert_eq!(
            timezone("profile.timezone", "America/Bogota").unwrap(),
            chrono_tz::America::Bogota
        );
        assert!(timezone("profile.timezone", "Mars/Olympus").is_err());
        assert_eq!(country("profile.country", "CO").unwrap().as_str(), "CO");
        assert!(country("profile.country", "COL").is_err());
    }

    #[test]
    fn future_times_beyond_the_skew_are_refused() {
        let limits = EventLimits::default();
        let now = UnixTime(2_000_000_000);
        assert!(not_in_future("occurred_at", UnixTime(now.0 + 300), now, &limits).is_ok());
        let err = not_in_future("occurred_at", UnixTime(now.0 + 301), now, &limits).unwrap_err();
        assert!(err.reason.contains("301 s in the future"));
        assert!(time("occurred_at", Some(0)).is_err());
        assert!(time("occurred_at", None).is_err());
        assert!(time("promise.promised_for", Some(LATEST_TIME.0 + 1)).is_err());
        assert!(time("promise.promised_for", Some(LATEST_TIME.0)).is_ok());
    }
}
