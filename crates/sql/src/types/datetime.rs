//! Calendar arithmetic and PostgreSQL's date/timestamp text formats.
//!
//! Dates count days and timestamps count microseconds from PostgreSQL's epoch, 2000-01-01
//! (UTC for `timestamptz`). The calendar is the proleptic Gregorian one with astronomical
//! year numbering inside (year 0 is 1 BC), converted with Howard Hinnant's
//! `days_from_civil`/`civil_from_days`. `infinity` and `-infinity` are the extreme values of
//! the representation, as in PostgreSQL (`i32::MAX`/`i32::MIN` days, `i64::MAX`/`i64::MIN`
//! µs).
//!
//! Input accepts what applications send in practice: ISO `YYYY-MM-DD` (or `YYYYMMDD`, or
//! US `MM/DD/YYYY` as PostgreSQL's default `DateStyle` reads it), an optional time after a
//! space or `T` (`HH:MM[:SS[.fraction]]`), an optional zone (`Z`, `UTC`, `GMT`, `+HH`,
//! `+HH:MM`, `+HHMM`, `+HH:MM:SS`), `BC`/`AD`, and the words `epoch`, `infinity`,
//! `-infinity`, and a zone name (`America/New_York`). Words that need a clock (`now`,
//! `today`...) are rejected with 0A000: the caller should use `now()`. A `timestamptz`
//! without a zone is read, and every `timestamptz` printed, in the session's
//! [`TimeZone`].

use super::timezone::{format_offset, TimeZone};
use crate::error::{SqlError, SqlResult, SqlState};

/// Microseconds in a day.
pub const USECS_PER_DAY: i64 = 86_400_000_000;
/// Days from 2000-01-01 back to 1970-01-01 (the Unix epoch).
pub const UNIX_EPOCH_DAYS: i64 = -10_957;
/// The first valid date: 4714-11-24 BC (Julian day 0).
pub const DATE_MIN: i32 = -2_451_545;
/// The last valid date: 5874897-12-31.
pub const DATE_MAX: i32 = 2_145_031_948;
/// `infinity` as a date.
pub const DATE_INFINITY: i32 = i32::MAX;
/// `-infinity` as a date.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
/// The first valid timestamp: 4714-11-24 00:00:00 BC.
pub const TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
/// One past the last valid timestamp: 294277-01-01 00:00:00.
pub const TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;
/// `infinity` as a timestamp.
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// `-infinity` as a timestamp.
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;

/// Days from 2000-01-01 to the given proleptic Gregorian date (year 0 = 1 BC).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - 10_957
}

/// The proleptic Gregorian date `days` after 2000-01-01: (year, month, day), year 0 = 1 BC.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` (astronomical) is a leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// What a parse produced before it is range-checked for the target type.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// A finite moment: days since 2000-01-01 and µs into the day (may be a full day for
    /// 24:00:00), local to the zone if one was given.
    Moment {
        days: i64,
        usecs: i64,
        zone: Option<Zone>,
    },
    PosInfinity,
    NegInfinity,
}

/// A zone written in the input.
#[derive(Debug)]
enum Zone {
    /// `+05:30`, `Z`: seconds east of UTC.
    Offset(i64),
    /// `Europe/Paris`: the offset depends on the moment.
    Named(TimeZone),
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Zone::Offset(a), Zone::Offset(b)) => a == b,
            (Zone::Named(a), Zone::Named(b)) => a.name() == b.name(),
            _ => false,
        }
    }
}

/// Which input function is parsing (for error messages and zone handling).
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Date,
    Timestamp,
    TimestampTz,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Date => "date",
            Target::Timestamp => "timestamp",
            Target::TimestampTz => "timestamp with time zone",
        }
    }
}

struct Errors<'a> {
    input: &'a str,
    target: Target,
}

