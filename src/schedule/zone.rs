//! Time zones from the system's tz database: TZif files (RFC 8536, versions 1 to 4) and POSIX
//! `TZ` strings, parsed here rather than by a crate (what svcd needs is a few hundred lines;
//! the database itself stays in `/usr/share/zoneinfo`, not in the binary).
//!
//! [`Zone::parse_tzif`] and [`Zone::parse_posix`] are pure; [`load`] reads the files.

use super::calendar::{days_from_civil, days_in_month, is_leap};
use std::path::{Path, PathBuf};

/// One kind of local time: its offset east of UTC and its abbreviation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalType {
    offset: i64,
    abbr: String,
}

/// A zone: transitions, then the POSIX rule for the times after the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `UTC`, `Europe/Berlin`, `localtime`, or the `TZ` string.
    pub name: String,
    /// Unix seconds of each transition, ascending, with the type in force from it.
    transitions: Vec<(i64, usize)>,
    types: Vec<LocalType>,
    rule: Option<Rule>,
}

/// A POSIX TZ rule: `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    std: LocalType,
    dst: Option<(LocalType, Date, Date)>,
}

/// A transition date of a rule, and the local time of day (seconds, may be negative or past a
/// day) at which it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Date {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(u32, i64),
    /// `n`: day 0..=365, February 29 counted.
    Julian0(u32, i64),
    /// `Mm.w.d`: weekday `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    Month(u32, u32, u32, i64),
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            transitions: Vec::new(),
            types: vec![LocalType {
                offset: 0,
                abbr: "UTC".to_string(),
            }],
            rule: None,
        }
    }

    /// A zone with a fixed offset (for tests and `TZ=XXX-2`-style strings).
    pub fn parse_posix(name: &str, text: &str) -> Result<Zone, String> {
        let rule = parse_rule(text)?;
        Ok(Zone {
            name: name.to_string(),
            transitions: Vec::new(),
            types: vec![rule.std.clone()],
            rule: Some(rule),
        })
    }

    /// A TZif file's contents.
    pub fn parse_tzif(name: &str, data: &[u8]) -> Result<Zone, String> {
        let header = |data: &[u8]| -> Result<[usize; 6], String> {
            if data.len() < 44 || &data[..4] != b"TZif" {
                return Err("not a TZif file".to_string());
            }
            let mut counts = [0usize; 6];
            for (i, count) in counts.iter_mut().enumerate() {
                let at = 20 + 4 * i;
                *count = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                    as usize;
            }
            // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
            Ok(counts)
        };
        let [isut, isstd, leap, time, types, chars] = header(data)?;
        let version = data[4];
        let v1_len = 44 + time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
        let (body, counts, time_size) = if version >= b'2' {
            let v2 = data.get(v1_len..).ok_or("TZif file cut short")?;
            (v2, header(v2)?, 8)
        } else {
            (data, [isut, isstd, leap, time, types, chars], 4)
        };
        let [isut, isstd, leap, time, types, chars] = counts;
        let mut at = 44;
        let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
            let slice = body.get(*at..*at + n).ok_or("TZif file cut short")?;
            *at += n;
            Ok(slice)
        };
        let times = take(&mut at, time * time_size)?.to_vec();
        let indexes = take(&mut at, time)?.to_vec();
        let type_bytes = take(&mut at, types * 6)?.to_vec();
        let abbrs = take(&mut at, chars)?.to_vec();
        take(&mut at, leap * (time_size + 4) + isstd + isut)?;
        let mut zone_types = Vec::with_capacity(types);
        for t in type_bytes.chunks_exact(6) {
            let offset = i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]]));
            let start = usize::from(t[5]);
            let abbr = abbrs.get(start..).unwrap_or_default();
            let end = abbr.iter().position(|&b| b == 0).unwrap_or(abbr.len());
            let abbr = String::from_utf8_lossy(&abbr[..end]).into_owned();
            zone_types.push(LocalType { offset, abbr });
        }
        if zone_types.is_empty() {
            return Err("TZif file has no local time types".to_string());
        }
        let mut transitions = Vec::with_capacity(time);
        for (i, &index) in indexes.iter().enumerate() {
            let raw = &times[i * time_size..(i + 1) * time_size];
            let secs = if time_size == 8 {
                i64::from_be_bytes(raw.try_into().map_err(|_| "bad transition")?)
            } else {
                i64::from(i32::from_be_bytes(
                    raw.try_into().map_err(|_| "bad transition")?,
                ))
            };
            if usize::from(index) >= zone_types.len() {
                return Err("TZif transition names an unknown type".to_string());
            }
            transitions.push((secs, usize::from(index)));
        }
        let rule = if version >= b'2' {
            let footer = &body[at..];
            let text = String::from_utf8_lossy(footer);
            let text = text.trim_matches('\n');
            if text.is_empty() {
                None
            } else {
                Some(parse_rule(text)?)
            }
        } else {
            None
        };
        Ok(Zone {
            name: name.to_string(),
            transitions,
            types: zone_types,
            rule,
        })
    }

    fn type_at(&self, utc: i64) -> &LocalType {
        let after_last = self.transitions.last().is_none_or(|&(at, _)| utc >= at);
        if after_last && let Some(rule) = &self.rule {
            return rule.type_at(utc);
        }
        match self.transitions.partition_point(|&(at, _)| at <= utc) {
            0 => &self.types[0],
            n => &self.types[self.transitions[n - 1].1],
        }
    }

    /// Offset east of UTC at `utc`, in seconds.
    pub fn offset(&self, utc: i64) -> i64 {
        self.type_at(utc).offset
    }

    /// `CET`, `CEST`, `UTC`.
    pub fn abbreviation(&self, utc: i64) -> &str {
        &self.type_at(utc).abbr
    }

    /// Local seconds (as if UTC) of the instant `utc`.
    pub fn to_local(&self, utc: i64) -> i64 {
        utc + self.offset(utc)
    }

    /// The instants whose local time is `local`, earliest first: none in a gap, two in a fold.
    pub fn from_local(&self, local: i64) -> [Option<i64>; 2] {
        // Real zones change their offset at most once within a day either side.
        let before = self.offset(local - 86_400);
        let after = self.offset(local + 86_400);
        let mut found: Vec<i64> = [before, after]
            .into_iter()
            .map(|offset| local - offset)
            .filter(|&utc| self.to_local(utc) == local)
            .collect();
        found.sort_unstable();
        found.dedup();
        [found.first().copied(), found.get(1).copied()]
    }
}

