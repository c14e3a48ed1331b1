//! The session `TimeZone`: what wall-clock time a UTC moment is somewhere, and back.
//!
//! A `timestamptz` is a UTC moment; the session's time zone decides how it prints, how a
//! time without an offset is read, what date and hour it falls on, and how adding days or
//! months crosses daylight-saving changes — as in PostgreSQL. Zones come from the system's
//! tz database (`/usr/share/zoneinfo`, or `$TZDIR`), read from the compiled TZif files
//! (RFC 8536) including their POSIX footer rule for times past the last listed transition.
//! Names are matched case-insensitively and reported as the file is named
//! (`america/new_york` is `America/New_York`), as PostgreSQL does.
//!
//! Settings PostgreSQL accepts besides zone names, with its sign conventions: a POSIX rule
//! (`EST5EDT`, `UTC+3` — three hours *west* of Greenwich, `<+05:30>-05:30`), and a plain
//! number of hours (`-7`, ISO sign: seven hours west, reported as `<-07>+07`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::datetime::{civil_from_days, days_from_civil, days_in_month, UNIX_EPOCH_DAYS};

const USECS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const UNIX_TO_PG_SECS: i64 = -UNIX_EPOCH_DAYS * SECS_PER_DAY;

/// A time zone: a name and the offsets from UTC it has had and will have.
#[derive(Clone, Debug)]
pub struct TimeZone {
    name: Arc<str>,
    rules: Arc<Rules>,
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone::utc()
    }
}

/// Offsets PostgreSQL accepts are under a week: at most 167 hours.
const MAX_OFFSET_HOURS: i64 = 167;

/// One kind of local time in a zone: its offset east of UTC, whether it is daylight-saving
/// time, and its abbreviation (`CEST`).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalTime {
    /// Seconds east of UTC.
    pub offset_secs: i32,
    /// Daylight-saving time.
    pub is_dst: bool,
    /// Abbreviation, as `to_char`'s `TZ` prints it.
    pub abbrev: String,
}

#[derive(Debug)]
enum Rules {
    Posix(PosixRule),
    Tzif(Tzif),
}

impl TimeZone {
    /// UTC, Cairn's default.
    pub fn utc() -> Self {
        static UTC: OnceLock<TimeZone> = OnceLock::new();
        UTC.get_or_init(|| TimeZone {
            name: "UTC".into(),
            rules: Arc::new(Rules::Posix(PosixRule::fixed(0, "UTC"))),
        })
        .clone()
    }

    /// The zone a `TimeZone` setting names, or `None` if there is no such zone. Loaded
    /// zones are kept for the life of the process.
    pub fn named(setting: &str) -> Option<Self> {
        Self::lookup(setting, true)
    }

    /// The zone `AT TIME ZONE` names: as [`Self::named`], except that a number is a POSIX
    /// offset (`'+05'` is five hours *west*), as PostgreSQL reads it there.
    pub fn named_at(name: &str) -> Option<Self> {
        Self::lookup(name, false)
    }

    fn lookup(setting: &str, iso_hours: bool) -> Option<Self> {
        static LOADED: OnceLock<Mutex<HashMap<String, TimeZone>>> = OnceLock::new();
        // Checked before allocating anything: sessions ask for their zone per statement.
        const UTC_NAMES: [&str; 5] = ["utc", "etc/utc", "z", "zulu", "uct"];
        if UTC_NAMES
            .iter()
            .any(|u| setting.trim().eq_ignore_ascii_case(u))
        {
            return Some(Self::utc());
        }
        let key = format!("{iso_hours}:{}", setting.trim().to_ascii_lowercase());
        let loaded = LOADED.get_or_init(Default::default);
        if let Some(zone) = loaded.lock().ok()?.get(&key) {
            return Some(zone.clone());
        }
        let hours = iso_hours.then(|| Self::hours(setting.trim())).flatten();
        let zone = hours
            .or_else(|| Self::from_database(setting.trim()))
            .or_else(|| {
                let rule = PosixRule::parse(setting.trim(), true)?;
                Some(TimeZone {
                    name: setting.trim().into(),
                    rules: Arc::new(Rules::Posix(rule)),
                })
            })?;
        // Bounded: settings are client input.
        let mut loaded = loaded.lock().ok()?;
        if loaded.len() < 1024 {
            loaded.insert(key, zone.clone());
        }
        Some(zone)
    }

