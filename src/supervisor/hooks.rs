//! The commands a unit runs around its main process, in the core: `exec_start_pre` before the
//! spawn, `exec_start_post` once it is ready, `exec_stop` before the stop signal.
//!
//! One command runs at a time ([`super::Action::RunHook`]); the daemon reports its pid
//! ([`Supervisor::handle_hook_spawned`], or [`Supervisor::handle_hook_failed`] when it cannot
//! run) and its exit ([`Supervisor::handle_hook_exited`]); [`super::timers::Timer::Hook`] ends
//! one that takes too long (`ready.timeout` for each start hook; `stop.timeout` for the
//! `exec_stop` commands and the main process's exit after them, together).
//!
//! The states stay those of DESIGN.md:
//!
//! | hook | state | failure (non-zero, signal, cannot run, timeout) | a stop meanwhile |
//! | --- | --- | --- | --- |
//! | `exec_start_pre` | `starting`, no pid | a failed start: the restart policy | the hook is killed; once it is gone, `inactive` (or the restart's spawn) |
//! | `exec_start_post` | `starting`, main pid, not ready | svcd stops the unit: the restart policy | the hook is killed, the stop goes on |
//! | `exec_stop` | `stopping`; after them, the main process has what is left of `stop.timeout` to exit | the stop signal follows at once | (already stopping) |
//!
//! A command written with a leading `-` may fail (not time out) without consequence.
//! `exec_stop` runs only on the stop of a unit that got to `running` in its current run; when
//! the main process exits while a hook runs, the hook is killed.

use super::timers::Timer;
use super::{Action, Exit, ExitStatus, Reason, ReasonKind, SIGKILL, State, Supervisor, UnitId};
use crate::unit::{HookCommand, RestartPolicy};
use std::time::Instant;

/// Which list of commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    StartPre,
    StartPost,
    Stop,
}

impl HookKind {
    /// The key that lists them: `exec_start_pre`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::StartPre => "exec_start_pre",
            HookKind::StartPost => "exec_start_post",
            HookKind::Stop => "exec_stop",
        }
    }
}

/// What the core must know of one hook command: its words, for reasons, and whether its
/// failure counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInfo {
    pub shown: String,
    pub ignore_failure: bool,
}

/// A unit's hook commands, as the core sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub start_pre: Vec<HookInfo>,
    pub start_post: Vec<HookInfo>,
    pub stop: Vec<HookInfo>,
}

impl Hooks {
    pub fn from_unit(hooks: &crate::unit::HooksConfig) -> Hooks {
        let infos = |commands: &[HookCommand]| {
            commands
                .iter()
                .map(|c| HookInfo {
                    shown: c.shown(),
                    ignore_failure: c.ignore_failure,
                })
                .collect()
        };
        Hooks {
            start_pre: infos(&hooks.start_pre),
            start_post: infos(&hooks.start_post),
            stop: infos(&hooks.stop),
        }
    }

    fn list(&self, kind: HookKind) -> &[HookInfo] {
        match kind {
            HookKind::StartPre => &self.start_pre,
            HookKind::StartPost => &self.start_post,
            HookKind::Stop => &self.stop,
        }
    }
}

/// The hook command a unit runs now.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HookRun {
    pub kind: HookKind,
    pub index: usize,
    /// Its process (its own group leader), once the daemon reported it.
    pub pid: Option<u32>,
    /// Killed by svcd (a stop): its exit only finishes what the stop began.
    pub killed: bool,
    /// For `exec_start_post`: the start's words, the reason of `running` once they are done.
    pub start_reason: Option<Reason>,
}

/// How a hook command ended.
enum Outcome {
    Exited(ExitStatus),
    /// Could not run, or did not finish in time: a failure even for a `-` command.
    Error(String, Option<ExitStatus>),
}

impl Supervisor {
    /// The daemon runs the hook command of [`Action::RunHook`] as `pid` (its own group leader).
    pub fn handle_hook_spawned(&mut self, _now: Instant, id: UnitId, pid: u32) {
        let Some(unit) = self.units.get_mut(id) else {
            return;
        };
        let Some(run) = &mut unit.hook else {
            // Forgotten meanwhile: nobody waits for it.
            self.actions.push_back(Action::KillHook {
                unit: id,
                pgid: pid,
            });
            return;
        };
        run.pid = Some(pid);
        if run.kind == HookKind::StartPre && unit.pending_stop.is_some() {
            run.killed = true;
            self.actions.push_back(Action::KillHook {
                unit: id,
                pgid: pid,
            });
        }
    }

