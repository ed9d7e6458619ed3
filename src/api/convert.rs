//! Conversion between wire messages and domain types.
//!
//! Every proto message is destructured field by field, so that a field added to
//! the proto breaks the build here until it is handled. Checks themselves live
//! in `events::validation`; this module only supplies the field paths.

use pbjson_types::Timestamp;

use super::proto;
use crate::events::validation::{self, Sign};
use crate::events::{
    AccountStatus, Channel, ChannelSet, ContactOutcome, Event, EventError, EventKind,
    EventKindName, EventLimits, Money, Profile, UnixTime,
};
use crate::scoring::plan::{ChannelAvailability, PlannedSlot};
use crate::scoring::{ContactPlan, Reason, RiskSegment, Score};

/// Whole seconds of a timestamp, checking that it is well formed.
pub fn seconds(field: &str, at: Option<Timestamp>) -> Result<Option<i64>, EventError> {
    match at {
        None => Ok(None),
        Some(Timestamp { seconds, nanos }) if (0..1_000_000_000).contains(&nanos) => {
            Ok(Some(seconds))
        }
        Some(Timestamp { nanos, .. }) => Err(EventError::new(
            format!("{field}.nanos"),
            format!("must be within [0, 999999999], got {nanos}"),
        )),
    }
}

fn time(field: &str, at: Option<Timestamp>) -> Result<UnixTime, EventError> {
    validation::time(field, seconds(field, at)?)
}

fn money(field: &str, value: Option<proto::Money>, sign: Sign) -> Result<Money, EventError> {
    let parts = value.as_ref().map(|m| (m.minor_units, m.currency.as_str()));
    validation::money(field, parts, sign)
}

fn channel(field: &str, value: i32) -> Result<Channel, EventError> {
    match proto::Channel::try_from(value) {
        Ok(proto::Channel::Call) => Ok(Channel::Call),
        Ok(proto::Channel::Sms) => Ok(Channel::Sms),
        Ok(proto::Channel::Whatsapp) => Ok(Channel::WhatsApp),
        Ok(proto::Channel::Email) => Ok(Channel::Email),
        Ok(proto::Channel::Unspecified) => Err(EventError::new(
            field,
            "is required (CHANNEL_CALL, CHANNEL_SMS, CHANNEL_WHATSAPP or CHANNEL_EMAIL)",
        )),
        Err(_) => Err(EventError::new(field, format!("unknown value {value}"))),
    }
}

fn outcome(field: &str, value: i32) -> Result<ContactOutcome, EventError> {
    use proto::ContactOutcome as P;
    let outcome = match P::try_from(value) {
        Ok(P::Delivered) => ContactOutcome::Delivered,
        Ok(P::Failed) => ContactOutcome::Failed,
        Ok(P::NoAnswer) => ContactOutcome::NoAnswer,
        Ok(P::Busy) => ContactOutcome::Busy,
        Ok(P::Answered) => ContactOutcome::Answered,
        Ok(P::RightParty) => ContactOutcome::RightParty,
        Ok(P::WrongNumber) => ContactOutcome::WrongNumber,
        Ok(P::Opened) => ContactOutcome::Opened,
        Ok(P::Clicked) => ContactOutcome::Clicked,
        Ok(P::Replied) => ContactOutcome::Replied,
        Ok(P::Bounced) => ContactOutcome::Bounced,
        Ok(P::Unspecified) => return Err(EventError::new(field, "is required")),
        Err(_) => return Err(EventError::new(field, format!("unknown value {value}"))),
    };
    Ok(outcome)
}

