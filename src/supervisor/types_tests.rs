//! `type = "oneshot"` (with and without `remain`) and `type = "forking"` on the fake clock.

use super::deps_tests::{checked, signals, spawns};
use super::tests::{Harness, SIGTERM, ms, restart};
use super::*;
use crate::unit::{RestartPolicy, UnitType};

fn oneshot(h: &mut Harness, remain: bool) -> UnitId {
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.configure(id, |c| {
        c.kind = UnitType::Oneshot;
        c.remain = remain;
        // As the unit file gives it without `ready.timeout`: no bound.
        c.checks.ready_timeout = Duration::MAX;
    });
    id
}

fn forking(h: &mut Harness, policy: RestartPolicy) -> UnitId {
    let id = h.unit(restart(policy, ms(100)));
    h.configure(id, |c| {
        c.kind = UnitType::Forking;
        c.checks.ready_timeout = ms(5000);
    });
    id
}

/// A forking unit whose start command exited 0: its main pid is looked for.
fn command_exited(h: &mut Harness) -> UnitId {
    let id = forking(h, RestartPolicy::OnFailure);
    h.start(id);
    h.exit(id, ExitStatus::Code(0));
    id
}

/// `app` requires `prep`; both started as at boot.
fn app_requiring(h: &mut Harness, prep: UnitId) -> UnitId {
    let app = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(app, |c| c.requires = vec![prep]);
    h.sup
        .handle_start_all(h.now, &[prep, app], "started with svcd");
    assert_eq!(spawns(&h.actions()), [prep], "app waits for prep");
    app
}

/// A oneshot `prep` spawned, and `app` that requires it waiting.
fn prep_running(h: &mut Harness, remain: bool) -> (UnitId, UnitId) {
    let prep = oneshot(h, remain);
    let app = app_requiring(h, prep);
    h.spawned(prep);
    h.actions();
    (prep, app)
}

#[test]
fn a_oneshot_is_starting_while_it_runs_and_its_dependents_wait() {
    let mut h = Harness::new();
    let (prep, app) = prep_running(&mut h, false);
    assert_eq!(h.state(prep), State::Starting, "running to completion");
    assert_eq!(h.state(app), State::Starting);
    assert!(h.reason(app).contains("waiting for"), "{}", h.reason(app));
    assert_eq!(h.sup.poll_timeout(), None, "no bound without ready.timeout");
}

#[test]
fn a_dependent_of_a_oneshot_keeps_running_after_it_exits_0() {
    let mut h = Harness::new();
    let (prep, app) = prep_running(&mut h, false);
    let actions = h.exit(prep, ExitStatus::Code(0));
    assert_eq!(spawns(&actions), [app], "app starts once prep finished");
    let status = h.sup.status(prep);
    assert_eq!(status.state, State::Inactive);
    assert_eq!(status.reason_kind, ReasonKind::Finished);
    assert_eq!(status.reason, "finished (exited with code 0)");
    h.spawned(app);
    h.actions();
    assert_eq!(h.state(app), State::Running);
    // Nothing of prep's end reaches app: it runs on.
    h.advance(ms(60_000));
    assert_eq!(h.state(app), State::Running);
    assert!(signals(&h.actions()).is_empty());
}

#[test]
fn remain_keeps_a_finished_oneshot_exited_until_stopped() {
    let mut h = Harness::new();
    let (prep, app) = prep_running(&mut h, true);
    let pid = h.sup.status(prep).pid.unwrap();
    let actions = h.exit(prep, ExitStatus::Code(0));
    assert!(
        actions.contains(&super::tests::kill(prep, pid)),
        "its group ends"
    );
    assert_eq!(h.state(prep), State::Exited);
    assert_eq!(h.sup.status(prep).pid, None);
    h.spawned(app);
    h.actions();
    assert_eq!(h.state(app), State::Running);
    // start leaves it be; stop takes what requires it down, with no signal of its own.
    h.sup.handle_start(h.now, prep, "started by operator");
    assert!(spawns(&h.actions()).is_empty());
    assert_eq!(h.state(prep), State::Exited);
    h.sup.handle_stop(h.now, prep, "stopped by operator");
    let actions = h.actions();
    assert_eq!(h.state(prep), State::Inactive);
    assert_eq!(signals(&actions), [(app, SIGTERM)]);
    assert_eq!(h.state(app), State::Stopping);
}

#[test]
fn restart_runs_an_exited_oneshot_again() {
    let mut h = Harness::new();
    let prep = oneshot(&mut h, true);
    h.start(prep);
    h.exit(prep, ExitStatus::Code(0));
    assert_eq!(h.state(prep), State::Exited);
    h.sup.handle_restart(h.now, prep, "restarted by operator");
    assert_eq!(spawns(&h.actions()), [prep]);
    assert_eq!(h.sup.status(prep).starts, 2);
}

#[test]
fn a_failing_oneshot_fails_and_blocks_its_dependent() {
    let mut h = Harness::new();
    let (prep, app) = prep_running(&mut h, false);
    let actions = h.exit(prep, ExitStatus::Code(3));
    assert!(spawns(&actions).is_empty());
    assert_eq!(h.state(prep), State::Failed);
    assert_eq!(
        h.reason(prep),
        "exited with code 3; restart policy is never"
    );
    let app_status = h.sup.status(app);
    assert_eq!(app_status.state, State::Starting);
    assert!(app_status.blocked);
    assert_eq!(
        app_status.reason,
        format!("waiting for {} (failed)", h.sup.name(prep))
    );
}

