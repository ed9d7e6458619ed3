//! The recent contact attempts of one debtor: when, on which channel, and
//! what came of it.
//!
//! Contact rules count attempts over rolling periods and wait after certain
//! outcomes, and contact features group attempts by the debtor's local hour,
//! which depends on a time zone that may arrive after the attempts. So the log
//! keeps the attempts themselves, not counts: everything derived from them is
//! computed when it is read, with the profile as it is then.
//!
//! The log keeps the [`ContactLog::CAPACITY`] latest attempts by time. Keeping
//! the latest of a set does not depend on the order the set arrived in, so
//! the log stays order-insensitive; a reader that needs attempts older than
//! the log reaches can tell by [`ContactLog::is_complete_since`].

use serde::{Deserialize, Serialize};

use super::stamp::Stamp;
use crate::events::{Channel, ContactOutcome, UnixTime};

/// One attempt, packed into 6 bytes: the big-endian stamp, then the channel
/// and outcome indexes, so that byte order is time order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContactRecord([u8; 6]);

impl ContactRecord {
    /// The record of an attempt on `channel` at `at` that came to `outcome`.
    pub fn new(at: UnixTime, channel: Channel, outcome: ContactOutcome) -> Self {
        let [a, b, c, d] = Stamp::new(at).to_bits().to_be_bytes();
        ContactRecord([a, b, c, d, channel.index() as u8, outcome.index() as u8])
    }

    /// When the attempt happened.
    pub fn at(self) -> UnixTime {
        let [a, b, c, d, ..] = self.0;
        // Only real times are recorded, never `Stamp::NEVER`.
        Stamp::from_bits(u32::from_be_bytes([a, b, c, d]))
            .unix()
            .unwrap_or(UnixTime(0))
    }

    /// The channel of the attempt.
    pub fn channel(self) -> Channel {
        Channel::from_index(usize::from(self.0[4])).unwrap_or(Channel::Call)
    }

    /// What came of it.
    pub fn outcome(self) -> ContactOutcome {
        ContactOutcome::from_index(usize::from(self.0[5])).unwrap_or(ContactOutcome::Failed)
    }
}

impl std::fmt::Debug for ContactRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {:?}", self.at(), self.channel(), self.outcome())
    }
}

/// The latest contact attempts, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLog {
    records: Box<[ContactRecord]>,
}

impl ContactLog {
    /// Most attempts kept; older ones fall out of the log.
    pub const CAPACITY: usize = 64;

    /// Records an attempt, dropping the oldest when the log is full.
    pub fn record(&mut self, record: ContactRecord) {
        let is_full = self.records.len() >= Self::CAPACITY;
        if is_full && record <= self.records[0] {
            return;
        }
        let at = self.records.partition_point(|r| *r < record);
        let skip = usize::from(is_full);
        let mut records = Vec::with_capacity(self.records.len() + 1 - skip);
        records.extend_from_slice(&self.records[skip..at]);
        records.push(record);
        records.extend_from_slice(&self.records[at..]);
        self.records = records.into_boxed_slice();
    }

    /// The attempts kept, oldest first.
    pub fn records(&self) -> &[ContactRecord] {
        &self.records
    }

    /// Whether the log holds every attempt that happened at or after `since`:
    /// true unless attempts have fallen out of it that may be that recent.
    pub fn is_complete_since(&self, since: UnixTime) -> bool {
        self.records.len() < Self::CAPACITY || self.records[0].at() < since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_750_000_000;

    fn record(minute: i64, channel: Channel) -> ContactRecord {
        ContactRecord::new(
            UnixTime(T0 + minute * 60),
            channel,
            ContactOutcome::NoAnswer,
        )
    }

    #[test]
    fn a_record_packs_and_unpacks() {
        let at = UnixTime(T0 + 17);
        let r = ContactRecord::new(at, Channel::WhatsApp, ContactOutcome::Replied);
        assert_eq!(
            (r.at(), r.channel(), r.outcome()),
            (at, Channel::WhatsApp, ContactOutcome::Replied)
        );
        assert!(record(1, Channel::Email) < record(2, Channel::Call));
    }

    #[test]
    fn the_latest_attempts_are_kept_whatever_the_arrival_order() {
        let all: Vec<ContactRecord> = (0..100)
            .map(|i| record(i * 7 % 100, Channel::ALL[i as usize % 4]))
            .collect();
        let mut forward = ContactLog::default();
        let mut backward = ContactLog::default();
        for r in &all {
            forward.record(*r);
        }
        for r in all.iter().rev() {
            backward.record(*r);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.records().len(), ContactLog::CAPACITY);
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(forward.records(), &expected[100 - ContactLog::CAPACITY..]);

        let oldest_kept = forward.records()[0].at();
        assert!(forward.is_complete_since(UnixTime(oldest_kept.0 + 1)));
        assert!(!forward.is_complete_since(oldest_kept));
        assert!(ContactLog::default().is_complete_since(UnixTime(0)));
    }
}
