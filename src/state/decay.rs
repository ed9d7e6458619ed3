//! Exponentially decayed sums that end at the same value whatever order their
//! inputs arrive in.
//!
//! Each sum is kept as its value at one reference time, the latest input time
//! seen. An input later than the reference first decays every sum up to it; an
//! earlier input is decayed down to the reference before it is added. Either way
//! the stored value is `Σ aᵢ·2^(−(reference − tᵢ)/half_life)`.

use serde::{Deserialize, Serialize};

use super::stamp::Stamp;
use crate::events::{SECONDS_PER_DAY, UnixTime};

/// The decayed series a debtor keeps, each with its half-life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Money paid (minor units), net of reversals.
    Paid7d,
    Paid30d,
    Paid90d,
    /// Money billed (minor units).
    Billed30d,
    Billed90d,
    /// Contact attempts on any channel.
    Attempts7d,
    Attempts30d,
    /// Contact attempts that reached the debtor.
    Successes30d,
    /// Money billed on invoices already past their due date when issued
    /// (debt placed or restated as arrears).
    PastDueBilled90d,
}

impl Series {
    /// How many series there are.
    pub const COUNT: usize = 9;

    const HALF_LIFE_DAYS: [f64; Series::COUNT] =
        [7.0, 30.0, 90.0, 30.0, 90.0, 7.0, 30.0, 30.0, 90.0];

    /// The half-life of this series in days.
    pub fn half_life_days(self) -> f64 {
        Series::HALF_LIFE_DAYS[self as usize]
    }
}

/// All decayed series of one debtor, at a shared reference time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecayedSums {
    reference_at: Stamp,
    values: [f64; Series::COUNT],
}

/// `2^(−elapsed / half_life)` for an elapsed time in seconds.
fn decay_factor(elapsed_secs: i64, half_life_days: f64) -> f64 {
    let elapsed_days = elapsed_secs as f64 / SECONDS_PER_DAY as f64;
    (-std::f64::consts::LN_2 * elapsed_days / half_life_days).exp()
}

impl DecayedSums {
    /// Adds `amount` at time `at` to `series`.
    pub fn add(&mut self, series: Series, amount: f64, at: UnixTime) {
        let at = Stamp::new(at);
        if at > self.reference_at {
            let elapsed = at.seconds_since(self.reference_at);
            for (value, half_life) in self.values.iter_mut().zip(Series::HALF_LIFE_DAYS) {
                *value *= decay_factor(elapsed, half_life);
            }
            self.reference_at = at;
        }
        let lag = self.reference_at.seconds_since(at);
        self.values[series as usize] += amount * decay_factor(lag, series.half_life_days());
    }

    /// The value of `series` at `as_of` (never decayed backwards before the
    /// reference time).
    pub fn value_at(&self, series: Series, as_of: UnixTime) -> f64 {
        let elapsed = Stamp::new(as_of).seconds_since(self.reference_at).max(0);
        self.values[series as usize] * decay_factor(elapsed, series.half_life_days())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_halves_after_one_half_life() {
        let mut sums = DecayedSums::default();
        let t0 = UnixTime(1_700_000_000);
        sums.add(Series::Paid7d, 100.0, t0);
        let later = t0.plus_days(7);
        assert!((sums.value_at(Series::Paid7d, later) - 50.0).abs() < 1e-9);
        assert!((sums.value_at(Series::Paid30d, later)).abs() < 1e-12);
    }

    #[test]
    fn order_of_inputs_does_not_matter() {
        let t0 = UnixTime(1_700_000_000);
        let inputs = [(t0, 10.0), (t0.plus_days(3), 5.0), (t0.plus_days(40), 7.0)];
        let mut forward = DecayedSums::default();
        let mut backward = DecayedSums::default();
        for (at, amount) in inputs {
            forward.add(Series::Paid30d, amount, at);
        }
        for (at, amount) in inputs.iter().rev() {
            backward.add(Series::Paid30d, *amount, *at);
        }
        let as_of = t0.plus_days(45);
        let (f, b) = (
            forward.value_at(Series::Paid30d, as_of),
            backward.value_at(Series::Paid30d, as_of),
        );
        assert!((f - b).abs() < 1e-9, "{f} vs {b}");
        let expected = 10.0 * 0.5f64.powf(45.0 / 30.0)
            + 5.0 * 0.5f64.powf(42.0 / 30.0)
            + 7.0 * 0.5f64.powf(5.0 / 30.0);
        assert!((f - expected).abs() < 1e-9);
    }
}
