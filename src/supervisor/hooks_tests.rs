//! `exec_start_pre`, `exec_start_post` and `exec_stop` in the core, on the fake clock.

use super::tests::{Harness, SIGTERM, kill, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;
use std::time::Duration;

fn info(shown: &str, ignore_failure: bool) -> HookInfo {
    HookInfo {
        shown: shown.to_string(),
        ignore_failure,
    }
}

fn run_hook(unit: UnitId, hook: HookKind, index: usize) -> Action {
    Action::RunHook { unit, hook, index }
}

/// A unit with these hooks, restart policy `policy` with no delay.
fn hooked(h: &mut Harness, policy: RestartPolicy, hooks: Hooks) -> UnitId {
    let id = h.unit(restart(policy, ms(0)));
    h.configure(id, |c| c.hooks = hooks);
    id
}

/// The daemon ran the hook: its pid.
fn hook_spawned(h: &mut Harness, id: UnitId, pid: u32) -> Vec<Action> {
    h.sup.handle_hook_spawned(h.now, id, pid);
    h.actions()
}

fn hook_exited(h: &mut Harness, id: UnitId, pid: u32, status: ExitStatus) -> Vec<Action> {
    h.sup.handle_hook_exited(h.now, id, pid, status);
    h.actions()
}

/// A running unit (policy `always`) with these `exec_stop` commands and stop timeout: its id
/// and main pid.
fn with_exec_stop(h: &mut Harness, commands: &[&str], timeout: Duration) -> (UnitId, u32) {
    let hooks = Hooks {
        stop: commands.iter().map(|c| info(c, false)).collect(),
        ..Hooks::default()
    };
    let id = hooked(h, RestartPolicy::Always, hooks);
    h.configure(id, |c| c.stop.timeout = timeout);
    let pid = h.start(id);
    (id, pid)
}

/// An operator's stop, its actions drained.
fn stop(h: &mut Harness, id: UnitId) {
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
}

fn kill_hook(unit: UnitId, pgid: u32) -> Action {
    Action::KillHook { unit, pgid }
}

#[test]
fn pre_hooks_run_in_order_before_the_spawn_and_the_unit_is_starting_meanwhile() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_pre: vec![info("initdb", false), info("chown db", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::OnFailure, hooks);
    h.sup.handle_start(h.now, id, "started by operator");
    let actions = h.actions();
    assert!(actions.contains(&run_hook(id, HookKind::StartPre, 0)));
    assert!(!actions.contains(&Action::Spawn { unit: id }));
    assert_eq!(h.state(id), State::Starting);
    hook_spawned(&mut h, id, 500);
    let actions = hook_exited(&mut h, id, 500, ExitStatus::Code(0));
    assert_eq!(actions, vec![run_hook(id, HookKind::StartPre, 1)]);
    hook_spawned(&mut h, id, 501);
    let actions = hook_exited(&mut h, id, 501, ExitStatus::Code(0));
    assert_eq!(actions, vec![Action::Spawn { unit: id }]);
    h.spawned(id);
    assert_eq!(h.state(id), State::Running);
    assert_eq!(h.reason(id), "started by operator");
}

#[test]
fn a_failing_pre_hook_fails_the_start_with_its_command_and_exit() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_pre: vec![info("/bin/true", false), info("/usr/bin/foo --x", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::Never, hooks.clone());
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 500);
    hook_exited(&mut h, id, 500, ExitStatus::Code(0));
    hook_spawned(&mut h, id, 501);
    let actions = hook_exited(&mut h, id, 501, ExitStatus::Code(2));
    assert!(
        !actions.contains(&Action::Spawn { unit: id }),
        "{actions:?}"
    );
    assert_eq!(h.state(id), State::Failed);
    let words = "exec_start_pre[1] /usr/bin/foo --x exited with code 2";
    assert_eq!(h.reason(id), format!("{words}; restart policy is never"));
    let exit = h.sup.status(id).last_exit.unwrap();
    assert_eq!(exit.reason, words);
    assert_eq!(exit.kind, ReasonKind::Hook);
    assert_eq!(exit.status, Some(ExitStatus::Code(2)));

    // on-failure: the restart policy applies, the next start begins with the hooks again.
    let id = hooked(&mut h, RestartPolicy::OnFailure, hooks);
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    h.sup.handle_hook_failed(h.now, id, "cannot execute `x`");
    let actions = h.actions();
    assert!(
        actions.contains(&run_hook(id, HookKind::StartPre, 0)),
        "restarted at once: {actions:?}"
    );
    let exit = h.sup.status(id).last_exit.unwrap();
    assert_eq!(
        exit.reason,
        "exec_start_pre[0] /bin/true: cannot run: cannot execute `x`"
    );
    assert_eq!(h.sup.status(id).restarts, 1);
}