impl Rule {
    fn type_at(&self, utc: i64) -> &LocalType {
        let Some((dst, start, end)) = &self.dst else {
            return &self.std;
        };
        let year = crate::time::civil_from_days((utc + self.std.offset).div_euclid(86_400)).0;
        let begins = start.local_secs(year) - self.std.offset;
        let ends = end.local_secs(year) - dst.offset;
        let in_dst = if begins < ends {
            utc >= begins && utc < ends
        } else {
            !(utc >= ends && utc < begins)
        };
        if in_dst { dst } else { &self.std }
    }
}

impl Date {
    /// Local seconds (as if UTC) of the transition in `year`.
    fn local_secs(self, year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let (day, time) = match self {
            Date::Julian1(n, time) => {
                let extra = i64::from(is_leap(year) && n >= 60);
                (jan1 + i64::from(n) - 1 + extra, time)
            }
            Date::Julian0(n, time) => (jan1 + i64::from(n), time),
            Date::Month(month, week, weekday, time) => {
                let first = days_from_civil(year, month, 1);
                // 1970-01-01 was a Thursday (4 counting from Sunday).
                let first_weekday = (first + 4).rem_euclid(7) as u32;
                let mut day = 1 + (weekday + 7 - first_weekday) % 7 + (week - 1) * 7;
                while day > days_in_month(year, month) {
                    day -= 7;
                }
                (first + i64::from(day) - 1, time)
            }
        };
        day * 86_400 + time
    }
}

/// Parses a POSIX TZ string (the TZif footer, or `TZ`).
fn parse_rule(text: &str) -> Result<Rule, String> {
    let bad = || format!("bad TZ rule \"{text}\"");
    let mut rest = text;
    let std_abbr = take_abbr(&mut rest).ok_or_else(bad)?;
    let std_offset = -take_time(&mut rest).ok_or_else(bad)?;
    let std = LocalType {
        offset: std_offset,
        abbr: std_abbr,
    };
    if rest.is_empty() {
        return Ok(Rule { std, dst: None });
    }
    let dst_abbr = take_abbr(&mut rest).ok_or_else(bad)?;
    let dst_offset = if rest.starts_with(',') || rest.is_empty() {
        std_offset + 3600
    } else {
        -take_time(&mut rest).ok_or_else(bad)?
    };
    let (start, end) = if rest.is_empty() {
        // POSIX leaves the default to the implementation; glibc takes the US rules.
        (Date::Month(3, 2, 0, 7200), Date::Month(11, 1, 0, 7200))
    } else {
        rest = rest.strip_prefix(',').ok_or_else(bad)?;
        let start = take_date(&mut rest).ok_or_else(bad)?;
        rest = rest.strip_prefix(',').ok_or_else(bad)?;
        let end = take_date(&mut rest).ok_or_else(bad)?;
        if !rest.is_empty() {
            return Err(bad());
        }
        (start, end)
    };
    let dst = LocalType {
        offset: dst_offset,
        abbr: dst_abbr,
    };
    Ok(Rule {
        std,
        dst: Some((dst, start, end)),
    })
}