fn account_status(status: proto::AccountStatus) -> Result<AccountStatus, EventError> {
    use proto::AccountStanding as P;
    let proto::AccountStatus {
        standing,
        cycles_past_due: cycles,
    } = status;
    let standing_field = "account_status.standing";
    let cycles_field = "account_status.cycles_past_due";
    let not_past_due = |status| match cycles {
        0 => Ok(status),
        _ => Err(EventError::new(
            cycles_field,
            format!("must be 0 unless the standing is ACCOUNT_STANDING_DELINQUENT, got {cycles}"),
        )),
    };
    match P::try_from(standing) {
        Ok(P::Inactive) => not_past_due(AccountStatus::Inactive),
        Ok(P::PaidInFull) => not_past_due(AccountStatus::PaidInFull),
        Ok(P::Revolving) => not_past_due(AccountStatus::Revolving),
        Ok(P::Delinquent) => match u8::try_from(cycles) {
            Ok(cycles @ 1..=AccountStatus::MAX_CYCLES) => Ok(AccountStatus::Delinquent { cycles }),
            _ => Err(EventError::new(
                cycles_field,
                format!(
                    "must be 1 to {} with ACCOUNT_STANDING_DELINQUENT, got {cycles}",
                    AccountStatus::MAX_CYCLES
                ),
            )),
        },
        Ok(P::Unspecified) => Err(EventError::new(
            standing_field,
            "is required (ACCOUNT_STANDING_INACTIVE, ACCOUNT_STANDING_PAID_IN_FULL, \
             ACCOUNT_STANDING_REVOLVING or ACCOUNT_STANDING_DELINQUENT)",
        )),
        Err(_) => Err(EventError::new(
            standing_field,
            format!("unknown value {standing}"),
        )),
    }
}

fn account_status_to_proto(status: AccountStatus) -> proto::AccountStatus {
    use proto::AccountStanding as P;
    let (standing, cycles_past_due) = match status {
        AccountStatus::Inactive => (P::Inactive, 0),
        AccountStatus::PaidInFull => (P::PaidInFull, 0),
        AccountStatus::Revolving => (P::Revolving, 0),
        AccountStatus::Delinquent { cycles } => (P::Delinquent, u32::from(cycles)),
    };
    proto::AccountStatus {
        standing: standing.into(),
        cycles_past_due,
    }
}

/// An event that failed conversion, with its id (as sent) for the ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    pub event_id: String,
    pub error: EventError,
}

/// Converts and validates one wire event. `now` bounds `occurred_at`.
pub fn event(
    message: proto::Event,
    limits: &EventLimits,
    now: UnixTime,
) -> Result<Event, RejectedEvent> {
    let proto::Event {
        event_id,
        debtor_id,
        occurred_at,
        kind,
    } = message;
    let checked = validation::check_id("event_id", &event_id, limits)
        .and_then(|()| event_parts(debtor_id, occurred_at, kind, limits, now));
    match checked {
        Ok((debtor_id, occurred_at, kind)) => Ok(Event {
            event_id,
            debtor_id,
            occurred_at,
            kind,
        }),
        Err(error) => Err(RejectedEvent { event_id, error }),
    }
}

/// Everything of an event but its id, checked.
fn event_parts(
    debtor_id: String,
    occurred_at: Option<Timestamp>,
    kind: Option<proto::event::Kind>,
    limits: &EventLimits,
    now: UnixTime,
) -> Result<(String, UnixTime, EventKind), EventError> {
    let debtor_id = validation::id("debtor_id", debtor_id, limits)?;
    let occurred_at = time("occurred_at", occurred_at)?;
    validation::not_in_future("occurred_at", occurred_at, now, limits)?;
    validation::not_too_late("occurred_at", occurred_at, now, limits)?;
    let Some(kind) = kind else {
        let kinds: Vec<&str> = EventKindName::ALL.iter().map(|k| k.as_str()).collect();
        return Err(EventError::new(
            "kind",
            format!("is required (one of {})", kinds.join(", ")),
        ));
    };
    Ok((debtor_id, occurred_at, event_kind(kind, limits)?))
}

