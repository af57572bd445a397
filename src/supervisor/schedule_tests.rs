//! Scheduled units in the core, on a fake monotonic clock and a fake wall clock: firing,
//! skipping, queueing, killing, retrying, persistent catch-up, clock jumps.

use super::tests::{Harness, ms};
use super::*;
use crate::schedule::{Calendar, Overlap, ScheduleConfig, Zone};
use crate::unit::RestartConfig;
use std::sync::Arc;
use std::time::Duration;

/// 2026-11-26 06:00:00 UTC, a Thursday.
const T0: i64 = 1_795_672_800;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn every(period: Duration) -> ScheduleConfig {
    ScheduleConfig {
        every: Some(period),
        ..ScheduleConfig::default()
    }
}

fn calendar(exprs: &[&str]) -> ScheduleConfig {
    let zone = Arc::new(Zone::utc());
    ScheduleConfig {
        calendars: exprs
            .iter()
            .map(|e| (Calendar::parse(e).unwrap(), Arc::clone(&zone)))
            .collect(),
        ..ScheduleConfig::default()
    }
}

/// The wall clock of the harness: `T0` at its base, moving with `now`, plus `jump`.
struct Wall {
    jump: i64,
}

impl Harness {
    fn scheduled(&mut self, schedule: ScheduleConfig) -> UnitId {
        let id = self.unit(RestartConfig::default());
        self.configure(id, |c| c.schedule = Some(schedule));
        id
    }

    fn wall(&self, wall: &Wall) -> Duration {
        let millis = (T0 + wall.jump) * 1000 + self.elapsed().as_millis() as i64;
        Duration::from_millis(millis as u64)
    }

    fn tell_wall(&mut self, wall: &Wall) {
        let unix = self.wall(wall);
        self.sup.handle_wall_clock(self.now, unix);
    }

    fn next_run(&self, id: UnitId) -> Option<Duration> {
        let status = self.sup.status(id).schedule?;
        status.next_run.map(|at| at - self.now)
    }

    fn runs(&self, id: UnitId) -> (u64, u64) {
        let s = self.sup.status(id).schedule.expect("a schedule");
        (s.runs, s.skipped)
    }

    /// Jumps to the next deadline; whether it spawned `id`.
    fn fires(&mut self, id: UnitId) -> bool {
        assert!(self.step(), "nothing armed");
        self.actions().contains(&Action::Spawn { unit: id })
    }
}

#[test]
fn every_runs_from_the_start_then_from_each_run() {
    let mut h = Harness::new();
    let id = h.scheduled(every(secs(60)));
    assert_eq!(
        h.sup.poll_timeout(),
        None,
        "nothing before the wall clock is known"
    );
    h.tell_wall(&Wall { jump: 0 });
    assert_eq!(h.state(id), State::Inactive, "not started at once");
    assert_eq!(h.next_run(id), Some(secs(60)));
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(60));
    assert_eq!(h.state(id), State::Starting);
    assert_eq!(h.reason(id), "started by schedule");
    h.spawned(id);
    h.now += secs(5);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive);
    let status = h.sup.status(id).schedule.unwrap();
    let last = status.last_run.expect("the run");
    assert_eq!(last.duration, secs(5));
    assert_eq!(last.status, Some(ExitStatus::Code(0)));
    assert_eq!(last.started, h.base + secs(60));
    // Counted from the run's start, not its end.
    assert_eq!(h.next_run(id), Some(secs(55)));
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(120));
    assert_eq!(h.runs(id), (2, 0));
}

#[test]
fn calendar_fires_at_its_times_with_no_wake_up_between() {
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["*:0/15"]));
    h.tell_wall(&Wall { jump: 0 });
    // 06:00:00 now: the next is 06:15, and nothing wakes the daemon before it.
    assert_eq!(h.sup.poll_timeout(), Some(h.now + secs(15 * 60)));
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(15 * 60));
    h.spawned(id);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.next_run(id), Some(secs(15 * 60)));
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(30 * 60));
}

