//! Domain events: the facts about a debtor that mora learns from, in types that
//! hold only valid values.
//!
//! Nothing here knows about protobuf or gRPC: `api` converts wire messages into
//! these types through the checks in [`validation`], which name the offending
//! field in every error.

pub mod validation;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use validation::{EventError, EventLimits};

/// Seconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct UnixTime(pub i64);

/// Seconds in a day, the unit of every duration feature.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Seconds in an hour, the step of contact slots.
pub const SECONDS_PER_HOUR: i64 = 3_600;

impl UnixTime {
    /// The current time by the system clock.
    pub fn now() -> UnixTime {
        UnixTime(chrono::Utc::now().timestamp())
    }

    /// Days from `earlier` to `self`, negative when `earlier` is later.
    pub fn days_since(self, earlier: UnixTime) -> f64 {
        (self.0 - earlier.0) as f64 / SECONDS_PER_DAY as f64
    }

    /// This time moved by a whole number of days.
    pub fn plus_days(self, days: i64) -> UnixTime {
        UnixTime(self.0 + days * SECONDS_PER_DAY)
    }
}

impl fmt::Display for UnixTime {
    /// RFC 3339 in UTC, e.g. `2005-10-01T00:00:00Z`; raw seconds when out of
    /// chrono's range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ")),
            None => write!(f, "{}s", self.0),
        }
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 3]", into = "[u8; 3]")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code as text, e.g. `"USD"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<[u8; 3]> for Currency {
    type Error = EventError;

    /// Decodes stored bytes, with the same check as the wire form.
    fn try_from(bytes: [u8; 3]) -> Result<Self, EventError> {
        validation::currency("currency", &String::from_utf8_lossy(&bytes))
    }
}

impl From<Currency> for [u8; 3] {
    fn from(currency: Currency) -> Self {
        currency.0
    }
}

/// An amount in minor units of a currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor_units: i64,
    pub currency: Currency,
}

/// A channel through which a debtor can be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    Call,
    Sms,
    WhatsApp,
    Email,
}

impl Channel {
    /// Every channel, in the order used by per-channel arrays.
    pub const ALL: [Channel; 4] = [
        Channel::Call,
        Channel::Sms,
        Channel::WhatsApp,
        Channel::Email,
    ];

    /// Position of this channel in [`Channel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The channel at `index` of [`Channel::ALL`].
    pub fn from_index(index: usize) -> Option<Channel> {
        Channel::ALL.get(index).copied()
    }

    /// Lower-case name, used in metric labels, logs and policy files.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Call => "call",
            Channel::Sms => "sms",
            Channel::WhatsApp => "whatsapp",
            Channel::Email => "email",
        }
    }

    /// The channel called `name` (as [`Channel::name`] spells it).
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A set of channels, one bit per channel.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct ChannelSet(u8);

impl ChannelSet {
    /// No channel.
    pub const EMPTY: ChannelSet = ChannelSet(0);
    /// Every channel.
    pub const ALL: ChannelSet = ChannelSet(0b1111);

    /// This set with `channel` added.
    pub fn with(self, channel: Channel) -> ChannelSet {
        ChannelSet(self.0 | 1 << channel.index())
    }

    /// Whether `channel` is in the set.
    pub fn contains(self, channel: Channel) -> bool {
        self.0 & (1 << channel.index()) != 0
    }

    /// Every channel of both sets.
    pub fn union(self, other: ChannelSet) -> ChannelSet {
        ChannelSet(self.0 | other.0)
    }

