//! `to_char` for dates, timestamps and numbers, with PostgreSQL's common template patterns.
//!
//! Date and time: `YYYY YYY YY Y IYYY MM Mon MON mon Month MONTH month DD DDD D ID Dy DY dy
//! Day DAY day HH HH12 HH24 MI SS MS US AM PM am pm A.M. P.M. Q WW IW TZ tz OF`, with the
//! `FM` prefix (no padding) and `TH`/`th` suffix (ordinal); `"text"` is copied, `\` escapes.
//! Numbers: `9` (digit or space), `0` (digit or zero), `.`/`D` (decimal point), `,`/`G`
//! (group separator), `S`/`MI`/`PL`/`SG` (sign), `FM` (no padding); more digits than the
//! template holds print as `#`, as in PostgreSQL.

use super::datetime::{self, USECS_PER_DAY};
use super::interval::Interval;
use super::timezone::{format_offset, LocalTime};
use super::Numeric;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Applies the case of the pattern (`Month`, `MONTH`, `month`) to a name.
fn cased(name: &str, pattern: &str) -> String {
    let mut letters = pattern.chars().filter(|c| c.is_alphabetic());
    let first_upper = letters.next().is_some_and(char::is_uppercase);
    let second_upper = letters.next().is_some_and(char::is_uppercase);
    match (first_upper, second_upper) {
        (true, true) => name.to_uppercase(),
        (true, false) => name.to_string(),
        _ => name.to_lowercase(),
    }
}

fn ordinal_suffix(n: i64) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// ISO 8601 year and week of the day `days` (since 2000-01-01).
pub(crate) fn iso_week(days: i64) -> (i64, i64) {
    let dow = (days + 5).rem_euclid(7) + 1; // 1 = Monday
    let thursday = days - dow + 4;
    let (year, _, _) = datetime::civil_from_days(thursday);
    let first = datetime::days_from_civil(year, 1, 1);
    (year, (thursday - first) / 7 + 1)
}

/// `to_char(timestamp, template)`. For a `timestamptz`, `micros` is the wall-clock time in
/// the session's zone and `zone` the local time in force there (for `TZ` and `OF`).
pub fn format_timestamp(micros: i64, zone: Option<&LocalTime>, template: &str) -> String {
    let days = micros.div_euclid(USECS_PER_DAY);
    let time = micros.rem_euclid(USECS_PER_DAY);
    let (year, month, day) = datetime::civil_from_days(days);
    let (iso_year, iso_week) = iso_week(days);
    let fields = Fields {
        year,
        month: i64::from(month),
        day: i64::from(day),
        hour: time / 3_600_000_000,
        minute: time / 60_000_000 % 60,
        second: time / 1_000_000 % 60,
        micro: time % 1_000_000,
        dow: (days + 6).rem_euclid(7), // 0 = Sunday
        doy: days - datetime::days_from_civil(year, 1, 1) + 1,
        iso_year,
        iso_week,
    };
    format_fields(&fields, zone, template)
}

/// `to_char(interval, template)`: years and months from the months, days, then hours (not
/// wrapped at 24), minutes and seconds from the time part, as PostgreSQL's `interval_to_char`.
pub fn format_interval(interval: &Interval, template: &str) -> String {
    let time = interval.micros;
    let fields = Fields {
        year: i64::from(interval.months / 12),
        month: i64::from(interval.months % 12),
        day: i64::from(interval.days),
        hour: time / 3_600_000_000,
        minute: time / 60_000_000 % 60,
        second: time / 1_000_000 % 60,
        micro: time % 1_000_000,
        dow: 0,
        doy: 0,
        iso_year: 0,
        iso_week: 0,
    };
    format_fields(&fields, None, template)
}

/// The fields a template's patterns print.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micro: i64,
    /// 0 = Sunday.
    dow: i64,
    doy: i64,
    iso_year: i64,
    iso_week: i64,
}

