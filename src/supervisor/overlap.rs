//! Overlapping restarts (`restart.overlap`): a planned restart starts the new run first, waits
//! until it is ready, and only then stops the old one, which finishes what it has in hand.
//!
//! While they overlap the unit has two processes: the new run is the unit's (`pid`, in
//! `starting`, with its ready check and timeout as any start), the old one is kept aside in an
//! [`Overlap`] and keeps serving; the unit is not shown as down, and its dependents stay. Then:
//!
//! - the new run is ready: the old one gets its stop signal, and SIGKILL to its group after the
//!   stop timeout ([`Timer::OverlapKill`]); it is *retiring* until reaped, and the next restart
//!   may overlap at once (back-to-back restarts leave several retiring runs);
//! - the new run fails before it is ready (spawn failure, exit, ready timeout): it is stopped,
//!   the old one is the unit's run again (`running`, ready), and the restart fails with the
//!   reason;
//! - the unit is stopped meanwhile: both runs are.
//!
//! The daemon reports exits with the pid ([`Supervisor::handle_exit_of`]), so the old run's exit
//! is never taken for the new one's, and the SIGKILL that cleans up a dead run's group goes to
//! that run's group only.

use super::record::Overlap;
use super::timers::Timer;
use super::{Action, Exit, ExitStatus, Reason, SIGKILL, State, Supervisor, UnitId};
use std::time::Instant;

impl Supervisor {
    /// A planned restart of unit `id` as an overlap, if its config asks for one and it has a
    /// running, ready process to keep meanwhile; false (nothing done) otherwise.
    pub(super) fn overlap_restart(&mut self, now: Instant, id: UnitId, reason: &Reason) -> bool {
        let unit = &self.units[id];
        let Some(pid) = unit.pid else {
            return false;
        };
        if !unit.config.overlap
            || unit.state != State::Running
            || unit.overlap.is_some()
            || unit.pending_stop.is_some()
            || self.shutdown_deadline.is_some()
        {
            return false;
        }
        let old = Overlap {
            pid,
            spawned_at: unit.spawned_at,
            reason: unit.reason.clone(),
            failure: None,
        };
        self.units[id].overlap = Some(old);
        self.operator_spawn(now, id, reason.clone());
        // The spawn cleared the timers: older runs still retiring keep their deadlines.
        self.arm_old_kill(id);
        true
    }

    /// [`Supervisor::overlap_restart`] for an operator's restart, published.
    pub(super) fn overlap_restart_published(
        &mut self,
        now: Instant,
        id: UnitId,
        reason: &Reason,
    ) -> bool {
        if self.units.get(id).is_none_or(|unit| !unit.config.overlap) {
            return false;
        }
        let mut done = false;
        self.publishing(id, |sup| done = sup.overlap_restart(now, id, reason));
        if done {
            self.settle(now);
        }
        done
    }

    /// After the new run became ready (or any change): retires the old run once the new one
    /// is running.
    pub(super) fn overlap_progress(&mut self, now: Instant, id: UnitId) {
        let unit = &self.units[id];
        let waiting = unit
            .overlap
            .as_ref()
            .is_some_and(|old| old.failure.is_none());
        if waiting && unit.state == State::Running {
            self.publishing(id, |sup| sup.retire_old(now, id));
        }
    }

    /// Sends the old run its stop signal, and arms the SIGKILL of its group: it is retiring.
    pub(super) fn retire_old(&mut self, now: Instant, id: UnitId) {
        let unit = &mut self.units[id];
        let Some(old) = unit.overlap.take() else {
            return;
        };
        let zero = unit.config.stop.timeout.is_zero();
        let (signal, kill_at) = if zero {
            (SIGKILL, None)
        } else {
            (
                unit.config.stop.signal,
                now.checked_add(unit.config.stop.timeout),
            )
        };
        unit.retiring.push((old.pid, kill_at));
        self.arm_old_kill(id);
        self.actions.push_back(Action::Signal {
            unit: id,
            pgid: old.pid,
            signal,
        });
    }

    /// Arms [`Timer::OverlapKill`] at the earliest SIGKILL a retiring run still waits for.
    pub(super) fn arm_old_kill(&mut self, id: UnitId) {
        let unit = &mut self.units[id];
        let next = unit.retiring.iter().filter_map(|(_, at)| *at).min();
        unit.timers.set(Timer::OverlapKill, next);
    }

    /// Retiring runs past their stop timeout: SIGKILL to their groups (once each).
    pub(super) fn kill_old(&mut self, now: Instant, id: UnitId) {
        let unit = &mut self.units[id];
        for (pid, at) in &mut unit.retiring {
            if at.is_some_and(|at| at <= now) {
                *at = None;
                self.actions.push_back(Action::Signal {
                    unit: id,
                    pgid: *pid,
                    signal: SIGKILL,
                });
            }
        }
        self.arm_old_kill(id);
    }

