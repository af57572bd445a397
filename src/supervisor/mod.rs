//! The supervision core: one state machine per unit, with no I/O and no clock.
//!
//! Inputs are `handle_*(now, …)`; outputs are [`Supervisor::poll_action`]; the next deadline is
//! [`Supervisor::poll_timeout`]. The daemon performs the actions (spawn, signal) and feeds back
//! what happened (spawned, spawn failed, exited); tests drive it with a fake clock.
//!
//! # The state table
//!
//! Commands (rows: current state; `·` = nothing happens):
//!
//! | state | start | stop | restart |
//! | --- | --- | --- | --- |
//! | inactive | spawn | · | spawn |
//! | failed | spawn | → inactive | spawn |
//! | backoff | spawn | → inactive | spawn |
//! | starting, held by its dependencies | · | → inactive | spawn |
//! | starting, spawn not reported yet | · | stop once spawned | stop once spawned, then spawn |
//! | the same, a stop pending | spawn after the stop | stop once spawned | stop once spawned, then spawn |
//! | starting (a process, not ready) | · | → stopping | → stopping, then spawn |
//! | running | · | → stopping | → stopping, then spawn |
//! | stopping | spawn after the stop | keep stopping, forget start | spawn after the stop |
//! | exited | · | → inactive | spawn |
//!
//! The table is [`table::COMMANDS`], from which this one is generated (a test keeps them
//! equal). A spawn or a move to `inactive` cancels the unit's timers (a backoff's next start).
//! With a stop pending, start asks for a spawn after that stop, exactly as start does while
//! stopping: the last command wins, and the unit ends up running. An `exited` oneshot is up:
//! start leaves it be, restart runs it again, stop takes down what requires it (see [`kinds`]).
//!
//! Every spawn an operator asks for (start, restart, the start half of either) forgets the
//! backoff and the start-limit history, so a unit that hit its limit can always be started by
//! hand. Automatic restarts never do.
//!
//! Dependencies and readiness are in [`deps`] and [`readiness`]: a start whose `requires` or
//! `after` are not there yet is *held* in `starting` without a process (its reason says what it
//! waits for); a unit with a readiness check stays `starting` after the spawn until
//! `handle_ready`, or until its ready timeout fails the start.
//!
//! A unit with `[schedule]` is started by its `Schedule` timer, which no change of state
//! disarms; the wall clock it needs comes in beside `now` ([`Supervisor::handle_wall_clock`]).
//! A planned restart of a unit with `restart.overlap` is not in the table: the old run is kept
//! aside and the new one spawned at once (`overlap.rs`).
//!
//! Events: `spawned` → running (or → stopping at once if a stop was pending); `spawn failed` and
//! an unrequested `exit` → the restart policy (backoff / starting / inactive / failed); `exit`
//! while stopping → inactive (or starting if a start waits); `timeout` in backoff → starting,
//! in stopping → SIGKILL to the group.

mod adopt;
#[cfg(test)]
mod adopt3_tests;
#[cfg(test)]
mod adopt_tests;
mod backoff;
#[cfg(test)]
mod command_tests;
mod config;
mod deps;
#[cfg(test)]
mod deps_tests;
#[cfg(test)]
mod health_tests;
mod hooks;
#[cfg(test)]
mod hooks_tests;
mod kinds;
#[cfg(test)]
mod ladder_tests;
mod memory;
#[cfg(test)]
mod memory_tests;
mod oom;
mod overlap;
#[cfg(test)]
mod overlap_tests;
mod queue;
#[cfg(test)]
mod queue_tests;
mod readiness;
mod reason;
#[cfg(test)]
mod reason_tests;
mod record;
mod schedule;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod shutdown_tests;
#[cfg(test)]
mod slot_tests;
mod state;
mod table;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
mod timers;
mod transitions;
#[cfg(test)]
mod types_tests;
#[cfg(test)]
mod wants_tests;