    /// Whether every channel of `self` is in `other`.
    pub fn is_subset(self, other: ChannelSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Number of channels in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The channels of the set, in [`Channel::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl TryFrom<u8> for ChannelSet {
    type Error = EventError;

    /// Decodes stored bits, refusing bits of no channel.
    fn try_from(bits: u8) -> Result<Self, EventError> {
        if bits & !ChannelSet::ALL.0 != 0 {
            return Err(EventError::new(
                "channels",
                format!("bits {bits:#010b} name no channel"),
            ));
        }
        Ok(ChannelSet(bits))
    }
}

impl From<ChannelSet> for u8 {
    fn from(set: ChannelSet) -> Self {
        set.0
    }
}

impl FromIterator<Channel> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = Channel>>(channels: I) -> Self {
        channels
            .into_iter()
            .fold(ChannelSet::EMPTY, ChannelSet::with)
    }
}

/// What came of a contact attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContactOutcome {
    Delivered,
    Failed,
    NoAnswer,
    Busy,
    Answered,
    RightParty,
    WrongNumber,
    Opened,
    Clicked,
    Replied,
    Bounced,
}

impl ContactOutcome {
    /// Every outcome, in wire order.
    pub const ALL: [ContactOutcome; 11] = [
        ContactOutcome::Delivered,
        ContactOutcome::Failed,
        ContactOutcome::NoAnswer,
        ContactOutcome::Busy,
        ContactOutcome::Answered,
        ContactOutcome::RightParty,
        ContactOutcome::WrongNumber,
        ContactOutcome::Opened,
        ContactOutcome::Clicked,
        ContactOutcome::Replied,
        ContactOutcome::Bounced,
    ];

    /// Position of this outcome in [`ContactOutcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The outcome at `index` of [`ContactOutcome::ALL`].
    pub fn from_index(index: usize) -> Option<ContactOutcome> {
        ContactOutcome::ALL.get(index).copied()
    }

    /// Lower-case name, as policy and model files spell it.
    pub fn name(self) -> &'static str {
        use ContactOutcome::*;
        match self {
            Delivered => "delivered",
            Failed => "failed",
            NoAnswer => "no_answer",
            Busy => "busy",
            Answered => "answered",
            RightParty => "right_party",
            WrongNumber => "wrong_number",
            Opened => "opened",
            Clicked => "clicked",
            Replied => "replied",
            Bounced => "bounced",
        }
    }

    /// The outcome called `name` (as [`ContactOutcome::name`] spells it).
    pub fn from_name(name: &str) -> Option<ContactOutcome> {
        ContactOutcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether this outcome means the debtor was reached on `channel`: a call
    /// that reached the right party; a message replied to or whose link was
    /// clicked; an email opened, clicked or replied to.
    pub fn is_success_on(self, channel: Channel) -> bool {
        use ContactOutcome::*;
        match channel {
            Channel::Call => self == RightParty,
            Channel::Sms | Channel::WhatsApp => matches!(self, Clicked | Replied),
            Channel::Email => matches!(self, Opened | Clicked | Replied),
        }
    }
}

/// How the creditor itself classes an account at the close of a billing
/// cycle, as card and credit-line statements report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccountStatus {
    /// Nothing owed and nothing used in the cycle.
    Inactive,
    /// The statement balance was paid in full.
    PaidInFull,
    /// At least the minimum was paid; a balance is carried over.
    Revolving,
    /// Past due by this many billing cycles (1 to [`AccountStatus::MAX_CYCLES`]).
    Delinquent { cycles: u8 },
}

impl AccountStatus {
    /// The most cycles past due an account status may state.
    pub const MAX_CYCLES: u8 = 99;
}

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 2]", into = "[u8; 2]")]
pub struct Country([u8; 2]);

impl Country {
    /// The code as text, e.g. `"CO"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<[u8; 2]> for Country {
    type Error = EventError;

    /// Decodes stored bytes, with the same check as the wire form.
    fn try_from(bytes: [u8; 2]) -> Result<Self, EventError> {
        validation::country("country", &String::from_utf8_lossy(&bytes))
    }
}

impl From<Country> for [u8; 2] {
    fn from(country: Country) -> Self {
        country.0
    }
}

/// Where a debtor lives and how they agreed to be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// `None` when the platform does not know it: contact rules then take
    /// the most restrictive reading over the country's time zones.
    pub timezone: Option<chrono_tz::Tz>,
    pub country: Country,
    /// Channels the debtor authorised for collection contact (some
    /// jurisdictions allow only these).
    pub authorised_channels: ChannelSet,
}

