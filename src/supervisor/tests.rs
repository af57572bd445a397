//! The core against a fake clock: time only moves when a test jumps it, usually to
//! `poll_timeout()` as quinn-proto's test harness does, so every timing is exact and no test
//! sleeps.

use super::*;
use crate::unit::{RestartConfig, RestartPolicy, StartLimit, StopConfig};
use std::time::{Duration, Instant};

pub(super) const SIGTERM: i32 = 15;
const SIGSEGV: i32 = 11;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn restart(policy: RestartPolicy, delay: Duration) -> RestartConfig {
    RestartConfig {
        policy,
        delay,
        multiplier: 2.0,
        max_delay: Duration::from_secs(1),
        reset_after: Duration::from_secs(10),
        limit: None,
    }
}

fn limited(delay: Duration, burst: u32, interval: Duration) -> RestartConfig {
    RestartConfig {
        limit: Some(StartLimit { burst, interval }),
        ..restart(RestartPolicy::Always, delay)
    }
}

/// A supervisor, a fake clock and fake pids.
pub(super) struct Harness {
    pub(super) sup: Supervisor,
    pub(super) base: Instant,
    pub(super) now: Instant,
    next_pid: u32,
}

impl Harness {
    pub(super) fn new() -> Harness {
        let base = Instant::now();
        Harness {
            sup: Supervisor::new(),
            base,
            now: base,
            next_pid: 100,
        }
    }

    pub(super) fn add(&mut self, restart: RestartConfig, stop: StopConfig) -> UnitId {
        let name = format!("unit{}", self.sup.len());
        let config = UnitConfig {
            restart,
            stop,
            ..UnitConfig::named(&name)
        };
        self.sup.add_unit(self.now, config)
    }

    /// Changes part of a unit's config, as a reload hands the core the whole of it.
    pub(super) fn configure(&mut self, id: UnitId, change: impl FnOnce(&mut UnitConfig)) {
        let mut config = self.sup.config(id).clone();
        change(&mut config);
        self.sup.update_unit(id, config);
    }

    /// A unit with the default stop (SIGTERM, 10s).
    pub(super) fn unit(&mut self, restart: RestartConfig) -> UnitId {
        self.add(restart, StopConfig::default())
    }

    /// Time since the harness began.
    pub(super) fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Everything the core asked for since the last call, in order.
    pub(super) fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.sup.poll_action()).collect()
    }

    /// Jumps to the next deadline and fires it; false when nothing is pending.
    pub(super) fn step(&mut self) -> bool {
        let Some(at) = self.sup.poll_timeout() else {
            return false;
        };
        assert!(at >= self.now, "a deadline in the past");
        self.now = at;
        self.sup.handle_timeout(self.now);
        true
    }

    /// Lets `by` pass, firing the deadlines due on the way, in order.
    pub(super) fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.sup.poll_timeout().filter(|&at| at <= end) {
            self.now = at;
            self.sup.handle_timeout(self.now);
        }
        self.now = end;
    }

    /// Plays the daemon's part after a `Spawn`: the process exists now.
    pub(super) fn spawned(&mut self, id: UnitId) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.sup.handle_spawned(self.now, id, pid);
        pid
    }

    /// Operator start, the spawn succeeding; returns the pid, with the actions drained.
    pub(super) fn start(&mut self, id: UnitId) -> u32 {
        self.sup.handle_start(self.now, id, "started by operator");
        assert!(self.actions().contains(&Action::Spawn { unit: id }));
        let pid = self.spawned(id);
        self.actions();
        pid
    }

    pub(super) fn exit(&mut self, id: UnitId, status: ExitStatus) -> Vec<Action> {
        self.sup.handle_exit(self.now, id, status);
        self.actions()
    }

    pub(super) fn state(&self, id: UnitId) -> State {
        self.sup.status(id).state
    }

    pub(super) fn reason(&self, id: UnitId) -> String {
        self.sup.status(id).reason
    }

    /// The backoff the unit is waiting, if it is in backoff.
    pub(super) fn waiting(&self, id: UnitId) -> Option<Duration> {
        self.sup.status(id).next_start.map(|at| at - self.now)
    }
}

pub(super) fn kill(unit: UnitId, pgid: u32) -> Action {
    Action::Signal {
        unit,
        pgid,
        signal: 9,
    }
}

pub(super) fn term(unit: UnitId, pgid: u32) -> Action {
    Action::Signal {
        unit,
        pgid,
        signal: SIGTERM,
    }
}