    /// The hook command of [`Action::RunHook`] could not be run (`error`): it failed.
    pub fn handle_hook_failed(&mut self, now: Instant, id: UnitId, error: &str) {
        if self.units.get(id).is_some_and(|u| u.hook.is_some()) {
            let outcome = Outcome::Error(format!("cannot run: {error}"), None);
            self.publishing(id, |sup| sup.hook_done(now, id, outcome));
            self.settle(now);
        }
    }

    /// A hook command's process `pid` was reaped. An exit of a hook the core no longer waits
    /// for (killed and forgotten) changes nothing.
    pub fn handle_hook_exited(&mut self, now: Instant, id: UnitId, pid: u32, status: ExitStatus) {
        let ours = self
            .units
            .get(id)
            .and_then(|u| u.hook.as_ref())
            .is_some_and(|run| run.pid == Some(pid));
        if ours {
            self.publishing(id, |sup| sup.hook_done(now, id, Outcome::Exited(status)));
            self.settle(now);
        }
    }

    /// The hook command unit `id` runs now as `pid`, if any: its list and index.
    pub fn running_hook(&self, id: UnitId, pid: u32) -> Option<(HookKind, usize)> {
        let run = self.units.get(id)?.hook.as_ref()?;
        (run.pid == Some(pid)).then_some((run.kind, run.index))
    }

    /// Instead of [`Action::Spawn`]: the first `exec_start_pre` command, if there is one.
    pub(super) fn start_spawn(&mut self, now: Instant, id: UnitId) {
        if self.units[id].config.hooks.start_pre.is_empty() {
            self.actions.push_back(Action::Spawn { unit: id });
        } else {
            self.run_hook(now, id, HookKind::StartPre, 0, None);
        }
    }

    /// At `become_ready`: runs the `exec_start_post` commands first, if there are any and they
    /// have not run in this run yet; true if the unit stays `starting` for them (`reason` is
    /// kept as the reason of `running` once they are done).
    pub(super) fn start_post_hooks(&mut self, now: Instant, id: UnitId, reason: &Reason) -> bool {
        let unit = &mut self.units[id];
        if unit.hook.is_some() {
            // A second verdict while they run: nothing new.
            unit.reason = reason.clone();
            return true;
        }
        if unit.post_done || unit.config.hooks.start_post.is_empty() {
            return false;
        }
        unit.timers.stop(Timer::Ready);
        unit.reason = reason.clone();
        self.run_hook(now, id, HookKind::StartPost, 0, Some(reason.clone()));
        true
    }