/// One fact about one debtor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per debtor; applying an event id twice has no effect.
    pub event_id: String,
    pub debtor_id: String,
    pub occurred_at: UnixTime,
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    Profile(Profile),
    InvoiceIssued {
        invoice_id: String,
        amount: Money,
        due_at: UnixTime,
    },
    /// A credit note or write-off; a zero amount closes the invoice.
    InvoiceAdjusted {
        invoice_id: String,
        new_amount: Money,
    },
    Payment {
        amount: Money,
        invoice_id: Option<String>,
    },
    PaymentReversed {
        amount: Money,
        payment_event_id: Option<String>,
    },
    Promise {
        amount: Money,
        promised_for: UnixTime,
    },
    Contact {
        channel: Channel,
        outcome: ContactOutcome,
    },
    OptOut {
        channel: Channel,
    },
    /// The credit line granted to the debtor; the latest one applies.
    CreditLimit {
        limit: Money,
    },
    /// The creditor's status of the account at the close of a billing cycle.
    AccountStatus {
        status: AccountStatus,
    },
}

/// The kinds of event, as a closed set for metric labels and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKindName {
    Profile,
    InvoiceIssued,
    InvoiceAdjusted,
    Payment,
    PaymentReversed,
    Promise,
    Contact,
    OptOut,
    CreditLimit,
    AccountStatus,
}

impl EventKindName {
    /// How many kinds there are.
    pub const COUNT: usize = 10;

    /// Every kind, in wire order.
    pub const ALL: [EventKindName; EventKindName::COUNT] = [
        EventKindName::Profile,
        EventKindName::InvoiceIssued,
        EventKindName::InvoiceAdjusted,
        EventKindName::Payment,
        EventKindName::PaymentReversed,
        EventKindName::Promise,
        EventKindName::Contact,
        EventKindName::OptOut,
        EventKindName::CreditLimit,
        EventKindName::AccountStatus,
    ];

    /// Position in [`EventKindName::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name of the kind as the wire calls it, e.g. `"invoice_issued"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKindName::Profile => "profile",
            EventKindName::InvoiceIssued => "invoice_issued",
            EventKindName::InvoiceAdjusted => "invoice_adjusted",
            EventKindName::Payment => "payment",
            EventKindName::PaymentReversed => "payment_reversed",
            EventKindName::Promise => "promise",
            EventKindName::Contact => "contact",
            EventKindName::OptOut => "opt_out",
            EventKindName::CreditLimit => "credit_limit",
            EventKindName::AccountStatus => "account_status",
        }
    }
}

impl EventKind {
    /// The kind's name, for counting and messages.
    pub fn name(&self) -> EventKindName {
        match self {
            EventKind::Profile(_) => EventKindName::Profile,
            EventKind::InvoiceIssued { .. } => EventKindName::InvoiceIssued,
            EventKind::InvoiceAdjusted { .. } => EventKindName::InvoiceAdjusted,
            EventKind::Payment { .. } => EventKindName::Payment,
            EventKind::PaymentReversed { .. } => EventKindName::PaymentReversed,
            EventKind::Promise { .. } => EventKindName::Promise,
            EventKind::Contact { .. } => EventKindName::Contact,
            EventKind::OptOut { .. } => EventKindName::OptOut,
            EventKind::CreditLimit { .. } => EventKindName::CreditLimit,
            EventKind::AccountStatus { .. } => EventKindName::AccountStatus,
        }
    }

    /// The money this event carries, with the field path that holds it.
    pub fn money(&self) -> Option<(&'static str, Money)> {
        match self {
            EventKind::InvoiceIssued { amount, .. } => Some(("invoice_issued.amount", *amount)),
            EventKind::InvoiceAdjusted { new_amount, .. } => {
                Some(("invoice_adjusted.new_amount", *new_amount))
            }
            EventKind::Payment { amount, .. } => Some(("payment.amount", *amount)),
            EventKind::PaymentReversed { amount, .. } => Some(("payment_reversed.amount", *amount)),
            EventKind::Promise { amount, .. } => Some(("promise.amount", *amount)),
            EventKind::CreditLimit { limit } => Some(("credit_limit.limit", *limit)),
            EventKind::Profile(_)
            | EventKind::Contact { .. }
            | EventKind::OptOut { .. }
            | EventKind::AccountStatus { .. } => None,
        }
    }
}
