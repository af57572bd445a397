//! Taking units back: a svcd that restarted (after a crash, or re-executed by `svc upgrade`)
//! finds the processes a previous svcd ran, as its state file recorded them.
//!
//! Two events: [`Supervisor::handle_adopted`] (the process still runs: the unit is running
//! again, as if it had never been left alone) and [`Supervisor::handle_lost`] (the process is
//! gone, and its exit status cannot be known: it died while svcd was down, or it was adopted and
//! exited while not a child of svcd). Both only apply to a unit just added, `inactive` without
//! a process, so the daemon feeds them before it starts the other units.

use super::record::Record;
use super::timers::Timer;
use super::{Action, Exit, Reason, ReasonKind, SIGKILL, State, Supervisor, UnitId};
use crate::unit::RestartPolicy;
use std::time::Instant;

/// What a previous svcd recorded of a unit whose process is still running.
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    /// The main process (its own group leader): it keeps running, nothing is spawned.
    pub pid: u32,
    /// When that process was spawned: the uptime `restart.reset_after` measures.
    pub spawned_at: Instant,
    /// When the unit entered its state, as `status` showed it.
    pub since: Instant,
    /// Its readiness check had passed (or it has none).
    pub ready: bool,
    pub restarts: u32,
    pub starts: u64,
    pub last_exit: Option<Exit>,
}

impl Supervisor {
    /// Unit `id` (just added, `inactive`) already runs as `adopted.pid`, spawned by a previous
    /// svcd. It is `running` again (or `starting`, with a fresh ready timeout, when its check
    /// had not passed yet), with its counters and last exit; nothing is spawned, and the next
    /// exit of `pid` is an exit of this run.
    pub fn handle_adopted(&mut self, now: Instant, id: UnitId, adopted: Adopted) {
        self.publishing(id, |sup| {
            let Some(unit) = sup.units.get_mut(id) else {
                return;
            };
            if !is_fresh(unit) {
                debug_assert!(false, "adopting unit {id} in {}", unit.state);
                return;
            }
            restore(unit, &adopted);
            unit.pid = Some(adopted.pid);
            unit.spawned_at = Some(adopted.spawned_at);
            unit.last_start = Some(adopted.spawned_at);
            let words = format!(
                "adopted: pid {} kept running across svcd's restart",
                adopted.pid
            );
            let reason = Reason::new(ReasonKind::Boot, words);
            if adopted.ready || !unit.config.checks.ready {
                sup.become_ready(now, id, reason);
            } else {
                unit.set_state(now, State::Starting, reason);
                unit.timers.set(
                    Timer::Ready,
                    now.checked_add(unit.config.checks.ready_timeout),
                );
            }
            sup.units[id].since = adopted.since.min(now);
        });
        self.settle(now);
    }

    /// The process of unit `id` is gone and its exit status cannot be known: `words` say why
    /// ("exited while svcd was down", "exited while not a child of svcd"). For an adopted unit
    /// it ends the run, as [`Supervisor::handle_exit`] does; for a unit just added (`prior`:
    /// what the previous svcd recorded of it) it restores its counters first. Either way, an
    /// unknown status is a failure for the policy: `always` and `on-failure` restart it.
    pub fn handle_lost(&mut self, now: Instant, id: UnitId, prior: Option<Adopted>, words: &str) {
        self.publishing(id, |sup| {
            let Some(unit) = sup.units.get_mut(id) else {
                return;
            };
            let reason = Reason::new(ReasonKind::Exited, words);
            let stopping = match (unit.pid.take(), prior) {
                (Some(pid), _) => {
                    sup.actions.push_back(Action::Signal {
                        unit: id,
                        pgid: pid,
                        signal: SIGKILL,
                    });
                    let unit = &mut sup.units[id];
                    let uptime = unit
                        .spawned_at
                        .take()
                        .map(|at| now.saturating_duration_since(at));
                    if uptime.is_some_and(|up| up >= unit.config.restart.reset_after) {
                        unit.crashes = 0;
                    }
                    unit.paused = None;
                    unit.status_text = None;
                    unit.timers.clear();
                    unit.state == State::Stopping
                }
                (None, Some(prior)) if is_fresh(unit) => {
                    restore(unit, &prior);
                    unit.last_start = Some(prior.spawned_at);
                    false
                }
                // No process of ours: a late or duplicate report.
                (None, _) => return,
            };
            let unit = &mut sup.units[id];
            unit.last_exit = Some(Exit::new(None, now, reason.clone()));
            if stopping {
                let stop = unit.stop.take();
                match stop {
                    Some(stop) if unit.then_start.is_none() && stop.failure.is_some() => {
                        let failure = stop.failure.unwrap_or(reason);
                        // As for an exit svcd reaps: the stop it decided on is the reason.
                        let words = format!("{failure}; {words}");
                        unit.last_exit = Some(Exit::new(None, now, failure.reworded(words)));
                        sup.after_failure(now, id, failure);
                    }
                    Some(stop) => sup.finish_stop(now, id, stop.reason),
                    None => sup.finish_stop(now, id, reason),
                }
                return;
            }
            if unit.config.restart.policy == RestartPolicy::Never {
                let words = format!("{words}; restart policy is never");
                unit.set_state(now, State::Failed, reason.reworded(words));
            } else {
                sup.schedule_restart(now, id, false);
            }
            sup.stop_dependents(now, id, words);
        });
        self.settle(now);
    }
}

/// Just added: nothing happened to it yet in this svcd.
fn is_fresh(unit: &Record) -> bool {
    unit.state == State::Inactive && unit.pid.is_none() && unit.starts == 0
}

/// The counters a previous svcd kept.
fn restore(unit: &mut Record, prior: &Adopted) {
    unit.restarts = prior.restarts;
    unit.starts = prior.starts.max(1);
    unit.last_exit = prior.last_exit.clone();
}

impl Supervisor {
    /// When the current run of unit `id` was spawned (or adopted with), while it has one.
    pub fn spawned_at(&self, id: UnitId) -> Option<Instant> {
        self.units.get(id).and_then(|unit| unit.spawned_at)
    }
}
