//! UTC timestamps and durations, as the history files and the command line write them.
//!
//! * [`Timestamp`]: nanoseconds since the Unix epoch, UTC, from 1677-09-21 to 2262-04-11
//!   (what an `i64` holds). [`Timestamp::rfc3339`] writes `2026-11-29T07:05:40.123456Z`
//!   (always six fraction digits and `Z`: the ledger's `time`), [`Timestamp::checkpoint_id`]
//!   writes `20261129T070540.123Z` (milliseconds, no colons: a file name that sorts as the
//!   time), and [`Timestamp::parse`] reads RFC 3339 and bare dates.
//! * [`parse_duration`] reads `30s`, `1d12h`, `2w`; [`format_duration`] writes one back.
//!
//! The calendar is the proleptic Gregorian one, without leap seconds, as Unix time counts.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use penin_history::time::{self, Timestamp};
//!
//! let t = Timestamp::parse("2026-11-29T08:05:40.123456789+01:00")?;
//! assert_eq!(t.rfc3339(), "2026-11-29T07:05:40.123456Z");
//! assert_eq!(t.checkpoint_id(), "20261129T070540.123Z");
//! assert_eq!(Timestamp::parse("2026-11-29")?.rfc3339(), "2026-11-29T00:00:00.000000Z");
//!
//! let error = Timestamp::parse("2025-02-29").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "invalid time \"2025-02-29\" at character 9: february 2025 has 28 days, not 29"
//! );
//!
//! let d = time::parse_duration("1d12h")?;
//! assert_eq!(d, Duration::from_secs(36 * 3600));
//! assert_eq!(time::format_duration(d), "1d12h");
//! assert_eq!(t.checked_sub(d).map(|t| t.rfc3339()).as_deref(), Some("2026-11-27T19:05:40.123456Z"));
//! # Ok::<(), penin_history::time::TimeError>(())
//! ```

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// The units of [`parse_duration`], largest first, with their length in seconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400),
    ("w", 7 * 86_400),
    ("d", 86_400),
    ("h", 3_600),
    ("min", 60),
    ("m", 60),
    ("s", 1),
];

/// How [`parse_duration`]'s errors list the units.
const UNIT_LIST: &str = "y, w, d, h, m or min, s";