impl Errors<'_> {
    fn syntax(&self) -> SqlError {
        SqlError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!(
                "invalid input syntax for type {}: \"{}\"",
                self.target.name(),
                self.input
            ),
        )
    }
    fn field(&self) -> SqlError {
        SqlError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            format!("date/time field value out of range: \"{}\"", self.input),
        )
    }
    fn zone(&self) -> SqlError {
        SqlError::new(
            SqlState("22009"),
            format!("time zone displacement out of range: \"{}\"", self.input),
        )
    }
    fn range(&self) -> SqlError {
        let what = if self.target == Target::Date {
            "date"
        } else {
            "timestamp"
        };
        SqlError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            format!("{what} out of range: \"{}\"", self.input),
        )
    }
}

/// A cursor over the input's bytes.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_spaces(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
        self.i > start
    }
    /// Reads a run of ASCII digits: (value, number of digits). Saturates on huge values.
    fn number(&mut self) -> (i64, usize) {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
            self.i += 1;
        }
        (v, self.i - start)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_lowercase()
    }
}

/// Reads the digits after a seconds' decimal point as microseconds, as PostgreSQL does:
/// `strtod` the fraction, then `rint` to microseconds.
fn parse_fraction(c: &mut Cursor<'_>) -> i64 {
    let start = c.i;
    c.number();
    let frac = std::str::from_utf8(&c.s[start..c.i]).unwrap_or("");
    let f: f64 = format!("0.{frac}").parse().unwrap_or(0.0);
    (f * 1_000_000.0).round_ties_even() as i64
}

