//! `interval`: months, days and microseconds kept apart, as PostgreSQL keeps them, because a
//! month and a day have no fixed length in the calendar (`'1 mon'` added to January 31 gives
//! the last day of February; `'1 day'` is not always 24 hours across a DST change).
//!
//! Text input accepts PostgreSQL's usual forms (`'1 year 2 mons'`, `'3 days 04:05:06.5'`,
//! `'-1 day +02:00'`, `'90 minutes'`, `'1.5 hours'`, `'2 weeks ago'`, `'@ 1 hour'`,
//! `'P1Y2M3DT4H5M6S'`); output is the `postgres` IntervalStyle. Comparison, hashing and key
//! order use PostgreSQL's span: a month counts 30 days and a day 24 hours.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::datetime::{self, USECS_PER_DAY};
use super::timezone::TimeZone;
use crate::error::{SqlError, SqlResult, SqlState};

const USECS_PER_HOUR: i64 = 3_600_000_000;
const USECS_PER_MINUTE: i64 = 60_000_000;
const USECS_PER_SECOND: i64 = 1_000_000;

/// An interval: calendar months, days and microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// Months (12 to a year).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

fn out_of_range() -> SqlError {
    SqlError::new(SqlState::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

impl Interval {
    /// The interval's length with a month as 30 days and a day as 24 hours, in µs: what
    /// PostgreSQL compares.
    pub fn span(&self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(USECS_PER_DAY)
            + i128::from(self.micros)
    }

    /// Orders as PostgreSQL does (by span; `'1 mon' = '30 days'`).
    pub fn cmp_span(&self, other: &Interval) -> Ordering {
        self.span().cmp(&other.span())
    }

    /// `self + other`, field by field.
    pub fn add(&self, other: &Interval) -> SqlResult<Interval> {
        Ok(Interval {
            months: self
                .months
                .checked_add(other.months)
                .ok_or_else(out_of_range)?,
            days: self.days.checked_add(other.days).ok_or_else(out_of_range)?,
            micros: self
                .micros
                .checked_add(other.micros)
                .ok_or_else(out_of_range)?,
        })
    }

    /// `-self`.
    pub fn neg(&self) -> SqlResult<Interval> {
        Ok(Interval {
            months: self.months.checked_neg().ok_or_else(out_of_range)?,
            days: self.days.checked_neg().ok_or_else(out_of_range)?,
            micros: self.micros.checked_neg().ok_or_else(out_of_range)?,
        })
    }

    /// `self * factor`, with fractions of months and days carried down (as interval_mul:
    /// `'1 mon' * 1.5` is `1 mon 15 days`).
    pub fn mul(&self, factor: f64) -> SqlResult<Interval> {
        if !factor.is_finite() {
            return Err(out_of_range());
        }
        carry_down(
            f64::from(self.months) * factor,
            f64::from(self.days) * factor,
            self.micros as f64 * factor,
        )
        .ok_or_else(out_of_range)
    }

    /// `self / divisor` (22012 for zero).
    pub fn div(&self, divisor: f64) -> SqlResult<Interval> {
        if divisor == 0.0 {
            return Err(SqlError::new(
                SqlState::DIVISION_BY_ZERO,
                "division by zero",
            ));
        }
        self.mul(1.0 / divisor)
    }

    /// The difference of two timestamps (µs) as an interval: whole days and the rest, with
    /// the same sign (as timestamp_mi, which justifies hours into days).
    pub fn between(later: i64, earlier: i64) -> SqlResult<Interval> {
        let micros = later.checked_sub(earlier).ok_or_else(out_of_range)?;
        let days = micros / USECS_PER_DAY;
        Ok(Interval {
            months: 0,
            days: i32::try_from(days).map_err(|_| out_of_range())?,
            micros: micros % USECS_PER_DAY,
        })
    }

    /// `timestamp + self` (µs since 2000-01-01): months on the calendar (clamping the day to
    /// the month's length), then days, then microseconds.
    pub fn add_to_timestamp(&self, timestamp: i64) -> SqlResult<i64> {
        let overflow =
            || SqlError::new(SqlState::DATETIME_FIELD_OVERFLOW, "timestamp out of range");
        let mut ts = timestamp;
        if self.months != 0 {
            let days = ts.div_euclid(USECS_PER_DAY);
            let time = ts.rem_euclid(USECS_PER_DAY);
            let (year, month, day) = datetime::civil_from_days(days);
            let total = year * 12 + i64::from(month) - 1 + i64::from(self.months);
            let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
            let day = day.min(datetime::days_in_month(year, month));
            ts = datetime::days_from_civil(year, month, day)
                .checked_mul(USECS_PER_DAY)
                .and_then(|d| d.checked_add(time))
                .ok_or_else(overflow)?;
        }
        ts = i64::from(self.days)
            .checked_mul(USECS_PER_DAY)
            .and_then(|d| ts.checked_add(d))
            .and_then(|t| t.checked_add(self.micros))
            .ok_or_else(overflow)?;
        if !(datetime::TIMESTAMP_MIN..datetime::TIMESTAMP_END).contains(&ts) {
            return Err(overflow());
        }
        Ok(ts)
    }

    /// [`Self::add_to_timestamp`] for a `timestamptz`: months, then days, step the wall
    /// clock in `zone` (a day may be 23 or 25 hours; each step is read back as a moment, as
    /// PostgreSQL does), then the time part is added to the moment.
    pub fn add_to_timestamptz(&self, timestamp: i64, zone: &TimeZone) -> SqlResult<i64> {
        let mut ts = timestamp;
        for (months, days) in [(self.months, 0), (0, self.days)] {
            if months != 0 || days != 0 {
                let step = Interval {
                    months,
                    days,
                    micros: 0,
                };
                ts = zone.to_utc(step.add_to_timestamp(zone.to_local(ts))?);
            }
        }
        Interval {
            months: 0,
            days: 0,
            micros: self.micros,
        }
        .add_to_timestamp(ts)
    }

    /// A field for `extract` (as numeric text, PostgreSQL's scale) of an interval; `None`
    /// for a field intervals do not have.
    pub fn extract(&self, field: &str) -> Option<String> {
        let time = i128::from(self.micros);
        let within_minute = time % i128::from(USECS_PER_MINUTE);
        let whole = |v: i128| v.to_string();
        Some(match field {
            "microsecond" | "microseconds" => whole(within_minute),
            "millisecond" | "milliseconds" => fixed(within_minute, 3),
            "second" | "seconds" => fixed(within_minute, 6),
            "minute" | "minutes" => whole((time / i128::from(USECS_PER_MINUTE)) % 60),
            "hour" | "hours" => whole(time / i128::from(USECS_PER_HOUR)),
            "day" | "days" => whole(i128::from(self.days)),
            "month" | "months" | "mon" => whole(i128::from(self.months % 12)),
            "quarter" => whole(i128::from((self.months % 12) / 3 + 1)),
            "year" | "years" => whole(i128::from(self.months / 12)),
            "decade" | "decades" => whole(i128::from(self.months / 120)),
            "century" | "centuries" => whole(i128::from(self.months / 1200)),
            "millennium" | "millennia" => whole(i128::from(self.months / 12000)),
            "epoch" => {
                // A year counts 365.25 days, a month 30 days.
                let years = i128::from(self.months / 12) * 31_557_600 * 1_000_000;
                let months = i128::from(self.months % 12) * 30 * i128::from(USECS_PER_DAY);
                let days = i128::from(self.days) * i128::from(USECS_PER_DAY);
                fixed(years + months + days + time, 6)
            }
            _ => return None,
        })
    }

    /// The interval between two timestamps in years, months and days as on a calendar
    /// (`age`): fields subtracted from the latest down, borrowing from the next larger one.
    pub fn age(later: i64, earlier: i64) -> SqlResult<Interval> {
        let (a, b, negate) = if later >= earlier {
            (later, earlier, false)
        } else {
            (earlier, later, true)
        };
        let split = |ts: i64| {
            let (y, m, d) = datetime::civil_from_days(ts.div_euclid(USECS_PER_DAY));
            (y, i64::from(m), i64::from(d), ts.rem_euclid(USECS_PER_DAY))
        };
        let (ay, am, ad, at) = split(a);
        let (by, bm, bd, bt) = split(b);
        let mut micros = at - bt;
        let mut days = ad - bd;
        let mut months = am - bm;
        let mut years = ay - by;
        if micros < 0 {
            micros += USECS_PER_DAY;
            days -= 1;
        }
        if days < 0 {
            // Borrow the length of the earlier date's month, as PostgreSQL's age does.
            days += i64::from(datetime::days_in_month(by, bm as u32));
            months -= 1;
        }
        if months < 0 {
            months += 12;
            years -= 1;
        }
        let interval = Interval {
            months: i32::try_from(years * 12 + months).map_err(|_| out_of_range())?,
            days: i32::try_from(days).map_err(|_| out_of_range())?,
            micros,
        };
        if negate {
            interval.neg()
        } else {
            Ok(interval)
        }
    }
}

/// A count of 10^-`scale` units as a decimal with `scale` digits (µs as milliseconds with
/// 3, as seconds with 6).
fn fixed(value: i128, scale: u32) -> String {
    let unit = 10i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let value = value.abs();
    format!(
        "{sign}{}.{:0width$}",
        value / unit,
        value % unit,
        width = scale as usize
    )
}

/// PostgreSQL's `postgres` IntervalStyle: `1 year 2 mons 3 days 04:05:06.5`,
/// `-1 days +02:00:00`, `00:00:00`.
pub fn format_interval(interval: &Interval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value != 1 { "s" } else { "" }
        ));
        is_before = value < 0;
        is_zero = false;
    };
    let (years, months) = (interval.months / 12, interval.months % 12);
    part(i64::from(years), "year", &mut out);
    part(i64::from(months), "mon", &mut out);
    part(i64::from(interval.days), "day", &mut out);
    let time = interval.micros;
    if is_zero || time != 0 {
        let minus = time < 0;
        let abs = time.unsigned_abs();
        let hours = abs / USECS_PER_HOUR as u64;
        let minutes = (abs / USECS_PER_MINUTE as u64) % 60;
        let seconds = (abs / USECS_PER_SECOND as u64) % 60;
        let fraction = abs % USECS_PER_SECOND as u64;
        if !is_zero {
            out.push(' ');
        }
        if minus {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
        if fraction != 0 {
            let digits = format!("{fraction:06}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
    }
    out
}

/// Parses interval text as PostgreSQL does for its common forms; 22007 otherwise.
pub fn parse_interval(input: &str) -> SqlResult<Interval> {
    let invalid = || {
        SqlError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type interval: \"{input}\""),
        )
    };
    let text = input.trim().to_lowercase();
    let text = text.strip_prefix('@').unwrap_or(&text).trim();
    if text.is_empty() {
        return Err(invalid());
    }
    if let Some(iso) = text.strip_prefix('p') {
        return parse_iso8601(iso).ok_or_else(invalid);
    }
    let (text, ago) = match text.strip_suffix("ago") {
        Some(rest) => (rest.trim_end(), true),
        None => (text, false),
    };
    // Accumulated as floating parts first (fractions carry down), then rounded.
    let mut months = 0f64;
    let mut days = 0f64;
    let mut micros = 0f64;
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    let mut seen_any = false;
    while i < tokens.len() {
        let token = tokens[i];
        if token.contains(':') {
            micros += parse_clock(token).ok_or_else(invalid)? as f64;
            seen_any = true;
            i += 1;
            continue;
        }
        // A number glued to its unit ("10min", "1d") or followed by it.
        let split = token
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(token.len());
        let (number, glued) = token.split_at(split);
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit = if !glued.is_empty() {
            glued
        } else if let Some(next) = tokens
            .get(i + 1)
            .filter(|t| t.starts_with(char::is_alphabetic))
        {
            i += 1;
            next
        } else {
            // A bare number is seconds.
            "s"
        };
        match unit {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" => micros += value,
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => micros += value * 1e3,
            "second" | "seconds" | "s" | "sec" | "secs" => micros += value * 1e6,
            "minute" | "minutes" | "m" | "min" | "mins" => micros += value * 6e7,
            "hour" | "hours" | "h" | "hr" | "hrs" => micros += value * 3.6e9,
            "day" | "days" | "d" => days += value,
            "week" | "weeks" | "w" => days += value * 7.0,
            "month" | "months" | "mon" | "mons" => months += value,
            "year" | "years" | "y" | "yr" | "yrs" => months += value * 12.0,
            "decade" | "decades" => months += value * 120.0,
            "century" | "centuries" => months += value * 1200.0,
            "millennium" | "millennia" | "millenniums" => months += value * 12000.0,
            _ => return Err(invalid()),
        }
        seen_any = true;
        i += 1;
    }
    if !seen_any {
        return Err(invalid());
    }
    let interval = carry_down(months, days, micros).ok_or_else(invalid)?;
    if ago {
        interval.neg()
    } else {
        Ok(interval)
    }
}

