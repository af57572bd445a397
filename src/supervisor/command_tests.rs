//! Stopping, and the operator's commands in every state (the table in the module doc).

use super::tests::SIGTERM;
use super::tests::{Harness, kill, ms, restart, term};
use super::*;
use crate::unit::{RestartConfig, RestartPolicy, StopConfig};
use std::time::Duration;

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    let pid = h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(h.sup.poll_timeout(), Some(h.now + Duration::from_secs(10)));

    assert!(h.step());
    assert_eq!(h.elapsed(), Duration::from_secs(10));
    assert_eq!(h.actions(), [kill(id, pid)]);
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(
        h.sup.poll_timeout(),
        None,
        "SIGKILL needs no second deadline"
    );

    h.now += ms(2);
    let actions = h.exit(id, ExitStatus::Signal(9));
    assert_eq!(actions, [kill(id, pid), Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Inactive);
    assert_eq!(status.reason, "stopped by operator");
    assert_eq!(status.pid, None);
    let last = status.last_exit.expect("exit recorded");
    assert_eq!(last.status, Some(ExitStatus::Signal(9)));
    assert_eq!(last.reason, "killed by SIGKILL after stop timeout");
    assert_eq!(status.restarts, 0, "a stop is not a crash");
}

#[test]
fn graceful_stop_cancels_the_deadline() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.start(id);
    h.sup.handle_stop(h.now, id, "svcd shutting down");
    h.now += ms(50);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Inactive, "policy always does not apply");
    assert_eq!(h.reason(id), "svcd shutting down");
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(last.reason, "killed by SIGTERM");
    assert_eq!(h.sup.poll_timeout(), None);
    h.advance(Duration::from_secs(60));
    assert!(h.actions().is_empty());
}

#[test]
fn zero_stop_timeout_kills_at_once() {
    let mut h = Harness::new();
    let stop = StopConfig {
        signal: SIGTERM,
        timeout: Duration::ZERO,
    };
    let id = h.add(RestartConfig::default(), stop);
    let pid = h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(h.actions(), [kill(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.sup.poll_timeout(), None);
    h.exit(id, ExitStatus::Signal(9));
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(last.reason, "killed by SIGKILL");
}

#[test]
fn custom_stop_signal_is_sent() {
    let mut h = Harness::new();
    let stop = StopConfig {
        signal: 3,
        timeout: Duration::from_secs(1),
    };
    let id = h.add(RestartConfig::default(), stop);
    let pid = h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    let signal = Action::Signal {
        unit: id,
        pgid: pid,
        signal: 3,
    };
    assert_eq!(h.actions()[0], signal);
}

#[test]
fn stop_during_backoff_cancels_the_restart() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.start(id);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.state(id), State::Backoff);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.sup.status(id).next_start, None);
    assert_eq!(h.sup.poll_timeout(), None);
    h.advance(Duration::from_secs(5));
    assert!(
        h.actions().is_empty(),
        "no spawn after the cancelled backoff"
    );
}

#[test]
fn start_or_restart_during_backoff_spawns_now() {
    for restart_command in [false, true] {
        let mut h = Harness::new();
        let id = h.unit(restart(RestartPolicy::Always, ms(100)));
        h.start(id);
        for _ in 0..3 {
            h.exit(id, ExitStatus::Code(1));
            h.step();
            h.spawned(id);
        }
        h.exit(id, ExitStatus::Code(1));
        assert_eq!(h.waiting(id), Some(ms(800)));
        h.actions();
        if restart_command {
            h.sup.handle_restart(h.now, id, "restarted by operator");
        } else {
            h.sup.handle_start(h.now, id, "started by operator");
        }
        assert_eq!(
            h.actions(),
            [Action::Spawn { unit: id }, Action::Publish { unit: id }]
        );
        assert_eq!(h.sup.poll_timeout(), None, "the backoff timer is gone");
        assert_eq!(
            h.sup.status(id).restarts,
            3,
            "an operator start is no restart"
        );
        h.spawned(id);
        h.exit(id, ExitStatus::Code(1));
        assert_eq!(h.waiting(id), Some(ms(100)), "the backoff starts over");
    }
}