    /// A plain number of hours, ISO sign (`-7` is seven hours west): what
    /// `SET TIME ZONE -7` sets.
    fn hours(setting: &str) -> Option<Self> {
        let hours: f64 = setting.parse().ok()?;
        if !hours.is_finite() || hours.abs() > MAX_OFFSET_HOURS as f64 {
            return None;
        }
        Some(Self::fixed((hours * 3600.0).round() as i32))
    }

    /// A fixed offset east of UTC, named as PostgreSQL names it (`<-07>+07`).
    pub fn fixed(offset_secs: i32) -> Self {
        let abbrev = format_offset(offset_secs, false);
        let posix = format_offset(-offset_secs, false);
        TimeZone {
            name: format!("<{abbrev}>{posix}").into(),
            rules: Arc::new(Rules::Posix(PosixRule::fixed(offset_secs, &abbrev))),
        }
    }

    fn from_database(name: &str) -> Option<Self> {
        let dir = std::env::var_os("TZDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
        let (canonical, path) = find_zone_file(&dir, name)?;
        let bytes = std::fs::read(path).ok()?;
        let tzif = Tzif::parse(&bytes)?;
        Some(TimeZone {
            name: canonical.into(),
            rules: Arc::new(Rules::Tzif(tzif)),
        })
    }

    /// The name `SHOW TimeZone` reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is UTC (offset zero at every moment).
    pub fn is_utc(&self) -> bool {
        Arc::ptr_eq(&self.rules, &Self::utc().rules)
    }

    /// The local time in force at `utc_usecs` (µs since 2000-01-01 UTC).
    pub fn local_time_at(&self, utc_usecs: i64) -> &LocalTime {
        let unix_secs = utc_usecs.div_euclid(USECS_PER_SEC) + UNIX_TO_PG_SECS;
        match &*self.rules {
            Rules::Posix(rule) => rule.local_time_at(unix_secs),
            Rules::Tzif(tzif) => tzif.local_time_at(unix_secs),
        }
    }

    /// Seconds east of UTC at `utc_usecs`.
    pub fn offset_at(&self, utc_usecs: i64) -> i32 {
        self.local_time_at(utc_usecs).offset_secs
    }

    /// The wall-clock time (as a `timestamp`) at the moment `utc_usecs`. Infinities stay.
    pub fn to_local(&self, utc_usecs: i64) -> i64 {
        if is_infinite(utc_usecs) {
            return utc_usecs;
        }
        utc_usecs.saturating_add(i64::from(self.offset_at(utc_usecs)) * USECS_PER_SEC)
    }

    /// The moment at which the clocks of this zone show `local_usecs`. A time skipped by a
    /// spring-forward change is read with the offset before it (02:30 becomes 03:30 daylight
    /// time), and a time repeated by a fall-back change as the later of the two moments, as
    /// PostgreSQL's `DetermineTimeZoneOffset` does. Infinities stay.
    pub fn to_utc(&self, local_usecs: i64) -> i64 {
        if is_infinite(local_usecs) {
            return local_usecs;
        }
        let day = SECS_PER_DAY * USECS_PER_SEC;
        let before = i64::from(self.offset_at(local_usecs.saturating_sub(day))) * USECS_PER_SEC;
        let after = i64::from(self.offset_at(local_usecs.saturating_add(day))) * USECS_PER_SEC;
        let by_before = local_usecs.saturating_sub(before);
        let by_after = local_usecs.saturating_sub(after);
        let before_holds = i64::from(self.offset_at(by_before)) * USECS_PER_SEC == before;
        let after_holds = i64::from(self.offset_at(by_after)) * USECS_PER_SEC == after;
        match (before_holds, after_holds) {
            (true, false) => by_before,
            (false, true) => by_after,
            _ => by_before.max(by_after),
        }
    }
}

fn is_infinite(usecs: i64) -> bool {
    usecs == i64::MAX || usecs == i64::MIN
}

/// An offset as PostgreSQL prints it after a time: `+02`, `-05:30`, `-04:56:02`. With
/// `always_minutes`, `+02:00` (ISO 8601, as JSON shows timestamps).
pub fn format_offset(offset_secs: i32, always_minutes: bool) -> String {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let abs = offset_secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    let mut out = format!("{sign}{h:02}");
    if m != 0 || s != 0 || always_minutes {
        out.push_str(&format!(":{m:02}"));
    }
    if s != 0 {
        out.push_str(&format!(":{s:02}"));
    }
    out
}

/// Finds `name` under `dir`, matching each path component case-insensitively. Returns the
/// name as the files spell it and the file's path. Names that could leave `dir` are refused.
fn find_zone_file(dir: &Path, name: &str) -> Option<(String, PathBuf)> {
    let safe = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    };
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 3 || !parts.iter().all(|part| safe(part)) {
        return None;
    }
    let mut path = dir.to_path_buf();
    let mut canonical = Vec::with_capacity(parts.len());
    for part in parts {
        let exact = path.join(part);
        let found = if exact.exists() {
            part.to_string()
        } else {
            std::fs::read_dir(&path)
                .ok()?
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .find(|entry| entry.eq_ignore_ascii_case(part))?
        };
        path.push(&found);
        canonical.push(found);
    }
    path.is_file().then(|| (canonical.join("/"), path))
}