pub use adopt::Adopted;
pub use backoff::fmt_duration;
pub use config::{Checks, UnitConfig};
pub use hooks::{HookInfo, HookKind, Hooks};
pub use reason::{Reason, ReasonKind};
pub use record::MemoryLimits;
pub use schedule::{LastRun, ScheduleStatus};
pub use state::{Action, Exit, ExitStatus, State, UnitId, UnitStatus};

use crate::unit::RestartPolicy;
use queue::{Dependents, TimerQueue, UnitSet};
use record::Record;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use table::Command;
use timers::Timer;

/// SIGKILL's number; Linux and every other Unix agree on it.
const SIGKILL: i32 = 9;

/// All units' state machines.
#[derive(Debug, Default)]
pub struct Supervisor {
    /// Indexed by [`UnitId`]. A removed unit's slot is vacant (an inert record, inactive,
    /// with nothing to its name) until [`Supervisor::add_unit`] reuses it, so reloads that
    /// remove and add units do not grow this without end.
    units: Vec<Record>,
    /// Vacant slots, reused last-freed first.
    free: Vec<UnitId>,
    /// Actions not yet taken by the daemon, oldest first: a spawn must follow the SIGKILL that
    /// cleans up the previous run's group, so order matters.
    actions: VecDeque<Action>,
    /// Once a shutdown began: when everything must be down. Stop timeouts end by then at the
    /// latest; at it, whatever still has a process gets SIGKILL.
    shutdown_deadline: Option<Instant>,
    /// The shutdown deadline passed and its SIGKILLs went out: it is no longer a deadline.
    shutdown_fired: bool,
    /// Every unit's next deadline, by time: `poll_timeout` and `handle_timeout` look at the due
    /// ones only, not at every unit.
    timer_queue: TimerQueue,
    /// The units held by their dependencies or with a stop signal waiting: all that `settle`
    /// looks at.
    unsettled: UnitSet,
    /// Who names each unit in `requires`, `after` or `wants`: the units a stop concerns.
    dependents: Dependents,
    /// The wall clock and when it was read, and when it was first given: see
    /// [`Supervisor::handle_wall_clock`].
    wall: schedule::WallClock,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// Adds a unit in state `inactive` (since `now`) with its whole `config`; returns its id: a
    /// vacant slot's (see [`Supervisor::remove_unit`]), else the next one (ids are dense,
    /// from 0). Dependencies name ids already added; add the others with
    /// [`Supervisor::update_unit`] once they have ids.
    pub fn add_unit(&mut self, now: Instant, config: UnitConfig) -> UnitId {
        let deps: Vec<UnitId> = dependencies(&config).collect();
        let record = Record::new(now, config);
        let id = match self.free.pop() {
            Some(id) => {
                self.units[id] = record;
                id
            }
            None => {
                self.units.push(record);
                self.units.len() - 1
            }
        };
        self.dependents.add(id, deps);
        self.sync(id);
        id
    }

    /// Replaces the whole config of unit `id` (a reload). It applies from the next decision
    /// on: a running backoff timer or stop deadline keeps its time, checks apply from the next
    /// run, and a unit that no longer has a start limit forgets its start history.
    pub fn update_unit(&mut self, id: UnitId, config: UnitConfig) {
        let Some(unit) = self.units.get_mut(id) else {
            debug_assert!(false, "unknown unit {id}");
            return;
        };
        if config.restart.limit.is_none() {
            unit.start_history.clear();
        }
        if config.memory == MemoryLimits::default() {
            unit.over_limit = 0;
        }
        let old = std::mem::replace(&mut unit.config, config);
        self.dependents.remove(id, dependencies(&old));
        self.dependents
            .add(id, dependencies(&self.units[id].config));
    }

    /// The config of unit `id`, as last added or updated.
    ///
    /// # Panics
    ///
    /// If `id` was not returned by [`Supervisor::add_unit`].
    pub fn config(&self, id: UnitId) -> &UnitConfig {
        &self.units[id].config
    }

