//! The transitions shared by several handlers: spawning, stopping, scheduling a restart.

use super::backoff::{self, fmt_duration};
use super::record::{Hold, Stop};
use super::timers::Timer;
use super::{Action, Reason, ReasonKind, SIGKILL, State, Supervisor, UnitId};
use std::time::Instant;

impl Supervisor {
    /// A spawn the operator asked for: forgets the backoff and the start-limit history, so a
    /// unit that gave up can always be started by hand.
    pub(super) fn operator_spawn(&mut self, now: Instant, id: UnitId, reason: Reason) {
        let unit = &mut self.units[id];
        unit.crashes = 0;
        unit.start_history.clear();
        self.spawn(now, id, reason);
    }

    /// A spawn the restart policy asked for: the only kind `restarts` counts.
    pub(super) fn auto_spawn(&mut self, now: Instant, id: UnitId) {
        let unit = &mut self.units[id];
        unit.restarts = unit.restarts.saturating_add(1);
        let reason = match &unit.last_exit {
            Some(exit) => format!("restarted ({})", exit.reason),
            None => "restarted".to_string(),
        };
        let reason = Reason::new(ReasonKind::Restart, reason);
        self.spawn(now, id, reason);
    }

    /// Enters `starting` and asks the daemon to spawn. The start counts (in `starts` and in the
    /// limit's history) now, when it is attempted, so failed spawns count towards the limit too.
    fn spawn(&mut self, now: Instant, id: UnitId, reason: Reason) {
        self.forget_hook(id);
        let unit = &mut self.units[id];
        unit.post_done = false;
        unit.was_ready = false;
        unit.exec_stop_until = None;
        unit.clear_intents();
        unit.over_limit = 0;
        unit.health_failed = 0;
        unit.status_text = None;
        unit.paused = None;
        unit.ready_note = None;
        unit.pid = None;
        unit.spawned_at = None;
        unit.timers.clear();
        unit.starts = unit.starts.saturating_add(1);
        unit.last_start = Some(now);
        if let Some(limit) = unit.config.restart.limit {
            backoff::prune(&mut unit.start_history, now, limit);
            unit.start_history.push_back(now);
        }
        unit.set_state(now, State::Starting, reason);
        if let Some((waiting, blocked)) = self.start_blockers(id) {
            let unit = &mut self.units[id];
            let waiting = Reason::new(ReasonKind::Dependency, waiting);
            let reason = std::mem::replace(&mut unit.reason, waiting);
            unit.hold = Some(Hold { reason, blocked });
        } else {
            self.start_spawn(now, id);
        }
    }

    /// Enters `stopping`: the stop signal to the whole group and a deadline to escalate; with a
    /// zero timeout, SIGKILL straight away (there is no time for a graceful stop to take).
    pub(super) fn begin_stop(&mut self, now: Instant, id: UnitId, reason: Reason) {
        let unit = &mut self.units[id];
        if unit.pid.is_none() {
            debug_assert!(false, "stopping unit {id} without a process");
            return;
        }
        // An `exec_start_post` command still running: its run is over.
        self.forget_hook(id);
        let unit = &mut self.units[id];
        // A failure svcd stops the unit for stays one (it is only ever set after this).
        let failure = unit.stop.take().and_then(|stop| stop.failure);
        unit.stop = Some(Stop {
            failure,
            ..Stop::new(reason.clone())
        });
        unit.set_state(now, State::Stopping, reason);
        if self.start_exec_stop(now, id) {
            return;
        }
        self.send_stop_signal(now, id);
    }

    /// The stop signal of a unit in `stopping` (after its `exec_stop` commands, if any), and the
    /// deadline to escalate.
    pub(super) fn send_stop_signal(&mut self, now: Instant, id: UnitId) {
        let shutdown = self.shutdown_deadline;
        let unit = &mut self.units[id];
        let Some(pid) = unit.pid else {
            return;
        };
        unit.exec_stop_until = None;
        let signal = if unit.config.stop.timeout.is_zero() {
            unit.timers.clear();
            SIGKILL
        } else if self.shutdown_fired || shutdown.is_some_and(|at| at <= now) {
            // The shutdown's time is up: no time for a graceful stop either.
            unit.timers.clear();
            if let Some(stop) = &mut unit.stop {
                stop.escalated = true;
            }
            SIGKILL
        } else {
            // A timeout too large to represent is as good as none: wait for the exit. During a
            // shutdown, its deadline comes first.
            let timeout = now.checked_add(unit.config.stop.timeout);
            let at = match (timeout, shutdown) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            unit.timers.clear();
            unit.timers.set(Timer::StopKill, at);
            unit.config.stop.signal
        };
        self.actions.push_back(Action::Signal {
            unit: id,
            pgid: pid,
            signal,
        });
        // The unit stops while an overlapping restart is under way: the old run goes too
        // (unless it is the new one being stopped for not becoming ready).
        if self.units[id]
            .overlap
            .as_ref()
            .is_some_and(|old| old.failure.is_none())
        {
            self.retire_old(now, id);
        }
    }