#[test]
fn start_spawns_and_runs_at_once() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    assert_eq!(h.state(id), State::Inactive);
    h.sup.handle_start(h.now, id, "started by operator");
    assert_eq!(
        h.actions(),
        [Action::Spawn { unit: id }, Action::Publish { unit: id }]
    );
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.sup.status(id).pid, None);
    h.now += ms(3);
    let pid = h.spawned(id);
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!(status.state, State::Running);
    assert!(status.ready);
    assert_eq!(status.pid, Some(pid));
    assert_eq!(status.since, h.base + ms(3));
    assert_eq!(status.starts, 1);
    assert_eq!(status.restarts, 0);
    assert_eq!(status.reason, "started by operator");
}

#[test]
fn idle_has_no_deadline() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    assert_eq!(h.sup.poll_timeout(), None);
    h.start(id);
    assert_eq!(h.sup.poll_timeout(), None, "running needs no wake-up");
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.sup.poll_timeout(), None);
    assert!(!h.step());
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    let mut pid = h.start(id);
    let mut waits = Vec::new();
    for _ in 0..7 {
        let actions = h.exit(id, ExitStatus::Code(1));
        assert_eq!(actions, [kill(id, pid), Action::Publish { unit: id }]);
        assert_eq!(h.state(id), State::Backoff);
        let wait = h.waiting(id).expect("in backoff");
        assert_eq!(
            h.reason(id),
            format!("restarting in {}", fmt_duration(wait))
        );
        waits.push(wait.as_millis());
        assert!(h.step());
        assert_eq!(
            h.actions(),
            [Action::Spawn { unit: id }, Action::Publish { unit: id }]
        );
        pid = h.spawned(id);
        h.actions();
    }
    assert_eq!(waits, [100, 200, 400, 800, 1000, 1000, 1000]);
    let status = h.sup.status(id);
    assert_eq!(status.restarts, 7);
    assert_eq!(status.starts, 8);
    assert_eq!(status.reason, "restarted (exited with code 1)");
}

#[test]
fn long_run_resets_the_backoff() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.start(id);
    for _ in 0..3 {
        h.exit(id, ExitStatus::Code(1));
        h.step();
        h.spawned(id);
    }
    // Just short of reset_after: the count goes on.
    h.now += Duration::from_secs(10) - Duration::from_nanos(1);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.waiting(id), Some(ms(800)));
    h.step();
    h.spawned(id);
    // reset_after exactly: back to the first delay.
    h.now += Duration::from_secs(10);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.waiting(id), Some(ms(100)));
}

#[test]
fn policies_by_exit_status() {
    use RestartPolicy::*;
    let statuses = [
        ExitStatus::Code(0),
        ExitStatus::Code(1),
        ExitStatus::Signal(SIGSEGV),
    ];
    let expected = [
        (Always, [State::Backoff, State::Backoff, State::Backoff]),
        (OnFailure, [State::Inactive, State::Backoff, State::Backoff]),
        (Never, [State::Inactive, State::Failed, State::Failed]),
    ];
    for (policy, states) in expected {
        for (status, state) in statuses.into_iter().zip(states) {
            let mut h = Harness::new();
            let id = h.unit(restart(policy, ms(100)));
            let pid = h.start(id);
            h.now += ms(5);
            let actions = h.exit(id, status);
            assert_eq!(h.state(id), state, "{policy} after {status}");
            // Whatever follows, the group is killed so no child outlives the main process.
            assert_eq!(actions[0], kill(id, pid), "{policy} after {status}");
            let last = h.sup.status(id).last_exit.expect("exit recorded");
            assert_eq!(last.status, Some(status));
            assert_eq!(last.at, h.base + ms(5));
            assert_eq!(last.reason, status.to_string());
            assert_eq!(h.sup.status(id).pid, None);
            if state == State::Failed {
                assert_eq!(
                    h.reason(id),
                    format!("{status}; restart policy is {policy}")
                );
            }
        }
    }
}

#[test]
fn killed_by_signal_is_named() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.start(id);
    h.exit(id, ExitStatus::Signal(SIGSEGV));
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(last.reason, "killed by SIGSEGV");
    assert_eq!(h.reason(id), "killed by SIGSEGV; restart policy is never");
}

#[test]
fn failed_stays_failed() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.start(id);
    h.exit(id, ExitStatus::Code(3));
    assert_eq!(h.state(id), State::Failed);
    assert!(!h.step());
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.state(id), State::Failed);
    assert!(h.actions().is_empty());
}