fn event_kind(kind: proto::event::Kind, limits: &EventLimits) -> Result<EventKind, EventError> {
    use proto::event::Kind;
    let kind = match kind {
        Kind::Profile(proto::Profile {
            timezone,
            country,
            authorised_channels,
        }) => EventKind::Profile(Profile {
            timezone: validation::optional_timezone("profile.timezone", &timezone)?,
            country: validation::country("profile.country", &country)?,
            authorised_channels: authorised_channels
                .into_iter()
                .enumerate()
                .map(|(i, c)| channel(&format!("profile.authorised_channels[{i}]"), c))
                .collect::<Result<ChannelSet, _>>()?,
        }),
        Kind::InvoiceIssued(proto::InvoiceIssued {
            invoice_id,
            amount,
            due_at,
        }) => EventKind::InvoiceIssued {
            invoice_id: validation::id("invoice_issued.invoice_id", invoice_id, limits)?,
            amount: money("invoice_issued.amount", amount, Sign::Positive)?,
            due_at: time("invoice_issued.due_at", due_at)?,
        },
        Kind::InvoiceAdjusted(proto::InvoiceAdjusted {
            invoice_id,
            new_amount,
        }) => EventKind::InvoiceAdjusted {
            invoice_id: validation::id("invoice_adjusted.invoice_id", invoice_id, limits)?,
            new_amount: money("invoice_adjusted.new_amount", new_amount, Sign::NonNegative)?,
        },
        Kind::Payment(proto::Payment { amount, invoice_id }) => EventKind::Payment {
            amount: money("payment.amount", amount, Sign::Positive)?,
            invoice_id: validation::optional_id("payment.invoice_id", invoice_id, limits)?,
        },
        Kind::PaymentReversed(proto::PaymentReversed {
            amount,
            payment_event_id,
        }) => EventKind::PaymentReversed {
            amount: money("payment_reversed.amount", amount, Sign::Positive)?,
            payment_event_id: validation::optional_id(
                "payment_reversed.payment_event_id",
                payment_event_id,
                limits,
            )?,
        },
        Kind::Promise(proto::Promise {
            amount,
            promised_for,
        }) => EventKind::Promise {
            amount: money("promise.amount", amount, Sign::Positive)?,
            promised_for: time("promise.promised_for", promised_for)?,
        },
        Kind::Contact(proto::Contact {
            channel: wire_channel,
            outcome: wire_outcome,
        }) => EventKind::Contact {
            channel: channel("contact.channel", wire_channel)?,
            outcome: outcome("contact.outcome", wire_outcome)?,
        },
        Kind::OptOut(proto::OptOut {
            channel: wire_channel,
        }) => EventKind::OptOut {
            channel: channel("opt_out.channel", wire_channel)?,
        },
        Kind::CreditLimit(proto::CreditLimit { limit }) => EventKind::CreditLimit {
            limit: money("credit_limit.limit", limit, Sign::Positive)?,
        },
        Kind::AccountStatus(status) => EventKind::AccountStatus {
            status: account_status(status)?,
        },
    };
    Ok(kind)
}

/// The event kind's name of a wire event, for counting rejections.
pub fn kind_name(kind: &proto::event::Kind) -> crate::events::EventKindName {
    use crate::events::EventKindName as N;
    use proto::event::Kind;
    match kind {
        Kind::Profile(_) => N::Profile,
        Kind::InvoiceIssued(_) => N::InvoiceIssued,
        Kind::InvoiceAdjusted(_) => N::InvoiceAdjusted,
        Kind::Payment(_) => N::Payment,
        Kind::PaymentReversed(_) => N::PaymentReversed,
        Kind::Promise(_) => N::Promise,
        Kind::Contact(_) => N::Contact,
        Kind::OptOut(_) => N::OptOut,
        Kind::CreditLimit(_) => N::CreditLimit,
        Kind::AccountStatus(_) => N::AccountStatus,
    }
}

fn channel_to_proto(channel: Channel) -> proto::Channel {
    match channel {
        Channel::Call => proto::Channel::Call,
        Channel::Sms => proto::Channel::Sms,
        Channel::WhatsApp => proto::Channel::Whatsapp,
        Channel::Email => proto::Channel::Email,
    }
}

