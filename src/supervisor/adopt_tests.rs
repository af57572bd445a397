//! Adoption against the fake clock: a unit taken back keeps its pid and counters, a process
//! lost while svcd was down is restarted with the reason, and an adopted run ends like any other.

use super::tests::{Harness, kill, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

pub(super) fn adopted(h: &Harness, pid: u32) -> Adopted {
    Adopted {
        pid,
        spawned_at: h.now - ms(5000),
        since: h.now - ms(4000),
        ready: true,
        restarts: 2,
        starts: 3,
        last_exit: None,
    }
}

#[test]
fn an_adopted_unit_runs_with_its_pid_and_counters_and_spawns_nothing() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.now += ms(10_000);
    h.sup.handle_adopted(h.now, id, adopted(&h, 4242));
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Running);
    assert!(status.ready);
    assert_eq!(status.pid, Some(4242));
    assert_eq!((status.restarts, status.starts), (2, 3));
    assert_eq!(status.since, h.now - ms(4000));
    assert!(status.reason.contains("adopted"), "{}", status.reason);
    // A start (svcd's boot start of every enabled unit) leaves it alone.
    h.sup.handle_start(h.now, id, "started with svcd");
    assert_eq!(h.actions(), []);
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn an_adopted_unit_that_crashes_later_is_restarted() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(0)));
    h.sup.handle_adopted(h.now, id, adopted(&h, 4242));
    h.actions();
    let actions = h.exit(id, ExitStatus::Signal(9));
    assert!(actions.contains(&kill(id, 4242)));
    assert!(actions.contains(&Action::Spawn { unit: id }), "{actions:?}");
    assert_eq!(h.sup.status(id).restarts, 3);
}

#[test]
fn an_adopted_unit_is_stopped_through_its_group() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(0)));
    h.sup.handle_adopted(h.now, id, adopted(&h, 4242));
    h.actions();
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert!(h.actions().contains(&term(id, 4242)));
    // Not svcd's child: its exit comes as a loss, and the stop ends as stops do.
    h.sup
        .handle_lost(h.now, id, None, "exited while not a child of svcd");
    h.actions();
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.reason(id), "stopped by operator");
}

#[test]
fn a_unit_lost_while_svcd_was_down_is_restarted_with_the_reason() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(0)));
    let prior = adopted(&h, 4242);
    h.sup
        .handle_lost(h.now, id, Some(prior), "exited while svcd was down");
    let actions = h.actions();
    assert!(actions.contains(&Action::Spawn { unit: id }), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Signal { .. })));
    let status = h.sup.status(id);
    assert_eq!(status.reason, "restarted (exited while svcd was down)");
    assert_eq!(status.restarts, 3);
    let exit = status.last_exit.expect("the loss is the last exit");
    assert_eq!(exit.status, None);
    assert_eq!(exit.reason, "exited while svcd was down");
}

#[test]
fn a_lost_unit_whose_policy_is_never_fails() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(0)));
    h.sup.handle_adopted(h.now, id, adopted(&h, 7));
    h.actions();
    h.sup
        .handle_lost(h.now, id, None, "exited while not a child of svcd");
    assert!(h.actions().contains(&kill(id, 7)));
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(
        h.reason(id),
        "exited while not a child of svcd; restart policy is never"
    );
}

#[test]
fn a_unit_not_ready_when_svcd_went_down_waits_for_its_check_again() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(0)));
    h.configure(id, |c| {
        c.checks.ready = true;
        c.checks.ready_timeout = ms(500);
    });
    let prior = Adopted {
        ready: false,
        ..adopted(&h, 99)
    };
    h.sup.handle_adopted(h.now, id, prior);
    h.actions();
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.sup.poll_timeout(), Some(h.now + ms(500)));
    h.sup.handle_ready(h.now, id);
    h.actions();
    assert_eq!(h.state(id), State::Running);
}

#[test]
fn a_late_loss_report_changes_nothing() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(0)));
    h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.exit(id, ExitStatus::Code(0));
    let before = h.sup.status(id);
    h.sup
        .handle_lost(h.now, id, None, "exited while not a child of svcd");
    assert_eq!(h.actions(), []);
    assert_eq!(h.sup.status(id), before);
}