#[test]
fn start_while_stopping_spawns_after_the_exit() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    let pid = h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.sup.handle_start(h.now, id, "started again");
    assert!(h.actions().is_empty(), "nothing to do until the exit");
    assert_eq!(h.state(id), State::Stopping);
    let actions = h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(
        actions,
        [
            kill(id, pid),
            Action::Spawn { unit: id },
            Action::Publish { unit: id }
        ]
    );
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.reason(id), "started again");
    assert_eq!(h.sup.status(id).starts, 2);
    assert_eq!(h.sup.status(id).restarts, 0);
}

#[test]
fn stop_while_stopping_forgets_the_pending_start() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.start(id);
    h.sup.handle_restart(h.now, id, "restarted by operator");
    h.actions();
    h.now += ms(1);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(h.actions(), [Action::Publish { unit: id }], "new reason");
    assert_eq!(h.sup.status(id).since, h.base, "still the same stop");
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.reason(id), "stopped by operator");
}

#[test]
fn restart_while_running_stops_then_starts() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    let pid = h.start(id);
    h.sup.handle_restart(h.now, id, "restarted by operator");
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Stopping);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Starting);
    let new_pid = h.spawned(id);
    assert_ne!(new_pid, pid);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Running);
    assert_eq!(status.reason, "restarted by operator");
    assert_eq!(
        status.last_exit.expect("exit recorded").reason,
        "exited with code 0"
    );
    assert_eq!(status.restarts, 0);
}

#[test]
fn restart_while_starting_stops_the_new_process_then_starts() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    h.sup.handle_restart(h.now, id, "restarted by operator");
    assert!(h.actions().is_empty(), "nothing to signal before the spawn");
    let pid = h.spawned(id);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Stopping);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Starting);
    h.spawned(id);
    assert_eq!(h.state(id), State::Running);
    assert_eq!(h.sup.status(id).starts, 2);
}

#[test]
fn stop_while_starting_signals_once_spawned() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert!(h.actions().is_empty());
    assert_eq!(h.state(id), State::Starting);
    let pid = h.spawned(id);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Stopping, "never shown as running");
    assert!(!status.ready);
    assert_eq!(status.pid, Some(pid));
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.reason(id), "stopped by operator");
}

#[test]
fn stop_while_starting_then_spawn_failure_is_inactive() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_start(h.now, id, "started by operator");
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.sup
        .handle_spawn_failed(h.now, id, "No such file or directory");
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn start_then_stop_then_start_while_starting_ends_running() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_start(h.now, id, "started by operator");
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.sup.handle_start(h.now, id, "started again");
    h.actions();
    h.spawned(id);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.reason(id), "started again");
}

#[test]
fn start_when_running_or_starting_does_nothing() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    h.sup.handle_start(h.now, id, "again");
    assert!(h.actions().is_empty());
    h.spawned(id);
    h.actions();
    h.sup.handle_start(h.now, id, "again");
    assert!(h.actions().is_empty());
    assert_eq!(h.sup.status(id).starts, 1);
}

#[test]
fn stop_when_inactive_does_nothing() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert!(h.actions().is_empty());
    assert_eq!(h.state(id), State::Inactive);
}

#[test]
fn stop_on_failed_clears_the_failure() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.start(id);
    h.now += ms(7);
    h.exit(id, ExitStatus::Code(2));
    assert_eq!(h.state(id), State::Failed);
    h.now += ms(1);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Inactive);
    assert_eq!(status.reason, "stopped by operator");
    assert_eq!(status.since, h.base + ms(8));
    assert_eq!(
        status.last_exit.expect("kept").status,
        Some(ExitStatus::Code(2))
    );
}

#[test]
fn restart_when_inactive_starts() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_restart(h.now, id, "restarted by operator");
    assert_eq!(
        h.actions(),
        [Action::Spawn { unit: id }, Action::Publish { unit: id }]
    );
}