    /// Frees the slot of a unit that is gone from the unit files, once it is down (`inactive`
    /// or `failed`, no process): its record is dropped and `id` may be handed out again by
    /// [`Supervisor::add_unit`], so the caller must forget it. Returns false (and changes
    /// nothing) while the unit still has a process or a pending start, or for a vacant slot.
    pub fn remove_unit(&mut self, now: Instant, id: UnitId) -> bool {
        let Some(unit) = self.units.get(id) else {
            return false;
        };
        let down = matches!(unit.state, State::Inactive | State::Failed) && unit.pid.is_none();
        if !down || self.free.contains(&id) {
            return false;
        }
        let old = std::mem::replace(&mut self.units[id], Record::new(now, UnitConfig::named("")));
        self.dependents.remove(id, dependencies(&old.config));
        self.free.push(id);
        self.sync(id);
        // No live unit may keep the id in its dependencies: the slot may be someone else's.
        for dependent in self.dependents.take(id) {
            let config = &mut self.units[dependent].config;
            config.requires.retain(|&r| r != id);
            config.after.retain(|&a| a != id);
            config.wants.retain(|&w| w != id);
        }
        true
    }

    /// Operator (or boot) asks for the unit to run. What that does in each state: the table
    /// above ([`table::COMMANDS`]).
    pub fn handle_start(&mut self, now: Instant, id: UnitId, reason: impl Into<Reason>) {
        self.command(now, id, Command::Start, reason.into());
    }

    /// Operator (or shutdown) asks for the unit to stop.
    pub fn handle_stop(&mut self, now: Instant, id: UnitId, reason: impl Into<Reason>) {
        self.command(now, id, Command::Stop, reason.into());
    }

    /// Operator asks for stop-then-start.
    pub fn handle_restart(&mut self, now: Instant, id: UnitId, reason: impl Into<Reason>) {
        let reason = reason.into();
        if self.overlap_restart_published(now, id, &reason) {
            return;
        }
        self.command(now, id, Command::Restart, reason);
    }

