//! How `svc status` and `svc list` read on a terminal.

use crate::control::{HostInfo, ReloadChanges, ScheduleInfo, UnitInfo};
use crate::logs::escape_controls;
use std::fmt::Write;
use std::time::Duration;

/// `svc status NAME`: a block per unit, like `systemctl status`.
pub fn status(units: &[UnitInfo]) -> String {
    let mut out = String::new();
    for (i, unit) in units.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        status_block(&mut out, unit);
    }
    out
}

fn status_block(out: &mut String, unit: &UnitInfo) {
    let bullet = match unit.state.as_str() {
        "running" | "exited" => "●",
        "failed" => "×",
        _ => "○",
    };
    let description = unit
        .description
        .as_deref()
        .map(|d| format!(" - {d}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{bullet} {}{description}", unit.name);
    let ready = if unit.state == "running" && !unit.ready {
        " (not ready)"
    } else {
        ""
    };
    let paused = match (&unit.paused_by, unit.paused) {
        (Some(signal), true) => format!(", stopped ({signal})"),
        (None, true) => ", stopped".to_string(),
        (_, false) => String::new(),
    };
    let ago = crate::time::human_span(Duration::from_secs_f64(unit.since_secs.max(0.0)));
    let _ = writeln!(
        out,
        "     State: {}{ready}{paused} since {}; {ago} ago",
        unit.state, unit.since
    );
    if !unit.reason.is_empty() {
        let _ = writeln!(out, "    Reason: {}", unit.reason);
    }
    if let Some(text) = &unit.status_text {
        let _ = writeln!(out, "    Status: {}", escape_controls(text));
    }
    for error in &unit.errors {
        let _ = writeln!(out, "     Error: {error}");
    }
    match (unit.pid, unit.old_pid) {
        (Some(pid), Some(old)) => {
            let _ = writeln!(out, "       PID: {pid} (the old run, {old}, still running)");
        }
        (Some(pid), None) => {
            let _ = writeln!(out, "       PID: {pid}");
        }
        _ => {}
    }
    if let Some(next) = &unit.next_start {
        let _ = writeln!(out, "      Next: start at {next}");
    }
    if let Some(schedule) = &unit.schedule {
        schedule_lines(out, schedule);
    }
    if unit.errors.is_empty() {
        let _ = writeln!(out, "  Restarts: {}", unit.restarts);
    }
    if let Some(exit) = &unit.last_exit {
        let _ = writeln!(out, " Last exit: {} at {}", exit.reason, exit.at);
    }
    if let Some(reload) = &unit.last_reload {
        let (what, how) = if reload.ok {
            ("reloaded", &reload.reason)
        } else {
            ("reload failed", &reload.reason)
        };
        let _ = writeln!(out, "    Reload: {what} at {} ({how})", reload.at);
    }
    if !unit.command.is_empty() {
        let _ = writeln!(
            out,
            "   Command: {}",
            shlex::try_join(unit.command.iter().map(String::as_str))
                .unwrap_or_else(|_| unit.command.join(" "))
        );
    }
    if unit.pid.is_some() {
        let _ = writeln!(
            out,
            "    Memory: {} (swap {}; {}{})",
            size(unit.memory.rss),
            size(unit.memory.swap),
            match unit.memory.mode {
                crate::control::protocol::MemoryMode::Cgroup => "its cgroup",
                crate::control::protocol::MemoryMode::Cgroup2 => "its cgroup v2",
                crate::control::protocol::MemoryMode::Sampled => "sampled",
            },
            aged(unit.memory.age_ms, "; ")
        );
        let _ = writeln!(out, "       CPU: {:.2}s", unit.cpu);
    }
    if let Some(ladder) = &unit.memory.ladder {
        ladder_lines(out, ladder, "of its memory", "");
    }
    if let Some(ladder) = &unit.memory.host_ladder {
        if let Some(cause) = &ladder.cause {
            let _ = writeln!(out, "  Pressure: {cause}");
        }
        let host = "for host memory pressure, ";
        ladder_lines(out, ladder, "of host memory pressure", host);
    }
    if let Some(error) = &unit.log_error {
        let _ = writeln!(out, "  Log file: {error}");
    }
    if !unit.logs.is_empty() {
        out.push('\n');
        // A unit's escape sequences are shown, not run, on the operator's terminal.
        for line in &unit.logs {
            let _ = writeln!(out, "{}", escape_controls(line));
        }
    }
}

/// A scheduled unit's lines of `svc status`: when, the next run, the last one, what was skipped.
fn schedule_lines(out: &mut String, schedule: &ScheduleInfo) {
    let mut when: Vec<String> = schedule.calendar.clone();
    if let Some(every) = &schedule.every {
        when.push(format!("every {every}"));
    }
    let _ = writeln!(
        out,
        "  Schedule: {} (overlap: {})",
        when.join("; "),
        schedule.overlap
    );
    match (&schedule.next_run, schedule.next_run_secs) {
        (Some(at), Some(secs)) => {
            let span = crate::time::human_span(Duration::from_secs_f64(secs.max(0.0)));
            let _ = writeln!(out, "  Next run: {at}; in {span}");
        }
        _ => {
            let _ = writeln!(out, "  Next run: none");
        }
    }
    if let Some(run) = &schedule.last_run {
        let how = match (&run.code, &run.signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("killed by {signal}"),
            (None, None) => "did not start".to_string(),
        };
        let took = crate::time::human_span(Duration::from_secs_f64(run.duration_secs.max(0.0)));
        let _ = writeln!(out, "  Last run: {} for {took}, {how}", run.start);
    }
    let queued = if schedule.queued { ", one queued" } else { "" };
    let _ = writeln!(
        out,
        "      Runs: {} by schedule, {} skipped{queued}",
        schedule.runs, schedule.skipped
    );
}

/// What `svc reload` changed, a line per kind: `restarted: chat, proxy`.
pub fn reload_changes(changes: &ReloadChanges) -> String {
    let mut out = String::new();
    for (kind, names) in [
        ("started", &changes.started),
        ("added", &changes.added),
        ("stopped", &changes.stopped),
        ("restarted", &changes.restarted),
        ("updated", &changes.updated),
    ] {
        if !names.is_empty() {
            let _ = writeln!(out, "{kind}: {}", names.join(", "));
        }
    }
    out
}

/// The host line under `svc status`: memory, swap, pressure; and the host policy's last
/// warning, if there was one.
pub fn host(host: &HostInfo) -> String {
    let pressure = match (host.pressure_some_avg10, host.pressure_full_avg10) {
        (Some(some), Some(full)) => format!("some {some:.1}% full {full:.1}% (avg10)"),
        (Some(some), None) => format!("some {some:.1}% (avg10)"),
        _ => "n/a".to_string(),
    };
    let level = match host.level.as_str() {
        "ok" => String::new(),
        other => format!(" [{other}]"),
    };
    let mut out = format!(
        "\nHost: memory {}/{} used, swap {}/{} used, pressure {pressure}{level}{}\n",
        size(host.mem_used),
        size(host.mem_total),
        size(host.swap_used),
        size(host.swap_total),
        aged(host.age_ms, " "),
    );
    if let Some(event) = &host.last_event {
        let _ = writeln!(out, "      last event: {event}");
    }
    out
}

/// The age of figures svcd read `age_ms` milliseconds before it answered, after `before`
/// (`3s ago`); nothing where they are less than a second old.
fn aged(age_ms: Option<u64>, before: &str) -> String {
    match age_ms.filter(|ms| *ms >= 1000) {
        Some(ms) => format!(
            "{before}{} ago",
            crate::time::human_span(Duration::from_millis(ms))
        ),
        None => String::new(),
    }
}

/// `svc list`: one line per unit.
pub fn list(units: &[UnitInfo]) -> String {
    let width = units.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:width$}  {:8}  {:>7}  {:>8}  {:>10}  {:>10}  DESCRIPTION\n",
        "NAME", "STATE", "PID", "RESTARTS", "FOR", "NEXT"
    );
    for unit in units {
        let pid = match unit.pid {
            Some(pid) if unit.adopted => format!("{pid}*"),
            Some(pid) => pid.to_string(),
            None => "-".into(),
        };
        let ago = crate::time::human_span(Duration::from_secs_f64(unit.since_secs.max(0.0)));
        let about = match unit.errors.first() {
            Some(error) => format!("invalid: {error}"),
            None => unit.description.clone().unwrap_or_default(),
        };
        // A scheduled unit's next run, else a backoff's next start.
        let next = unit
            .schedule
            .as_ref()
            .and_then(|s| s.next_run_secs)
            .map(|secs| crate::time::human_span(Duration::from_secs_f64(secs.max(0.0))))
            .or_else(|| unit.next_start.as_ref().map(|_| "restart".to_string()))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:width$}  {:8}  {pid:>7}  {:>8}  {ago:>10}  {next:>10}  {about}",
            unit.name, unit.state, unit.restarts
        );
    }
    if units.iter().any(|unit| unit.adopted && unit.pid.is_some()) {
        out.push_str("* adopted: started by a previous svcd, taken back when this one started\n");
    }
    out
}