/// An instant in UTC, as nanoseconds since 1970-01-01T00:00:00Z (negative before).
///
/// Ordered by time. `Display` writes [`Timestamp::rfc3339`]; `Debug` writes all nine
/// fraction digits; `FromStr` is [`Timestamp::parse`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// The earliest timestamp, 1677-09-21T00:12:43.145224192Z.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest timestamp, 2262-04-11T23:47:16.854775807Z.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The system clock's time, clamped to [`Timestamp::MIN`]..=[`Timestamp::MAX`].
    #[must_use]
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => Timestamp(i64::try_from(after.as_nanos()).unwrap_or(i64::MAX)),
            Err(before) => {
                let nanos = i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX);
                Timestamp(-nanos)
            }
        }
    }

    /// The timestamp `nanos` nanoseconds after the Unix epoch (before it if negative).
    #[must_use]
    pub const fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch (negative before it).
    #[must_use]
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// `self + duration`, or `None` past [`Timestamp::MAX`].
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Timestamp> {
        let nanos = i64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Timestamp)
    }

    /// `self - duration`, or `None` before [`Timestamp::MIN`].
    #[must_use]
    pub fn checked_sub(self, duration: Duration) -> Option<Timestamp> {
        let nanos = i64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_sub(nanos).map(Timestamp)
    }

    /// How long after `earlier` this is, or `None` if it is before `earlier`.
    #[must_use]
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let nanos = i128::from(self.0) - i128::from(earlier.0);
        let nanos = u64::try_from(nanos).ok()?;
        Some(Duration::from_nanos(nanos))
    }

    /// The timestamp cut down to a whole multiple of `unit` nanoseconds (towards the past).
    pub(crate) fn floor(self, unit: i64) -> Timestamp {
        Timestamp(self.0 - self.0.rem_euclid(unit))
    }

    /// RFC 3339 in UTC with six fraction digits: `2026-11-29T07:05:40.123456Z`. The
    /// nanoseconds below the microsecond are cut off (towards the past), so the text sorts
    /// as the time and reads back as the time cut down to the microsecond.
    #[must_use]
    pub fn rfc3339(&self) -> String {
        self.extended(6)
    }

    /// The name of a checkpoint taken at this time: `20261129T070540.123Z`, the ISO 8601
    /// basic format to the millisecond (cut towards the past), no colons, so that it is a
    /// file name everywhere and sorts as the time.
    #[must_use]
    pub fn checkpoint_id(&self) -> String {
        let parts = Parts::of(*self);
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
            parts.year,
            parts.month,
            parts.day,
            parts.hour,
            parts.minute,
            parts.second,
            parts.nanos / 1_000_000
        )
    }

    /// The timestamp a [`Timestamp::checkpoint_id`] names, if `id` is one exactly (the
    /// form, the ranges, and the canonical digits: it writes back as `id`).
    pub(crate) fn from_checkpoint_id(id: &str) -> Option<Timestamp> {
        let b = id.as_bytes();
        if b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            let digits = &b[range];
            digits
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
        };
        let year = number(0..4)?;
        let month = number(4..6)?;
        let day = number(6..8)?;
        let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
        let millis = number(16..19)?;
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(i64::from(year), month)
            && hour <= 23
            && minute <= 59
            && second <= 59;
        if !valid {
            return None;
        }
        let seconds = days_from_civil(i64::from(year), month, day) * SECONDS_PER_DAY
            + i64::from(hour * 3600 + minute * 60 + second);
        let nanos =
            i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(millis) * 1_000_000;
        i64::try_from(nanos).ok().map(Timestamp)
    }

    /// Reads a time: RFC 3339 or a bare date.
    ///
    /// * `2026-11-29T07:05:40Z`, `2026-11-29T09:05:40+02:00`, `2026-11-29 07:05:40.5-03:30`:
    ///   a date, `T`, `t` or a space, a time with seconds, an optional fraction of 1 to 9
    ///   digits, and `Z`, `z` or an offset `±HH:MM` (required: a time without one would be
    ///   read in an unknown zone);
    /// * `2026-11-29`: midnight UTC of that day.
    ///
    /// Months, days of the month (leap years included), hours, minutes, seconds and
    /// offsets are checked; a leap second (`:60`) is refused, as Unix time has none. An
    /// error names the 1-based character where the text goes wrong, and what is wrong.
    pub fn parse(text: &str) -> Result<Timestamp, TimeError> {
        Parser { text, pos: 0 }.timestamp()
    }

    /// The text with `digits` fraction digits (1..=9), in UTC.
    fn extended(self, digits: u32) -> String {
        let parts = Parts::of(self);
        let fraction = parts.nanos / 10_u32.pow(9 - digits);
        let width = digits as usize;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction:0width$}Z",
            parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.extended(9))
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;

    fn from_str(text: &str) -> Result<Timestamp, TimeError> {
        Timestamp::parse(text)
    }
}