#[test]
fn zero_delay_respawns_in_the_same_call() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, Duration::ZERO));
    let pid = h.start(id);
    let actions = h.exit(id, ExitStatus::Code(1));
    assert_eq!(
        actions,
        [
            kill(id, pid),
            Action::Spawn { unit: id },
            Action::Publish { unit: id }
        ]
    );
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.sup.poll_timeout(), None, "no timer for a zero delay");
    assert_eq!(h.sup.status(id).restarts, 1);
}

#[test]
fn start_limit_allows_exactly_burst_starts() {
    let mut h = Harness::new();
    let id = h.unit(limited(Duration::ZERO, 3, Duration::from_secs(1)));
    h.start(id); // start 1
    h.exit(id, ExitStatus::Code(1)); // start 2
    assert_eq!(h.state(id), State::Starting);
    h.spawned(id);
    h.exit(id, ExitStatus::Code(1)); // start 3: still within the burst, after the floor
    assert_eq!(h.waiting(id), Some(ms(10)));
    assert!(h.step());
    assert!(h.actions().contains(&Action::Spawn { unit: id }));
    assert_eq!(h.state(id), State::Starting);
    h.spawned(id);
    h.now += ms(989);
    let actions = h.exit(id, ExitStatus::Code(1)); // start 4 would be one too many
    assert!(!actions.contains(&Action::Spawn { unit: id }));
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(h.reason(id), "start limit hit: 3 starts within 1s");
    assert_eq!(h.sup.status(id).restarts, 2);
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn starts_older_than_the_interval_do_not_count() {
    let mut h = Harness::new();
    let mut config = limited(Duration::ZERO, 2, Duration::from_secs(1));
    // Each run resets the backoff (and so the throttle floor): only the limit is at work.
    config.reset_after = ms(400);
    let id = h.unit(config);
    h.start(id);
    // A crash every 500ms: each restart has exactly one start within the last second
    // (the one 500ms ago; the one 1s ago has just left the window), so it never gives up.
    for _ in 0..20 {
        h.now += ms(500);
        h.exit(id, ExitStatus::Code(1));
        assert_eq!(h.state(id), State::Starting, "at {:?}", h.elapsed());
        h.spawned(id);
    }
    // One crash faster than that breaks the burst of 2.
    h.now += ms(499);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(h.reason(id), "start limit hit: 2 starts within 1s");
}

#[test]
fn start_limit_counts_at_the_time_of_the_restart() {
    let mut h = Harness::new();
    // Burst 1: only the backoff's length lets the second start fall outside the window.
    let mut config = limited(ms(600), 1, Duration::from_secs(1));
    config.multiplier = 1.0;
    let id = h.unit(config);
    h.start(id);
    h.now += ms(300);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.state(id), State::Failed, "restart at 900ms: 2 starts");
    h.start(id);
    h.now += ms(400);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.state(id), State::Backoff, "restart at 1000ms: 1 start");
}

#[test]
fn operator_start_on_failed_clears_limit_and_backoff() {
    let mut h = Harness::new();
    let id = h.unit(limited(ms(100), 2, Duration::from_secs(60)));
    h.start(id);
    h.exit(id, ExitStatus::Code(1));
    h.step();
    h.spawned(id);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(h.state(id), State::Failed);
    h.actions();

    h.sup.handle_start(h.now, id, "started by operator");
    assert_eq!(
        h.actions(),
        [Action::Spawn { unit: id }, Action::Publish { unit: id }]
    );
    assert_eq!(h.reason(id), "started by operator");
    h.spawned(id);
    h.exit(id, ExitStatus::Code(1));
    // Without clearing, this restart would be the third start within the minute; and the
    // delay is back to the first one.
    assert_eq!(h.state(id), State::Backoff);
    assert_eq!(h.waiting(id), Some(ms(100)));
}

#[test]
fn spawn_failure_counts_as_a_crash() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    let mut waits = Vec::new();
    for _ in 0..3 {
        h.sup
            .handle_spawn_failed(h.now, id, "No such file or directory");
        assert_eq!(h.actions(), [Action::Publish { unit: id }]);
        let last = h.sup.status(id).last_exit.expect("failure recorded");
        assert_eq!(last.status, None);
        assert_eq!(last.reason, "spawn failed: No such file or directory");
        waits.push(h.waiting(id).expect("in backoff"));
        h.step();
        assert_eq!(h.actions()[0], Action::Spawn { unit: id });
    }
    assert_eq!(waits, [ms(100), ms(200), ms(400)]);
    assert_eq!(
        h.reason(id),
        "restarted (spawn failed: No such file or directory)"
    );
}