#[test]
fn a_pre_hook_marked_to_ignore_failure_may_fail_but_not_time_out() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_pre: vec![info("-cleanup", true)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::Never, hooks);
    h.configure(id, |c| c.checks.ready_timeout = ms(500));
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 500);
    let actions = hook_exited(&mut h, id, 500, ExitStatus::Code(1));
    assert_eq!(actions, vec![Action::Spawn { unit: id }]);
    let pid = h.spawned(id);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive, "{pid}");

    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 501);
    h.advance(ms(499));
    assert_eq!(h.state(id), State::Starting);
    h.advance(ms(1));
    assert_eq!(h.state(id), State::Failed);
    let actions = h.actions();
    assert!(actions.contains(&kill_hook(id, 501)), "{actions:?}");
    assert!(
        h.reason(id).contains("did not finish within 500ms"),
        "{}",
        h.reason(id)
    );
    // Its exit after the kill changes nothing.
    hook_exited(&mut h, id, 501, ExitStatus::Signal(9));
    assert_eq!(h.state(id), State::Failed);
}

#[test]
fn a_stop_while_a_pre_hook_runs_kills_it_and_ends_inactive_once_it_is_gone() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_pre: vec![info("slow", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::Always, hooks);
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 500);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    let actions = h.actions();
    assert!(actions.contains(&kill_hook(id, 500)), "{actions:?}");
    assert_eq!(h.state(id), State::Starting);
    let actions = hook_exited(&mut h, id, 500, ExitStatus::Signal(9));
    assert!(
        !actions.contains(&Action::Spawn { unit: id }),
        "{actions:?}"
    );
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.reason(id), "stopped by operator");

    // A restart meanwhile: the spawn (its hooks first) once the killed hook is gone.
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 501);
    h.sup.handle_restart(h.now, id, "restarted by operator");
    assert!(h.actions().contains(&kill_hook(id, 501)));
    let actions = hook_exited(&mut h, id, 501, ExitStatus::Signal(9));
    assert!(
        actions.contains(&run_hook(id, HookKind::StartPre, 0)),
        "{actions:?}"
    );
}

#[test]
fn post_hooks_run_after_readiness_and_the_unit_is_running_after_them() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_post: vec![info("announce", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::OnFailure, hooks);
    h.configure(id, |c| c.checks.ready = true);
    let _ = h.start(id);
    assert_eq!(h.state(id), State::Starting);
    h.sup.handle_ready(h.now, id);
    assert_eq!(h.actions(), vec![run_hook(id, HookKind::StartPost, 0)]);
    assert_eq!(h.state(id), State::Starting);
    assert!(!h.sup.status(id).ready);
    hook_spawned(&mut h, id, 600);
    // A second verdict while it runs starts nothing new.
    h.sup.handle_ready(h.now, id);
    assert!(h.actions().is_empty());
    assert_eq!(h.reason(id), "started by operator");
    hook_exited(&mut h, id, 600, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Running);
    assert!(h.sup.status(id).ready);
    assert_eq!(h.reason(id), "started by operator");
}

#[test]
fn a_failing_post_hook_stops_the_unit_and_the_policy_decides() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_post: vec![info("announce", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::Never, hooks);
    let pid = h.start(id);
    hook_spawned(&mut h, id, 600);
    let actions = hook_exited(&mut h, id, 600, ExitStatus::Code(3));
    assert!(actions.contains(&term(id, pid)), "{actions:?}");
    assert_eq!(h.state(id), State::Stopping);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Failed);
    assert!(
        h.reason(id)
            .starts_with("exec_start_post[0] announce exited with code 3"),
        "{}",
        h.reason(id)
    );
    assert_eq!(h.sup.status(id).reason_kind, ReasonKind::Hook);
}

#[test]
fn a_stop_or_an_exit_while_a_post_hook_runs_kills_the_hook() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_post: vec![info("announce", false)],
        stop: vec![info("app stop", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::Never, hooks);
    let pid = h.start(id);
    hook_spawned(&mut h, id, 600);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    let actions = h.actions();
    assert!(actions.contains(&kill_hook(id, 600)), "{actions:?}");
    // Never ready in this run: no exec_stop, the signal at once.
    assert!(actions.contains(&term(id, pid)), "{actions:?}");
    hook_exited(&mut h, id, 600, ExitStatus::Signal(9));
    assert_eq!(h.state(id), State::Stopping);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Inactive);

    let pid = h.start(id);
    hook_spawned(&mut h, id, 601);
    let actions = h.exit(id, ExitStatus::Code(1));
    assert!(actions.contains(&kill_hook(id, 601)), "{actions:?}");
    assert!(actions.contains(&kill(id, pid)));
    assert_eq!(h.state(id), State::Failed);
}

