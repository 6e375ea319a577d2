//! Proleptic Gregorian calendar arithmetic for birth dates.
//!
//! The crate only needs "is this a real day, is it after 1900 and not after today" and
//! "pick a random day in a range"; a date crate would be a dependency for three functions.
//! Day counts use Howard Hinnant's `days_from_civil` algorithms, exact for every year
//! this crate can see.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// China Standard Time, UTC+8: the customers are in China, so "today" is their today.
const CST_OFFSET_SECS: u64 = 8 * 3600;

/// A real calendar day. Fields are ordered so that the derived `Ord` is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// The day, if it exists (no 30 February, 29 February only in leap years).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let real = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        real.then_some(Date { year, month, day })
    }

    /// Whether the day is not after today (CST). Birth dates are checked by the million
    /// while scanning, so today is read from the clock once and kept: a day on or
    /// before the kept one is certainly not in the future (time only moves forward), and
    /// only a later day costs a fresh look at the clock.
    pub fn not_after_today(self) -> bool {
        use std::sync::atomic::{AtomicI64, Ordering};
        static TODAY: AtomicI64 = AtomicI64::new(i64::MIN);
        let days = days_from_civil(self.year, self.month, self.day);
        if days <= TODAY.load(Ordering::Relaxed) {
            return true;
        }
        let today = Date::today();
        let today_days = days_from_civil(today.year, today.month, today.day);
        TODAY.fetch_max(today_days, Ordering::Relaxed);
        days <= today_days
    }

    /// Today's date in China Standard Time.
    pub fn today() -> Date {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Date::from_days(((secs + CST_OFFSET_SECS) / 86_400) as i64)
    }

    /// The day `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date {
            year: year as i32,
            month,
            day,
        }
    }

    /// Days since 1970-01-01 (negative before).
    #[cfg(test)]
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }
}

impl fmt::Display for Date {
    /// ISO 8601, `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Days since 1970-01-01 of a year, month (1-12) and day.
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ` (also with
/// fractional seconds or a `±HH:MM` offset).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if s.len() < 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let date = Date::new(num(0..4)? as i32, num(5..7)? as u32, num(8..10)? as u32)?;
    let days = days_from_civil(date.year, date.month, date.day);
    if s.len() == 10 {
        return Some(days * 86_400);
    }
    let b = s.as_bytes();
    if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || s.len() < 20
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(days * 86_400 + h * 3600 + m * 60 + sec - offset)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds.
pub fn format_timestamp(unix: i64) -> String {
    let d = Date::from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{d}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("2026-11-24T18:00:47Z"), Some(1_795_543_247));
        assert_eq!(format_timestamp(1_795_543_247), "2026-11-24T18:00:47Z");
        assert_eq!(
            parse_timestamp("2026-11-25T02:00:47+08:00"),
            Some(1_795_543_247)
        );
        assert_eq!(
            parse_timestamp("2026-11-24T18:00:47.123Z"),
            Some(1_795_543_247)
        );
        assert_eq!(parse_timestamp("2026-02-30"), None);
        assert_eq!(parse_timestamp("2026-11-24T25:00:00Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2026-11-24T18:00:47"), None);
    }

    #[test]
    fn epoch_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(11_016).to_string(), "2000-02-29");
        assert_eq!(Date::from_days(-25_567).to_string(), "1900-01-01");
    }

    #[test]
    fn days_round_trip_over_two_centuries() {
        let start = days_from_civil(1899, 1, 1);
        let end = days_from_civil(2101, 1, 1);
        let mut previous: Option<Date> = None;
        for days in start..end {
            let date = Date::from_days(days);
            assert_eq!(date.days(), days);
            assert_eq!(Date::new(date.year, date.month, date.day), Some(date));
            if let Some(p) = previous {
                assert!(p < date);
            }
            previous = Some(date);
        }
    }

    #[test]
    fn only_real_days_exist() {
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2023, 2, 30).is_none());
        assert!(Date::new(2023, 4, 31).is_none());
        assert!(Date::new(2023, 12, 31).is_some());
        assert!(Date::new(2023, 13, 1).is_none());
        assert!(Date::new(2023, 0, 1).is_none());
        assert!(Date::new(2023, 1, 0).is_none());
    }

    #[test]
    fn today_is_plausible() {
        let today = Date::today();
        assert!(today.year >= 2025 && today.year < 2200);
        assert_eq!(Date::new(today.year, today.month, today.day), Some(today));
    }
}
