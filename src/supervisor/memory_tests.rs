//! Memory samples and svcd's own restarts, with made-up samples on the fake clock.

use super::tests::{Harness, kill, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

const M: u64 = 1 << 20;

fn limited(h: &mut Harness, max: Option<u64>, swap_max: Option<u64>) -> UnitId {
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| {
        c.memory = MemoryLimits {
            max,
            swap_max,
            ..MemoryLimits::default()
        }
    });
    id
}

#[test]
fn two_samples_in_a_row_over_max_restart() {
    let mut h = Harness::new();
    let id = limited(&mut h, Some(200 * M), None);
    let pid = h.start(id);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [], "one sample over is a peak, not a trend");
    h.sup.handle_memory_sample(h.now, id, 150 * M, 0);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [], "the count starts again under the limit");
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(h.reason(id), "memory limit: rss 212M > 200M");

    // A failure for the policy, as a crash is: `on-failure` restarts after the delay.
    h.now += ms(5);
    let actions = h.exit(id, ExitStatus::Signal(15));
    assert_eq!(actions, [kill(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.state(id), State::Backoff);
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(
        last.reason,
        "memory limit: rss 212M > 200M; killed by SIGTERM"
    );
    assert!(h.step());
    assert_eq!(h.state(id), State::Starting);
    let status = h.sup.status(id);
    assert_eq!(status.restarts, 1);
    assert_eq!(
        status.reason,
        "restarted (memory limit: rss 212M > 200M; killed by SIGTERM)"
    );
}

#[test]
fn with_policy_never_a_memory_restart_leaves_the_unit_failed() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.configure(id, |c| {
        c.memory = MemoryLimits {
            max: Some(200 * M),
            swap_max: None,
            ..MemoryLimits::default()
        }
    });
    let pid = h.start(id);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    h.exit(id, ExitStatus::Signal(15));
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(
        h.reason(id),
        "memory limit: rss 212M > 200M; restart policy is never"
    );
}

#[test]
fn swap_max_acts_and_samples_of_a_new_run_count_afresh() {
    let mut h = Harness::new();
    let id = limited(&mut h, Some(200 * M), Some(64 * M));
    let pid = h.start(id);
    h.sup.handle_memory_sample(h.now, id, 10 * M, 70 * M);
    h.sup
        .handle_memory_sample(h.now, id, 10 * M, 70 * M + 512 * 1024);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.reason(id), "memory limit: swap 70.5M > 64M");
    // Samples while stopping do nothing more.
    h.sup.handle_memory_sample(h.now, id, 10 * M, 90 * M);
    h.sup.handle_memory_sample(h.now, id, 10 * M, 90 * M);
    assert_eq!(h.actions(), []);
    h.exit(id, ExitStatus::Code(0));
    assert!(h.step());
    h.actions();
    let pid = h.spawned(id);
    h.actions();
    h.sup.handle_memory_sample(h.now, id, 10 * M, 90 * M);
    assert_eq!(h.actions(), [], "the new run starts its own count");
    h.sup.handle_memory_sample(h.now, id, 10 * M, 90 * M);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
}

#[test]
fn no_limits_no_restart_and_idle_units_ignore_samples() {
    let mut h = Harness::new();
    let free = limited(&mut h, None, None);
    h.start(free);
    for _ in 0..5 {
        h.sup.handle_memory_sample(h.now, free, u64::MAX, u64::MAX);
    }
    assert_eq!(h.actions(), []);
    let idle = limited(&mut h, Some(M), None);
    for _ in 0..5 {
        h.sup.handle_memory_sample(h.now, idle, 2 * M, 0);
    }
    assert_eq!(h.actions(), []);
    assert_eq!(h.state(idle), State::Inactive);
}

#[test]
fn operator_stop_during_a_memory_restart_wins() {
    let mut h = Harness::new();
    let id = limited(&mut h, Some(M), None);
    let pid = h.start(id);
    h.sup
        .handle_restart_for(h.now, id, "memory pressure: swap 95% used");
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.actions();
    h.exit(id, ExitStatus::Signal(15));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.reason(id), "stopped by operator");
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn restart_for_escalates_like_any_stop() {
    let mut h = Harness::new();
    let id = limited(&mut h, None, None);
    let pid = h.start(id);
    h.sup
        .handle_restart_for(h.now, id, "memory pressure: swap 95% used");
    h.actions();
    assert!(h.step());
    assert_eq!(h.actions(), [kill(id, pid)]);
    h.exit(id, ExitStatus::Signal(9));
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(
        last.reason,
        "memory pressure: swap 95% used; killed by SIGKILL after stop timeout"
    );
    assert_eq!(h.state(id), State::Backoff);
    // Not running: nothing to restart.
    h.sup.handle_restart_for(h.now, id, "again");
    assert_eq!(h.actions(), []);
}