    /// The daemon performed `Action::Spawn` and the process runs as `pid` (its own group leader).
    ///
    /// Without a readiness check, the unit is running (and ready) at once; with one, it stays
    /// `starting` until [`Supervisor::handle_ready`] or its ready timeout. The reason stays the
    /// one the start gave ("started by operator", "restarted (exited with code 1)").
    pub fn handle_spawned(&mut self, now: Instant, id: UnitId, pid: u32) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.state != State::Starting || unit.pid.is_some() {
                debug_assert!(false, "spawned {pid} for unit {id} in {}", unit.state);
                return;
            }
            unit.pid = Some(pid);
            unit.spawned_at = Some(now);
            unit.start_step = match unit.config.kind {
                crate::unit::UnitType::Forking => kinds::StartStep::Command,
                _ => kinds::StartStep::Main,
            };
            if let Some(reason) = unit.pending_stop.take() {
                // Never shown as running: a waiter for "running" must not see a doomed run.
                let then_start = unit.then_start.take();
                sup.begin_stop(now, id, reason);
                sup.units[id].then_start = then_start;
            } else if unit.config.checks.ready || unit.waits_after_spawn() {
                unit.timers.set(
                    Timer::Ready,
                    now.checked_add(unit.config.checks.ready_timeout),
                );
            } else {
                let reason = std::mem::take(&mut unit.reason);
                sup.become_ready(now, id, reason);
            }
        });
        self.overlap_progress(now, id);
        self.settle(now);
    }

    /// The daemon could not spawn (exec failed, bad user, ...): counts as a failed start.
    ///
    /// It is a crash for the backoff (the consecutive counter grows) and a failure for the
    /// policy: `on-failure` and `always` retry, `never` goes to `failed`. If a stop was pending,
    /// the unit simply becomes inactive (or, for a pending restart, is spawned again).
    pub fn handle_spawn_failed(&mut self, now: Instant, id: UnitId, error: &str) {
        if self.overlap_spawn_failed(now, id, error) {
            return;
        }
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.state != State::Starting || unit.pid.is_some() {
                debug_assert!(false, "spawn failure for unit {id} in {}", unit.state);
                return;
            }
            let reason = Reason::new(ReasonKind::SpawnFailed, format!("spawn failed: {error}"));
            unit.last_exit = Some(Exit::new(None, now, reason.clone()));
            if let Some(stop) = unit.pending_stop.take() {
                sup.finish_stop(now, id, stop);
            } else if unit.config.restart.policy == RestartPolicy::Never {
                unit.set_state(now, State::Failed, reason);
            } else {
                sup.schedule_restart(now, id, true);
            }
        });
        self.settle(now);
    }

    /// The unit's main process was reaped.
    ///
    /// Whatever the state, the whole process group then gets SIGKILL: the main process is gone,
    /// and children it left in its group (a shell's background jobs, a worker pool) would
    /// otherwise outlive the unit and hold its port or files. The group id is the dead leader's
    /// pid; the kernel does not reuse a pid while a group with that id has members, and the
    /// daemon ignores ESRCH for an empty group.
    pub fn handle_exit(&mut self, now: Instant, id: UnitId, status: ExitStatus) {
        // A oneshot's exit 0, a forking unit's start command's: the end of a start.
        if self.exit_of_kind(now, id, status) {
            return;
        }
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            let Some(pid) = unit.pid.take() else {
                // No process of ours: a late or duplicate report; nothing to update.
                return;
            };
            unit.paused = None;
            unit.status_text = None;
            let uptime = unit
                .spawned_at
                .take()
                .map(|at| now.saturating_duration_since(at));
            unit.timers.clear();
            sup.forget_hook(id);
            sup.actions.push_back(Action::Signal {
                unit: id,
                pgid: pid,
                signal: SIGKILL,
            });
            sup.record_run(now, id, uptime, status);
            let unit = &mut sup.units[id];
            if unit.state == State::Stopping {
                let stop = unit.stop.take();
                let escalated = stop.as_ref().is_some_and(|stop| stop.escalated);
                let reason = if escalated {
                    Reason::new(
                        ReasonKind::StopTimeout,
                        format!("{status} after stop timeout"),
                    )
                } else {
                    status.reason()
                };
                let (stop_reason, failure) = match stop {
                    Some(stop) => (stop.reason, stop.failure),
                    // Never: `stopping` always has its stop.
                    None => (reason.clone(), None),
                };
                if unit.then_start.is_none()
                    && let Some(failure) = failure
                {
                    // A stop svcd decided on (memory limit, health check, ready timeout): a
                    // failure for the policy, as a crash is.
                    let words = format!("{failure}; {reason}");
                    unit.last_exit = Some(Exit::new(Some(status), now, failure.reworded(words)));
                    if uptime.is_some_and(|up| up >= unit.config.restart.reset_after) {
                        unit.crashes = 0;
                    }
                    sup.after_failure(now, id, failure);
                    return;
                }
                unit.last_exit = Some(Exit::new(Some(status), now, reason));
                sup.finish_stop(now, id, stop_reason);
                return;
            }
            // Nobody asked for this exit: a crash, or a normal end, as the policy sees it.
            unit.last_exit = Some(Exit::new(Some(status), now, status.reason()));
            if unit.config.schedule.is_some() {
                sup.scheduled_exit(now, id, status);
                return;
            }
            if uptime.is_some_and(|up| up >= unit.config.restart.reset_after) {
                unit.crashes = 0;
            }
            let restart = match unit.config.restart.policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !status.is_success(),
                RestartPolicy::Never => false,
            };
            if restart {
                sup.schedule_restart(now, id, false);
            } else if status.is_success() {
                unit.set_state(now, State::Inactive, status.reason());
            } else {
                let words = format!("{status}; restart policy is {}", unit.config.restart.policy);
                unit.set_state(now, State::Failed, Reason::new(status.kind(), words));
            }
            sup.stop_dependents(now, id, &status.to_string());
        });
        self.settle(now);
    }

    /// svcd is going down: stop every unit in reverse dependency order (as
    /// [`Supervisor::handle_stop_all`]) within `timeout` in all. The stop timeouts along a
    /// dependency chain would add up (three units of 10 s outlast `docker stop`'s grace), so
    /// none runs past the shutdown deadline, and when it comes every unit that still has a
    /// process gets SIGKILL, also those whose stop signal still waited for their dependents.
    /// A second call keeps the first deadline.
    pub fn handle_shutdown(&mut self, now: Instant, reason: &str, timeout: Duration) {
        if self.shutdown_deadline.is_none() && !self.shutdown_fired {
            // Too far to represent: as good as no deadline.
            self.shutdown_deadline = now.checked_add(timeout);
        }
        self.handle_stop_all(now, Reason::new(ReasonKind::Shutdown, reason));
    }

    /// The shutdown deadline, while it is still to come (for the daemon's own last steps).
    pub fn shutdown_deadline(&self) -> Option<Instant> {
        self.shutdown_deadline
    }

    /// The unit's main process was stopped by `signal` (`Some`: SIGSTOP, SIGTSTP, ...) or
    /// continued (`None`). Nothing else changes: the state stays, and a stop still works (the
    /// stop signal waits in the kernel, SIGKILL does not).
    pub fn handle_paused(&mut self, _now: Instant, id: UnitId, signal: Option<i32>) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.pid.is_some() {
                unit.paused = signal;
            }
        });
    }

    /// The ready check of the unit's current run does not pass for a reason worth showing
    /// (`why`: its port is another process's). The unit stays `starting`; its reason says why,
    /// and so does the ready timeout's if it comes to that.
    pub fn handle_not_ready(&mut self, _now: Instant, id: UnitId, why: &str) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.state == State::Starting && unit.pid.is_some() {
                unit.ready_note = Some(why.to_string());
            }
        });
    }

    /// Adds what the daemon found out about the unit's last exit (`note`, e.g. who holds its
    /// port) to that exit's reason, and to the state's reason where that names the exit.
    pub fn note_last_exit(&mut self, id: UnitId, note: &str) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            let Some(exit) = &mut unit.last_exit else {
                return;
            };
            let before = exit.reason.clone();
            exit.reason = format!("{before}; {note}");
            if unit.reason.text.contains(&before) {
                unit.reason.text = unit.reason.text.replacen(&before, &exit.reason, 1);
            }
        });
    }

    /// Time has reached `now`: fire every deadline that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.shutdown_fired && self.shutdown_deadline.is_some_and(|at| at <= now) {
            self.shutdown_fired = true;
            self.kill_everything(now);
        }
        // Earliest first; the due units only, however many idle ones there are.
        while let Some(id) = self.timer_queue.first_due(now) {
            // One timer per round: what the first one does (a stop, a spawn) may disarm the
            // others, as their deadlines belong to the state it left.
            while let Some(timer) = self.units[id].timers.take_due(now) {
                self.publishing(id, |sup| sup.fire(now, id, timer));
            }
            // Nothing of the unit is due now: its entry moves on (or goes), also if the queue
            // was behind.
            self.sync(id);
        }
        self.settle(now);
    }

    /// Timer `timer` of unit `id` is due. Each kind only means something in its state (with a
    /// process); anywhere else it is a leftover and does nothing.
    fn fire(&mut self, now: Instant, id: UnitId, timer: Timer) {
        // A oneshot's or forking unit's start has its own words (and maybe no process).
        if timer == Timer::Ready
            && self.units[id].state == State::Starting
            && self.kind_timeout(now, id)
        {
            return;
        }
        let unit = &mut self.units[id];
        match (timer, unit.state, unit.pid) {
            (Timer::Restart, State::Backoff, _) => self.auto_spawn(now, id),
            (Timer::Schedule, _, _) => self.fire_schedule(now, id),
            (Timer::Ready, State::Starting, Some(_)) => {
                let limit = fmt_duration(unit.config.checks.ready_timeout);
                let words = match unit.ready_note.take() {
                    Some(note) => format!("not ready within {limit}: {note}"),
                    None => format!("not ready within {limit}"),
                };
                let reason = Reason::new(ReasonKind::ReadyTimeout, words);
                if !self.overlap_not_ready(now, id, &reason) {
                    self.fail_stop(now, id, reason);
                }
            }
            (Timer::OverlapKill, _, _) => self.kill_old(now, id),
            (Timer::Watchdog, State::Running, Some(_)) => {
                let limit = unit
                    .config
                    .checks
                    .watchdog
                    .map(fmt_duration)
                    .unwrap_or_default();
                let words = format!("watchdog: no WATCHDOG=1 within {limit}");
                self.fail_stop(now, id, Reason::new(ReasonKind::Watchdog, words));
            }
            (Timer::Hook, _, _) => self.hook_timeout(now, id),
            (Timer::Health, State::Running, Some(_)) => {
                // Re-armed by the verdict: checks never overlap, as the interval is between
                // the end of one and the start of the next.
                self.actions.push_back(Action::CheckHealth { unit: id });
            }
            (Timer::StopKill, State::Stopping, Some(pid)) => {
                // Keep waiting for the exit without a new deadline: SIGKILL cannot be caught,
                // and a process stuck in the kernel is not helped by retrying.
                if let Some(stop) = &mut unit.stop {
                    stop.escalated = true;
                }
                self.actions.push_back(Action::Signal {
                    unit: id,
                    pgid: pid,
                    signal: SIGKILL,
                });
            }
            _ => {}
        }
    }

    /// The next action for the daemon to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest pending deadline, if any: the first of the timer queue, O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        debug_assert_eq!(
            self.timer_queue.first(),
            self.units
                .iter()
                .filter_map(|unit| unit.timers.next())
                .min(),
            "a timer was armed or disarmed outside `publishing` without `sync`"
        );
        let shutdown = self.shutdown_deadline.filter(|_| !self.shutdown_fired);
        self.timer_queue.first().into_iter().chain(shutdown).min()
    }

    /// What `svc status` shows of a unit.
    ///
    /// # Panics
    ///
    /// If `id` was not returned by [`Supervisor::add_unit`].
    pub fn status(&self, id: UnitId) -> UnitStatus {
        self.units[id].status()
    }

    /// Number of slots: the units, and the vacant slots of removed ones.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unit's name, as in its config.
    pub fn name(&self, id: UnitId) -> &str {
        &self.units[id].config.name
    }

    /// The id of the first unit added as `name` and not removed. A unit removed by a reload
    /// keeps its id until it has stopped, so after a reload that removed and re-added a name
    /// this may be the old unit's: the daemon resolves names through its own listing instead.
    pub fn find(&self, name: &str) -> Option<UnitId> {
        // A vacant slot's name is empty, and no unit's is.
        if name.is_empty() {
            return None;
        }
        self.units.iter().position(|unit| unit.config.name == name)
    }

    /// Runs `change` on unit `id` and queues one `Publish` if its visible status differs
    /// afterwards. Comparing snapshots keeps every handler honest without each remembering to
    /// publish, and never publishes a non-change.
    fn publishing(&mut self, id: UnitId, change: impl FnOnce(&mut Self)) {
        let Some(unit) = self.units.get(id) else {
            debug_assert!(false, "unknown unit {id}");
            return;
        };
        let before = unit.status();
        change(self);
        if !self.units[id].retiring.is_empty() {
            // Whatever the change cleared with the unit's timers, the old runs of overlapping
            // restarts keep their SIGKILL deadlines.
            self.arm_old_kill(id);
        }
        self.sync(id);
        if self.units[id].status() != before {
            self.actions.push_back(Action::Publish { unit: id });
        }
    }

    /// Brings the indexes of unit `id` up to date with its record: its next deadline in the
    /// timer queue, and whether `settle` must look at it. [`Supervisor::publishing`] does this
    /// after every handler; a change outside it must call this itself.
    fn sync(&mut self, id: UnitId) {
        let Some(unit) = self.units.get(id) else {
            return;
        };
        self.timer_queue.set(id, unit.timers.next());
        if unit.hold.is_some() || unit.is_signal_pending() {
            self.unsettled.insert(id);
        } else {
            self.unsettled.remove(&id);
        }
    }
}

/// The units `config` names as dependencies, of every kind.
fn dependencies(config: &UnitConfig) -> impl Iterator<Item = UnitId> + '_ {
    config
        .requires
        .iter()
        .chain(&config.after)
        .chain(&config.wants)
        .copied()
}