#[test]
fn overlap_skip_counts_and_waits_for_the_next_time() {
    let mut h = Harness::new();
    let id = h.scheduled(every(secs(10)));
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    h.spawned(id);
    // Still running at the next two due times.
    assert!(!h.fires(id));
    assert!(!h.fires(id));
    assert_eq!(h.runs(id), (1, 2));
    assert_eq!(h.state(id), State::Running);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive, "no run made up");
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(40));
}

#[test]
fn overlap_queue_runs_once_after_the_current_run() {
    let mut h = Harness::new();
    let id = h.scheduled(ScheduleConfig {
        overlap: Overlap::Queue,
        ..every(secs(10))
    });
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    h.spawned(id);
    assert!(!h.fires(id));
    assert!(h.sup.status(id).schedule.unwrap().queued);
    // A second due time while one is queued: skipped.
    assert!(!h.fires(id));
    assert_eq!(h.runs(id), (1, 1));
    let actions = h.exit(id, ExitStatus::Code(0));
    assert!(actions.contains(&Action::Spawn { unit: id }), "{actions:?}");
    assert_eq!(h.reason(id), "started by schedule (queued)");
    assert_eq!(h.runs(id), (2, 1));
    assert!(!h.sup.status(id).schedule.unwrap().queued);
}

#[test]
fn overlap_kill_stops_the_run_then_starts_the_due_one() {
    let mut h = Harness::new();
    let id = h.scheduled(ScheduleConfig {
        overlap: Overlap::Kill,
        ..every(secs(10))
    });
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    let pid = h.spawned(id);
    assert!(h.step());
    let actions = h.actions();
    assert!(
        actions.contains(&super::tests::term(id, pid)),
        "{actions:?}"
    );
    assert_eq!(h.state(id), State::Stopping);
    let actions = h.exit(id, ExitStatus::Signal(15));
    assert!(actions.contains(&Action::Spawn { unit: id }), "{actions:?}");
    assert_eq!(h.runs(id), (2, 0));
    let last = h.sup.status(id).schedule.unwrap().last_run.unwrap();
    assert_eq!(last.status, Some(ExitStatus::Signal(15)));
}

#[test]
fn a_failed_run_waits_for_the_next_time_unless_it_retries() {
    let mut h = Harness::new();
    let id = h.scheduled(every(secs(60)));
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    h.spawned(id);
    let actions = h.exit(id, ExitStatus::Code(1));
    assert!(!actions.contains(&Action::Spawn { unit: id }));
    assert_eq!(h.state(id), State::Failed);
    assert!(h.reason(id).contains("next run in 1m"), "{}", h.reason(id));
    // The schedule goes on from `failed`.
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(120));

    let mut h = Harness::new();
    let id = h.scheduled(ScheduleConfig {
        retry: true,
        ..every(secs(60))
    });
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    h.spawned(id);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(
        h.state(id),
        State::Backoff,
        "the restart policy (on-failure) retries"
    );
    assert!(h.fires(id));
    assert_eq!(h.elapsed(), secs(60) + ms(100));
    // The retry is not a scheduled run.
    assert_eq!(h.runs(id), (1, 0));
}

#[test]
fn operator_start_runs_now_and_keeps_the_schedule() {
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["hourly"]));
    h.tell_wall(&Wall { jump: 0 });
    h.now += secs(60);
    h.start(id);
    h.exit(id, ExitStatus::Code(0));
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.next_run(id), Some(secs(59 * 60)));
    assert_eq!(h.runs(id), (0, 0), "a run by hand is not the schedule's");
}

#[test]
fn a_clock_set_forward_runs_a_passed_time_once() {
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["*:0/15"]));
    h.tell_wall(&Wall { jump: 0 });
    h.now += secs(60);
    // Set forward by a day: the 06:15 run is passed; it runs now, once, then 15-minute steps
    // from the new time.
    let wall = Wall { jump: 86_400 };
    h.tell_wall(&wall);
    assert_eq!(h.sup.poll_timeout(), Some(h.now));
    assert!(h.fires(id));
    h.spawned(id);
    h.exit(id, ExitStatus::Code(0));
    // Now 06:01 the next day: next 06:15.
    assert_eq!(h.next_run(id), Some(secs(14 * 60)));
    assert_eq!(h.runs(id), (1, 0));
}

