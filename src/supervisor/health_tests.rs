//! Health checks and sd_notify `STATUS=` in the core: the daemon reports, the core decides.

use super::tests::{Harness, SIGTERM, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

fn healthy_unit(h: &mut Harness, failures: u32) -> (UnitId, u32) {
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| c.checks.health_failures = failures);
    let pid = h.start(id);
    (id, pid)
}

#[test]
fn failed_health_checks_in_a_row_fail_the_unit_at_the_configured_count() {
    let mut h = Harness::new();
    let (id, pid) = healthy_unit(&mut h, 3);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.state(id), State::Running);
    assert!(
        h.actions().is_empty(),
        "two failures change nothing visible"
    );
    h.sup.handle_health_check(h.now, id, Err("timed out"));
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(h.reason(id), "health check failed: timed out");
    assert_eq!(h.sup.status(id).reason_kind, ReasonKind::HealthCheck);
    assert!(h.actions().contains(&term(id, pid)));
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Backoff);
}

#[test]
fn a_passing_health_check_starts_the_count_again() {
    let mut h = Harness::new();
    let (id, _) = healthy_unit(&mut h, 2);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    h.sup.handle_health_check(h.now, id, Ok(()));
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.state(id), State::Running);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.state(id), State::Stopping);
}

#[test]
fn a_new_run_starts_with_no_failed_health_checks() {
    let mut h = Harness::new();
    let (id, _) = healthy_unit(&mut h, 2);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    h.sup.handle_restart(h.now, id, "restarted by operator");
    h.actions();
    h.exit(id, ExitStatus::Signal(SIGTERM));
    h.spawned(id);
    h.actions();
    assert_eq!(h.state(id), State::Running);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.state(id), State::Running, "one failure of this run only");
}

#[test]
fn health_verdicts_outside_running_are_ignored() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| c.checks.health_failures = 1);
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.state(id), State::Inactive);
    h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.sup.handle_health_check(h.now, id, Err("refused"));
    assert_eq!(h.reason(id), "stopped by operator");
}

#[test]
fn the_core_times_health_checks_beside_the_watchdog() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| {
        c.checks.health_interval = Some(ms(1000));
        c.checks.watchdog = Some(ms(2500));
    });
    h.start(id);
    // Two timers armed at once: the health check's comes first.
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(1000)));
    h.step();
    assert_eq!(h.actions(), [Action::CheckHealth { unit: id }]);
    // No second check while this one runs; the watchdog still counts.
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(2500)));
    h.advance(ms(300));
    h.sup.handle_health_check(h.now, id, Ok(()));
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(2300)));
    h.sup.handle_watchdog(h.now, id);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(2300)));
    h.step();
    assert_eq!(h.actions(), [Action::CheckHealth { unit: id }]);
    // Stopped: no more checks.
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn status_text_lasts_one_run_and_wakes_nobody() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.sup.handle_status_text(h.now, id, "before any run");
    assert_eq!(h.sup.status_text(id), None, "no process: ignored");
    h.start(id);
    h.sup.handle_status_text(h.now, id, "loading 3 of 10");
    h.sup.handle_status_text(h.now, id, "serving");
    assert!(
        h.actions().is_empty(),
        "not a change of status waiters wake for"
    );
    assert_eq!(h.sup.status_text(id), Some("serving"));
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.sup.status_text(id), None, "gone with its run");
}