fn parse(input: &str, target: Target) -> SqlResult<Parsed> {
    let err = Errors { input, target };
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    match trimmed.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(Parsed::PosInfinity),
        "-infinity" => return Ok(Parsed::NegInfinity),
        "epoch" => {
            return Ok(Parsed::Moment {
                days: UNIX_EPOCH_DAYS,
                usecs: 0,
                zone: Some(Zone::Offset(0)),
            })
        }
        w @ ("now" | "today" | "tomorrow" | "yesterday") => {
            return Err(SqlError::unsupported(format!(
                "date/time value \"{w}\" is not supported; use now() or current_date"
            )))
        }
        _ => {}
    }
    let mut c = Cursor {
        s: trimmed.as_bytes(),
        i: 0,
    };

    // Date: YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY.
    let (first, first_len) = c.number();
    if first_len == 0 {
        return Err(err.syntax());
    }
    let (year, month, day, short_year) = if c.eat(b'-') {
        let (m, ml) = c.number();
        if ml == 0 || !c.eat(b'-') {
            return Err(err.syntax());
        }
        let (d, dl) = c.number();
        if dl == 0 {
            return Err(err.syntax());
        }
        (first, m, d, first_len < 3)
    } else if c.eat(b'/') {
        let (d, dl) = c.number();
        if dl == 0 || !c.eat(b'/') {
            return Err(err.syntax());
        }
        let (y, yl) = c.number();
        if yl == 0 {
            return Err(err.syntax());
        }
        (y, first, d, yl < 3)
    } else if first_len == 8 {
        (first / 10_000, first / 100 % 100, first % 100, false)
    } else {
        return Err(err.syntax());
    };
    let month_bad = !(1..=12).contains(&month);

    // Time.
    let mut hour = 0i64;
    let mut minute = 0i64;
    let mut second = 0i64;
    let mut usec = 0i64;
    let had_space = c.skip_spaces();
    let had_t = !had_space && (c.eat(b'T') || c.eat(b't'));
    if (had_space || had_t) && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let (h, hl) = c.number();
        if hl > 2 || !c.eat(b':') {
            return Err(err.syntax());
        }
        let (m, ml) = c.number();
        if ml == 0 || ml > 2 {
            return Err(err.syntax());
        }
        hour = h;
        minute = m;
        if c.peek() == Some(b'.') {
            // `MM:SS.fraction`, as PostgreSQL reads two fields with a fraction.
            hour = 0;
            minute = h;
            second = m;
            c.eat(b'.');
            usec = parse_fraction(&mut c);
        } else if c.eat(b':') {
            let (sec, sl) = c.number();
            if sl == 0 || sl > 2 {
                return Err(err.syntax());
            }
            second = sec;
            if c.eat(b'.') {
                usec = parse_fraction(&mut c);
            }
        }
    } else if had_t || (!had_space && c.peek() == Some(b'-')) {
        return Err(err.syntax());
    }

    // Zone and era, in any order.
    let mut zone: Option<Zone> = None;
    let mut zone_bad = false;
    let mut bc = false;
    loop {
        c.skip_spaces();
        match c.peek() {
            None => break,
            Some(sign @ (b'+' | b'-')) => {
                c.i += 1;
                let (v, len) = c.number();
                let (h, m, s) = match len {
                    1 | 2 => {
                        let h = v;
                        let mut m = 0;
                        let mut s = 0;
                        if c.eat(b':') {
                            let (mv, ml) = c.number();
                            if ml != 2 {
                                return Err(err.syntax());
                            }
                            m = mv;
                            if c.eat(b':') {
                                let (sv, sl) = c.number();
                                if sl != 2 {
                                    return Err(err.syntax());
                                }
                                s = sv;
                            }
                        }
                        (h, m, s)
                    }
                    4 => (v / 100, v % 100, 0),
                    6 => (v / 10_000, v / 100 % 100, v % 100),
                    _ => return Err(err.syntax()),
                };
                if m > 59 || s > 59 {
                    return Err(err.field());
                }
                zone_bad |= h > 15;
                let secs = h.saturating_mul(3600) + m * 60 + s;
                zone = Some(Zone::Offset(if sign == b'-' { -secs } else { secs }));
            }
            Some(b) if b.is_ascii_alphabetic() => match c.word().as_str() {
                "z" | "utc" | "gmt" | "zulu" => zone = Some(Zone::Offset(0)),
                "bc" => bc = true,
                "ad" => {}
                _ => {
                    // A zone name: letters, digits and `/_+-` up to the next space.
                    let start = c.i
                        - c.s[..c.i]
                            .iter()
                            .rev()
                            .take_while(|b| b.is_ascii_alphabetic())
                            .count();
                    while c.peek().is_some_and(|b| !b.is_ascii_whitespace()) {
                        c.i += 1;
                    }
                    let name = std::str::from_utf8(&c.s[start..c.i]).unwrap_or("");
                    // Only a name with a slash is taken for a zone, as PostgreSQL does.
                    if !name.contains('/') {
                        return Err(err.syntax());
                    }
                    match TimeZone::named(name) {
                        Some(named) => zone = Some(Zone::Named(named)),
                        None => {
                            return Err(SqlError::new(
                                SqlState::INVALID_PARAMETER_VALUE,
                                format!(
                                    "time zone \"{}\" not recognized",
                                    name.to_ascii_lowercase()
                                ),
                            ))
                        }
                    }
                }
            },
            Some(_) => return Err(err.syntax()),
        }
    }

    if month_bad || short_year {
        return Err(err
            .field()
            .with_hint("Perhaps you need a different \"datestyle\" setting."));
    }
    if hour > 24
        || minute > 59
        || second > 60
        || (hour == 24 && (minute > 0 || second > 0 || usec > 0))
    {
        return Err(err.field());
    }
    if zone_bad {
        return Err(err.zone());
    }
    if year == 0 || year > 10_000_000 {
        return Err(if year == 0 { err.field() } else { err.range() });
    }
    let year = if bc { 1 - year } else { year };
    let month = month as u32;
    if day < 1 || day > i64::from(days_in_month(year, month)) {
        return Err(err.field());
    }
    let days = days_from_civil(year, month, day as u32);
    let usecs = ((hour * 60 + minute) * 60 + second) * 1_000_000 + usec;
    Ok(Parsed::Moment { days, usecs, zone })
}

/// PostgreSQL's `date_in`: days since 2000-01-01. A time or zone in the input is ignored.
pub fn parse_date(input: &str) -> SqlResult<i32> {
    let err = Errors {
        input,
        target: Target::Date,
    };
    match parse(input, Target::Date)? {
        Parsed::PosInfinity => Ok(DATE_INFINITY),
        Parsed::NegInfinity => Ok(DATE_NEG_INFINITY),
        Parsed::Moment { days, .. } => {
            if days < i64::from(DATE_MIN) || days > i64::from(DATE_MAX) {
                return Err(err.range());
            }
            Ok(days as i32)
        }
    }
}

