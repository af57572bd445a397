//! Calendar expressions, systemd's `OnCalendar=` syntax (systemd.time(7)): parse, normalize,
//! and find the next due time after an instant in a time zone. Pure: no clock, no files.
//!
//! # The syntax accepted
//!
//! `[WEEKDAYS] [YEAR-]MONTH-DAY [HOUR:MINUTE[:SECOND]] [ZONE]`, every part optional but one, or
//! a shorthand (`minutely`, `hourly`, `daily`, `weekly`, `monthly`, `quarterly`,
//! `semiannually`, `yearly`/`annually`, each optionally followed by a zone). A missing date is
//! `*-*-*`, a missing time `00:00:00`, missing seconds `00`. Each numeric field is `*` or a
//! comma-separated list of `N`, `A..B`, `N/STEP`, `A..B/STEP` or `*/STEP`; `MONTH~DAY` counts
//! days from the month's end (`*-02~1` is February's last day). Weekdays are English names
//! (`Mon`, `Monday`), lists and ranges (`Mon..Fri`, `Sat,Sun`). `ZONE` is `UTC` or a tz
//! database name (`Europe/Berlin`). Not accepted: fractions of a second, two-digit years,
//! `@EPOCH`.
//!
//! # Daylight-saving time
//!
//! Times are matched against local wall-clock time. A local time that does not exist on a day
//! (the hour skipped when clocks go forward) is not due that day, as systemd's search refuses a
//! time its normalization moved. A local time that exists twice (the hour repeated when clocks
//! go back) is due once, at its first occurrence.

use super::zone::Zone;
use crate::time::civil_from_days;
use std::fmt::Write as _;

/// Years searched: a due time later than this is "never".
pub const MAX_YEAR: i64 = 2199;
const MIN_YEAR: i64 = 1970;

/// A bad expression: where (a byte offset in it) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for CalendarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.offset + 1, self.message)
    }
}

/// One component of a field: `start..=end`, every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    start: u32,
    end: u32,
    step: u32,
    /// How it was written, for the normalized form: `*/STEP`, `N/STEP`, `A..B`.
    star: bool,
    open: bool,
}

/// A numeric field; no parts is `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Field(Vec<Part>);

impl Field {
    fn matches(&self, value: u32) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|p| {
                value >= p.start
                    && value <= p.end
                    && (value - p.start).is_multiple_of(p.step.max(1))
            })
    }

    /// The smallest value ≥ `from` and ≤ `max` that matches.
    fn next(&self, from: u32, max: u32) -> Option<u32> {
        (from..=max).find(|&v| self.matches(v))
    }

    fn fixed(value: u32) -> Field {
        Field(vec![Part {
            start: value,
            end: value,
            step: 1,
            star: false,
            open: false,
        }])
    }

    fn normalized(&self, width: usize, out: &mut String) {
        if self.0.is_empty() {
            out.push('*');
            return;
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if p.star {
                out.push('*');
            } else {
                let _ = write!(out, "{:0width$}", p.start);
                if !p.open && p.end != p.start {
                    let _ = write!(out, "..{:0width$}", p.end);
                }
            }
            if p.step > 1 {
                let _ = write!(out, "/{}", p.step);
            }
        }
    }
}

/// A parsed calendar expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Bit 0 is Monday; all seven bits: any day.
    weekdays: u8,
    year: Field,
    month: Field,
    day: Field,
    /// `~`: `day` counts from the month's last day (1 is the last).
    day_from_end: bool,
    hour: Field,
    minute: Field,
    second: Field,
    /// A zone named in the expression itself, over the unit's `timezone`.
    pub zone: Option<String>,
    /// As written.
    pub source: String,
}

const ALL_DAYS: u8 = 0x7f;
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn err(offset: usize, message: impl Into<String>) -> CalendarError {
    CalendarError {
        offset,
        message: message.into(),
    }
}

