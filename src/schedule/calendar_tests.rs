//! The calendar search, table-driven: shorthands, lists, ranges, repeats, month ends, leap days,
//! and daylight-saving changes in real zones (read from the system's tz database when present).

use super::calendar::{Calendar, days_from_civil};
use super::zone::Zone;

/// Unix seconds of a UTC date-time.
fn utc(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
}

fn next(expr: &str, after: i64, zone: &Zone) -> Option<i64> {
    Calendar::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .next_after(after, zone)
}

#[test]
fn next_due_times_in_utc() {
    let z = Zone::utc();
    // Thursday 2026-11-26 06:22:10 UTC.
    let now = utc(2026, 11, 26, 6, 22, 10);
    let table: &[(&str, i64)] = &[
        ("minutely", utc(2026, 11, 26, 6, 23, 0)),
        ("hourly", utc(2026, 11, 26, 7, 0, 0)),
        ("daily", utc(2026, 11, 27, 0, 0, 0)),
        ("weekly", utc(2026, 11, 30, 0, 0, 0)),
        ("monthly", utc(2026, 12, 1, 0, 0, 0)),
        ("yearly", utc(2027, 1, 1, 0, 0, 0)),
        ("annually", utc(2027, 1, 1, 0, 0, 0)),
        ("quarterly", utc(2027, 1, 1, 0, 0, 0)),
        ("semiannually", utc(2027, 1, 1, 0, 0, 0)),
        ("*-*-* 03:00", utc(2026, 11, 27, 3, 0, 0)),
        ("*-*-* 07:00", utc(2026, 11, 26, 7, 0, 0)),
        ("Mon..Fri 09:00", utc(2026, 11, 26, 9, 0, 0)),
        ("Sat,Sun 10:00:00", utc(2026, 11, 28, 10, 0, 0)),
        ("*:0/15", utc(2026, 11, 26, 6, 30, 0)),
        ("*:*:0/2", utc(2026, 11, 26, 6, 22, 12)),
        ("*:*:*", utc(2026, 11, 26, 6, 22, 11)),
        ("*-*-01 00:00", utc(2026, 12, 1, 0, 0, 0)),
        ("2027-*-* 12:00", utc(2027, 1, 1, 12, 0, 0)),
        ("2026-12-24 18:00", utc(2026, 12, 24, 18, 0, 0)),
        ("12-24 18:00", utc(2026, 12, 24, 18, 0, 0)),
        ("*-*-* 8..10:00", utc(2026, 11, 26, 8, 0, 0)),
        ("*-*-* 6,18:30", utc(2026, 11, 26, 6, 30, 0)),
        ("*-*-* 1/6:00", utc(2026, 11, 26, 7, 0, 0)),
        ("*-*-* 0..12/5:00", utc(2026, 11, 26, 10, 0, 0)),
        ("*-*~1 23:00", utc(2026, 11, 30, 23, 0, 0)),
        ("*-02~1", utc(2027, 2, 28, 0, 0, 0)),
        ("Fri *-*-13", utc(2027, 8, 13, 0, 0, 0)),
        ("*-*-* 06:22:10 UTC", utc(2026, 11, 27, 6, 22, 10)),
        ("daily UTC", utc(2026, 11, 27, 0, 0, 0)),
        ("monday *-*-* 00:00", utc(2026, 11, 30, 0, 0, 0)),
    ];
    for &(expr, want) in table {
        assert_eq!(next(expr, now, &z), Some(want), "{expr}");
    }
}