/// PostgreSQL's `timestamp_in` (`session_zone` `None`: a zone in the input is ignored) or
/// `timestamptz_in` (a time without a zone is local to `session_zone`).
pub fn parse_timestamp(input: &str, session_zone: Option<&TimeZone>) -> SqlResult<i64> {
    let target = if session_zone.is_some() {
        Target::TimestampTz
    } else {
        Target::Timestamp
    };
    let err = Errors { input, target };
    match parse(input, target)? {
        Parsed::PosInfinity => Ok(TIMESTAMP_INFINITY),
        Parsed::NegInfinity => Ok(TIMESTAMP_NEG_INFINITY),
        Parsed::Moment { days, usecs, zone } => {
            let local = i128::from(days) * i128::from(USECS_PER_DAY) + i128::from(usecs);
            // Range-check the wall-clock time first: zones shift it by hours at most.
            let in_range =
                |ts: i128| ts >= i128::from(TIMESTAMP_MIN) && ts < i128::from(TIMESTAMP_END);
            if !in_range(local) {
                return Err(err.range());
            }
            let local = local as i64;
            let ts = match (session_zone, zone) {
                (None, _) => i128::from(local),
                (Some(_), Some(Zone::Offset(secs))) => {
                    i128::from(local) - i128::from(secs) * 1_000_000
                }
                (Some(_), Some(Zone::Named(named))) => i128::from(named.to_utc(local)),
                (Some(session), None) => i128::from(session.to_utc(local)),
            };
            if !in_range(ts) {
                return Err(err.range());
            }
            Ok(ts as i64)
        }
    }
}