fn outcome_to_proto(outcome: ContactOutcome) -> proto::ContactOutcome {
    use proto::ContactOutcome as P;
    match outcome {
        ContactOutcome::Delivered => P::Delivered,
        ContactOutcome::Failed => P::Failed,
        ContactOutcome::NoAnswer => P::NoAnswer,
        ContactOutcome::Busy => P::Busy,
        ContactOutcome::Answered => P::Answered,
        ContactOutcome::RightParty => P::RightParty,
        ContactOutcome::WrongNumber => P::WrongNumber,
        ContactOutcome::Opened => P::Opened,
        ContactOutcome::Clicked => P::Clicked,
        ContactOutcome::Replied => P::Replied,
        ContactOutcome::Bounced => P::Bounced,
    }
}

fn timestamp(at: UnixTime) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.0,
        nanos: 0,
    })
}

/// A domain event as a wire event: the inverse of [`event`] for valid events.
pub fn event_to_proto(event: &Event) -> proto::Event {
    use proto::event::Kind;
    let Event {
        event_id,
        debtor_id,
        occurred_at,
        kind,
    } = event;
    let kind = match kind {
        EventKind::Profile(Profile {
            timezone,
            country,
            authorised_channels,
        }) => Kind::Profile(proto::Profile {
            timezone: timezone.map_or_else(String::new, |tz| tz.name().to_owned()),
            country: country.as_str().to_owned(),
            authorised_channels: authorised_channels
                .iter()
                .map(|c| channel_to_proto(c).into())
                .collect(),
        }),
        EventKind::InvoiceIssued {
            invoice_id,
            amount,
            due_at,
        } => Kind::InvoiceIssued(proto::InvoiceIssued {
            invoice_id: invoice_id.clone(),
            amount: Some(money_to_proto(*amount)),
            due_at: timestamp(*due_at),
        }),
        EventKind::InvoiceAdjusted {
            invoice_id,
            new_amount,
        } => Kind::InvoiceAdjusted(proto::InvoiceAdjusted {
            invoice_id: invoice_id.clone(),
            new_amount: Some(money_to_proto(*new_amount)),
        }),
        EventKind::Payment { amount, invoice_id } => Kind::Payment(proto::Payment {
            amount: Some(money_to_proto(*amount)),
            invoice_id: invoice_id.clone(),
        }),
        EventKind::PaymentReversed {
            amount,
            payment_event_id,
        } => Kind::PaymentReversed(proto::PaymentReversed {
            amount: Some(money_to_proto(*amount)),
            payment_event_id: payment_event_id.clone(),
        }),
        EventKind::Promise {
            amount,
            promised_for,
        } => Kind::Promise(proto::Promise {
            amount: Some(money_to_proto(*amount)),
            promised_for: timestamp(*promised_for),
        }),
        EventKind::Contact { channel, outcome } => Kind::Contact(proto::Contact {
            channel: channel_to_proto(*channel).into(),
            outcome: outcome_to_proto(*outcome).into(),
        }),
        EventKind::OptOut { channel } => Kind::OptOut(proto::OptOut {
            channel: channel_to_proto(*channel).into(),
        }),
        EventKind::CreditLimit { limit } => Kind::CreditLimit(proto::CreditLimit {
            limit: Some(money_to_proto(*limit)),
        }),
        EventKind::AccountStatus { status } => {
            Kind::AccountStatus(account_status_to_proto(*status))
        }
    };
    proto::Event {
        event_id: event_id.clone(),
        debtor_id: debtor_id.clone(),
        occurred_at: timestamp(*occurred_at),
        kind: Some(kind),
    }
}

fn money_to_proto(money: Money) -> proto::Money {
    proto::Money {
        minor_units: money.minor_units,
        currency: money.currency.as_str().to_owned(),
    }
}

fn segment_to_proto(segment: RiskSegment) -> proto::RiskSegment {
    match segment {
        RiskSegment::Low => proto::RiskSegment::Low,
        RiskSegment::Medium => proto::RiskSegment::Medium,
        RiskSegment::High => proto::RiskSegment::High,
    }
}

