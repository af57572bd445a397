//! `svc status --check`: one verdict for an orchestrator's liveness probe.

use crate::control::UnitInfo;

/// The verdict on `units`: `Ok` with a one-line summary when every unit that should run is
/// running and ready, else `Err` with one line naming each that is not, and why.
///
/// `named`: the user named the units, so each must run, enabled or not. Otherwise the units
/// that should run are the enabled ones, plus every unit whose file is invalid (it was meant to
/// be something, and a probe that passed would hide that).
pub fn check(units: &[UnitInfo], named: bool) -> Result<String, String> {
    let mut checked = 0;
    let mut bad = Vec::new();
    for unit in units {
        let broken = !unit.errors.is_empty();
        if !(named || unit.enabled || broken) {
            continue;
        }
        checked += 1;
        if broken {
            bad.push(format!("{} has an invalid unit file", unit.name));
        } else if unit.schedule.is_some() {
            // Runs when due: between runs it rests, and only a failed run is a fault.
            if unit.state == "failed" {
                bad.push(format!("{} is failed ({})", unit.name, unit.reason));
            }
        } else if !is_up(unit) {
            bad.push(format!("{} is {} ({})", unit.name, unit.state, unit.reason));
        } else if !unit.ready && unit.state == "running" {
            bad.push(format!("{} is running but not ready", unit.name));
        }
    }
    if bad.is_empty() {
        let s = if checked == 1 { "" } else { "s" };
        Ok(format!("ok: {checked} unit{s} running and ready"))
    } else {
        Err(format!("not ok: {}", bad.join("; ")))
    }
}

/// Whether `unit` is where it should be when it runs: running, or a oneshot that finished
/// (`exited` with `remain`, `inactive` with the reason kind `finished` without).
pub fn is_up(unit: &UnitInfo) -> bool {
    match unit.state.as_str() {
        "running" | "exited" => true,
        "inactive" => unit.reason_kind == "finished",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::MemoryInfo;

    fn unit(name: &str, state: &str, ready: bool, enabled: bool) -> UnitInfo {
        UnitInfo {
            name: name.to_string(),
            state: state.to_string(),
            ready,
            pid: None,
            since: String::new(),
            restarts: 0,
            last_exit: None,
            memory: MemoryInfo::default(),
            cpu: 0.0,
            description: None,
            reason: "restarting in 400ms".to_string(),
            reason_kind: "restart".to_string(),
            enabled,
            command: Vec::new(),
            next_start: None,
            starts: 0,
            errors: Vec::new(),
            since_secs: 0.0,
            logs: Vec::new(),
            log_error: None,
            paused: false,
            paused_by: None,
            old_pid: None,
            last_reload: None,
            status_text: None,
            schedule: None,
            adopted: false,
        }
    }

    #[test]
    fn every_enabled_unit_must_run_and_be_ready() {
        let web = unit("web", "running", true, true);
        let tool = unit("tool", "inactive", false, false);
        assert_eq!(
            check(&[web.clone(), tool.clone()], false),
            Ok("ok: 1 unit running and ready".to_string())
        );
        let db = unit("db", "backoff", false, true);
        assert_eq!(
            check(&[web.clone(), db, tool.clone()], false),
            Err("not ok: db is backoff (restarting in 400ms)".to_string())
        );
        let slow = unit("slow", "running", false, true);
        assert_eq!(
            check(&[slow], false),
            Err("not ok: slow is running but not ready".to_string())
        );
        // Named: disabled units count too.
        assert!(
            check(&[web, tool], true)
                .unwrap_err()
                .contains("tool is inactive")
        );
    }

    #[test]
    fn a_finished_oneshot_passes_a_failed_one_does_not() {
        let exited = unit("prep", "exited", false, true);
        let mut finished = unit("mkdirs", "inactive", false, true);
        finished.reason_kind = "finished".to_string();
        assert_eq!(
            check(&[exited, finished.clone()], false),
            Ok("ok: 2 units running and ready".to_string())
        );
        finished.reason_kind = "operator".to_string();
        assert!(
            check(&[finished], false).is_err(),
            "stopped is not finished"
        );
    }

    #[test]
    fn an_invalid_unit_file_fails_the_check() {
        let mut broken = unit("bad", "failed", false, false);
        broken.errors = vec!["bad.toml:1:1: exec: missing".to_string()];
        assert_eq!(
            check(&[broken], false),
            Err("not ok: bad has an invalid unit file".to_string())
        );
        assert_eq!(
            check(&[], false),
            Ok("ok: 0 units running and ready".to_string())
        );
    }
}