    /// At the start of a stop with the main process alive: runs the `exec_stop` commands
    /// first, if the unit got to `running` in this run; true if the stop signal waits for them.
    pub(super) fn start_exec_stop(&mut self, now: Instant, id: UnitId) -> bool {
        let shutdown = self.shutdown_deadline;
        let unit = &mut self.units[id];
        let ready = std::mem::take(&mut unit.was_ready);
        let late = self.shutdown_fired || shutdown.is_some_and(|at| at <= now);
        if !ready || unit.config.hooks.stop.is_empty() || unit.config.stop.timeout.is_zero() || late
        {
            return false;
        }
        // One deadline for the commands and the exit they ask for; a shutdown's comes first.
        let at = now.checked_add(unit.config.stop.timeout);
        unit.exec_stop_until = match (at, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.run_hook(now, id, HookKind::Stop, 0, None);
        true
    }

    /// Kills the running hook command and forgets it: the run it belonged to is over.
    pub(super) fn forget_hook(&mut self, id: UnitId) {
        let unit = &mut self.units[id];
        if let Some(run) = unit.hook.take() {
            unit.timers.stop(Timer::Hook);
            if let Some(pgid) = run.pid.filter(|_| !run.killed) {
                self.actions.push_back(Action::KillHook { unit: id, pgid });
            }
        }
    }

    /// A stop while an `exec_start_pre` command runs: kill it; its exit finishes the stop.
    pub(super) fn kill_pre_hook(&mut self, id: UnitId) {
        let unit = &mut self.units[id];
        if let Some(run) = &mut unit.hook
            && run.kind == HookKind::StartPre
            && !run.killed
            && let Some(pgid) = run.pid
        {
            run.killed = true;
            self.actions.push_back(Action::KillHook { unit: id, pgid });
        }
    }

    /// [`Timer::Hook`] is due: the command took too long. It is killed, and counts as failed.
    /// After `exec_stop`, the main process did not exit in time: the stop signal follows.
    pub(super) fn hook_timeout(&mut self, now: Instant, id: UnitId) {
        let unit = &mut self.units[id];
        let Some(run) = &mut unit.hook else {
            if unit.exec_stop_until.is_some() && unit.state == State::Stopping {
                self.send_stop_signal(now, id);
            }
            return;
        };
        let limit = match run.kind {
            HookKind::Stop => unit.config.stop.timeout,
            _ => unit.config.checks.ready_timeout,
        };
        if let Some(pgid) = run.pid.filter(|_| !run.killed) {
            self.actions.push_back(Action::KillHook { unit: id, pgid });
        }
        run.pid = None;
        let words = format!(
            "did not finish within {}; killed",
            super::fmt_duration(limit)
        );
        let status = ExitStatus::Signal(SIGKILL);
        self.hook_done(now, id, Outcome::Error(words, Some(status)));
    }

    /// Asks the daemon to run command `index` of `kind`, with its deadline.
    fn run_hook(
        &mut self,
        now: Instant,
        id: UnitId,
        kind: HookKind,
        index: usize,
        start_reason: Option<Reason>,
    ) {
        let unit = &mut self.units[id];
        let at = match kind {
            HookKind::Stop => unit.exec_stop_until,
            _ => now.checked_add(unit.config.checks.ready_timeout),
        };
        unit.timers.set(Timer::Hook, at);
        unit.hook = Some(HookRun {
            kind,
            index,
            pid: None,
            killed: false,
            start_reason,
        });
        self.actions.push_back(Action::RunHook {
            unit: id,
            hook: kind,
            index,
        });
    }

    /// The running hook command ended (`outcome`): go on with the next, or with what follows
    /// the list, or fail.
    fn hook_done(&mut self, now: Instant, id: UnitId, outcome: Outcome) {
        let unit = &mut self.units[id];
        let Some(run) = unit.hook.take() else {
            return;
        };
        unit.timers.stop(Timer::Hook);
        // A reload may have changed the list while the command ran: its words are what is left
        // to show, and the run goes on with the new list.
        let list = unit.config.hooks.list(run.kind);
        let info = list.get(run.index);
        let shown = info.map_or("(no longer in the unit file)", |info| info.shown.as_str());
        let ignore_failure = info.is_some_and(|info| info.ignore_failure);
        let label = format!("{}[{}] {shown}", run.kind.as_str(), run.index);
        let failure = match &outcome {
            Outcome::Exited(status) if status.is_success() => None,
            Outcome::Exited(_) if ignore_failure => None,
            Outcome::Exited(status) => Some((format!("{label} {status}"), Some(*status))),
            Outcome::Error(words, status) => Some((format!("{label}: {words}"), *status)),
        };
        let more = run.index + 1 < list.len();
        match run.kind {
            HookKind::StartPre => {
                if unit.state != State::Starting || unit.pid.is_some() {
                    return;
                }
                if let Some(stop) = unit.pending_stop.take() {
                    self.finish_stop(now, id, stop);
                } else if let Some((words, status)) = failure {
                    self.pre_hook_failed(now, id, Reason::new(ReasonKind::Hook, words), status);
                } else if more {
                    self.run_hook(now, id, run.kind, run.index + 1, None);
                } else {
                    self.actions.push_back(Action::Spawn { unit: id });
                }
            }
            HookKind::StartPost => {
                if unit.state != State::Starting || unit.pid.is_none() {
                    return;
                }
                let start_reason = run.start_reason.clone().unwrap_or_default();
                if let Some((words, _)) = failure {
                    self.fail_stop(now, id, Reason::new(ReasonKind::Hook, words));
                } else if more {
                    self.run_hook(now, id, run.kind, run.index + 1, Some(start_reason));
                } else {
                    unit.post_done = true;
                    self.become_ready(now, id, start_reason);
                }
            }
            HookKind::Stop => {
                if unit.state != State::Stopping || unit.pid.is_none() {
                    return;
                }
                // A failed or late `exec_stop` leaves the stop to the signal, as systemd does;
                // after one that did its job (`nginx -s quit` only asks the master to quit),
                // the main process has until the deadline to exit by itself.
                if failure.is_some() {
                    self.send_stop_signal(now, id);
                } else if more {
                    self.run_hook(now, id, run.kind, run.index + 1, None);
                } else {
                    let until = unit.exec_stop_until;
                    unit.timers.set(Timer::Hook, until);
                }
            }
        }
    }

    /// An `exec_start_pre` command failed: a failed start, as a spawn failure is (the restart
    /// policy decides; `last_exit` is the command's).
    fn pre_hook_failed(
        &mut self,
        now: Instant,
        id: UnitId,
        reason: Reason,
        status: Option<ExitStatus>,
    ) {
        let unit = &mut self.units[id];
        unit.last_exit = Some(Exit::new(status, now, reason.clone()));
        if unit.config.restart.policy == RestartPolicy::Never {
            let words = format!("{reason}; restart policy is never");
            unit.set_state(now, State::Failed, reason.reworded(words));
        } else {
            self.schedule_restart(now, id, false);
        }
    }
}
