//! Public holidays by calendar, computed from their rules rather than listed,
//! so that they are right for any year a debtor may be contacted in.

use chrono::{Datelike, Duration, NaiveDate};

/// Calendars a policy may name.
pub const CALENDARS: [&str; 1] = ["colombia"];

/// Easter Sunday of `year` (Gregorian; the anonymous algorithm in Meeus).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a real date")
}

/// `date` if it is a Monday, else the Monday after it.
fn to_monday(date: NaiveDate) -> NaiveDate {
    let days = (7 - date.weekday().num_days_from_monday()) % 7;
    date + Duration::days(i64::from(days))
}

/// Colombia's public holidays of `year` (Ley 51 de 1983): fixed dates, dates
/// moved to the following Monday, and feasts counted from Easter, some of
/// them moved to Monday too.
pub fn colombia(year: i32) -> Vec<NaiveDate> {
    let date = |month, day| NaiveDate::from_ymd_opt(year, month, day).expect("a real date");
    let easter = easter(year);
    let after_easter = |days| easter + Duration::days(days);
    let mut days = vec![
        // Fixed.
        date(1, 1),
        date(5, 1),
        date(7, 20),
        date(8, 7),
        date(12, 8),
        date(12, 25),
        // Holy Thursday and Good Friday.
        after_easter(-3),
        after_easter(-2),
    ];
    // Moved to the next Monday when they fall on another day.
    let moved = [
        date(1, 6),
        date(3, 19),
        date(6, 29),
        date(8, 15),
        date(10, 12),
        date(11, 1),
        date(11, 11),
        // Ascension, Corpus Christi, Sacred Heart.
        after_easter(39),
        after_easter(60),
        after_easter(68),
    ];
    days.extend(moved.into_iter().map(to_monday));
    days.sort_unstable();
    days.dedup();
    days
}

/// The holidays of calendar `name` in `year`, or `None` for an unknown name.
pub fn calendar(name: &str, year: i32) -> Option<Vec<NaiveDate>> {
    match name {
        "colombia" => Some(colombia(year)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(year: i32, list: &[(u32, u32)]) -> Vec<NaiveDate> {
        list.iter()
            .map(|(m, d)| NaiveDate::from_ymd_opt(year, *m, *d).unwrap())
            .collect()
    }

    #[test]
    fn easter_falls_on_known_dates() {
        assert_eq!(easter(2024), NaiveDate::from_ymd_opt(2024, 3, 31).unwrap());
        assert_eq!(easter(2025), NaiveDate::from_ymd_opt(2025, 4, 20).unwrap());
        assert_eq!(easter(2026), NaiveDate::from_ymd_opt(2026, 4, 5).unwrap());
        assert_eq!(easter(2027), NaiveDate::from_ymd_opt(2027, 3, 28).unwrap());
    }

    #[test]
    fn colombian_holidays_of_2025_and_2026() {
        // The official lists: 18 holidays, two of which share 30 June 2025.
        let expected_2025 = [
            (1, 1),
            (1, 6),
            (3, 24),
            (4, 17),
            (4, 18),
            (5, 1),
            (6, 2),
            (6, 23),
            (6, 30),
            (7, 20),
            (8, 7),
            (8, 18),
            (10, 13),
            (11, 3),
            (11, 17),
            (12, 8),
            (12, 25),
        ];
        assert_eq!(colombia(2025), dates(2025, &expected_2025));
        let expected_2026 = [
            (1, 1),
            (1, 12),
            (3, 23),
            (4, 2),
            (4, 3),
            (5, 1),
            (5, 18),
            (6, 8),
            (6, 15),
            (6, 29),
            (7, 20),
            (8, 7),
            (8, 17),
            (10, 12),
            (11, 2),
            (11, 16),
            (12, 8),
            (12, 25),
        ];
        assert_eq!(colombia(2026), dates(2026, &expected_2026));
        assert!(calendar("narnia", 2026).is_none());
    }
}