/// A timestamp's calendar fields in UTC.
struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Parts {
    fn of(time: Timestamp) -> Parts {
        let seconds = time.0.div_euclid(NANOS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        // Both remainders are non-negative and below their divisor, so they fit a `u32`.
        let nanos = u32::try_from(time.0.rem_euclid(NANOS_PER_SECOND)).unwrap_or(0);
        let of_day = u32::try_from(seconds.rem_euclid(SECONDS_PER_DAY)).unwrap_or(0);
        let (year, month, day) = civil_from_days(days);
        Parts {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            nanos,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // doy is in 0..366 and mp in 0..12, so day is in 1..=31 and month in 1..=12.
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's `days_from_civil`);
/// `month` in 1..=12, `day` in 1..=31.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days of `month` (1..=12) in `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// An error reading a time or a duration.
///
/// Positions are 1-based and count characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The text is not a time as [`Timestamp::parse`] reads it.
    #[error("invalid time {text:?} at character {at}: {what}")]
    Time {
        /// The text.
        text: String,
        /// The 1-based character where it goes wrong.
        at: usize,
        /// What is wrong there.
        what: String,
    },
    /// The text is a valid time, but outside what a [`Timestamp`] holds.
    #[error("time {text:?} is outside the range of a timestamp, 1677-09-21 to 2262-04-11")]
    TimeOutOfRange {
        /// The text.
        text: String,
    },
    /// The text is not a duration as [`parse_duration`] reads it.
    #[error("invalid duration {text:?} at character {at}: {what}")]
    Duration {
        /// The text.
        text: String,
        /// The 1-based character where it goes wrong.
        at: usize,
        /// What is wrong there.
        what: String,
    },
    /// The duration is longer than a [`Duration`] holds (about 585 billion years).
    #[error("duration {text:?} is too long")]
    DurationOverflow {
        /// The text.
        text: String,
    },
}

impl TimeError {
    /// The 1-based character where the text goes wrong, for a syntax or range error.
    #[must_use]
    pub fn at(&self) -> Option<usize> {
        match self {
            Self::Time { at, .. } | Self::Duration { at, .. } => Some(*at),
            Self::TimeOutOfRange { .. } | Self::DurationOverflow { .. } => None,
        }
    }
}

/// The 1-based character position of the byte offset `pos` in `text`.
fn char_position(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(pos, |before| before.chars().count()) + 1
}

/// What is at byte `pos` of `text`, for an error message: `'x'` or `the end`.
fn found_at(text: &str, pos: usize) -> String {
    match text.get(pos..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("{c:?}"),
        None => "the end".to_owned(),
    }
}

/// A cursor over the text of a time. It moves only over ASCII bytes, so that its position
/// is always a character boundary.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn timestamp(mut self) -> Result<Timestamp, TimeError> {
        let year = self.digits(4, "a four-digit year")?;
        self.expect(b'-', "'-' after the year")?;
        let month_at = self.pos;
        let month = self.digits(2, "a two-digit month")?;
        if !(1..=12).contains(&month) {
            return Err(self.error_at(month_at, format!("month {month:02} is not 01 to 12")));
        }
        self.expect(b'-', "'-' after the month")?;
        let day_at = self.pos;
        let day = self.digits(2, "a two-digit day")?;
        let year = i64::from(year);
        let days = days_in_month(year, month);
        if day == 0 || day > days {
            let name = MONTH_NAMES[month as usize - 1];
            let what = format!("{name} {year:04} has {days} days, not {day:02}");
            return Err(self.error_at(day_at, what));
        }
        let mut seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY;
        let mut nanos = 0;
        if self.pos < self.text.len() {
            match self.peek() {
                Some(b'T' | b't' | b' ') => self.pos += 1,
                _ => return Err(self.unexpected("'T' or a space between the date and the time")),
            }
            let (time_of_day, fraction) = self.time_of_day()?;
            seconds += time_of_day;
            nanos = fraction;
            seconds -= self.offset()?;
            if self.pos < self.text.len() {
                let what = format!(
                    "unexpected {} after the time",
                    found_at(self.text, self.pos)
                );
                return Err(self.error_at(self.pos, what));
            }
        }
        let total = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
        i64::try_from(total)
            .map(Timestamp)
            .map_err(|_| TimeError::TimeOutOfRange {
                text: self.text.to_owned(),
            })
    }

    /// `HH:MM:SS` and an optional fraction: the seconds into the day and the nanoseconds.
    fn time_of_day(&mut self) -> Result<(i64, u32), TimeError> {
        let hour = self.field(23, "hour", "a two-digit hour")?;
        self.expect(b':', "':' after the hour")?;
        let minute = self.field(59, "minute", "a two-digit minute")?;
        self.expect(b':', "':' and the seconds after the minute")?;
        let second_at = self.pos;
        let second = self.digits(2, "two-digit seconds")?;
        if second == 60 {
            let what = "leap second 60 is not supported: Unix time has none";
            return Err(self.error_at(second_at, what));
        }
        if second > 59 {
            return Err(self.error_at(second_at, format!("second {second:02} is not 00 to 59")));
        }
        let mut nanos = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let mut digits = 0;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                if digits == 9 {
                    return Err(self.error_at(self.pos, "more than 9 fraction digits"));
                }
                nanos = nanos * 10 + u32::from(d - b'0');
                digits += 1;
                self.pos += 1;
            }
            if digits == 0 {
                return Err(self.unexpected("a digit after '.'"));
            }
            nanos *= 10_u32.pow(9 - digits);
        }
        let seconds = i64::from(hour * 3600 + minute * 60 + second);
        Ok((seconds, nanos))
    }

    /// `Z`, `z` or `±HH:MM`: the offset from UTC in seconds.
    fn offset(&mut self) -> Result<i64, TimeError> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(self.unexpected("'Z' or an offset such as +02:00 after the time")),
        };
        self.pos += 1;
        let hours = self.field(23, "offset hour", "a two-digit offset hour")?;
        self.expect(b':', "':' in the offset")?;
        let minutes = self.field(59, "offset minute", "two-digit offset minutes")?;
        Ok(sign * i64::from(hours * 3600 + minutes * 60))
    }

    /// Two digits of at most `max`.
    fn field(&mut self, max: u32, name: &str, expected: &str) -> Result<u32, TimeError> {
        let at = self.pos;
        let value = self.digits(2, expected)?;
        if value > max {
            return Err(self.error_at(at, format!("{name} {value:02} is not 00 to {max}")));
        }
        Ok(value)
    }

    /// Exactly `count` ASCII digits, as a number.
    fn digits(&mut self, count: usize, expected: &str) -> Result<u32, TimeError> {
        let mut value = 0;
        for _ in 0..count {
            match self.peek() {
                Some(d @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(d - b'0');
                    self.pos += 1;
                }
                _ => return Err(self.unexpected(expected)),
            }
        }
        Ok(value)
    }

    fn expect(&mut self, byte: u8, expected: &str) -> Result<(), TimeError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// `expected …, found …` at the current position.
    fn unexpected(&self, expected: &str) -> TimeError {
        let found = found_at(self.text, self.pos);
        self.error_at(self.pos, format!("expected {expected}, found {found}"))
    }

    fn error_at(&self, pos: usize, what: impl Into<String>) -> TimeError {
        TimeError::Time {
            text: self.text.to_owned(),
            at: char_position(self.text, pos),
            what: what.into(),
        }
    }
}