#[test]
fn month_ends_and_leap_days() {
    let z = Zone::utc();
    let table: &[(&str, i64, i64)] = &[
        // The 31st skips the months without one.
        (
            "*-*-31",
            utc(2027, 3, 31, 0, 0, 0),
            utc(2027, 5, 31, 0, 0, 0),
        ),
        // February 29 only in leap years; 2100 is not one.
        (
            "*-02-29",
            utc(2026, 1, 1, 0, 0, 0),
            utc(2028, 2, 29, 0, 0, 0),
        ),
        (
            "*-02-29",
            utc(2096, 3, 1, 0, 0, 0),
            utc(2104, 2, 29, 0, 0, 0),
        ),
        // The last day of February, leap or not.
        (
            "*-02~1",
            utc(2027, 3, 1, 0, 0, 0),
            utc(2028, 2, 29, 0, 0, 0),
        ),
        ("*-*~3", utc(2028, 2, 1, 0, 0, 0), utc(2028, 2, 27, 0, 0, 0)),
        // Year end carries into the next year.
        (
            "*-*-* 00:00:00",
            utc(2026, 12, 31, 12, 0, 0),
            utc(2027, 1, 1, 0, 0, 0),
        ),
        (
            "*:59:59",
            utc(2026, 12, 31, 23, 59, 59),
            utc(2027, 1, 1, 0, 59, 59),
        ),
    ];
    for &(expr, after, want) in table {
        assert_eq!(next(expr, after, &z), Some(want), "{expr}");
    }
}

#[test]
fn a_due_time_is_strictly_after() {
    let z = Zone::utc();
    let at = utc(2026, 11, 26, 3, 0, 0);
    assert_eq!(next("*-*-* 03:00", at, &z), Some(at + 86_400));
    assert_eq!(next("*-*-* 03:00", at - 1, &z), Some(at));
    let cal = Calendar::parse("*:0/20").unwrap();
    let three = cal.next_n(at, &z, 3);
    assert_eq!(three, vec![at + 1200, at + 2400, at + 3600]);
}