#[test]
fn spawn_failure_with_policy_never_fails() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.sup.handle_start(h.now, id, "started by operator");
    h.sup
        .handle_spawn_failed(h.now, id, "user nobody2 not found");
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(h.reason(id), "spawn failed: user nobody2 not found");
}

#[test]
fn exit_without_a_process_is_ignored() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.sup.handle_exit(h.now, id, ExitStatus::Code(1));
    assert!(h.actions().is_empty());
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.sup.status(id).last_exit, None);
}

#[test]
fn earliest_deadline_of_many_units() {
    let mut h = Harness::new();
    let slow = h.unit(restart(RestartPolicy::Always, ms(500)));
    let fast = h.unit(restart(RestartPolicy::Always, ms(100)));
    h.start(slow);
    h.start(fast);
    h.exit(slow, ExitStatus::Code(1));
    h.exit(fast, ExitStatus::Code(1));
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(100)));
    h.step();
    assert_eq!(
        h.actions(),
        [Action::Spawn { unit: fast }, Action::Publish { unit: fast }]
    );
    assert_eq!(h.state(slow), State::Backoff);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(500)));
    h.step();
    assert_eq!(h.state(slow), State::Starting);
    assert_eq!(h.sup.find("unit1"), Some(fast));
    assert_eq!(h.sup.name(slow), "unit0");
}

#[test]
fn zero_delay_keeps_a_growing_floor_between_starts() {
    let mut h = Harness::new();
    let mut config = restart(RestartPolicy::Always, Duration::ZERO);
    config.max_delay = Duration::from_secs(30);
    let id = h.unit(config);
    h.start(id);
    // A command that dies at once, for 5 s: the first restart follows at once, then the
    // starts are at least 10ms apart, doubling up to 1s.
    let mut gaps = Vec::new();
    let mut last = h.now;
    while h.elapsed() < Duration::from_secs(5) {
        let actions = h.exit(id, ExitStatus::Code(1));
        if !actions.contains(&Action::Spawn { unit: id }) {
            assert_eq!(h.state(id), State::Backoff);
            assert!(h.step());
            assert!(h.actions().contains(&Action::Spawn { unit: id }));
        }
        gaps.push((h.now - last).as_millis() as u64);
        last = h.now;
        h.spawned(id);
    }
    assert_eq!(
        gaps[..9],
        [0, 10, 20, 40, 80, 160, 320, 640, 1000],
        "{gaps:?}"
    );
    assert!(gaps.len() < 20, "{} starts in 5s", gaps.len());
}

#[test]
fn a_run_past_the_floor_restarts_at_once() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, Duration::ZERO));
    h.start(id);
    for _ in 0..5 {
        // Each run lasts longer than the largest floor (1s), less than reset_after (10s).
        h.now += Duration::from_secs(2);
        let actions = h.exit(id, ExitStatus::Code(1));
        assert!(actions.contains(&Action::Spawn { unit: id }));
        h.spawned(id);
    }
}

#[test]
fn a_failed_spawn_is_never_retried_in_the_same_call() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, Duration::ZERO));
    h.sup.handle_start(h.now, id, "started by operator");
    assert!(h.actions().contains(&Action::Spawn { unit: id }));
    for expected in [10, 20, 40] {
        h.sup
            .handle_spawn_failed(h.now, id, "No such file or directory");
        let actions = h.actions();
        assert!(
            !actions.contains(&Action::Spawn { unit: id }),
            "{actions:?}"
        );
        assert_eq!(h.state(id), State::Backoff);
        assert_eq!(h.waiting(id), Some(ms(expected)));
        assert!(h.step());
        assert!(h.actions().contains(&Action::Spawn { unit: id }));
    }
}

#[test]
fn failed_spawns_go_through_the_start_limit() {
    let mut h = Harness::new();
    let id = h.unit(limited(Duration::ZERO, 3, Duration::from_secs(60)));
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    for _ in 0..2 {
        h.sup
            .handle_spawn_failed(h.now, id, "No such file or directory");
        assert!(h.step());
        h.actions();
    }
    h.sup
        .handle_spawn_failed(h.now, id, "No such file or directory");
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(h.reason(id), "start limit hit: 3 starts within 1m");
    assert_eq!(h.sup.poll_timeout(), None);
}