impl Calendar {
    /// Parses `text`; errors give the byte offset of the bad part.
    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        let tokens: Vec<(usize, &str)> = text
            .split_whitespace()
            .map(|t| (t.as_ptr() as usize - text.as_ptr() as usize, t))
            .collect();
        let mut cal = Calendar {
            weekdays: ALL_DAYS,
            year: Field::default(),
            month: Field::default(),
            day: Field::default(),
            day_from_end: false,
            hour: Field::fixed(0),
            minute: Field::fixed(0),
            second: Field::fixed(0),
            zone: None,
            source: text.to_string(),
        };
        let Some(&(_, first)) = tokens.first() else {
            return Err(err(
                0,
                "empty calendar expression; e.g. \"daily\" or \"*-*-* 03:00\"",
            ));
        };
        let mut rest = &tokens[..];
        if let Some(short) = shorthand(first) {
            short(&mut cal);
            rest = &tokens[1..];
            return match rest {
                [] => Ok(cal),
                [(at, zone)] => cal.set_zone(*at, zone).map(|_| cal),
                [_, (at, _), ..] => Err(err(
                    *at,
                    format!("unexpected text after \"{first}\": a shorthand takes only a zone"),
                )),
            };
        }
        let mut seen_date = false;
        let mut seen_time = false;
        let mut seen_days = false;
        while let Some(&(at, token)) = rest.first() {
            rest = &rest[1..];
            let starts_alpha = token.starts_with(|c: char| c.is_ascii_alphabetic());
            if token.contains(':') && !seen_time {
                cal.parse_time(at, token)?;
                seen_time = true;
            } else if (token.contains('-') || token.contains('~'))
                && !starts_alpha
                && !seen_date
                && !seen_time
            {
                cal.parse_date(at, token)?;
                seen_date = true;
            } else if starts_alpha && !seen_days && !seen_date && !seen_time && is_weekdays(token) {
                cal.weekdays = parse_weekdays(at, token)?;
                seen_days = true;
            } else if starts_alpha && rest.is_empty() && (seen_days || seen_date || seen_time) {
                cal.set_zone(at, token)?;
            } else {
                return Err(err(
                    at,
                    format!(
                        "unexpected \"{token}\"; expected [WEEKDAYS] [YEAR-]MONTH-DAY \
                         [HOUR:MINUTE[:SECOND]] [ZONE], e.g. \"Mon..Fri 09:00\""
                    ),
                ));
            }
        }
        if cal
            .next_local(Local::new(MIN_YEAR, 1, 1, 0, 0, 0))
            .is_none()
        {
            return Err(err(0, "this expression is never due (no such date)"));
        }
        Ok(cal)
    }

    fn set_zone(&mut self, at: usize, token: &str) -> Result<(), CalendarError> {
        if token.eq_ignore_ascii_case("utc") || token.contains('/') {
            self.zone = Some(if token.eq_ignore_ascii_case("utc") {
                "UTC".to_string()
            } else {
                token.to_string()
            });
            Ok(())
        } else {
            Err(err(
                at,
                format!("unknown zone \"{token}\"; use UTC or a tz name like Europe/Berlin"),
            ))
        }
    }

    fn parse_date(&mut self, at: usize, token: &str) -> Result<(), CalendarError> {
        let (head, day, from_end) = match token.rsplit_once('~') {
            Some((head, day)) => (head, (at + head.len() + 1, day), true),
            None => match token.rsplit_once('-') {
                Some((head, day)) => (head, (at + head.len() + 1, day), false),
                None => return Err(err(at, "expected a date like 2026-12-24 or *-*-01")),
            },
        };
        let (year, month) = match head.split_once('-') {
            Some((year, month)) => (Some((at, year)), (at + year.len() + 1, month)),
            None => (None, (at, head)),
        };
        if let Some((at, year)) = year {
            if year.len() == 2 && year.chars().all(|c| c.is_ascii_digit()) {
                return Err(err(at, "write the year with four digits"));
            }
            self.year = parse_field(at, year, MIN_YEAR as u32, MAX_YEAR as u32, "year")?;
        }
        self.month = parse_field(month.0, month.1, 1, 12, "month")?;
        self.day = parse_field(day.0, day.1, 1, 31, "day")?;
        self.day_from_end = from_end;
        Ok(())
    }

    fn parse_time(&mut self, at: usize, token: &str) -> Result<(), CalendarError> {
        let parts: Vec<&str> = token.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(err(at, "expected a time like 03:00 or 03:00:00"));
        }
        let mut offset = at;
        let mut fields = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if part.contains('.') && i == 2 {
                return Err(err(offset, "fractions of a second are not supported"));
            }
            let (name, max) = [("hour", 23), ("minute", 59), ("second", 59)][i];
            fields.push(parse_field(offset, part, 0, max, name)?);
            offset += part.len() + 1;
        }
        self.hour = fields.remove(0);
        self.minute = fields.remove(0);
        self.second = fields.pop().unwrap_or_else(|| Field::fixed(0));
        Ok(())
    }

    /// systemd's normalized form: `Mon..Fri *-*-* 09:00:00`.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        if self.weekdays != ALL_DAYS {
            out.push_str(&weekday_list(self.weekdays));
            out.push(' ');
        }
        self.year.normalized(4, &mut out);
        out.push('-');
        self.month.normalized(2, &mut out);
        out.push(if self.day_from_end { '~' } else { '-' });
        self.day.normalized(2, &mut out);
        out.push(' ');
        self.hour.normalized(2, &mut out);
        out.push(':');
        self.minute.normalized(2, &mut out);
        out.push(':');
        self.second.normalized(2, &mut out);
        if let Some(zone) = &self.zone {
            out.push(' ');
            out.push_str(zone);
        }
        out
    }

    /// Whether the local time `local` (seconds, as if UTC) matches, field by field: the
    /// search's answer checked by brute force in the tests.
    #[cfg(test)]
    pub(super) fn matches_local(&self, local: i64) -> bool {
        let l = Local::from_secs(local);
        self.year.matches(l.year as u32)
            && self.month.matches(l.month)
            && self.day_matches(l.year, l.month, l.day)
            && self.hour.matches(l.hour)
            && self.minute.matches(l.minute)
            && self.second.matches(l.second)
    }

    fn day_matches(&self, year: i64, month: u32, day: u32) -> bool {
        let dim = days_in_month(year, month);
        let n = if self.day_from_end {
            dim + 1 - day
        } else {
            day
        };
        self.day.matches(n) && self.weekdays & (1 << weekday(year, month, day)) != 0
    }

    /// The first local time at or after `from` that matches, up to [`MAX_YEAR`].
    fn next_local(&self, from: Local) -> Option<Local> {
        let Local {
            mut year,
            mut month,
            mut day,
            mut hour,
            mut minute,
            mut second,
        } = from;
        loop {
            if year > MAX_YEAR {
                return None;
            }
            if !self.year.matches(year as u32) {
                (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0);
                continue;
            }
            match self.month.next(month, 12) {
                Some(m) if m == month => {}
                Some(m) => (month, day, hour, minute, second) = (m, 1, 0, 0, 0),
                None => {
                    (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0);
                    continue;
                }
            }
            let dim = days_in_month(year, month);
            match (day..=dim).find(|&d| self.day_matches(year, month, d)) {
                Some(d) if d == day => {}
                Some(d) => (day, hour, minute, second) = (d, 0, 0, 0),
                None => {
                    (month, day, hour, minute, second) = (month + 1, 1, 0, 0, 0);
                    if month > 12 {
                        (year, month) = (year + 1, 1);
                    }
                    continue;
                }
            }
            match self.hour.next(hour, 23) {
                Some(h) if h == hour => {}
                Some(h) => (hour, minute, second) = (h, 0, 0),
                None => {
                    (day, hour, minute, second) = (day + 1, 0, 0, 0);
                    continue;
                }
            }
            match self.minute.next(minute, 59) {
                Some(m) if m == minute => {}
                Some(m) => (minute, second) = (m, 0),
                None => {
                    (hour, minute, second) = (hour + 1, 0, 0);
                    continue;
                }
            }
            match self.second.next(second, 59) {
                Some(s) => {
                    return Some(Local::new(year, month, day, hour, minute, s));
                }
                None => {
                    (minute, second) = (minute + 1, 0);
                    continue;
                }
            }
        }
    }

    /// The first due time strictly after `after` (Unix seconds), in `zone`; `None`: never
    /// (before [`MAX_YEAR`]).
    pub fn next_after(&self, after: i64, zone: &Zone) -> Option<i64> {
        let start = after.checked_add(1)?;
        let mut from = Local::from_secs(zone.to_local(start));
        // Skipped local times (gaps, repeats) are few; the bound only stops a pathological
        // zone from looping.
        for _ in 0..10_000 {
            let found = self.next_local(from)?;
            let local = found.to_secs();
            if let Some(utc) = zone.from_local(local).into_iter().flatten().next()
                && utc > after
            {
                return Some(utc);
            }
            from = Local::from_secs(local + 1);
        }
        None
    }

    /// The next `count` due times after `after`.
    pub fn next_n(&self, after: i64, zone: &Zone, count: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(count);
        let mut at = after;
        while out.len() < count {
            match self.next_after(at, zone) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

/// Each shorthand, as systemd.time(7) expands it.
fn shorthand(token: &str) -> Option<fn(&mut Calendar)> {
    let set: fn(&mut Calendar) = match token.to_ascii_lowercase().as_str() {
        "minutely" => |c| {
            c.hour = Field::default();
            c.minute = Field::default();
        },
        "hourly" => |c| {
            c.hour = Field::default();
        },
        "daily" => |_| {},
        "weekly" => |c| c.weekdays = 1,
        "monthly" => |c| c.day = Field::fixed(1),
        "yearly" | "annually" => |c| {
            c.month = Field::fixed(1);
            c.day = Field::fixed(1);
        },
        "quarterly" => |c| {
            c.month = Field([1, 4, 7, 10].map(|m| Field::fixed(m).0[0]).to_vec());
            c.day = Field::fixed(1);
        },
        "semiannually" => |c| {
            c.month = Field([1, 7].map(|m| Field::fixed(m).0[0]).to_vec());
            c.day = Field::fixed(1);
        },
        _ => return None,
    };
    Some(set)
}

fn parse_field(
    at: usize,
    text: &str,
    min: u32,
    max: u32,
    name: &str,
) -> Result<Field, CalendarError> {
    if text.is_empty() {
        return Err(err(at, format!("missing {name}")));
    }
    if text == "*" {
        return Ok(Field::default());
    }
    let mut parts = Vec::new();
    let mut offset = at;
    for item in text.split(',') {
        let number = |at: usize, s: &str| -> Result<u32, CalendarError> {
            let value: u32 = s.parse().map_err(|_| {
                err(
                    at,
                    format!("expected a number for the {name}, found \"{s}\""),
                )
            })?;
            if value < min || value > max {
                return Err(err(
                    at,
                    format!("{name} {value} is out of range {min}..{max}"),
                ));
            }
            Ok(value)
        };
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step_at = offset + range.len() + 1;
                let step: u32 = step.parse().map_err(|_| {
                    err(
                        step_at,
                        format!("expected a repetition like /15, found \"/{step}\""),
                    )
                })?;
                if step == 0 {
                    return Err(err(step_at, "a repetition must be at least 1"));
                }
                (range, step)
            }
            None => (item, 1),
        };
        let part = if range == "*" {
            Part {
                start: min,
                end: max,
                step,
                star: true,
                open: true,
            }
        } else if let Some((a, b)) = range.split_once("..") {
            let start = number(offset, a)?;
            let end = number(offset + a.len() + 2, b)?;
            if start > end {
                return Err(err(offset, format!("range {start}..{end} runs backwards")));
            }
            Part {
                start,
                end,
                step,
                star: false,
                open: false,
            }
        } else {
            let start = number(offset, range)?;
            Part {
                start,
                end: if step > 1 { max } else { start },
                step,
                star: false,
                open: step > 1,
            }
        };
        parts.push(part);
        offset += item.len() + 1;
    }
    Ok(Field(parts))
}