fn push_ymd(out: &mut String, days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let (shown, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    out.push_str(&format!("{shown:04}-{month:02}-{day:02}"));
    bc
}

/// PostgreSQL's `date_out` with `DateStyle = ISO`: `2024-01-31`, `0044-03-15 BC`,
/// `infinity`.
pub fn format_date(days: i32) -> String {
    match days {
        DATE_INFINITY => "infinity".into(),
        DATE_NEG_INFINITY => "-infinity".into(),
        _ => {
            let mut out = String::with_capacity(13);
            if push_ymd(&mut out, i64::from(days)) {
                out.push_str(" BC");
            }
            out
        }
    }
}

/// PostgreSQL's `timestamp_out` (`session_zone` `None`) or `timestamptz_out` with
/// `DateStyle = ISO`: `2024-01-31 12:34:56.789`, for `timestamptz` the wall-clock time in
/// `session_zone` followed by its offset (`+02`, `-05:30`); trailing zeros of the fraction
/// are dropped and a zero fraction is omitted.
pub fn format_timestamp(usecs: i64, session_zone: Option<&TimeZone>) -> String {
    match usecs {
        TIMESTAMP_INFINITY => return "infinity".into(),
        TIMESTAMP_NEG_INFINITY => return "-infinity".into(),
        _ => {}
    }
    let offset = session_zone.map(|zone| zone.offset_at(usecs));
    let usecs = usecs.saturating_add(i64::from(offset.unwrap_or(0)) * 1_000_000);
    let days = usecs.div_euclid(USECS_PER_DAY);
    let time = usecs.rem_euclid(USECS_PER_DAY);
    let mut out = String::with_capacity(32);
    let bc = push_ymd(&mut out, days);
    let secs = time / 1_000_000;
    let frac = time % 1_000_000;
    out.push_str(&format!(
        " {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    if let Some(offset) = offset {
        out.push_str(&format_offset(offset, false));
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// UTC for `timestamptz` tests, `None` for `timestamp` ones.
    fn zone(with_tz: bool) -> Option<&'static TimeZone> {
        static UTC: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
        with_tz.then(|| UTC.get_or_init(TimeZone::utc))
    }

    #[test]
    fn civil_conversions_round_trip() {
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 1), UNIX_EPOCH_DAYS);
        assert_eq!(days_from_civil(-4713, 11, 24), i64::from(DATE_MIN));
        assert_eq!(days_from_civil(5_874_897, 12, 31), i64::from(DATE_MAX));
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(civil_from_days(59), (2000, 2, 29));
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..10_000 {
            let d: i64 = rng.gen_range(i64::from(DATE_MIN)..=i64::from(DATE_MAX));
            let (y, m, day) = civil_from_days(d);
            assert!(day >= 1 && day <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    /// Outputs checked against PostgreSQL 15 (DateStyle ISO, TimeZone UTC).
    #[test]
    fn dates_parse_and_print_like_postgres() {
        for (input, want) in [
            ("2024-01-31", "2024-01-31"),
            ("2024-01-31 12:00", "2024-01-31"),
            ("epoch", "1970-01-01"),
            ("infinity", "infinity"),
            ("-infinity", "-infinity"),
            ("0044-03-15 BC", "0044-03-15 BC"),
            ("20240131", "2024-01-31"),
            (" 2024-1-5 ", "2024-01-05"),
            ("5874897-12-31", "5874897-12-31"),
            ("4713-01-01 BC", "4713-01-01 BC"),
            ("4714-11-24 BC", "4714-11-24 BC"),
            ("1/31/2024", "2024-01-31"),
            ("2000-02-29", "2000-02-29"),
        ] {
            assert_eq!(format_date(parse_date(input).unwrap()), want, "{input}");
        }
    }

    #[test]
    fn bad_dates_fail_like_postgres() {
        let check = |input: &str, state: SqlState, message: &str| {
            let e = parse_date(input).unwrap_err();
            assert_eq!((e.state, e.message.as_str()), (state, message), "{input}");
        };
        check(
            "2024-02-30",
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date/time field value out of range: \"2024-02-30\"",
        );
        check(
            "2024-13-01",
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date/time field value out of range: \"2024-13-01\"",
        );
        check(
            "abc",
            SqlState::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type date: \"abc\"",
        );
        check(
            "2024-01-31x",
            SqlState::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type date: \"2024-01-31x\"",
        );
        check(
            "5874898-01-01",
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date out of range: \"5874898-01-01\"",
        );
        check(
            "4714-11-23 BC",
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date out of range: \"4714-11-23 BC\"",
        );
        check(
            "0000-01-01",
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date/time field value out of range: \"0000-01-01\"",
        );
        assert_eq!(
            parse_date("now").unwrap_err().state,
            SqlState::FEATURE_NOT_SUPPORTED
        );
    }

    #[test]
    fn timestamps_parse_and_print_like_postgres() {
        for (input, tz, want) in [
            ("2024-01-31 12:34:56.789", false, "2024-01-31 12:34:56.789"),
            (
                "2024-01-31T12:34:56.7891236",
                false,
                "2024-01-31 12:34:56.789124",
            ),
            ("2024-01-31 24:00:00", false, "2024-02-01 00:00:00"),
            ("2024-01-31", false, "2024-01-31 00:00:00"),
            ("2024-01-31 12:34", false, "2024-01-31 12:34:00"),
            ("2024-01-31 12:34:56+02", false, "2024-01-31 12:34:56"),
            ("infinity", false, "infinity"),
            ("epoch", false, "1970-01-01 00:00:00"),
            ("2024-01-31 1:2:3", false, "2024-01-31 01:02:03"),
            ("2024-01-31 12:34:60", false, "2024-01-31 12:35:00"),
            ("2024-01-31 12:34:56.", false, "2024-01-31 12:34:56"),
            ("2024-01-31T12:34:56Z", false, "2024-01-31 12:34:56"),
            ("2024-01-31 12:34:56.9999999", false, "2024-01-31 12:34:57"),
            (
                "2024-01-31 12:34:56.1234565",
                false,
                "2024-01-31 12:34:56.123456",
            ),
            (
                "2024-01-31 12:34:56.1234575",
                false,
                "2024-01-31 12:34:56.123458",
            ),
            (" 2024-01-31 12:34:56 ", false, "2024-01-31 12:34:56"),
            ("2024-01-31 12:34:56+02", true, "2024-01-31 10:34:56+00"),
            (
                "2024-01-31 12:34:56.5+02:30",
                true,
                "2024-01-31 10:04:56.5+00",
            ),
            ("2024-01-31 12:34:56Z", true, "2024-01-31 12:34:56+00"),
            ("2024-01-31 12:34:56 UTC", true, "2024-01-31 12:34:56+00"),
            ("2024-01-31 12:34:56-0530", true, "2024-01-31 18:04:56+00"),
            (
                "2024-01-31 12:34:56.5 +02:00",
                true,
                "2024-01-31 10:34:56.5+00",
            ),
            (
                "2024-01-31 12:34:56+05:30:15",
                true,
                "2024-01-31 07:04:41+00",
            ),
            ("2024-01-31   12:34:56 gmt", true, "2024-01-31 12:34:56+00"),
            ("2024-01-31 12:34:56 +15:59", true, "2024-01-30 20:35:56+00"),
            ("0001-01-01 00:00:00 BC", true, "0001-01-01 00:00:00+00 BC"),
            ("-infinity", true, "-infinity"),
            ("2024-01-31 12:34:56", true, "2024-01-31 12:34:56+00"),
            (
                "5015-08-16 08:01.0865690+06:00",
                true,
                "5015-08-15 18:08:01.086569+00",
            ),
            ("2024-01-31 +04", true, "2024-01-30 20:00:00+00"),
            ("2024-01-31Z", true, "2024-01-31 00:00:00+00"),
            ("3830-02-18+06", true, "3830-02-17 18:00:00+00"),
            (
                "3737-11-11T12:46:60.619170011",
                true,
                "3737-11-11 12:47:00.61917+00",
            ),
        ] {
            let tz = zone(tz);
            let got = format_timestamp(parse_timestamp(input, tz).unwrap(), tz);
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn bad_timestamps_fail_like_postgres() {
        let check = |input: &str, tz: bool, state: SqlState, message: &str| {
            let e = parse_timestamp(input, zone(tz)).unwrap_err();
            assert_eq!((e.state, e.message.as_str()), (state, message), "{input}");
        };
        let field = SqlState::DATETIME_FIELD_OVERFLOW;
        check(
            "2024-01-31 25:00",
            false,
            field,
            "date/time field value out of range: \"2024-01-31 25:00\"",
        );
        check(
            "2024-01-31 12:60",
            false,
            field,
            "date/time field value out of range: \"2024-01-31 12:60\"",
        );
        check(
            "abc",
            false,
            SqlState::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type timestamp: \"abc\"",
        );
        check(
            "abc",
            true,
            SqlState::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type timestamp with time zone: \"abc\"",
        );
        check(
            "2024-01-31 12",
            false,
            SqlState::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type timestamp: \"2024-01-31 12\"",
        );
        check(
            "2024-01-31 12:34:56+25",
            true,
            SqlState("22009"),
            "time zone displacement out of range: \"2024-01-31 12:34:56+25\"",
        );
        check(
            "294277-01-01",
            false,
            field,
            "timestamp out of range: \"294277-01-01\"",
        );
    }

    #[test]
    fn random_timestamps_round_trip_through_text() {
        let mut rng = SmallRng::seed_from_u64(2);
        for _ in 0..10_000 {
            let ts: i64 = rng.gen_range(TIMESTAMP_MIN..TIMESTAMP_END);
            for tz in [false, true] {
                let tz = zone(tz);
                let text = format_timestamp(ts, tz);
                assert_eq!(parse_timestamp(&text, tz).unwrap(), ts, "{text}");
            }
            let d = ts.div_euclid(USECS_PER_DAY) as i32;
            assert_eq!(parse_date(&format_date(d)).unwrap(), d);
        }
    }
}
