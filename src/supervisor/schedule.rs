//! Scheduled units in the core: when a unit with `[schedule]` is due, and what a due run does.
//!
//! The core has no clock, so the wall-clock time comes in as an input beside `now`:
//! [`Supervisor::handle_wall_clock`] pairs the two (the daemon calls it at start, after a reload,
//! and whenever the kernel says the clock was set). Calendar times are Unix seconds; each is
//! turned into an `Instant` through the last pairing, so a clock set forward or back moves
//! every armed run with it: a time passed over by a jump runs once, at once, and a time already
//! run is never run again after the clock goes back. `every` counts on the monotonic clock,
//! untouched by jumps.
//!
//! A due run of an idle unit (inactive, failed, waiting in backoff) starts it as `svc start`
//! does. A unit still running decides by `overlap`: skip (counted), queue (one run starts when
//! this one ends), or kill (a restart). When the run exits, 0 or not, it is over: the unit waits
//! for its next time (`inactive`, or `failed` for a failed run); with `retry`, a failed run
//! follows the restart policy instead.

use super::backoff::fmt_duration;
use super::table::Command;
use super::timers::{Timer, Timers};
use super::{Action, ExitStatus, Reason, ReasonKind, State, Supervisor, UnitId};
use crate::unit::RestartPolicy;
use std::time::{Duration, Instant};

/// The last pairing of the monotonic and the wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct WallClock {
    /// When the wall clock was read, and what it said (milliseconds since the Unix epoch).
    at: Option<(Instant, i64)>,
}

impl WallClock {
    /// Unix seconds at `now` (rounded down); 0 before the first pairing.
    fn secs(&self, now: Instant) -> i64 {
        self.millis(now).div_euclid(1000)
    }

    fn millis(&self, now: Instant) -> i64 {
        match self.at {
            Some((at, ms)) if now >= at => ms + (now - at).as_millis() as i64,
            Some((at, ms)) => ms - (at - now).as_millis() as i64,
            None => 0,
        }
    }

    /// The `Instant` of Unix second `secs`, never before `now` (a past time is due now).
    fn instant(&self, now: Instant, secs: i64) -> Option<Instant> {
        let (at, ms) = self.at?;
        let delta = secs.saturating_mul(1000).saturating_sub(ms);
        let instant = if delta >= 0 {
            at.checked_add(Duration::from_millis(delta as u64))?
        } else {
            at.checked_sub(Duration::from_millis(delta.unsigned_abs()))
                .unwrap_or(now)
        };
        Some(instant.max(now))
    }
}

/// One finished run of a scheduled unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    pub started: Instant,
    pub duration: Duration,
    /// `None`: it could not be spawned.
    pub status: Option<ExitStatus>,
}

/// What `svc status` shows of a scheduled unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleStatus {
    /// When the next run is due (its random delay included); `None`: never again.
    pub next_run: Option<Instant>,
    pub last_run: Option<LastRun>,
    /// Runs the schedule started (by hand: not counted).
    pub runs: u64,
    /// Due runs skipped because the previous one was still going (`overlap = "skip"`).
    pub skipped: u64,
    /// A due run waits for the current one to end (`overlap = "queue"`).
    pub queued: bool,
}

/// A unit's schedule bookkeeping.
#[derive(Debug, Default, Clone)]
pub(super) struct SchedState {
    /// The calendar time armed (Unix seconds), not run yet.
    next_due: Option<i64>,
    /// The last calendar time run, or the persistent stamp's time.
    last_due: Option<i64>,
    /// When `every` is next due.
    next_every: Option<Instant>,
    runs: u64,
    skipped: u64,
    queued: bool,
    last_run: Option<LastRun>,
}

impl SchedState {
    pub(super) fn status(&self, timers: &Timers) -> ScheduleStatus {
        ScheduleStatus {
            next_run: timers.get(Timer::Schedule),
            last_run: self.last_run,
            runs: self.runs,
            skipped: self.skipped,
            queued: self.queued,
        }
    }
}

impl Supervisor {
    /// The wall clock reads `unix` (since the Unix epoch) at `now`: at svcd's start, after a
    /// reload (new scheduled units), and when the clock was set or the host resumed. Re-arms
    /// every scheduled unit's next run.
    pub fn handle_wall_clock(&mut self, now: Instant, unix: Duration) {
        self.wall.at = Some((now, unix.as_millis() as i64));
        for id in 0..self.units.len() {
            if self.units[id].config.schedule.is_some()
                || self.units[id].timers.get(Timer::Schedule).is_some()
            {
                self.publishing(id, |sup| sup.arm_schedule(now, id));
            }
        }
    }

    /// A `persistent` unit last ran at `unix_secs` (its stamp on disk, from an earlier svcd):
    /// a calendar time since then that has passed runs once at the next
    /// [`Supervisor::handle_wall_clock`].
    pub fn handle_last_run(&mut self, id: UnitId, unix_secs: i64) {
        let Some(unit) = self.units.get_mut(id) else {
            return;
        };
        let Some(config) = unit.config.schedule.as_ref().filter(|c| c.persistent) else {
            return;
        };
        unit.sched.last_due = Some(unix_secs);
        unit.sched.next_due = config.next_calendar(unix_secs);
    }

