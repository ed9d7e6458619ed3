//! Times as state stores them: 32 bits instead of 64, with 0 meaning "never".
//!
//! Validation keeps every event time within 2000-01-01 .. 2100-01-01, which
//! fits in a `u32` of seconds since 2000 with room to spare.

use serde::{Deserialize, Serialize};

use crate::events::UnixTime;
use crate::events::validation::EARLIEST_TIME;

/// Seconds since 2000-01-01T00:00:00Z, plus one, so that 0 can mean "never".
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp(u32);

impl Stamp {
    /// No time: earlier than every other stamp.
    pub const NEVER: Stamp = Stamp(0);

    /// The stamp of `at`, saturating outside the range validation allows.
    pub fn new(at: UnixTime) -> Stamp {
        Stamp((at.0 - EARLIEST_TIME.0 + 1).clamp(1, i64::from(u32::MAX)) as u32)
    }

    /// The time this stamp stands for, or `None` for [`Stamp::NEVER`].
    pub fn unix(self) -> Option<UnixTime> {
        (self != Stamp::NEVER).then(|| UnixTime(i64::from(self.0) - 1 + EARLIEST_TIME.0))
    }

    /// The stamp's raw value, for compact encodings.
    pub fn to_bits(self) -> u32 {
        self.0
    }

    /// The stamp of a raw value from [`Stamp::to_bits`].
    pub fn from_bits(bits: u32) -> Stamp {
        Stamp(bits)
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(self, earlier: Stamp) -> i64 {
        i64::from(self.0) - i64::from(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::validation::LATEST_TIME;

    #[test]
    fn every_valid_time_round_trips() {
        for at in [EARLIEST_TIME, UnixTime(1_767_571_200), LATEST_TIME] {
            assert_eq!(Stamp::new(at).unix(), Some(at));
        }
        assert_eq!(Stamp::NEVER.unix(), None);
        assert!(Stamp::NEVER < Stamp::new(EARLIEST_TIME));
    }
}