/// Reads a duration: one or more `<integer><unit>`, such as `30s`, `90m`, `1d12h` or `2w`.
///
/// The units are `y` (365 days), `w` (7 days), `d` (24 hours), `h`, `m` or `min`
/// (minutes) and `s`; the parts add up, in any order. No spaces, signs or fractions. An
/// empty text is an error, and so is a duration longer than a [`Duration`] holds.
pub fn parse_duration(text: &str) -> Result<Duration, TimeError> {
    let error = |pos: usize, what: String| TimeError::Duration {
        text: text.to_owned(),
        at: char_position(text, pos),
        what,
    };
    let overflow = || TimeError::DurationOverflow {
        text: text.to_owned(),
    };
    if text.is_empty() {
        let what = "a duration is one or more of a number and a unit, such as 30s or 1d12h";
        return Err(error(0, format!("empty text; {what}")));
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total: u64 = 0;
    while pos < bytes.len() {
        let number_at = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == number_at {
            let what = format!("expected a number, found {}", found_at(text, pos));
            return Err(error(pos, what));
        }
        let number = &text[number_at..pos];
        // Only digits: the one way to fail is a number too large for a `u64`.
        let count: u64 = number.parse().map_err(|_| overflow())?;
        let unit_at = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_at..pos];
        if unit.is_empty() {
            let found = found_at(text, pos);
            let what = format!("expected a unit ({UNIT_LIST}) after {number}, found {found}");
            return Err(error(pos, what));
        }
        let Some(&(_, seconds)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let what = format!("unknown unit {unit:?}; the units are {UNIT_LIST}");
            return Err(error(unit_at, what));
        };
        total = count
            .checked_mul(seconds)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(overflow)?;
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration as [`parse_duration`] reads it, largest units first: `1d12h`, `2w`,
/// `0s`. A fraction of a second is written as a decimal fraction of the seconds (`1m0.5s`),
/// which is for messages only: [`parse_duration`] reads whole numbers.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let mut text = String::new();
    for &(name, length) in UNITS
        .iter()
        .filter(|(name, _)| !matches!(*name, "min" | "s"))
    {
        if seconds >= length {
            // Writing to a `String` cannot fail.
            let _ = write!(text, "{}{name}", seconds / length);
            seconds %= length;
        }
    }
    if seconds > 0 || nanos > 0 || text.is_empty() {
        let _ = write!(text, "{seconds}");
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            let _ = write!(text, ".{}", fraction.trim_end_matches('0'));
        }
        text.push('s');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn civil_dates_both_ways() {
        let cases = [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (19_722, (2023, 12, 31)),
            (20_782, (2026, 11, 25)),
            (11_016, (2000, 2, 29)),
            (-106_752, (1677, 9, 21)),
            (106_751, (2262, 4, 11)),
        ];
        for (days, (y, m, d)) in cases {
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m), "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rfc3339_writes_six_digits_and_z() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1, "1970-01-01T00:00:00.000000Z"),
            (999, "1970-01-01T00:00:00.000000Z"),
            (1_000, "1970-01-01T00:00:00.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (1_795_935_940_123_456_789, "2026-11-29T07:05:40.123456Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775Z"),
        ];
        for (nanos, text) in cases {
            let t = Timestamp::from_unix_nanos(nanos);
            assert_eq!(t.rfc3339(), text, "{nanos}");
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            format!(
                "{:?}",
                Timestamp::from_unix_nanos(1_795_935_940_123_456_789)
            ),
            "Timestamp(2026-11-29T07:05:40.123456789Z)"
        );
    }

    #[test]
    fn checkpoint_ids() {
        let cases = [
            (0, "19700101T000000.000Z"),
            (-1, "19691231T235959.999Z"),
            (1_795_935_940_123_456_789, "20261129T070540.123Z"),
            (1_795_935_940_999_999_999, "20261129T070540.999Z"),
        ];
        for (nanos, id) in cases {
            let t = Timestamp::from_unix_nanos(nanos);
            assert_eq!(t.checkpoint_id(), id);
            assert_eq!(Timestamp::from_checkpoint_id(id), Some(t.floor(1_000_000)));
        }
        for bad in [
            "",
            "20261129T070540.123",
            "20261129T070540.123Zx",
            "20261129t070540.123Z",
            "20261129T070540,123Z",
            "2026112xT070540.123Z",
            "20261329T070540.123Z",
            "20260229T070540.123Z",
            "20261100T070540.123Z",
            "20261129T240540.123Z",
            "20261129T076040.123Z",
            "20261129T070560.123Z",
            "99991231T235959.999Z",
            "+2026112T070540.123Z",
            "2026-11-29T07:05:40Z",
        ] {
            assert_eq!(Timestamp::from_checkpoint_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_accepts_rfc3339_and_dates() {
        let cases = [
            ("2026-11-29T07:05:40Z", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29t07:05:40z", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29 07:05:40Z", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29T07:05:40.1Z", "2026-11-29T07:05:40.100000Z"),
            ("2026-11-29T07:05:40.123456Z", "2026-11-29T07:05:40.123456Z"),
            (
                "2026-11-29T07:05:40.123456789Z",
                "2026-11-29T07:05:40.123456Z",
            ),
            ("2026-11-29T09:05:40+02:00", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29T03:35:40-03:30", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29T07:05:40-00:00", "2026-11-29T07:05:40.000000Z"),
            ("2026-11-29T00:30:00+01:00", "2026-11-28T23:30:00.000000Z"),
            ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00.000000Z"),
            ("2026-11-29", "2026-11-29T00:00:00.000000Z"),
            ("2000-02-29", "2000-02-29T00:00:00.000000Z"),
            ("2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999999Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"),
            ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(at(text).rfc3339(), expected, "{text}");
            assert_eq!(text.parse::<Timestamp>().unwrap().rfc3339(), expected);
        }
        assert_eq!(at("1970-01-01T00:00:00.000000001Z").unix_nanos(), 1);
        assert_eq!(at("1969-12-31T23:59:59.999999999Z").unix_nanos(), -1);
        assert_eq!(at("2262-04-11T23:47:16.854775807Z"), Timestamp::MAX);
        assert_eq!(at("1677-09-21T00:12:43.145224192Z"), Timestamp::MIN);
    }

    #[test]
    fn parse_errors_say_what_and_where() {
        let cases = [
            ("", 1, "expected a four-digit year, found the end"),
            ("26-11-29", 3, "expected a four-digit year, found '-'"),
            ("20261-11-29", 5, "expected '-' after the year, found '1'"),
            ("2026/11/29", 5, "expected '-' after the year, found '/'"),
            ("2026-1-29", 7, "expected a two-digit month, found '-'"),
            ("2026-13-01", 6, "month 13 is not 01 to 12"),
            ("2026-00-01", 6, "month 00 is not 01 to 12"),
            ("2026-11-31", 9, "november 2026 has 30 days, not 31"),
            ("2026-11-00", 9, "november 2026 has 30 days, not 00"),
            ("2025-02-29", 9, "february 2025 has 28 days, not 29"),
            ("1900-02-29", 9, "february 1900 has 28 days, not 29"),
            ("2024-02-30", 9, "february 2024 has 29 days, not 30"),
            (
                "2026-11-29x",
                11,
                "expected 'T' or a space between the date and the time, found 'x'",
            ),
            (
                "2026-11-29T",
                12,
                "expected a two-digit hour, found the end",
            ),
            ("2026-11-29T24:00:00Z", 12, "hour 24 is not 00 to 23"),
            ("2026-11-29T07:60:00Z", 15, "minute 60 is not 00 to 59"),
            (
                "2026-11-29T07:05Z",
                17,
                "expected ':' and the seconds after the minute, found 'Z'",
            ),
            ("2026-11-29T07:05:61Z", 18, "second 61 is not 00 to 59"),
            (
                "2026-12-31T23:59:60Z",
                18,
                "leap second 60 is not supported: Unix time has none",
            ),
            (
                "2026-11-29T07:05:40",
                20,
                "expected 'Z' or an offset such as +02:00 after the time, found the end",
            ),
            (
                "2026-11-29T07:05:40.Z",
                21,
                "expected a digit after '.', found 'Z'",
            ),
            (
                "2026-11-29T07:05:40.1234567891Z",
                30,
                "more than 9 fraction digits",
            ),
            (
                "2026-11-29T07:05:40+2:00",
                22,
                "expected a two-digit offset hour, found ':'",
            ),
            (
                "2026-11-29T07:05:40+24:00",
                21,
                "offset hour 24 is not 00 to 23",
            ),
            (
                "2026-11-29T07:05:40+02:60",
                24,
                "offset minute 60 is not 00 to 59",
            ),
            (
                "2026-11-29T07:05:40+0200",
                23,
                "expected ':' in the offset, found '0'",
            ),
            ("2026-11-29T07:05:40Z ", 21, "unexpected ' ' after the time"),
            ("2026-11-29T07:05:40Zé", 21, "unexpected 'é' after the time"),
            ("é2026", 1, "expected a four-digit year, found 'é'"),
        ];
        for (text, position, what) in cases {
            let error = Timestamp::parse(text).unwrap_err();
            assert_eq!(
                error,
                TimeError::Time {
                    text: text.to_owned(),
                    at: position,
                    what: what.to_owned()
                },
                "{text}"
            );
            assert_eq!(error.at(), Some(position));
        }
        let error = Timestamp::parse("2026-11-29T07:05:40.1234567891Z").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid time \"2026-11-29T07:05:40.1234567891Z\" at character 30: \
             more than 9 fraction digits"
        );
    }

    #[test]
    fn parse_refuses_times_beyond_the_range() {
        for text in [
            "2262-04-11T23:47:16.854775808Z",
            "2262-04-12",
            "1677-09-21T00:12:43.145224191Z",
            "1677-09-20",
            "0000-01-01",
            "9999-12-31T23:59:59Z",
        ] {
            let error = Timestamp::parse(text).unwrap_err();
            assert_eq!(
                error,
                TimeError::TimeOutOfRange {
                    text: text.to_owned()
                }
            );
            assert_eq!(error.at(), None);
        }
        assert_eq!(
            Timestamp::parse("2262-04-12").unwrap_err().to_string(),
            "time \"2262-04-12\" is outside the range of a timestamp, 1677-09-21 to 2262-04-11"
        );
    }

    #[test]
    fn arithmetic() {
        let t = at("2026-11-29T07:05:40Z");
        let day = Duration::from_secs(86_400);
        assert_eq!(t.checked_sub(day), Some(at("2026-11-28T07:05:40Z")));
        assert_eq!(t.checked_add(day), Some(at("2026-11-30T07:05:40Z")));
        assert_eq!(t.duration_since(at("2026-11-28T07:05:40Z")), Some(day));
        assert_eq!(t.duration_since(t), Some(Duration::ZERO));
        assert_eq!(at("2026-11-28T07:05:40Z").duration_since(t), None);
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Timestamp::MIN.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(t.checked_sub(Duration::MAX), None);
        assert_eq!(
            Timestamp::MAX.duration_since(Timestamp::MIN),
            Some(Duration::from_nanos(u64::MAX))
        );
        assert!(Timestamp::from_unix_nanos(-1) < Timestamp::UNIX_EPOCH);
        assert!(Timestamp::now() > at("2020-01-01"));
    }

    #[test]
    fn durations() {
        let cases = [
            ("0s", 0),
            ("30s", 30),
            ("90m", 5_400),
            ("90min", 5_400),
            ("1h", 3_600),
            ("1d12h", 129_600),
            ("12h1d", 129_600),
            ("2w", 1_209_600),
            ("1y", 31_536_000),
            (
                "1y1w1d1h1m1s",
                31_536_000 + 604_800 + 86_400 + 3_600 + 60 + 1,
            ),
            ("007s", 7),
            ("1m1m", 120),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn duration_errors() {
        let cases = [
            (
                "",
                1,
                "empty text; a duration is one or more of a number and a unit, such as 30s or 1d12h",
            ),
            (
                "30",
                3,
                "expected a unit (y, w, d, h, m or min, s) after 30, found the end",
            ),
            (
                "1d12",
                5,
                "expected a unit (y, w, d, h, m or min, s) after 12, found the end",
            ),
            ("s", 1, "expected a number, found 's'"),
            ("1d 12h", 3, "expected a number, found ' '"),
            ("-1d", 1, "expected a number, found '-'"),
            (
                "1.5h",
                2,
                "expected a unit (y, w, d, h, m or min, s) after 1, found '.'",
            ),
            (
                "1x",
                2,
                "unknown unit \"x\"; the units are y, w, d, h, m or min, s",
            ),
            (
                "3ms",
                2,
                "unknown unit \"ms\"; the units are y, w, d, h, m or min, s",
            ),
            (
                "1H",
                2,
                "unknown unit \"H\"; the units are y, w, d, h, m or min, s",
            ),
            ("1dé", 3, "expected a number, found 'é'"),
        ];
        for (text, position, what) in cases {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(
                error,
                TimeError::Duration {
                    text: text.to_owned(),
                    at: position,
                    what: what.to_owned()
                },
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("30").unwrap_err().to_string(),
            "invalid duration \"30\" at character 3: \
             expected a unit (y, w, d, h, m or min, s) after 30, found the end"
        );
        for text in [
            "18446744073709551616s",
            "18446744073709551615s1s",
            "584942417356y",
            "99999999999999999999999999d",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(TimeError::DurationOverflow {
                    text: text.to_owned()
                }),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn formatted_durations() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(129_600), "1d12h"),
            (Duration::from_secs(1_209_600), "2w"),
            (
                Duration::from_secs(31_536_000 + 9 * 86_400 + 61),
                "1y1w2d1m1s",
            ),
            (Duration::from_millis(60_500), "1m0.5s"),
            (Duration::from_nanos(1), "0.000000001s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
        }
    }

    proptest! {
        #[test]
        fn rfc3339_reads_back_as_the_time_to_the_microsecond(nanos: i64) {
            let t = Timestamp::from_unix_nanos(nanos);
            let text = t.rfc3339();
            prop_assert_eq!(Timestamp::parse(&text), Ok(t.floor(1_000)));
            prop_assert_eq!(text.len(), 27);
        }

        #[test]
        fn text_sorts_as_the_time(a: i64, b: i64) {
            let (a, b) = (Timestamp::from_unix_nanos(a), Timestamp::from_unix_nanos(b));
            prop_assert_eq!(a.floor(1_000).cmp(&b.floor(1_000)), a.rfc3339().cmp(&b.rfc3339()));
            prop_assert_eq!(
                a.floor(1_000_000).cmp(&b.floor(1_000_000)),
                a.checkpoint_id().cmp(&b.checkpoint_id())
            );
        }

        #[test]
        fn checkpoint_ids_read_back(nanos: i64) {
            let t = Timestamp::from_unix_nanos(nanos);
            let id = t.checkpoint_id();
            prop_assert_eq!(Timestamp::from_checkpoint_id(&id), Some(t.floor(1_000_000)));
        }

        #[test]
        fn offsets_shift_the_time(nanos in -9_000_000_000_000_000_i64..9_000_000_000_000_000, minutes in -(24 * 60 - 1)..(24 * 60_i64)) {
            let t = Timestamp::from_unix_nanos(nanos).floor(1_000);
            // The same instant written in a zone `minutes` east of UTC.
            let local = Timestamp::from_unix_nanos(nanos).floor(1_000).checked_add_signed(minutes * 60);
            let text = local.rfc3339();
            let sign = if minutes < 0 { '-' } else { '+' };
            let offset = format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60);
            let zoned = format!("{}{offset}", &text[..text.len() - 1]);
            prop_assert_eq!(Timestamp::parse(&zoned), Ok(t));
        }

        #[test]
        fn durations_read_back(seconds: u64) {
            let d = Duration::from_secs(seconds);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,40}") {
            let _ = Timestamp::parse(&text);
            let _ = parse_duration(&text);
        }

        #[test]
        fn near_misses_never_panic(text in "[0-9:.T+Zz -]{0,32}") {
            if let Err(TimeError::Time { at, .. }) = Timestamp::parse(&text) {
                prop_assert!(at >= 1 && at <= text.len() + 1);
            }
        }
    }

    impl Timestamp {
        /// `self` plus `seconds`, for the tests.
        fn checked_add_signed(self, seconds: i64) -> Timestamp {
            Timestamp(self.0 + seconds * NANOS_PER_SECOND)
        }
    }
}