#[test]
fn a_oneshot_is_not_ready_before_it_exits() {
    let mut h = Harness::new();
    let prep = oneshot(&mut h, false);
    h.start(prep);
    h.sup.handle_ready(h.now, prep);
    assert_eq!(
        h.state(prep),
        State::Starting,
        "READY=1 is no end of a oneshot"
    );
}

#[test]
fn ready_timeout_bounds_a_oneshot_run() {
    let mut h = Harness::new();
    let prep = oneshot(&mut h, false);
    h.configure(prep, |c| c.checks.ready_timeout = ms(500));
    let pid = h.start(prep);
    h.advance(ms(500));
    assert_eq!(h.state(prep), State::Stopping);
    assert!(h.actions().contains(&super::tests::term(prep, pid)));
    h.exit(prep, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(prep), State::Failed);
    assert!(
        h.reason(prep).starts_with("did not finish within 500ms"),
        "{}",
        h.reason(prep)
    );
}

#[test]
fn a_forking_units_start_command_exit_asks_for_the_main_pid() {
    let mut h = Harness::new();
    let id = forking(&mut h, RestartPolicy::OnFailure);
    let command = h.start(id);
    assert_eq!(
        h.state(id),
        State::Starting,
        "until its main process is known"
    );
    let actions = h.exit(id, ExitStatus::Code(0));
    assert!(
        actions.contains(&Action::FindMainPid { unit: id, command }),
        "{actions:?}"
    );
    assert!(
        signals(&actions).is_empty(),
        "the daemon lives in the group: {actions:?}"
    );
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.sup.status(id).pid, None);
    h.sup.handle_main_pid(h.now, id, 4242);
    h.actions();
    let status = h.sup.status(id);
    assert_eq!((status.state, status.pid), (State::Running, Some(4242)));
    // The main process is the unit: stop signals go to it, its exit is the unit's.
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(signals(&h.actions()), [(id, SIGTERM)]);
    h.sup.handle_exit(h.now, id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Inactive);
}

#[test]
fn a_forking_daemons_crash_is_restarted() {
    let mut h = Harness::new();
    let id = command_exited(&mut h);
    h.sup.handle_main_pid(h.now, id, 4242);
    h.actions();
    h.exit(id, ExitStatus::Signal(9));
    assert_eq!(h.state(id), State::Backoff);
    h.step();
    assert_eq!(spawns(&h.actions()), [id]);
}

#[test]
fn a_forking_start_command_that_fails_fails_the_start() {
    let mut h = Harness::new();
    let id = forking(&mut h, RestartPolicy::Never);
    h.start(id);
    let actions = h.exit(id, ExitStatus::Code(1));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::FindMainPid { .. }))
    );
    assert_eq!(h.state(id), State::Failed);
}

#[test]
fn no_main_pid_fails_the_start_and_kills_what_the_command_left() {
    let mut h = Harness::new();
    let id = forking(&mut h, RestartPolicy::Never);
    let command = h.start(id);
    h.exit(id, ExitStatus::Code(0));
    h.sup
        .handle_main_pid_failed(h.now, id, "cannot tell the main process; set pidfile");
    let actions = h.actions();
    assert!(actions.contains(&super::tests::kill(id, command)));
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Failed);
    assert_eq!(status.reason_kind, ReasonKind::MainPid);
    assert!(status.reason.starts_with("cannot tell the main process"));
    // A late answer changes nothing.
    h.sup.handle_main_pid(h.now, id, 4242);
    assert_eq!(h.sup.status(id).pid, None);
}

#[test]
fn the_start_deadline_covers_the_search_for_the_main_pid() {
    let mut h = Harness::new();
    let id = forking(&mut h, RestartPolicy::Never);
    h.start(id);
    h.advance(ms(1000));
    h.exit(id, ExitStatus::Code(0));
    h.sup
        .handle_main_pid_note(h.now, id, "pidfile /run/x.pid is not written yet");
    assert!(h.reason(id).contains("not written yet"), "{}", h.reason(id));
    h.advance(ms(4000));
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Failed);
    assert!(
        status
            .reason
            .starts_with("no main process within 5s: pidfile /run/x.pid is not written yet"),
        "{}",
        status.reason
    );
}

#[test]
fn a_stop_while_the_main_pid_is_looked_for_stops_it_once_found() {
    let mut h = Harness::new();
    let id = command_exited(&mut h);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.sup.handle_main_pid(h.now, id, 4242);
    assert_eq!(signals(&h.actions()), [(id, SIGTERM)]);
    assert_eq!(h.state(id), State::Stopping);
}

#[test]
fn a_forking_units_ready_check_counts_once_its_main_process_is_known() {
    let mut h = Harness::new();
    let id = forking(&mut h, RestartPolicy::OnFailure);
    h.configure(id, |c| c.checks = checked(ms(5000)));
    h.configure(id, |c| c.kind = UnitType::Forking);
    h.start(id);
    h.sup.handle_ready(h.now, id);
    assert_eq!(
        h.state(id),
        State::Starting,
        "the command is not the daemon"
    );
    h.exit(id, ExitStatus::Code(0));
    h.sup.handle_main_pid(h.now, id, 4242);
    assert_eq!(h.state(id), State::Starting, "its check runs now");
    h.sup.handle_ready(h.now, id);
    assert_eq!(h.state(id), State::Running);
}