    /// Sets the unit's `Schedule` timer to its next due run.
    fn arm_schedule(&mut self, now: Instant, id: UnitId) {
        let wall = self.wall;
        let unit = &mut self.units[id];
        let Some(config) = &unit.config.schedule else {
            unit.timers.stop(Timer::Schedule);
            return;
        };
        let wall_now = wall.secs(now);
        let sched = &mut unit.sched;
        sched.next_due = if config.calendars.is_empty() {
            None
        } else {
            // An overdue time (passed over by a clock jump, or missed while svcd was down) is
            // kept: it runs now, once. Otherwise the next time after the last one run.
            let overdue = sched.next_due.filter(|&due| due <= wall_now);
            let from = sched.last_due.map_or(wall_now, |last| last.max(wall_now));
            overdue.or_else(|| config.next_calendar(from))
        };
        sched.next_every = config.every.and_then(|every| {
            let fresh = now.checked_add(every)?;
            Some(sched.next_every.map_or(fresh, |at| at.min(fresh)))
        });
        let name = &unit.config.name;
        let calendar = sched.next_due.and_then(|due| {
            let delay = config.random_delay_for(name, due as u64);
            wall.instant(now, due)?.checked_add(delay)
        });
        let every = sched
            .next_every
            .and_then(|at| at.checked_add(config.random_delay_for(name, sched.runs)));
        let at = match (calendar, every) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        unit.timers.set(Timer::Schedule, at);
    }

    /// The unit's `Schedule` timer is due: run it (as its overlap says), then arm the next.
    pub(super) fn fire_schedule(&mut self, now: Instant, id: UnitId) {
        let wall_now = self.wall.secs(now);
        let unit = &mut self.units[id];
        let Some(config) = &unit.config.schedule else {
            unit.timers.stop(Timer::Schedule);
            return;
        };
        let sched = &mut unit.sched;
        let mut due = false;
        if let Some(at) = sched.next_due
            && at <= wall_now
        {
            sched.last_due = Some(at);
            sched.next_due = config.next_calendar(at.max(wall_now));
            due = true;
        }
        if let (Some(at), Some(every)) = (sched.next_every, config.every)
            && at <= now
        {
            sched.next_every = now.checked_add(every);
            due = true;
        }
        // Not due yet by the wall clock (it was set back since the timer was armed): only
        // re-arm. A random delay puts the run after its calendar time, never before it.
        if due {
            let persistent = config.persistent;
            self.run_due(now, id);
            if persistent {
                self.actions.push_back(Action::RecordRun {
                    unit: id,
                    unix_secs: wall_now,
                });
            }
        }
        self.arm_schedule(now, id);
    }

    /// A run is due: start it, or apply `overlap` to the run still going.
    fn run_due(&mut self, now: Instant, id: UnitId) {
        let unit = &mut self.units[id];
        let Some(config) = &unit.config.schedule else {
            return;
        };
        let busy = unit.pid.is_some()
            || matches!(
                unit.state,
                State::Starting | State::Running | State::Stopping
            );
        if !busy {
            unit.sched.runs += 1;
            let reason = Reason::new(ReasonKind::Schedule, "started by schedule");
            self.command(now, id, Command::Start, reason);
            return;
        }
        match config.overlap {
            crate::schedule::Overlap::Skip => unit.sched.skipped += 1,
            crate::schedule::Overlap::Queue if unit.sched.queued => unit.sched.skipped += 1,
            crate::schedule::Overlap::Queue => unit.sched.queued = true,
            crate::schedule::Overlap::Kill => {
                unit.sched.runs += 1;
                let words = "started by schedule (the previous run was stopped)";
                let reason = Reason::new(ReasonKind::Schedule, words);
                self.command(now, id, Command::Restart, reason);
            }
        }
    }

    /// The main process of a scheduled unit exited: note the run (for `status`).
    pub(super) fn record_run(
        &mut self,
        now: Instant,
        id: UnitId,
        uptime: Option<Duration>,
        status: ExitStatus,
    ) {
        let unit = &mut self.units[id];
        if unit.config.schedule.is_none() {
            return;
        }
        let duration = uptime.unwrap_or_default();
        unit.sched.last_run = Some(LastRun {
            started: now.checked_sub(duration).unwrap_or(now),
            duration,
            status: Some(status),
        });
        if unit.state == State::Stopping && unit.then_start.is_none() {
            // Stopped by hand: nothing waits to run after it.
            unit.sched.queued = false;
        }
    }

    /// A scheduled run ended on its own: start the queued run, retry a failure as the policy
    /// says (with `retry`), or wait for the next time.
    pub(super) fn scheduled_exit(&mut self, now: Instant, id: UnitId, status: ExitStatus) {
        let unit = &mut self.units[id];
        let retry = unit.config.schedule.as_ref().is_some_and(|c| c.retry)
            && unit.config.restart.policy != RestartPolicy::Never;
        if unit.sched.queued {
            unit.sched.queued = false;
            unit.sched.runs += 1;
            unit.set_state(now, State::Inactive, status.reason());
            let reason = Reason::new(ReasonKind::Schedule, "started by schedule (queued)");
            self.command(now, id, Command::Start, reason);
        } else if !status.is_success() && retry {
            self.schedule_restart(now, id, false);
        } else if status.is_success() {
            unit.crashes = 0;
            unit.set_state(now, State::Inactive, status.reason());
        } else {
            let next = match unit.timers.get(Timer::Schedule) {
                Some(at) => format!(
                    "next run in {}",
                    fmt_duration(at.saturating_duration_since(now))
                ),
                None => "no further run is due".to_string(),
            };
            let words = format!("{status}; {next}");
            unit.set_state(now, State::Failed, Reason::new(status.kind(), words));
        }
        self.stop_dependents(now, id, &status.to_string());
    }
}