fn take_abbr(rest: &mut &str) -> Option<String> {
    if let Some(quoted) = rest.strip_prefix('<') {
        let (abbr, tail) = quoted.split_once('>')?;
        *rest = tail;
        return Some(abbr.to_string());
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    if end < 3 {
        return None;
    }
    let abbr = rest[..end].to_string();
    *rest = &rest[end..];
    Some(abbr)
}

/// `[+-]hh[:mm[:ss]]` in seconds.
fn take_time(rest: &mut &str) -> Option<i64> {
    let (sign, body) = match rest.as_bytes().first() {
        Some(b'-') => (-1, &rest[1..]),
        Some(b'+') => (1, &rest[1..]),
        _ => (1, *rest),
    };
    let end = body
        .find(|c: char| !c.is_ascii_digit() && c != ':')
        .unwrap_or(body.len());
    let mut secs = 0i64;
    let mut parts = 0;
    for (i, part) in body[..end].split(':').enumerate() {
        if i > 2 || part.is_empty() {
            return None;
        }
        let value: i64 = part.parse().ok()?;
        secs += value * [3600, 60, 1][i];
        parts += 1;
    }
    if parts == 0 {
        return None;
    }
    *rest = &body[end..];
    Some(sign * secs)
}

fn take_date(rest: &mut &str) -> Option<Date> {
    let end = rest.find([',', '/']).unwrap_or(rest.len());
    let spec = &rest[..end];
    *rest = &rest[end..];
    let time = match rest.strip_prefix('/') {
        Some(tail) => {
            *rest = tail;
            take_time(rest)?
        }
        None => 7200,
    };
    if let Some(n) = spec.strip_prefix('J') {
        let n: u32 = n.parse().ok()?;
        (1..=365).contains(&n).then_some(Date::Julian1(n, time))
    } else if let Some(m) = spec.strip_prefix('M') {
        let mut it = m.split('.').map(|p| p.parse::<u32>().ok());
        let (month, week, day) = (it.next()??, it.next()??, it.next()??);
        let valid = (1..=12).contains(&month) && (1..=5).contains(&week) && day <= 6;
        valid.then_some(Date::Month(month, week, day, time))
    } else {
        let n: u32 = spec.parse().ok()?;
        (n <= 365).then_some(Date::Julian0(n, time))
    }
}

/// Why a zone could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error(
        "unknown time zone \"{name}\": {path} is not readable ({source}); use UTC or a name under {dir}"
    )]
    Read {
        name: String,
        path: PathBuf,
        dir: String,
        source: std::io::Error,
    },
    #[error("time zone \"{name}\": {message}")]
    Parse { name: String, message: String },
    #[error("bad time zone name \"{0}\": use a tz database name like Europe/Berlin")]
    Name(String),
}

/// Where the tz database is: `TZDIR`, else `/usr/share/zoneinfo`.
fn zoneinfo_dir() -> PathBuf {
    std::env::var_os("TZDIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"))
}

fn read_tzif(name: &str, path: &Path) -> Result<Zone, ZoneError> {
    let data = std::fs::read(path).map_err(|source| ZoneError::Read {
        name: name.to_string(),
        path: path.to_path_buf(),
        dir: zoneinfo_dir().display().to_string(),
        source,
    })?;
    Zone::parse_tzif(name, &data).map_err(|message| ZoneError::Parse {
        name: name.to_string(),
        message,
    })
}

/// The zone named `name` (a tz database name, or `UTC`); `None`: the host's local time zone:
/// `TZ` if set (a name, a `:name`, a path or a POSIX rule), else `/etc/localtime`, else UTC.
pub fn load(name: Option<&str>) -> Result<Zone, ZoneError> {
    match name {
        Some(name) => load_named(name),
        None => match std::env::var("TZ") {
            Ok(tz) if !tz.is_empty() => {
                let tz = tz.strip_prefix(':').unwrap_or(&tz);
                if tz.starts_with('/') {
                    read_tzif(tz, Path::new(tz))
                } else if let Ok(zone) = load_named(tz) {
                    Ok(zone)
                } else {
                    Zone::parse_posix(tz, tz).map_err(|message| ZoneError::Parse {
                        name: tz.to_string(),
                        message,
                    })
                }
            }
            _ => {
                let path = Path::new("/etc/localtime");
                if path.exists() {
                    read_tzif("localtime", path)
                } else {
                    Ok(Zone::utc())
                }
            }
        },
    }
}

fn load_named(name: &str) -> Result<Zone, ZoneError> {
    if name.eq_ignore_ascii_case("utc") {
        return Ok(Zone::utc());
    }
    let safe = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
    if !safe {
        return Err(ZoneError::Name(name.to_string()));
    }
    read_tzif(name, &zoneinfo_dir().join(name))
}