    /// The shutdown's deadline: SIGKILL to every old run still there, whatever its own.
    pub(super) fn kill_old_runs(&mut self) {
        for id in 0..self.units.len() {
            let unit = &mut self.units[id];
            let pending = unit.overlap.as_ref().map(|old| old.pid);
            let olds: Vec<u32> = pending
                .into_iter()
                .chain(unit.retiring.iter_mut().map(|(pid, at)| {
                    *at = None;
                    *pid
                }))
                .collect();
            for pid in olds {
                self.actions.push_back(Action::Signal {
                    unit: id,
                    pgid: pid,
                    signal: SIGKILL,
                });
            }
        }
    }

    /// Whether `pid` is an old run of unit `id` (kept aside, or retiring), not its main process.
    pub fn is_old_run(&self, id: UnitId, pid: u32) -> bool {
        self.units.get(id).is_some_and(|unit| {
            unit.overlap.as_ref().is_some_and(|old| old.pid == pid)
                || unit.retiring.iter().any(|(old, _)| *old == pid)
        })
    }

    /// The new run was not ready in time (`reason`): while overlapping, it alone is stopped
    /// (its dependents stay: the old run serves them), and its exit brings the old run back.
    /// False when the unit does not overlap (the caller fails the start as usual).
    pub(super) fn overlap_not_ready(&mut self, now: Instant, id: UnitId, reason: &Reason) -> bool {
        let Some(old) = &mut self.units[id].overlap else {
            return false;
        };
        old.failure = Some(reason.clone());
        self.begin_stop(now, id, reason.clone());
        true
    }

    /// The daemon could not spawn the new run: the old one is the unit's again.
    pub(super) fn overlap_spawn_failed(&mut self, now: Instant, id: UnitId, error: &str) -> bool {
        let unit = &self.units[id];
        if unit.overlap.is_none() || unit.state != State::Starting || unit.pid.is_some() {
            return false;
        }
        self.publishing(id, |sup| {
            let reason = Reason::new(
                super::ReasonKind::SpawnFailed,
                format!("spawn failed: {error}"),
            );
            sup.units[id].last_exit = Some(Exit::new(None, now, reason.clone()));
            sup.restore_old(now, id, &reason);
        });
        self.settle(now);
        true
    }

    /// Process `pid` of unit `id` was reaped: the old run of an overlap, the new run failing
    /// before it was ready, or else the unit's main process ([`Supervisor::handle_exit`]).
    pub fn handle_exit_of(&mut self, now: Instant, id: UnitId, pid: u32, status: ExitStatus) {
        if self.is_old_run(id, pid) {
            self.publishing(id, |sup| {
                let unit = &mut sup.units[id];
                if unit.overlap.as_ref().is_some_and(|old| old.pid == pid) {
                    // Ended on its own while the new run starts: nothing to fall back on.
                    unit.overlap = None;
                }
                unit.retiring.retain(|(old, _)| *old != pid);
                sup.arm_old_kill(id);
                // Whatever it left in its own group goes with it; the new run has its own.
                sup.actions.push_back(Action::Signal {
                    unit: id,
                    pgid: pid,
                    signal: SIGKILL,
                });
            });
            self.settle(now);
            return;
        }
        let unit = &self.units[id];
        let new_failed = unit.pid == Some(pid)
            && unit
                .overlap
                .as_ref()
                .is_some_and(|old| unit.state == State::Starting || old.failure.is_some());
        if !new_failed {
            // The unit's run, as any exit. Its timers go with the state it leaves; the SIGKILL
            // deadlines of retiring runs stay.
            self.handle_exit(now, id, status);
            if self
                .units
                .get(id)
                .is_some_and(|unit| !unit.retiring.is_empty())
            {
                self.arm_old_kill(id);
            }
            return;
        }
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            unit.pid = None;
            unit.spawned_at = None;
            sup.actions.push_back(Action::Signal {
                unit: id,
                pgid: pid,
                signal: SIGKILL,
            });
            let unit = &mut sup.units[id];
            let why = match unit.overlap.as_mut().and_then(|old| old.failure.take()) {
                Some(failure) => failure.reworded(format!("{failure}; {status}")),
                None => status.reason(),
            };
            unit.last_exit = Some(Exit::new(Some(status), now, why.clone()));
            sup.restore_old(now, id, &why);
        });
        self.settle(now);
    }

    /// The new run is gone before it was ready: the old one is the unit's run again, running
    /// and ready, its reason saying that the restart failed and why.
    fn restore_old(&mut self, now: Instant, id: UnitId, why: &Reason) {
        let unit = &mut self.units[id];
        let Some(old) = unit.overlap.take() else {
            return;
        };
        unit.clear_intents();
        unit.pid = Some(old.pid);
        unit.spawned_at = old.spawned_at;
        unit.overlap_failed = Some(unit.starts);
        let words = format!(
            "restart failed: the new run {why}; pid {} still serving ({})",
            old.pid, old.reason
        );
        self.become_ready(now, id, why.reworded(words));
        // become_ready cleared the timers: the retiring runs' deadlines stay.
        self.arm_old_kill(id);
    }
}