fn format_fields(fields: &Fields, zone: Option<&LocalTime>, template: &str) -> String {
    let &Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micro,
        dow,
        doy,
        iso_year,
        iso_week,
    } = fields;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        if rest.starts_with('"') {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    j += 1;
                }
                out.push(chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if rest.starts_with('\\') && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        let fill = !rest.starts_with("FM") && !rest.starts_with("fm");
        let body = if fill { rest.as_str() } else { &rest[2..] };
        let prefix = if fill { 0 } else { 2 };
        let number = |value: i64, width: usize| -> String {
            if fill && value < 0 {
                // The sign before the padded digits (an interval's `-02` hours).
                format!("-{:0width$}", value.unsigned_abs())
            } else if fill {
                format!("{value:0width$}")
            } else {
                value.to_string()
            }
        };
        let name = |name: &str, pattern: &str| -> String {
            let text = cased(name, pattern);
            if fill {
                format!("{text:<9}")
            } else {
                text
            }
        };
        let matched: Option<(usize, String, Option<i64>)> = [
            ("HH24", Some((number(hour, 2), hour))),
            ("HH12", Some((number(hour12, 2), hour12))),
            ("HH", Some((number(hour12, 2), hour12))),
            ("MI", Some((number(minute, 2), minute))),
            ("SS", Some((number(second, 2), second))),
            ("MS", Some((number(micro / 1000, 3), micro / 1000))),
            ("US", Some((number(micro, 6), micro))),
            ("A.M.", None),
            ("P.M.", None),
            ("a.m.", None),
            ("p.m.", None),
            ("AM", None),
            ("PM", None),
            ("am", None),
            ("pm", None),
            ("IYYY", Some((number(iso_year, 4), iso_year))),
            ("YYYY", Some((number(year, 4), year))),
            ("YYY", Some((number(year % 1000, 3), year % 1000))),
            ("YY", Some((number(year % 100, 2), year % 100))),
            ("Y", Some((number(year % 10, 1), year % 10))),
            ("MONTH", None),
            ("Month", None),
            ("month", None),
            ("MON", None),
            ("Mon", None),
            ("mon", None),
            ("MM", Some((number(month, 2), month))),
            ("DAY", None),
            ("Day", None),
            ("day", None),
            ("DY", None),
            ("Dy", None),
            ("dy", None),
            ("DDD", Some((number(doy, 3), doy))),
            ("DD", Some((number(day, 2), day))),
            ("D", Some((number(dow + 1, 1), dow + 1))),
            (
                "ID",
                Some((number((dow + 6) % 7 + 1, 1), (dow + 6) % 7 + 1)),
            ),
            ("IW", Some((number(iso_week, 2), iso_week))),
            (
                "WW",
                Some((number((doy - 1) / 7 + 1, 2), (doy - 1) / 7 + 1)),
            ),
            (
                "Q",
                Some((number((month - 1) / 3 + 1, 1), (month - 1) / 3 + 1)),
            ),
            ("TZ", None),
            ("tz", None),
            ("OF", None),
        ]
        .into_iter()
        .find(|(pattern, _)| body.starts_with(pattern))
        .map(|(pattern, numeric)| {
            let value = numeric.as_ref().map(|(_, v)| *v);
            let text = match (pattern, numeric) {
                (_, Some((text, _))) => text,
                ("A.M." | "P.M." | "a.m." | "p.m.", _) => {
                    let word = if hour < 12 { "a.m." } else { "p.m." };
                    if pattern.starts_with(char::is_uppercase) {
                        word.to_uppercase()
                    } else {
                        word.to_string()
                    }
                }
                ("AM" | "PM" | "am" | "pm", _) => {
                    let word = if hour < 12 { "am" } else { "pm" };
                    if pattern.starts_with(char::is_uppercase) {
                        word.to_uppercase()
                    } else {
                        word.to_string()
                    }
                }
                ("MONTH" | "Month" | "month", _) => name(MONTHS[(month - 1) as usize], pattern),
                ("MON" | "Mon" | "mon", _) => cased(&MONTHS[(month - 1) as usize][..3], pattern),
                ("DAY" | "Day" | "day", _) => name(DAYS[dow as usize], pattern),
                ("DY" | "Dy" | "dy", _) => cased(&DAYS[dow as usize][..3], pattern),
                ("TZ", _) => zone.map_or(String::new(), |z| z.abbrev.to_uppercase()),
                ("tz", _) => zone.map_or(String::new(), |z| z.abbrev.to_lowercase()),
                // Hours and minutes only (an offset in seconds loses them, as in PostgreSQL).
                ("OF", _) => zone.map_or(String::new(), |z| {
                    format_offset(z.offset_secs / 60 * 60, false)
                }),
                _ => String::new(),
            };
            (pattern.len(), text, value)
        });
        match matched {
            Some((len, text, value)) => {
                out.push_str(&text);
                let after = &body[len..];
                let consumed = prefix + len;
                // TH / th: the ordinal suffix of the number just printed.
                match (value, after.get(..2)) {
                    (Some(v), Some("TH")) => {
                        out.push_str(&ordinal_suffix(v).to_uppercase());
                        i += consumed + 2;
                    }
                    (Some(v), Some("th")) => {
                        out.push_str(ordinal_suffix(v));
                        i += consumed + 2;
                    }
                    _ => i += consumed,
                }
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// `to_char(number, template)` for the digit patterns.
pub fn format_number(value: &Numeric, template: &str) -> String {
    let (fill, template) = match template
        .strip_prefix("FM")
        .or_else(|| template.strip_prefix("fm"))
    {
        Some(rest) => (false, rest),
        None => (true, template),
    };
    let upper = template.to_uppercase();
    // A sign pattern at either end: S is placed next to the number; MI, SG and PL keep
    // their own position (PL shows only '+', leaving '-' to the number's usual sign).
    let sign_pattern = ["SG", "MI", "PL", "S"].into_iter().find_map(|p| {
        if upper.starts_with(p) {
            Some((p, true))
        } else if upper.ends_with(p) {
            Some((p, false))
        } else {
            None
        }
    });
    let digits_part = match sign_pattern {
        Some((pattern, true)) => &upper[pattern.len()..],
        Some((pattern, false)) => &upper[..upper.len() - pattern.len()],
        None => upper.as_str(),
    };
    let (int_part, frac_part) = match digits_part.find(['.', 'D']) {
        Some(at) => (&digits_part[..at], Some(&digits_part[at + 1..])),
        None => (digits_part, None),
    };
    let slots: Vec<char> = int_part
        .chars()
        .filter_map(|c| match c {
            '9' | '0' => Some(c),
            ',' | 'G' => Some(','),
            _ => None,
        })
        .collect();
    let frac_slots: Vec<char> = frac_part
        .unwrap_or("")
        .chars()
        .filter(|c| matches!(c, '9' | '0'))
        .collect();
    let int_digits = slots.iter().filter(|c| **c != ',').count();
    let rounded = value.round_to_scale(frac_slots.len() as i32);
    let text = rounded.abs().to_string();
    let (int_text, frac_text) = match text.split_once('.') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (text, String::new()),
    };
    // Zero prints as "0" only in the last position, and only without a fraction.
    let int_text = if int_text == "0" && frac_part.is_some() {
        String::new()
    } else {
        int_text
    };
    let body = if int_text.len() > int_digits {
        // More digits than the template has room for: PostgreSQL prints '#' throughout.
        digits_part
            .chars()
            .map(|c| match c {
                '9' | '0' => '#',
                'D' => '.',
                'G' => ',',
                other => other,
            })
            .collect()
    } else {
        digits_body(
            &slots,
            &int_text,
            frac_part.is_some(),
            &frac_slots,
            &frac_text,
            fill,
        )
    };
    let negative = rounded.is_negative();
    let minus_or = |other: char| if negative { '-' } else { other };
    // (the sign next to the number and whether it goes after it, the sign at the start,
    // the sign at the end)
    let (anchored, fixed_start, fixed_end) = match sign_pattern {
        None | Some(("PL", _)) => {
            let plus = sign_pattern.map(|_| if negative { ' ' } else { '+' });
            let (start, end) = match sign_pattern {
                Some((_, true)) => (plus, None),
                _ => (None, plus),
            };
            (Some((minus_or(' '), false)), start, end)
        }
        Some(("S", at_start)) => (Some((minus_or('+'), !at_start)), None, None),
        Some((pattern, at_start)) => {
            let sign = if pattern == "MI" {
                minus_or(' ')
            } else {
                minus_or('+')
            };
            match at_start {
                true => (None, Some(sign), None),
                false => (None, None, Some(sign)),
            }
        }
    };
    let mut out = String::with_capacity(body.len() + 3);
    out.extend(fixed_start);
    match anchored {
        // Right before the first character printed.
        Some((sign, false)) => {
            let start = body.len() - body.trim_start().len();
            out.push_str(&body[..start]);
            out.push(sign);
            out.push_str(&body[start..]);
        }
        Some((sign, true)) => {
            out.push_str(&body);
            out.push(sign);
        }
        None => out.push_str(&body),
    }
    out.extend(fixed_end);
    if fill {
        out
    } else {
        out.replace(' ', "")
    }
}

/// The digits of a number in `to_char` slots: `int_text` right-aligned into `slots` ('9',
/// '0', ','), then the fraction into `frac_slots` if the template has a point.
fn digits_body(
    slots: &[char],
    int_text: &str,
    has_point: bool,
    frac_slots: &[char],
    frac_text: &str,
    fill: bool,
) -> String {
    // Digits right-aligned into the slots; a '0' slot forces zeros from there on.
    let first_zero = slots.iter().position(|c| *c == '0');
    let mut digits = int_text.chars().rev();
    let mut filled: Vec<char> = vec![' '; slots.len()];
    for (position, slot) in slots.iter().enumerate().rev() {
        if *slot == ',' {
            filled[position] = ',';
            continue;
        }
        filled[position] = match digits.next() {
            Some(d) => d,
            None if first_zero.is_some_and(|z| position >= z) => '0',
            None => ' ',
        };
    }
    // A separator with no digit to its left is a blank.
    for position in 0..filled.len() {
        if filled[position] == ',' && (position == 0 || !filled[position - 1].is_ascii_digit()) {
            filled[position] = ' ';
        }
    }
    let mut body: String = filled.into_iter().collect();
    if has_point {
        body.push('.');
        let mut fraction: Vec<char> = frac_text.chars().collect();
        fraction.resize(frac_slots.len(), '0');
        if !fill {
            // FM drops trailing zeros that '9' slots would show.
            while !fraction.is_empty()
                && fraction.last() == Some(&'0')
                && frac_slots.get(fraction.len() - 1) == Some(&'9')
            {
                fraction.pop();
            }
        }
        body.extend(fraction);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        datetime::days_from_civil(y, m, d) * USECS_PER_DAY
            + h * 3_600_000_000
            + mi * 60_000_000
            + s * 1_000_000
    }

    #[test]
    fn timestamps_format_as_postgresql() {
        let t = at(2024, 3, 5, 14, 7, 9);
        assert_eq!(
            format_timestamp(t, None, "YYYY-MM-DD HH24:MI:SS"),
            "2024-03-05 14:07:09"
        );
        assert_eq!(
            format_timestamp(t, None, "Day, DD Mon YYYY"),
            "Tuesday  , 05 Mar 2024"
        );
        assert_eq!(
            format_timestamp(t, None, "FMDay, FMDDth FMMonth"),
            "Tuesday, 5th March"
        );
        assert_eq!(format_timestamp(t, None, "HH12:MI AM"), "02:07 PM");
        assert_eq!(
            format_timestamp(t, None, "YYYY\"Q\"Q IYYY-IW"),
            "2024Q1 2024-10"
        );
        let cest = LocalTime {
            offset_secs: 7200,
            is_dst: true,
            abbrev: "CEST".into(),
        };
        assert_eq!(
            format_timestamp(t, Some(&cest), "HH24 TZ tz OF"),
            "14 CEST cest +02"
        );
    }

    #[test]
    fn numbers_format_as_postgresql() {
        let n = |s: &str| Numeric::parse(s).unwrap();
        assert_eq!(format_number(&n("1234.5"), "9999.99"), " 1234.50");
        assert_eq!(format_number(&n("-12.345"), "999.99"), " -12.35");
        assert_eq!(format_number(&n("1234567"), "9,999,999"), " 1,234,567");
        assert_eq!(format_number(&n("42"), "0000"), " 0042");
        assert_eq!(format_number(&n("42"), "FM9999"), "42");
        assert_eq!(format_number(&n("12345"), "999"), " ###");
    }
}
