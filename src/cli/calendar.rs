//! `svc calendar EXPR...`, and the due times `svc check` prints for scheduled units: what an
//! expression means, shown as its normalized form and its next due times.

use crate::schedule::{Calendar, ScheduleConfig, Zone, calendar::format_local, zone};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The lines of one expression: its normalized form, then its next `count` due times.
fn describe(out: &mut String, cal: &Calendar, zone: &Zone, count: usize, indent: &str) {
    let _ = writeln!(out, "{indent}normalized: {}", cal.normalized());
    let times = cal.next_n(now_secs(), zone, count);
    if times.is_empty() {
        let _ = writeln!(out, "{indent}      next: never");
    }
    for (i, at) in times.iter().enumerate() {
        let label = if i == 0 { "next:" } else { "" };
        let _ = writeln!(out, "{indent}{label:>11} {}", format_local(*at, zone));
    }
}

/// `svc check`'s lines for a scheduled unit: each calendar and its next three due times.
pub fn check_lines(schedule: &ScheduleConfig) -> String {
    let mut out = String::new();
    for (cal, zone) in &schedule.calendars {
        let _ = writeln!(out, "  calendar \"{}\" ({}):", cal.source, zone.name);
        describe(&mut out, cal, zone, 3, "    ");
    }
    if let Some(every) = schedule.every {
        let every = crate::unit::duration::format_duration(every);
        let _ = writeln!(
            out,
            "  every {every} from svcd's start, then from each run's start"
        );
    }
    out
}

/// `svc calendar`: the text for stdout, and the errors for stderr (empty: all valid).
pub fn run(exprs: &[String], timezone: Option<&str>, count: usize) -> (String, String) {
    let mut out = String::new();
    let mut errors = String::new();
    let default_zone = match zone::load(timezone) {
        Ok(zone) => zone,
        Err(e) => return (out, format!("svc: {e}\n")),
    };
    for (i, expr) in exprs.iter().enumerate() {
        match Calendar::parse(expr) {
            Ok(cal) => {
                let zone = match cal.zone.as_deref() {
                    Some(name) => match zone::load(Some(name)) {
                        Ok(zone) => zone,
                        Err(e) => {
                            let _ = writeln!(errors, "svc: \"{expr}\": {e}");
                            continue;
                        }
                    },
                    None => default_zone.clone(),
                };
                if i > 0 {
                    out.push('\n');
                }
                let _ = writeln!(out, "{expr} ({})", zone.name);
                describe(&mut out, &cal, &zone, count, "  ");
            }
            Err(e) => {
                let _ = writeln!(
                    errors,
                    "svc: bad calendar expression, {e}\n  {expr}\n  {:>width$}",
                    "^",
                    width = e.offset + 1
                );
            }
        }
    }
    (out, errors)
}