/// A domain score as a wire response.
pub fn score_response(score: Score) -> proto::ScoreResponse {
    let Score {
        debtor_id,
        known,
        p_pay,
        horizon_days,
        risk_segment,
        overdue,
        expected_recovery,
        reasons,
        payment_model_version,
        contact_plan,
        contact_model_version,
    } = score;
    proto::ScoreResponse {
        debtor_id,
        known,
        p_pay,
        horizon_days,
        risk_segment: segment_to_proto(risk_segment).into(),
        overdue: overdue.map(money_to_proto),
        expected_recovery: expected_recovery.map(money_to_proto),
        reasons: reasons
            .into_iter()
            .map(
                |Reason {
                     feature,
                     value,
                     contribution,
                 }| proto::Reason {
                    feature: feature.to_owned(),
                    value,
                    contribution,
                },
            )
            .collect(),
        contact_plan: contact_plan.map(plan_to_proto),
        payment_model_version,
        contact_model_version,
    }
}

fn plan_to_proto(plan: ContactPlan) -> proto::ContactPlan {
    let ContactPlan {
        jurisdiction,
        timezone,
        is_timezone_assumed,
        slots,
        next_allowed,
        contact_model_version: _,
    } = plan;
    proto::ContactPlan {
        slots: slots
            .into_iter()
            .map(
                |PlannedSlot {
                     start,
                     local_start,
                     channel,
                     p_success,
                     sampled,
                 }| proto::ContactSlot {
                    start: timestamp(start),
                    local_start,
                    channel: channel_to_proto(channel).into(),
                    p_success,
                    sampled_p_success: sampled,
                },
            )
            .collect(),
        next_allowed: next_allowed
            .into_iter()
            .map(
                |ChannelAvailability {
                     channel,
                     next_allowed,
                     blocked_reason,
                 }| proto::ChannelAvailability {
                    channel: channel_to_proto(channel).into(),
                    next_allowed: next_allowed.and_then(timestamp),
                    blocked_reason,
                },
            )
            .collect(),
        jurisdiction,
        timezone: timezone.map_or_else(String::new, |tz| tz.name().to_owned()),
        timezone_assumed: is_timezone_assumed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    fn wire(kind: proto::event::Kind) -> proto::Event {
        proto::Event {
            event_id: "e-1".into(),
            debtor_id: "d-1".into(),
            occurred_at: Some(Timestamp {
                seconds: NOW.0 - 60,
                nanos: 0,
            }),
            kind: Some(kind),
        }
    }

    fn field_of(message: proto::Event) -> String {
        event(message, &EventLimits::default(), NOW)
            .unwrap_err()
            .error
            .field
    }

    #[test]
    fn each_malformed_field_is_named() {
        use proto::event::Kind;
        let usd = |minor_units| {
            Some(proto::Money {
                minor_units,
                currency: "USD".into(),
            })
        };
        let cases: Vec<(proto::Event, &str)> = vec![
            (
                proto::Event {
                    event_id: String::new(),
                    ..wire(Kind::OptOut(proto::OptOut { channel: 1 }))
                },
                "event_id",
            ),
            (
                proto::Event {
                    debtor_id: String::new(),
                    ..wire(Kind::OptOut(proto::OptOut { channel: 1 }))
                },
                "debtor_id",
            ),
            (
                proto::Event {
                    occurred_at: None,
                    ..wire(Kind::OptOut(proto::OptOut { channel: 1 }))
                },
                "occurred_at",
            ),
            (
                proto::Event {
                    kind: None,
                    ..wire(Kind::OptOut(proto::OptOut { channel: 1 }))
                },
                "kind",
            ),
            (
                wire(Kind::OptOut(proto::OptOut { channel: 0 })),
                "opt_out.channel",
            ),
            (
                wire(Kind::Contact(proto::Contact {
                    channel: 9,
                    outcome: 1,
                })),
                "contact.channel",
            ),
            (
                wire(Kind::Contact(proto::Contact {
                    channel: 1,
                    outcome: 0,
                })),
                "contact.outcome",
            ),
            (
                wire(Kind::Profile(proto::Profile {
                    timezone: "Nowhere/City".into(),
                    country: "CO".into(),
                    authorised_channels: vec![],
                })),
                "profile.timezone",
            ),
            (
                wire(Kind::Profile(proto::Profile {
                    timezone: "America/Bogota".into(),
                    country: "col".into(),
                    authorised_channels: vec![],
                })),
                "profile.country",
            ),
            (
                wire(Kind::Profile(proto::Profile {
                    timezone: String::new(),
                    country: "CO".into(),
                    authorised_channels: vec![1, 0],
                })),
                "profile.authorised_channels[1]",
            ),
            (
                wire(Kind::InvoiceIssued(proto::InvoiceIssued {
                    invoice_id: "i".into(),
                    amount: usd(0),
                    due_at: Some(Timestamp {
                        seconds: NOW.0,
                        nanos: 0,
                    }),
                })),
                "invoice_issued.amount.minor_units",
            ),
            (
                wire(Kind::InvoiceIssued(proto::InvoiceIssued {
                    invoice_id: "i".into(),
                    amount: usd(5),
                    due_at: None,
                })),
                "invoice_issued.due_at",
            ),
            (
                wire(Kind::InvoiceAdjusted(proto::InvoiceAdjusted {
                    invoice_id: String::new(),
                    new_amount: usd(0),
                })),
                "invoice_adjusted.invoice_id",
            ),
            (
                wire(Kind::Payment(proto::Payment {
                    amount: Some(proto::Money {
                        minor_units: 5,
                        currency: "us".into(),
                    }),
                    invoice_id: None,
                })),
                "payment.amount.currency",
            ),
            (
                wire(Kind::PaymentReversed(proto::PaymentReversed {
                    amount: None,
                    payment_event_id: None,
                })),
                "payment_reversed.amount",
            ),
            (
                wire(Kind::Promise(proto::Promise {
                    amount: usd(5),
                    promised_for: Some(Timestamp {
                        seconds: NOW.0,
                        nanos: -1,
                    }),
                })),
                "promise.promised_for.nanos",
            ),
        ];
        for (message, field) in cases {
            assert_eq!(field_of(message), field);
        }
        let future = proto::Event {
            occurred_at: Some(Timestamp {
                seconds: NOW.0 + 3_600,
                nanos: 0,
            }),
            ..wire(Kind::OptOut(proto::OptOut { channel: 1 }))
        };
        assert_eq!(field_of(future), "occurred_at");
    }

    #[test]
    fn every_simulated_event_survives_a_round_trip() {
        let config = crate::sim::SimConfig {
            debtors: 50,
            ..crate::sim::SimConfig::default()
        };
        let now = UnixTime(4_000_000_000);
        for debtor in crate::sim::portfolio(&config) {
            for original in debtor.events {
                let back = event(event_to_proto(&original), &EventLimits::default(), now);
                assert_eq!(back, Ok(original));
            }
        }
    }

    #[test]
    fn a_valid_payment_converts() {
        let message = wire(proto::event::Kind::Payment(proto::Payment {
            amount: Some(proto::Money {
                minor_units: 1_500,
                currency: "COP".into(),
            }),
            invoice_id: Some("inv-9".into()),
        }));
        let converted = event(message, &EventLimits::default(), NOW).unwrap();
        assert_eq!(converted.occurred_at, UnixTime(NOW.0 - 60));
        match converted.kind {
            EventKind::Payment { amount, invoice_id } => {
                assert_eq!(
                    (amount.minor_units, amount.currency.as_str()),
                    (1_500, "COP")
                );
                assert_eq!(invoice_id.as_deref(), Some("inv-9"));
            }
            other => panic!("converted to {other:?}"),
        }
    }
}