/// A compiled tz database file: transitions between local time types, and the POSIX rule
/// that continues after the last one.
#[derive(Debug)]
struct Tzif {
    /// Unix seconds at which each transition happens, ascending.
    transitions: Vec<i64>,
    /// The local time type index each transition starts.
    type_after: Vec<u8>,
    types: Vec<LocalTime>,
    footer: Option<PosixRule>,
}

impl Tzif {
    /// Parses a TZif file (versions 1–4). `None` if it is not one.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut input = Bytes(bytes);
        let header = Header::read(&mut input)?;
        if header.version == 0 {
            return Self::read_block(&mut input, &header, 4);
        }
        // Version 2+: skip the 32-bit block; the 64-bit block and the footer follow.
        input.take(header.block_len(4))?;
        let header = Header::read(&mut input)?;
        let mut tzif = Self::read_block(&mut input, &header, 8)?;
        let footer = std::str::from_utf8(input.0).ok()?;
        let footer = footer.trim_start_matches('\n');
        let footer = footer.split('\n').next().unwrap_or("");
        if !footer.is_empty() {
            tzif.footer = PosixRule::parse(footer, false);
        }
        Some(tzif)
    }

    fn read_block(input: &mut Bytes<'_>, header: &Header, time_size: usize) -> Option<Self> {
        // Zones with leap seconds (`right/...`) count seconds PostgreSQL does not; and a
        // file shorter than its header says is not read further.
        if header.leapcnt != 0 || input.0.len() < header.block_len(time_size) {
            return None;
        }
        let mut transitions = Vec::with_capacity(header.timecnt);
        for _ in 0..header.timecnt {
            let raw = input.take(time_size)?;
            transitions.push(if time_size == 8 {
                i64::from_be_bytes(raw.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(raw.try_into().ok()?))
            });
        }
        let type_after = input.take(header.timecnt)?.to_vec();
        let mut raw_types = Vec::with_capacity(header.typecnt);
        for _ in 0..header.typecnt {
            let raw = input.take(6)?;
            let offset = i32::from_be_bytes(raw[..4].try_into().ok()?);
            raw_types.push((offset, raw[4] != 0, usize::from(raw[5])));
        }
        let chars = input.take(header.charcnt)?;
        input.take(header.leapcnt * (time_size + 4) + header.isstdcnt + header.isutcnt)?;
        let types = raw_types
            .into_iter()
            .map(|(offset_secs, is_dst, at)| {
                let rest = chars.get(at..)?;
                let end = rest.iter().position(|&b| b == 0)?;
                Some(LocalTime {
                    offset_secs,
                    is_dst,
                    abbrev: String::from_utf8_lossy(&rest[..end]).into_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if types.is_empty() || type_after.iter().any(|&t| usize::from(t) >= types.len()) {
            return None;
        }
        Some(Tzif {
            transitions,
            type_after,
            types,
            footer: None,
        })
    }

    fn local_time_at(&self, unix_secs: i64) -> &LocalTime {
        if let Some(footer) = &self.footer {
            if self
                .transitions
                .last()
                .is_none_or(|&last| unix_secs >= last)
            {
                return footer.local_time_at(unix_secs);
            }
        }
        match self.transitions.partition_point(|&t| t <= unix_secs) {
            // Before the first transition: the first type (RFC 8536 §3.2).
            0 => &self.types[0],
            n => &self.types[usize::from(self.type_after[n - 1])],
        }
    }
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn read(input: &mut Bytes<'_>) -> Option<Self> {
        let head = input.take(44)?;
        if &head[..4] != b"TZif" {
            return None;
        }
        let count = |i: usize| -> Option<usize> {
            let raw: [u8; 4] = head[20 + 4 * i..24 + 4 * i].try_into().ok()?;
            usize::try_from(u32::from_be_bytes(raw)).ok()
        };
        Some(Header {
            version: head[4].saturating_sub(b'0'),
            isutcnt: count(0)?,
            isstdcnt: count(1)?,
            leapcnt: count(2)?,
            timecnt: count(3)?,
            typecnt: count(4)?,
            charcnt: count(5)?,
        })
    }

    fn block_len(&self, time_size: usize) -> usize {
        [
            self.timecnt.saturating_mul(time_size + 1),
            self.typecnt.saturating_mul(6),
            self.charcnt,
            self.leapcnt.saturating_mul(time_size + 4),
            self.isstdcnt,
            self.isutcnt,
        ]
        .into_iter()
        .fold(0, usize::saturating_add)
    }
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

/// A POSIX `TZ` rule: standard time, and optionally daylight time between two dates a year.
#[derive(Debug)]
struct PosixRule {
    standard: LocalTime,
    daylight: Option<Daylight>,
}

#[derive(Debug)]
struct Daylight {
    time: LocalTime,
    /// When daylight time starts, in standard local time.
    start: (RuleDate, i64),
    /// When it ends, in daylight local time.
    end: (RuleDate, i64),
}

#[derive(Debug, Clone, Copy)]
enum RuleDate {
    /// `Jn`: day 1–365 of the year, February 29 never counted.
    JulianNoLeap(i64),
    /// `n`: day 0–365 of the year, counting February 29.
    DayOfYear(i64),
    /// `Mm.w.d`: weekday `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay(u32, i64, i64),
}

impl PosixRule {
    fn fixed(offset_secs: i32, abbrev: &str) -> Self {
        PosixRule {
            standard: LocalTime {
                offset_secs,
                is_dst: false,
                abbrev: abbrev.into(),
            },
            daylight: None,
        }
    }

    /// Parses a POSIX rule (`CET-1CEST,M3.5.0,M10.5.0/3`). `bare_offset` also accepts a rule
    /// with no name before its offset (`+05:30`), as PostgreSQL's `TimeZone` does.
    fn parse(text: &str, bare_offset: bool) -> Option<Self> {
        let mut p = Parser(text.as_bytes());
        let std_name = p.name();
        if std_name.is_none() && !bare_offset {
            return None;
        }
        let std_offset = -p.offset()?;
        let offset_secs = i32::try_from(std_offset).ok()?;
        let std_abbrev = std_name.unwrap_or_else(|| format_offset(offset_secs, false));
        let standard = LocalTime {
            offset_secs,
            is_dst: false,
            abbrev: std_abbrev,
        };
        if p.0.is_empty() {
            return Some(PosixRule {
                standard,
                daylight: None,
            });
        }
        let dst_abbrev = p.name()?;
        let dst_offset = if p.0.first().is_some_and(|&b| b != b',') {
            -p.offset()?
        } else {
            std_offset + 3600
        };
        // Without dates, PostgreSQL's default rule (the US one since 2007).
        let (start, end) = if p.0.is_empty() {
            (
                (RuleDate::MonthWeekDay(3, 2, 0), 7200),
                (RuleDate::MonthWeekDay(11, 1, 0), 7200),
            )
        } else {
            p.expect(b',')?;
            let start = p.rule_date()?;
            p.expect(b',')?;
            let end = p.rule_date()?;
            (start, end)
        };
        if !p.0.is_empty() {
            return None;
        }
        Some(PosixRule {
            standard,
            daylight: Some(Daylight {
                time: LocalTime {
                    offset_secs: i32::try_from(dst_offset).ok()?,
                    is_dst: true,
                    abbrev: dst_abbrev,
                },
                start,
                end,
            }),
        })
    }

    fn local_time_at(&self, unix_secs: i64) -> &LocalTime {
        let Some(daylight) = &self.daylight else {
            return &self.standard;
        };
        let std_offset = i64::from(self.standard.offset_secs);
        let dst_offset = i64::from(daylight.time.offset_secs);
        let local_days = (unix_secs + std_offset).div_euclid(SECS_PER_DAY) + UNIX_EPOCH_DAYS;
        let (year, _, _) = civil_from_days(local_days);
        let at = |(date, time): (RuleDate, i64), offset: i64| {
            (rule_day(year, date) - UNIX_EPOCH_DAYS) * SECS_PER_DAY + time - offset
        };
        let start = at(daylight.start, std_offset);
        let end = at(daylight.end, dst_offset);
        let in_daylight = if start < end {
            start <= unix_secs && unix_secs < end
        } else {
            !(end <= unix_secs && unix_secs < start)
        };
        if in_daylight {
            &daylight.time
        } else {
            &self.standard
        }
    }
}

/// Days since 2000-01-01 of a rule's date in `year`.
fn rule_day(year: i64, date: RuleDate) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    match date {
        RuleDate::JulianNoLeap(n) => {
            let leap_shift = i64::from(super::datetime::is_leap_year(year) && n >= 60);
            jan1 + n - 1 + leap_shift
        }
        RuleDate::DayOfYear(n) => jan1 + n,
        RuleDate::MonthWeekDay(month, week, weekday) => {
            let first = days_from_civil(year, month, 1);
            // 2000-01-01 was a Saturday (6).
            let first_weekday = (first + 6).rem_euclid(7);
            let mut day = (weekday - first_weekday).rem_euclid(7) + (week - 1) * 7;
            if day >= i64::from(days_in_month(year, month)) {
                day -= 7;
            }
            first + day
        }
    }
}

struct Parser<'a>(&'a [u8]);

impl Parser<'_> {
    fn expect(&mut self, byte: u8) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        (first == byte).then(|| self.0 = rest)
    }

    /// A zone abbreviation: letters, or anything but `>` inside `<...>`.
    fn name(&mut self) -> Option<String> {
        if self.expect(b'<').is_some() {
            let end = self.0.iter().position(|&b| b == b'>')?;
            let name = String::from_utf8_lossy(&self.0[..end]).into_owned();
            self.0 = &self.0[end + 1..];
            return Some(name);
        }
        let end = self
            .0
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(self.0.len());
        if end == 0 {
            return None;
        }
        let name = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end..];
        Some(name)
    }

    fn number(&mut self) -> Option<i64> {
        let end = self
            .0
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.0.len());
        if end == 0 || end > 3 {
            return None;
        }
        let value = std::str::from_utf8(&self.0[..end]).ok()?.parse().ok()?;
        self.0 = &self.0[end..];
        Some(value)
    }

    /// `[+-]hh[:mm[:ss]]` in seconds, POSIX sign (positive is west of Greenwich for an
    /// offset, later in the day for a rule time).
    fn offset(&mut self) -> Option<i64> {
        let negative = match self.0.first() {
            Some(b'-') => true,
            Some(b'+') => false,
            _ => {
                let hours = self.number()?;
                return self.rest_of_time(hours);
            }
        };
        self.0 = &self.0[1..];
        let hours = self.number()?;
        let secs = self.rest_of_time(hours)?;
        Some(if negative { -secs } else { secs })
    }

    fn rest_of_time(&mut self, hours: i64) -> Option<i64> {
        if hours > MAX_OFFSET_HOURS {
            return None;
        }
        let mut secs = hours * 3600;
        for scale in [60, 1] {
            if self.expect(b':').is_none() {
                break;
            }
            let part = self.number()?;
            if part >= 60 {
                return None;
            }
            secs += part * scale;
        }
        Some(secs)
    }

    /// `date[/time]`, the time defaulting to 02:00.
    fn rule_date(&mut self) -> Option<(RuleDate, i64)> {
        let date = match self.0.first() {
            Some(b'J') => {
                self.0 = &self.0[1..];
                let n = self.number()?;
                (1..=365)
                    .contains(&n)
                    .then_some(RuleDate::JulianNoLeap(n))?
            }
            Some(b'M') => {
                self.0 = &self.0[1..];
                let month = self.number()?;
                self.expect(b'.')?;
                let week = self.number()?;
                self.expect(b'.')?;
                let weekday = self.number()?;
                if !(1..=12).contains(&month) || !(1..=5).contains(&week) || weekday > 6 {
                    return None;
                }
                RuleDate::MonthWeekDay(u32::try_from(month).ok()?, week, weekday)
            }
            _ => {
                let n = self.number()?;
                (0..=365).contains(&n).then_some(RuleDate::DayOfYear(n))?
            }
        };
        let time = if self.expect(b'/').is_some() {
            self.offset()?
        } else {
            7200
        };
        Some((date, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::datetime::{format_timestamp, parse_timestamp};

    fn at(text: &str) -> i64 {
        parse_timestamp(text, None).unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::named(name).unwrap_or_else(|| panic!("no zone {name}"))
    }

    /// Local wall-clock text of a UTC moment, with its offset.
    fn show(tz: &TimeZone, utc: &str) -> String {
        format_timestamp(at(utc), Some(tz))
    }

    #[test]
    fn zone_files_give_offsets_before_during_and_after_their_transitions() {
        let ny = zone("america/new_york");
        assert_eq!(ny.name(), "America/New_York");
        // Before standard time (local mean time), inside the listed transitions, and past
        // them (the footer rule).
        assert_eq!(
            show(&ny, "1883-01-01 04:56:02"),
            "1883-01-01 00:00:00-04:56:02"
        );
        assert_eq!(show(&ny, "1990-07-01 12:00"), "1990-07-01 08:00:00-04");
        assert_eq!(show(&ny, "2024-01-15 12:00"), "2024-01-15 07:00:00-05");
        assert_eq!(show(&ny, "2100-07-01 12:00"), "2100-07-01 08:00:00-04");
        assert_eq!(ny.local_time_at(at("2100-07-01 12:00")).abbrev, "EDT");
        let sydney = zone("Australia/Sydney");
        assert_eq!(show(&sydney, "2130-01-01 00:00"), "2130-01-01 11:00:00+11");
        assert_eq!(show(&sydney, "2130-07-01 00:00"), "2130-07-01 10:00:00+10");
        assert_eq!(
            show(&zone("Asia/Kolkata"), "2024-07-01 00:00"),
            "2024-07-01 05:30:00+05:30"
        );
    }

    #[test]
    fn local_times_are_read_as_postgresql_reads_them_around_changes() {
        let ny = zone("America/New_York");
        let utc = |local: &str| format_timestamp(ny.to_utc(at(local)), None);
        assert_eq!(utc("2024-07-01 12:00"), "2024-07-01 16:00:00");
        // Skipped by spring-forward: read with the offset before (03:30 EDT).
        assert_eq!(utc("2024-03-10 02:30"), "2024-03-10 07:30:00");
        // Repeated by fall-back: the later moment (standard time).
        assert_eq!(utc("2024-11-03 01:30"), "2024-11-03 06:30:00");
        assert_eq!(ny.to_utc(i64::MAX), i64::MAX);
    }

    #[test]
    fn posix_rules_and_numbers_use_postgresqls_sign_conventions() {
        assert_eq!(zone("UTC+3").offset_at(0), -3 * 3600);
        assert_eq!(zone("+05:30").offset_at(0), -(5 * 3600 + 1800));
        assert_eq!(zone("<+05:30>-05:30").offset_at(0), 5 * 3600 + 1800);
        let west = zone("-7");
        assert_eq!((west.name(), west.offset_at(0)), ("<-07>+07", -7 * 3600));
        assert_eq!(zone("5.5").name(), "<+05:30>-05:30");
        let rule = zone("CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(show(&rule, "2024-03-31 00:59"), "2024-03-31 01:59:00+01");
        assert_eq!(show(&rule, "2024-03-31 01:00"), "2024-03-31 03:00:00+02");
        assert_eq!(show(&rule, "2024-10-27 00:59"), "2024-10-27 02:59:00+02");
        assert_eq!(show(&rule, "2024-10-27 01:00"), "2024-10-27 02:00:00+01");
        assert!(TimeZone::named("Nowhere/Land").is_none());
        assert!(TimeZone::named("200").is_none() && TimeZone::named("<+999>-999").is_none());
        // Leap-second zones count seconds PostgreSQL does not.
        assert!(TimeZone::named("right/UTC").is_none());
        // AT TIME ZONE reads a number as POSIX does: west of Greenwich.
        assert_eq!(
            TimeZone::named_at("+05").map(|z| z.offset_at(0)),
            Some(-5 * 3600)
        );
        assert!(TimeZone::named("../../etc/passwd").is_none());
        assert!(TimeZone::utc().is_utc() && zone("utc").is_utc() && !zone("-7").is_utc());
    }
}