/// Whole months, days and µs from fractional parts: a fraction of a month becomes days (30 to
/// a month) and a fraction of a day becomes µs, as PostgreSQL's input does.
fn carry_down(months: f64, days: f64, micros: f64) -> Option<Interval> {
    let whole_months = months.trunc();
    let days = days + (months - whole_months) * 30.0;
    let whole_days = days.trunc();
    let micros = micros + (days - whole_days) * USECS_PER_DAY as f64;
    let fits = |v: f64| (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&v);
    (fits(whole_months) && fits(whole_days) && micros.abs() < 9.2e18).then(|| Interval {
        months: whole_months as i32,
        days: whole_days as i32,
        micros: micros.round() as i64,
    })
}

/// `[-]h:mm[:ss[.ffffff]]` as µs.
fn parse_clock(token: &str) -> Option<i64> {
    let (negative, body) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token.strip_prefix('+').unwrap_or(token)),
    };
    let mut parts = body.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0.0,
    };
    if parts.next().is_some() || !(0..60).contains(&minutes) || !(0.0..60.0).contains(&seconds) {
        return None;
    }
    let micros = hours
        .checked_mul(USECS_PER_HOUR)?
        .checked_add(minutes * USECS_PER_MINUTE)?
        .checked_add((seconds * 1e6).round() as i64)?;
    Some(if negative { -micros } else { micros })
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][nS]]` (after the `P`).
fn parse_iso8601(body: &str) -> Option<Interval> {
    let (date, time) = match body.split_once('t') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let (mut months, mut days, mut micros) = (0f64, 0f64, 0f64);
    let mut fields = |part: &str, in_time: bool| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == '-' {
                number.push(c);
                continue;
            }
            let value: f64 = number.parse().ok()?;
            number.clear();
            match (c, in_time) {
                ('y', false) => months += value * 12.0,
                ('m', false) => months += value,
                ('w', false) => days += value * 7.0,
                ('d', false) => days += value,
                ('h', true) => micros += value * 3.6e9,
                ('m', true) => micros += value * 6e7,
                ('s', true) => micros += value * 1e6,
                _ => return None,
            }
        }
        number.is_empty().then_some(())
    };
    fields(date, false)?;
    if let Some(time) = time {
        fields(time, true)?;
    }
    carry_down(months, days, micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &str) -> String {
        format_interval(&parse_interval(input).unwrap())
    }

    #[test]
    fn text_forms_read_and_print_as_postgresql() {
        assert_eq!(round_trip("1 year 2 months 3 days"), "1 year 2 mons 3 days");
        assert_eq!(round_trip("3 days 04:05:06.5"), "3 days 04:05:06.5");
        assert_eq!(round_trip("-1 day +02:00"), "-1 days +02:00:00");
        assert_eq!(round_trip("90 minutes"), "01:30:00");
        assert_eq!(round_trip("1.5 days"), "1 day 12:00:00");
        assert_eq!(round_trip("1.5 months"), "1 mon 15 days");
        assert_eq!(round_trip("2 weeks ago"), "-14 days");
        assert_eq!(round_trip("@ 1 hour"), "01:00:00");
        assert_eq!(
            round_trip("P1Y2M3DT4H5M6S"),
            "1 year 2 mons 3 days 04:05:06"
        );
        assert_eq!(round_trip("0"), "00:00:00");
        assert_eq!(round_trip("-1 year -2 mons"), "-1 years -2 mons");
        assert_eq!(round_trip("25:00:00"), "25:00:00");
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("1 fortnight").is_err());
    }

    #[test]
    fn months_are_calendar_months_and_compare_as_thirty_days() {
        let jan31 = datetime::days_from_civil(2024, 1, 31) * USECS_PER_DAY;
        let month = parse_interval("1 mon").unwrap();
        let feb29 = datetime::days_from_civil(2024, 2, 29) * USECS_PER_DAY;
        assert_eq!(month.add_to_timestamp(jan31).unwrap(), feb29);
        assert_eq!(
            month.cmp_span(&parse_interval("30 days").unwrap()),
            Ordering::Equal
        );
    }

    #[test]
    fn age_counts_calendar_fields() {
        let at = |y, m, d| datetime::days_from_civil(y, m, d) * USECS_PER_DAY;
        let age = Interval::age(at(2024, 3, 15), at(2020, 5, 20)).unwrap();
        assert_eq!(format_interval(&age), "3 years 9 mons 26 days");
    }
}