/// Bytes in powers of 1024, as the unit keys write them: `512K`, `12.3M`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// What the memory ladder did in the unit's run: `Told:` (`told`: of what) and `Reclaim:` (after
/// `why`) lines.
fn ladder_lines(out: &mut String, ladder: &crate::control::LadderInfo, told: &str, why: &str) {
    if let (Some(at), Some(bytes)) = (&ladder.last_told, ladder.last_told_bytes) {
        let times = match ladder.told {
            1 => String::new(),
            n => format!(" ({n} times)"),
        };
        let _ = writeln!(
            out,
            "      Told: {told} at {at}, using {}{times}",
            size(bytes)
        );
    }
    if let (Some(at), Some(bytes)) = (&ladder.last_pressure_told, ladder.last_pressure_told_bytes) {
        let times = match ladder.pressure_told {
            1 => String::new(),
            n => format!(" ({n} times)"),
        };
        let cause = crate::memory::ladder::PRESSURE_CAUSE;
        let _ = writeln!(
            out,
            "      Told: of {cause} at {at}, using {}{times}",
            size(bytes)
        );
    }
    if let Some(at) = &ladder.last_reclaim {
        let times = match ladder.reclaims {
            1 => String::new(),
            n => format!(" ({n} times)"),
        };
        let what = match (&ladder.last_reclaim_skipped, ladder.last_reclaim_freed) {
            (Some(why), _) => format!("skipped at {at}: {why}"),
            (None, Some(freed)) => format!(
                "{} paged out at {at} in {} ms",
                size(freed),
                ladder.last_reclaim_ms.unwrap_or(0)
            ),
            (None, None) => format!("at {at}"),
        };
        let _ = writeln!(out, "   Reclaim: {why}{what}{times}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_unit_keys() {
        assert_eq!(size(512), "512B");
        assert_eq!(size(12 * 1024 * 1024 + 300 * 1024), "12.3M");
    }

    #[test]
    fn host_line() {
        let mut info = HostInfo {
            mem_total: 512 << 20,
            mem_used: 300 << 20,
            swap_total: 1 << 30,
            swap_used: 0,
            pressure_some_avg10: Some(1.5),
            pressure_full_avg10: Some(0.25),
            level: "ok".to_string(),
            last_event: None,
            svcd_rss: None,
            age_ms: Some(400),
        };
        assert_eq!(
            host(&info),
            "\nHost: memory 300.0M/512.0M used, swap 0B/1.0G used, pressure some 1.5% full 0.2% (avg10)\n"
        );
        // A reading a request was answered from while older than a second says so.
        info.age_ms = Some(3_200);
        assert!(host(&info).ends_with("(avg10) 3s ago\n"), "{}", host(&info));
        info.age_ms = None;
        info.pressure_some_avg10 = None;
        info.pressure_full_avg10 = None;
        info.level = "warn".to_string();
        assert!(host(&info).ends_with("pressure n/a [warn]\n"));
    }

    #[test]
    fn ladder_lines_say_when_the_unit_was_told_and_what_reclaim_did() {
        let mut ladder = crate::control::LadderInfo {
            told: 2,
            last_told: Some("2026-11-26T10:00:00.000Z".to_string()),
            last_told_bytes: Some(90 << 20),
            reclaims: 1,
            last_reclaim: Some("2026-11-26T10:00:01.000Z".to_string()),
            last_reclaim_freed: Some(40 << 20),
            last_reclaim_ms: Some(12),
            last_reclaim_skipped: None,
            cause: None,
            ..Default::default()
        };
        let mut out = String::new();
        ladder_lines(&mut out, &ladder, "of its memory", "");
        assert_eq!(
            out,
            "      Told: of its memory at 2026-11-26T10:00:00.000Z, using 90.0M (2 times)\n   \
             Reclaim: 40.0M paged out at 2026-11-26T10:00:01.000Z in 12 ms\n"
        );
        ladder.last_reclaim_skipped = Some("0B of swap free, the unit holds 80.0M".to_string());
        ladder.last_reclaim_freed = None;
        let mut out = String::new();
        ladder_lines(&mut out, &ladder, "of its memory", "");
        assert!(
            out.ends_with(
                "Reclaim: skipped at 2026-11-26T10:00:01.000Z: 0B of swap free, the unit holds 80.0M\n"
            ),
            "{out}"
        );
        // The host's steps say theirs is host memory pressure.
        let mut out = String::new();
        let host = "for host memory pressure, ";
        ladder_lines(&mut out, &ladder, "of host memory pressure", host);
        assert!(
            out.starts_with("      Told: of host memory pressure at 2026-11-26T10:00:00.000Z"),
            "{out}"
        );
        assert!(
            out.contains("Reclaim: for host memory pressure, skipped at"),
            "{out}"
        );
    }

    /// A telling by the PSI trigger on the unit's cgroup has a line of its own, whose cause is
    /// not the crossing of 90% of its limit.
    #[test]
    fn a_telling_of_pressure_in_its_cgroup_is_told_apart_from_the_crossing() {
        let ladder = crate::control::LadderInfo {
            pressure_told: 3,
            last_pressure_told: Some("2026-11-26T10:00:02.000Z".to_string()),
            last_pressure_told_bytes: Some(45 << 20),
            ..Default::default()
        };
        let mut out = String::new();
        ladder_lines(&mut out, &ladder, "of its memory", "");
        assert_eq!(
            out,
            "      Told: of memory pressure in its cgroup at 2026-11-26T10:00:02.000Z, using 45.0M \
             (3 times)\n"
        );
    }
}
