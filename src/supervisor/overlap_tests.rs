//! Overlapping restarts (`restart.overlap`) against the fake clock: two runs of one unit, each
//! exit taken for its own run, each group's SIGKILL sent to its own group.

use super::tests::{Harness, kill, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

/// A unit with `restart.overlap` (and a readiness check when `ready`), started and running.
fn overlapping(h: &mut Harness, ready: bool) -> (UnitId, u32) {
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.configure(id, |config| {
        config.overlap = true;
        config.checks.ready = ready;
        config.checks.ready_timeout = ms(500);
    });
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    let pid = h.spawned(id);
    if ready {
        h.sup.handle_ready(h.now, id);
    }
    h.actions();
    assert_eq!(h.state(id), State::Running);
    (id, pid)
}

/// `svc restart`: the spawn of the new run is asked for, nothing is sent to the old one.
fn restart_overlapping(h: &mut Harness, id: UnitId) {
    h.sup.handle_restart(h.now, id, "restarted by operator");
    let actions = h.actions();
    assert!(actions.contains(&Action::Spawn { unit: id }), "{actions:?}");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Signal { .. })),
        "the old run was signalled before the new one is ready: {actions:?}"
    );
}

/// [`restart_overlapping`], and the new run spawned (not ready yet, if it has a check).
fn new_run(h: &mut Harness, id: UnitId) -> u32 {
    restart_overlapping(h, id);
    let new = h.spawned(id);
    h.actions();
    new
}

#[test]
fn the_old_run_is_stopped_only_once_the_new_one_is_ready() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    let new = new_run(&mut h, id);
    let status = h.sup.status(id);
    assert_eq!(
        (status.state, status.pid, status.old_pid),
        (State::Starting, Some(new), Some(old))
    );
    h.advance(ms(100));
    assert!(
        h.actions().is_empty(),
        "nothing happens while the new run is not ready"
    );

    h.sup.handle_ready(h.now, id);
    let actions = h.actions();
    assert!(actions.contains(&term(id, old)), "{actions:?}");
    assert!(!actions.contains(&term(id, new)), "{actions:?}");
    let status = h.sup.status(id);
    assert_eq!(
        (status.state, status.pid, status.old_pid),
        (State::Running, Some(new), Some(old))
    );

    // The old run's exit: its group is cleaned up, the new run stays as it is.
    h.sup.handle_exit_of(h.now, id, old, ExitStatus::Code(0));
    let actions = h.actions();
    assert!(actions.contains(&kill(id, old)), "{actions:?}");
    assert!(
        !actions.contains(&kill(id, new)),
        "SIGKILL hit the new run's group: {actions:?}"
    );
    let status = h.sup.status(id);
    assert_eq!(
        (status.state, status.pid, status.old_pid),
        (State::Running, Some(new), None)
    );
    assert_eq!(
        status.restarts, 0,
        "a planned restart is not counted as a crash's"
    );
}

#[test]
fn without_a_ready_check_the_new_run_is_ready_once_spawned() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, false);
    restart_overlapping(&mut h, id);
    let new = h.spawned(id);
    let actions = h.actions();
    assert!(actions.contains(&term(id, old)), "{actions:?}");
    assert_eq!(h.sup.status(id).pid, Some(new));
}

#[test]
fn an_old_run_that_ignores_its_stop_signal_gets_sigkill_after_the_stop_timeout() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, false);
    let new = new_run(&mut h, id);
    h.advance(ms(9_999));
    assert!(!h.actions().contains(&kill(id, old)));
    h.advance(ms(1));
    let actions = h.actions();
    assert_eq!(actions, vec![kill(id, old)], "only the old run's group");
    h.sup.handle_exit_of(h.now, id, old, ExitStatus::Signal(9));
    h.actions();
    assert_eq!(h.sup.status(id).pid, Some(new));
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn a_new_run_that_exits_before_it_is_ready_leaves_the_old_one_serving() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    let new = new_run(&mut h, id);
    h.sup.handle_exit_of(h.now, id, new, ExitStatus::Code(1));
    let actions = h.actions();
    assert!(actions.contains(&kill(id, new)), "{actions:?}");
    assert!(!actions.contains(&kill(id, old)), "{actions:?}");
    assert!(!actions.contains(&term(id, old)), "{actions:?}");
    let status = h.sup.status(id);
    assert_eq!(
        (status.state, status.pid, status.old_pid),
        (State::Running, Some(old), None)
    );
    assert!(status.ready && status.restart_failed, "{status:?}");
    assert!(
        status.reason.contains("restart failed"),
        "{}",
        status.reason
    );
    assert!(
        status.reason.contains("exited with code 1"),
        "{}",
        status.reason
    );
    assert_eq!(status.restarts, 0, "no crash of the unit: it serves on");

    // The old run serves on as the unit's: its exit is a crash like any other.
    h.sup.handle_exit_of(h.now, id, old, ExitStatus::Code(1));
    let actions = h.actions();
    assert!(actions.contains(&kill(id, old)), "{actions:?}");
    assert_eq!(h.state(id), State::Backoff);
}