#[test]
fn a_clock_set_back_never_repeats_a_run() {
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["*:0/15"]));
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.fires(id));
    h.spawned(id);
    h.exit(id, ExitStatus::Code(0));
    // 06:15 ran; set back by an hour (05:15): 05:30 ... 06:15 are not run again, the next is
    // 06:30, 75 minutes of wall time away.
    h.tell_wall(&Wall { jump: -3600 });
    assert_eq!(h.next_run(id), Some(secs(75 * 60)));
}

#[test]
fn persistent_makes_up_a_missed_run_once_at_start() {
    let mut h = Harness::new();
    let id = h.scheduled(ScheduleConfig {
        persistent: true,
        ..calendar(&["daily"])
    });
    // Last run two days ago at midnight: today's midnight (and yesterday's) were missed.
    h.sup.handle_last_run(id, T0 - 6 * 3600 - 86_400);
    h.tell_wall(&Wall { jump: 0 });
    assert_eq!(h.sup.poll_timeout(), Some(h.now));
    assert!(h.fires(id));
    let recorded = h.actions();
    let _ = recorded;
    h.spawned(id);
    h.exit(id, ExitStatus::Code(0));
    // Once: the next is tomorrow's midnight.
    assert_eq!(h.next_run(id), Some(secs(18 * 3600)));
    assert_eq!(h.runs(id), (1, 0));
}

#[test]
fn persistent_runs_are_recorded_and_an_up_to_date_stamp_changes_nothing() {
    let mut h = Harness::new();
    let id = h.scheduled(ScheduleConfig {
        persistent: true,
        ..calendar(&["*:0/15"])
    });
    // Last run at 06:00:00 today: nothing missed.
    h.sup.handle_last_run(id, T0);
    h.tell_wall(&Wall { jump: 0 });
    assert_eq!(h.next_run(id), Some(secs(15 * 60)));
    h.step();
    let actions = h.actions();
    assert!(
        actions.contains(&Action::RecordRun {
            unit: id,
            unix_secs: T0 + 15 * 60
        }),
        "{actions:?}"
    );
    // Without `persistent`, a stamp means nothing and nothing is recorded.
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["daily"]));
    h.sup.handle_last_run(id, T0 - 3 * 86_400);
    h.tell_wall(&Wall { jump: 0 });
    assert_eq!(h.next_run(id), Some(secs(18 * 3600)));
    h.step();
    assert!(
        !h.actions()
            .iter()
            .any(|a| matches!(a, Action::RecordRun { .. }))
    );
}

#[test]
fn random_delay_puts_runs_off_within_its_bound_and_stably() {
    let mut h = Harness::new();
    let config = ScheduleConfig {
        random_delay: secs(300),
        ..calendar(&["hourly"])
    };
    let id = h.scheduled(config.clone());
    h.tell_wall(&Wall { jump: 0 });
    let next = h.next_run(id).unwrap();
    assert!(next >= secs(3600) && next < secs(3900), "{next:?}");
    // The same unit and due time: the same delay (the core is deterministic).
    let again = config.random_delay_for("unit0", (T0 + 3600) as u64);
    assert_eq!(next, secs(3600) + again);
}

#[test]
fn a_reload_that_drops_the_schedule_disarms_it() {
    let mut h = Harness::new();
    let id = h.scheduled(every(secs(10)));
    h.tell_wall(&Wall { jump: 0 });
    assert!(h.sup.poll_timeout().is_some());
    h.configure(id, |c| c.schedule = None);
    h.tell_wall(&Wall { jump: 0 });
    assert_eq!(h.sup.poll_timeout(), None);
    assert_eq!(h.sup.status(id).schedule, None);
}

#[test]
fn the_schedule_survives_state_changes_that_clear_timers() {
    let mut h = Harness::new();
    let id = h.scheduled(calendar(&["hourly"]));
    h.tell_wall(&Wall { jump: 0 });
    let pid = h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.exit(id, ExitStatus::Signal(15));
    let _ = pid;
    assert_eq!(h.state(id), State::Inactive);
    assert_eq!(h.next_run(id), Some(secs(3600)));
}