#[test]
fn normalized_forms_as_systemd_prints_them() {
    let table: &[(&str, &str)] = &[
        ("daily", "*-*-* 00:00:00"),
        ("hourly", "*-*-* *:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("monthly", "*-*-01 00:00:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("Mon..Fri 09:00", "Mon..Fri *-*-* 09:00:00"),
        ("Sat,Sun 10:00:00", "Sat,Sun *-*-* 10:00:00"),
        ("*:0/15", "*-*-* *:00/15:00"),
        ("*:*:0/2", "*-*-* *:*:00/2"),
        ("*-*-* 03:00", "*-*-* 03:00:00"),
        ("2026-1-5 8..10:00", "2026-01-05 08..10:00:00"),
        ("*-02~1", "*-02~01 00:00:00"),
        (
            "Mon,Tue,Wed,Fri 1:2:3 UTC",
            "Mon..Wed,Fri *-*-* 01:02:03 UTC",
        ),
    ];
    for &(expr, want) in table {
        let cal = Calendar::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(cal.normalized(), want, "{expr}");
        // The normalized form parses to the same schedule.
        let again = Calendar::parse(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(again.normalized(), want);
    }
}

#[test]
fn bad_expressions_name_the_column() {
    let table: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("Mon..Fri 25:00", 9, "hour 25 is out of range"),
        ("*-13-01", 2, "month 13"),
        ("*-*-* 03:00:00.5", 12, "fractions"),
        ("*-*-* 03:x0", 9, "expected a number for the minute"),
        ("*:0/0", 4, "at least 1"),
        ("Fri..Mon 09:00", 0, "runs backwards"),
        ("*-*-* 10..2:00", 6, "runs backwards"),
        ("*-02-30", 0, "never due"),
        ("daily foo bar", 10, "only a zone"),
        ("Funday 09:00", 0, "unexpected \"Funday\""),
        ("*-*-* 09:00 Mars", 12, "unknown zone"),
        ("26-01-01", 0, "four digits"),
    ];
    for &(expr, offset, words) in table {
        let error = Calendar::parse(expr).expect_err(expr);
        assert_eq!(error.offset, offset, "{expr}: {error}");
        assert!(error.message.contains(words), "{expr}: {error}");
    }
}

/// A zone of the system's tz database, or `None` (and a visible note) when it is missing.
fn system_zone(name: &str) -> Option<Zone> {
    let path = std::path::Path::new("/usr/share/zoneinfo").join(name);
    match std::fs::read(&path) {
        Ok(data) => Some(Zone::parse_tzif(name, &data).expect("a valid TZif file")),
        Err(_) => {
            eprintln!(
                "SKIPPED: {} is missing; DST tables not checked",
                path.display()
            );
            None
        }
    }
}

/// The same zones from their POSIX rules, which every TZif footer carries: the DST rules are
/// checked even where no tz database is installed.
fn rule_zones() -> Vec<Zone> {
    vec![
        Zone::parse_posix("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
        Zone::parse_posix("America/New_York", "EST5EDT,M3.2.0,M11.1.0").unwrap(),
    ]
}

fn zones() -> Vec<(Zone, Zone)> {
    let rules = rule_zones();
    let mut out = Vec::new();
    for rule in rules {
        match system_zone(&rule.name) {
            Some(file) => out.push((rule.clone(), file)),
            None => out.push((rule.clone(), rule)),
        }
    }
    out
}

#[test]
fn daylight_saving_gaps_are_skipped_and_folds_run_once() {
    // (zone, expression, after (UTC), the next three due times (UTC)).
    type Case = (&'static str, &'static str, i64, [i64; 3]);
    let cases: &[Case] = &[
        // Berlin springs forward on 2027-03-28 at 02:00 CET → 03:00 CEST: 02:30 does not exist
        // that day.
        (
            "Europe/Berlin",
            "*-*-* 02:30",
            utc(2027, 3, 26, 12, 0, 0),
            [
                utc(2027, 3, 27, 1, 30, 0),
                utc(2027, 3, 29, 0, 30, 0),
                utc(2027, 3, 30, 0, 30, 0),
            ],
        ),
        // Berlin falls back on 2027-10-31 at 03:00 CEST → 02:00 CET: 02:30 happens twice, and
        // runs once, at the first (00:30 UTC).
        (
            "Europe/Berlin",
            "*-*-* 02:30",
            utc(2027, 10, 30, 12, 0, 0),
            [
                utc(2027, 10, 31, 0, 30, 0),
                utc(2027, 11, 1, 1, 30, 0),
                utc(2027, 11, 2, 1, 30, 0),
            ],
        ),
        // Hourly across the fall-back: 02:00 CEST, then 03:00 CET (the repeated 02:00 is not run
        // again).
        (
            "Europe/Berlin",
            "hourly",
            utc(2027, 10, 30, 23, 30, 0),
            [
                utc(2027, 10, 31, 0, 0, 0),
                utc(2027, 10, 31, 2, 0, 0),
                utc(2027, 10, 31, 3, 0, 0),
            ],
        ),
        // Daily at 03:00 keeps local time across the change: 01:00 UTC, then 02:00 UTC.
        (
            "Europe/Berlin",
            "daily",
            utc(2027, 3, 27, 12, 0, 0),
            [
                utc(2027, 3, 27, 23, 0, 0),
                utc(2027, 3, 28, 22, 0, 0),
                utc(2027, 3, 29, 22, 0, 0),
            ],
        ),
        // New York springs forward on 2027-03-14 at 02:00 EST → 03:00 EDT.
        (
            "America/New_York",
            "*-*-* 02:15",
            utc(2027, 3, 13, 0, 0, 0),
            [
                utc(2027, 3, 13, 7, 15, 0),
                utc(2027, 3, 15, 6, 15, 0),
                utc(2027, 3, 16, 6, 15, 0),
            ],
        ),
        // ...and falls back on 2027-11-07 at 02:00 EDT → 01:00 EST: 01:30 runs at its first.
        (
            "America/New_York",
            "*-*-* 01:30",
            utc(2027, 11, 6, 12, 0, 0),
            [
                utc(2027, 11, 7, 5, 30, 0),
                utc(2027, 11, 8, 6, 30, 0),
                utc(2027, 11, 9, 6, 30, 0),
            ],
        ),
        // Every 30 minutes through the repeated hour: the second 01:00..01:59 is not run.
        (
            "America/New_York",
            "*:0/30",
            utc(2027, 11, 7, 5, 10, 0),
            [
                utc(2027, 11, 7, 5, 30, 0),
                utc(2027, 11, 7, 7, 0, 0),
                utc(2027, 11, 7, 7, 30, 0),
            ],
        ),
    ];
    for (rule, file) in zones() {
        for zone in [&rule, &file] {
            for (name, expr, after, want) in cases.iter().filter(|c| c.0 == rule.name) {
                let cal = Calendar::parse(expr).unwrap();
                let got = cal.next_n(*after, zone, 3);
                assert_eq!(
                    got,
                    want.to_vec(),
                    "{name} {expr} (zone data {:?})",
                    zone.name
                );
                let _ = name;
            }
        }
    }
}

#[test]
fn offsets_and_abbreviations_of_real_zones() {
    for (rule, file) in zones() {
        for zone in [&rule, &file] {
            let (winter, summer) = (utc(2027, 1, 15, 12, 0, 0), utc(2027, 7, 15, 12, 0, 0));
            let (w, s, wa, sa) = match rule.name.as_str() {
                "Europe/Berlin" => (3600, 7200, "CET", "CEST"),
                _ => (-5 * 3600, -4 * 3600, "EST", "EDT"),
            };
            assert_eq!(zone.offset(winter), w, "{}", rule.name);
            assert_eq!(zone.offset(summer), s, "{}", rule.name);
            assert_eq!(zone.abbreviation(winter), wa);
            assert_eq!(zone.abbreviation(summer), sa);
            // Far ahead: past the file's last transition, the footer rule decides.
            assert_eq!(zone.offset(utc(2150, 7, 1, 0, 0, 0)), s, "{}", rule.name);
        }
    }
}

#[test]
fn posix_rules_of_other_shapes() {
    // Southern hemisphere: DST across the new year.
    let sydney = Zone::parse_posix("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
    assert_eq!(sydney.offset(utc(2027, 1, 15, 0, 0, 0)), 11 * 3600);
    assert_eq!(sydney.offset(utc(2027, 7, 15, 0, 0, 0)), 10 * 3600);
    // Quoted abbreviations and fixed offsets.
    let fixed = Zone::parse_posix("x", "<+0530>-5:30").unwrap();
    assert_eq!(fixed.offset(0), 5 * 3600 + 1800);
    assert_eq!(fixed.abbreviation(0), "+0530");
    // Julian days.
    let julian = Zone::parse_posix("j", "AAA3BBB,J60,300").unwrap();
    assert_eq!(julian.offset(utc(2027, 6, 1, 0, 0, 0)), -2 * 3600);
    assert!(Zone::parse_posix("bad", "C1").is_err());
    assert!(Zone::parse_posix("bad", "CET-1CEST,M13.5.0,M10.5.0").is_err());
}

#[test]
fn tzif_files_that_are_not_refused() {
    assert!(Zone::parse_tzif("x", b"not a zone file at all, clearly not TZif....").is_err());
    assert!(Zone::parse_tzif("x", b"TZif").is_err());
    if let Some(zone) = system_zone("Europe/Berlin") {
        let mut data = std::fs::read("/usr/share/zoneinfo/Europe/Berlin").unwrap();
        data.truncate(data.len() / 2);
        assert!(Zone::parse_tzif("cut", &data).is_err());
        assert_eq!(zone.name, "Europe/Berlin");
    }
}

/// The search against brute force: every minute of ten days around a DST change (both ways),
/// in UTC and in Berlin, is due exactly when its local time matches and it is the first instant
/// of that local time.
#[test]
fn the_search_agrees_with_a_minute_by_minute_scan() {
    let zones = [
        Zone::utc(),
        Zone::parse_posix("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
    ];
    let exprs = [
        "*:0/7",
        "Mon..Fri 09:00",
        "*-*~1 23:30",
        "Sat,Sun *:15,45",
        "*-*-* 2:0/10",
        "*-*-27..31 0/5:00",
    ];
    for start in [utc(2027, 3, 22, 0, 0, 0), utc(2027, 10, 26, 0, 0, 0)] {
        let end = start + 10 * 86_400;
        for zone in &zones {
            for expr in exprs {
                let cal = Calendar::parse(expr).unwrap();
                let mut searched = Vec::new();
                let mut at = start;
                while let Some(next) = cal.next_after(at, zone).filter(|&n| n < end) {
                    searched.push(next);
                    at = next;
                }
                let scanned: Vec<i64> = (start / 60 + 1..end / 60)
                    .map(|minute| minute * 60)
                    .filter(|&u| {
                        let local = zone.to_local(u);
                        cal.matches_local(local) && zone.from_local(local)[0] == Some(u)
                    })
                    .collect();
                assert_eq!(searched, scanned, "{expr} in {}", zone.name);
            }
        }
    }
}