    /// The shutdown deadline has come: SIGKILL to every unit that still has a process, from
    /// now on in `stopping` without a further deadline (the exit ends it).
    pub(super) fn kill_everything(&mut self, now: Instant) {
        self.kill_old_runs();
        for id in 0..self.units.len() {
            let Some(pid) = self.units[id].pid else {
                continue;
            };
            self.forget_hook(id);
            self.publishing(id, |sup| {
                let unit = &mut sup.units[id];
                if unit.state != State::Stopping {
                    let reason = Reason::new(ReasonKind::Shutdown, "stopped: shutdown timeout");
                    unit.stop = Some(Stop::new(reason.clone()));
                    unit.then_start = None;
                    unit.set_state(now, State::Stopping, reason);
                }
                if let Some(stop) = &mut unit.stop {
                    stop.signal_pending = false;
                    stop.escalated = true;
                }
                unit.timers.clear();
                sup.actions.push_back(Action::Signal {
                    unit: id,
                    pgid: pid,
                    signal: SIGKILL,
                });
            });
        }
    }

    /// The process of a stopped unit is gone (or never came): spawn again if a start waits,
    /// else rest in `inactive` with the stop's reason (`stop`).
    pub(super) fn finish_stop(&mut self, now: Instant, id: UnitId, stop: Reason) {
        let unit = &mut self.units[id];
        if let Some(reason) = unit.then_start.take() {
            self.operator_spawn(now, id, reason);
        } else {
            let reason = stop;
            unit.clear_intents();
            unit.timers.clear();
            unit.set_state(now, State::Inactive, reason);
        }
    }

    /// The policy wants another run: wait the backoff (or spawn now for a zero delay), unless
    /// that start would break the start limit, in which case the unit gives up as `failed`.
    ///
    /// The wait is the larger of the backoff delay and the throttle floor counted from the last
    /// start ([`backoff::floor`]): the first restart may follow at once, later ones of a unit
    /// that keeps crashing at once are spaced out. `spawn_failed`: the start that failed never
    /// ran, so it is retried no sooner than the floor's first step; the daemon then always
    /// returns to its event loop (signals, requests, reaping) between two spawns of a unit.
    ///
    /// The limit is checked now, against the time the start would happen, so a unit that is
    /// going to give up does so at once instead of after a pointless wait, and a long backoff
    /// that lets old starts leave the window is taken into account.
    pub(super) fn schedule_restart(&mut self, now: Instant, id: UnitId, spawn_failed: bool) {
        let unit = &mut self.units[id];
        let n = unit.crashes;
        unit.crashes = unit.crashes.saturating_add(1);
        let floor = backoff::floor(
            &unit.config.restart,
            if spawn_failed { n.saturating_add(1) } else { n },
        );
        let floor_at = unit
            .last_start
            .and_then(|start| start.checked_add(floor))
            .unwrap_or(now);
        let at = now
            .checked_add(backoff::delay(&unit.config.restart, n))
            .map(|at| at.max(floor_at));
        let Some(at) = at else {
            let delay = backoff::delay(&unit.config.restart, n);
            let reason = format!("restart delay {} is too long", fmt_duration(delay));
            let reason = Reason::new(ReasonKind::RestartDelay, reason);
            unit.set_state(now, State::Failed, reason);
            return;
        };
        if let Some(limit) = unit.config.restart.limit
            && let Some(count) = backoff::limit_exceeded(&unit.start_history, at, limit)
        {
            let interval = fmt_duration(limit.interval);
            let reason = format!("start limit hit: {count} starts within {interval}");
            let reason = Reason::new(ReasonKind::StartLimit, reason);
            unit.set_state(now, State::Failed, reason);
            return;
        }
        if at <= now {
            self.auto_spawn(now, id);
        } else {
            unit.timers.set(Timer::Restart, Some(at));
            let reason = format!("restarting in {}", fmt_duration(at - now));
            let reason = Reason::new(ReasonKind::Restart, reason);
            unit.set_state(now, State::Backoff, reason);
        }
    }
}