#[test]
fn a_new_run_not_ready_in_time_is_stopped_and_the_old_one_kept() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    let new = new_run(&mut h, id);
    h.advance(ms(500));
    let actions = h.actions();
    assert!(actions.contains(&term(id, new)), "{actions:?}");
    assert!(!actions.contains(&term(id, old)), "{actions:?}");
    assert_eq!(h.sup.status(id).old_pid, Some(old));
    h.sup.handle_exit_of(h.now, id, new, ExitStatus::Signal(15));
    h.actions();
    let status = h.sup.status(id);
    assert_eq!((status.state, status.pid), (State::Running, Some(old)));
    assert!(
        status.reason.contains("not ready within 500ms"),
        "{}",
        status.reason
    );
    assert!(status.restart_failed);
}

#[test]
fn a_failed_spawn_of_the_new_run_leaves_the_old_one_serving() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    restart_overlapping(&mut h, id);
    h.sup
        .handle_spawn_failed(h.now, id, "No such file or directory");
    h.actions();
    let status = h.sup.status(id);
    assert_eq!((status.state, status.pid), (State::Running, Some(old)));
    assert!(status.reason.contains("spawn failed"), "{}", status.reason);
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn a_stop_during_the_overlap_stops_both_runs() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    let new = new_run(&mut h, id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    let actions = h.actions();
    assert!(actions.contains(&term(id, new)), "{actions:?}");
    assert!(actions.contains(&term(id, old)), "{actions:?}");
    h.sup.handle_exit_of(h.now, id, new, ExitStatus::Signal(15));
    h.actions();
    assert_eq!(
        h.sup.status(id).pid,
        None,
        "the new run's exit ends the unit's run"
    );
    h.sup.handle_exit_of(h.now, id, old, ExitStatus::Signal(15));
    h.actions();
    let status = h.sup.status(id);
    assert_eq!((status.state, status.old_pid), (State::Inactive, None));
}

#[test]
fn without_overlap_a_restart_stops_first() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, true);
    h.configure(id, |config| config.overlap = false);
    h.sup.handle_restart(h.now, id, "restarted by operator");
    assert_eq!(
        h.actions(),
        vec![term(id, old), Action::Publish { unit: id }]
    );
}

#[test]
fn back_to_back_restarts_each_overlap_and_each_old_runs_exit_is_its_own() {
    let mut h = Harness::new();
    let (id, first) = overlapping(&mut h, true);
    let second = new_run(&mut h, id);
    h.sup.handle_ready(h.now, id);
    assert!(h.actions().contains(&term(id, first)));
    // The first run has not exited yet: the next restart overlaps all the same.
    let third = new_run(&mut h, id);
    let status = h.sup.status(id);
    assert_eq!((status.state, status.pid), (State::Starting, Some(third)));
    h.sup.handle_ready(h.now, id);
    let actions = h.actions();
    assert!(actions.contains(&term(id, second)), "{actions:?}");
    assert!(!actions.contains(&term(id, third)), "{actions:?}");
    // Both old runs' exits are theirs, in any order; the unit's run stays the third.
    h.sup.handle_exit_of(h.now, id, second, ExitStatus::Code(0));
    assert!(h.actions().contains(&kill(id, second)));
    assert_eq!(h.sup.status(id).old_pid, Some(first));
    // The first one ignores SIGTERM: SIGKILL at its own deadline, 10s after its signal.
    h.advance(ms(10_000));
    assert_eq!(h.actions(), vec![kill(id, first)]);
    h.sup
        .handle_exit_of(h.now, id, first, ExitStatus::Signal(9));
    h.actions();
    let status = h.sup.status(id);
    assert_eq!(
        (status.state, status.pid, status.old_pid),
        (State::Running, Some(third), None)
    );
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn the_shutdown_deadline_kills_old_runs_too() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, false);
    h.configure(id, |config| config.stop.timeout = ms(60_000));
    let new = new_run(&mut h, id);
    h.sup.handle_shutdown(h.now, "svcd got SIGTERM", ms(1_000));
    let actions = h.actions();
    assert!(actions.contains(&term(id, new)), "{actions:?}");
    h.advance(ms(1_000));
    let actions = h.actions();
    assert!(actions.contains(&kill(id, old)), "{actions:?}");
    assert!(actions.contains(&kill(id, new)), "{actions:?}");
}

#[test]
fn an_old_run_keeps_its_sigkill_deadline_across_the_new_runs_crash_and_restart() {
    let mut h = Harness::new();
    let (id, old) = overlapping(&mut h, false);
    let new = new_run(&mut h, id);
    // The new run crashes at once; its restart waits 100ms, then spawns again.
    h.sup.handle_exit_of(h.now, id, new, ExitStatus::Code(1));
    h.actions();
    assert_eq!(h.state(id), State::Backoff);
    h.advance(ms(100));
    assert!(h.actions().contains(&Action::Spawn { unit: id }));
    h.spawned(id);
    h.actions();
    h.advance(ms(9_900));
    assert!(
        h.actions().contains(&kill(id, old)),
        "the old run's SIGKILL was lost"
    );
}