fn weekday_index(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    (0..7).find(|&i| {
        lower == WEEKDAYS[i as usize].to_ascii_lowercase() || lower == LONG_WEEKDAYS[i as usize]
    })
}

fn is_weekdays(token: &str) -> bool {
    token
        .split(',')
        .flat_map(|t| t.split(".."))
        .all(|name| weekday_index(name).is_some())
}

fn parse_weekdays(at: usize, token: &str) -> Result<u8, CalendarError> {
    let mut mask = 0u8;
    for item in token.split(',') {
        let (a, b) = item.split_once("..").unwrap_or((item, item));
        let bad = || err(at, format!("unknown weekday in \"{item}\"; use Mon..Sun"));
        let a = weekday_index(a).ok_or_else(bad)?;
        let b = weekday_index(b).ok_or_else(bad)?;
        if a > b {
            return Err(err(
                at,
                format!(
                    "weekday range \"{item}\" runs backwards; write it in Mon..Sun order or as a list"
                ),
            ));
        }
        for d in a..=b {
            mask |= 1 << d;
        }
    }
    Ok(mask)
}

/// `Mon..Fri`, `Sat,Sun`, `Mon,Wed..Fri`.
fn weekday_list(mask: u8) -> String {
    let mut out = Vec::new();
    let mut d = 0;
    while d < 7 {
        if mask & (1 << d) == 0 {
            d += 1;
            continue;
        }
        let start = d;
        while d + 1 < 7 && mask & (1 << (d + 1)) != 0 {
            d += 1;
        }
        match d - start {
            0 => out.push(WEEKDAYS[start].to_string()),
            1 => out.push(format!("{},{}", WEEKDAYS[start], WEEKDAYS[d])),
            _ => out.push(format!("{}..{}", WEEKDAYS[start], WEEKDAYS[d])),
        }
        d += 1;
    }
    out.join(",")
}

/// A local wall-clock time, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Local {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Local {
    fn new(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Local {
        Local {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    fn from_secs(secs: i64) -> Local {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        Local::new(year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
    }

    fn to_secs(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 is Monday.
fn weekday(year: i64, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday (3).
    (days_from_civil(year, month, day) + 3).rem_euclid(7) as u32
}

/// Days since 1970-01-01 of a civil date, after Howard Hinnant's `days_from_civil`.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-27 09:00:00 CET` in `zone`, for `svc calendar` and `svc check`.
pub fn format_local(utc: i64, zone: &Zone) -> String {
    let l = Local::from_secs(zone.to_local(utc));
    format!(
        "{} {:04}-{:02}-{:02} {:02}:{:02}:{:02} {}",
        WEEKDAYS[weekday(l.year, l.month, l.day) as usize],
        l.year,
        l.month,
        l.day,
        l.hour,
        l.minute,
        l.second,
        zone.abbreviation(utc)
    )
}