#[test]
fn exec_stop_runs_before_the_stop_signal_with_the_stop_timeout() {
    let mut h = Harness::new();
    let (id, pid) = with_exec_stop(&mut h, &["nginx -s quit", "second"], Duration::from_secs(5));
    h.sup.handle_stop(h.now, id, "stopped by operator");
    let actions = h.actions();
    assert!(
        actions.contains(&run_hook(id, HookKind::Stop, 0)),
        "{actions:?}"
    );
    assert!(!actions.contains(&term(id, pid)), "{actions:?}");
    assert_eq!(h.state(id), State::Stopping);
    hook_spawned(&mut h, id, 700);
    let actions = hook_exited(&mut h, id, 700, ExitStatus::Code(0));
    assert_eq!(actions, vec![run_hook(id, HookKind::Stop, 1)]);
    hook_spawned(&mut h, id, 701);
    // The second one hangs: killed at the stop timeout, then the signal, with its own timeout.
    h.advance(Duration::from_secs(5));
    let actions = h.actions();
    assert!(actions.contains(&kill_hook(id, 701)), "{actions:?}");
    assert!(actions.contains(&term(id, pid)), "{actions:?}");
    h.advance(Duration::from_secs(5));
    assert!(h.actions().contains(&kill(id, pid)));
    h.exit(id, ExitStatus::Signal(9));
    assert_eq!(h.state(id), State::Inactive);
}

#[test]
fn the_main_process_exiting_during_exec_stop_ends_the_stop_and_the_hook() {
    let mut h = Harness::new();
    let (id, pid) = with_exec_stop(&mut h, &["pg_ctl stop"], Duration::from_secs(10));
    stop(&mut h, id);
    hook_spawned(&mut h, id, 700);
    let actions = h.exit(id, ExitStatus::Code(0));
    assert!(actions.contains(&kill_hook(id, 700)), "{actions:?}");
    assert!(!actions.contains(&term(id, pid)));
    assert_eq!(h.state(id), State::Inactive);
    assert!(hook_exited(&mut h, id, 700, ExitStatus::Code(0)).is_empty());
    // A failed exec_stop: the signal follows at once.
    let pid = h.start(id);
    stop(&mut h, id);
    hook_spawned(&mut h, id, 701);
    let actions = hook_exited(&mut h, id, 701, ExitStatus::Code(1));
    assert!(actions.contains(&term(id, pid)), "{actions:?}");
}

#[test]
fn exec_stop_is_cut_short_by_the_shutdown_deadline() {
    let mut h = Harness::new();
    let (id, pid) = with_exec_stop(&mut h, &["slow stop"], Duration::from_secs(60));
    h.sup
        .handle_shutdown(h.now, "shutdown", Duration::from_secs(2));
    assert!(h.actions().contains(&run_hook(id, HookKind::Stop, 0)));
    hook_spawned(&mut h, id, 700);
    h.advance(Duration::from_secs(2));
    let actions = h.actions();
    assert!(actions.contains(&kill_hook(id, 700)), "{actions:?}");
    assert!(actions.contains(&kill(id, pid)), "{actions:?}");
}

#[test]
fn a_reload_that_shortens_the_list_while_a_hook_runs_does_not_strand_the_start() {
    let mut h = Harness::new();
    let hooks = Hooks {
        start_pre: vec![info("first", false), info("second", false)],
        ..Hooks::default()
    };
    let id = hooked(&mut h, RestartPolicy::OnFailure, hooks);
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    hook_spawned(&mut h, id, 500);
    h.configure(id, |c| c.hooks = Hooks::default());
    let actions = hook_exited(&mut h, id, 500, ExitStatus::Code(0));
    assert_eq!(actions, vec![Action::Spawn { unit: id }]);
    h.spawned(id);
    assert_eq!(h.state(id), State::Running);
}

#[test]
fn after_a_successful_exec_stop_the_main_process_may_exit_by_itself_until_the_stop_timeout() {
    let mut h = Harness::new();
    let (id, pid) = with_exec_stop(&mut h, &["nginx -s quit"], Duration::from_secs(5));
    stop(&mut h, id);
    h.advance(Duration::from_secs(1));
    hook_spawned(&mut h, id, 700);
    let actions = hook_exited(&mut h, id, 700, ExitStatus::Code(0));
    assert!(
        !actions.contains(&term(id, pid)),
        "no signal yet: {actions:?}"
    );
    // It quits gracefully: no signal at all.
    h.advance(Duration::from_secs(2));
    assert!(h.actions().is_empty());
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(
        h.sup.status(id).last_exit.unwrap().status,
        Some(ExitStatus::Code(0))
    );

    // It does not: the signal at the stop timeout counted from the stop, then SIGKILL.
    let pid = h.start(id);
    let stop_at = h.now;
    stop(&mut h, id);
    hook_spawned(&mut h, id, 701);
    hook_exited(&mut h, id, 701, ExitStatus::Code(0));
    h.advance(Duration::from_secs(5) - ms(1));
    assert!(h.actions().is_empty());
    h.advance(ms(1));
    assert_eq!(h.now - stop_at, Duration::from_secs(5));
    assert!(h.actions().contains(&term(id, pid)));
    h.advance(Duration::from_secs(5));
    assert!(h.actions().contains(&kill(id, pid)));
}
