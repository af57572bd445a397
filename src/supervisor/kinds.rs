//! How a unit's start completes, by its `type`: the oneshot and forking paths of the core.
//!
//! - **simple** (and **notify**, which is simple with `ready.notify`): started once spawned, or
//!   once its ready check passes. Nothing here.
//! - **oneshot**: `starting` while its process runs; exit 0 is its readiness. Then `exited`
//!   (with `remain`), which satisfies `requires` until the unit is stopped, or `inactive` with
//!   the reason kind `finished`, which satisfies the `requires` of the units that waited for
//!   this run (they start now and keep running: the one-shot did its job). A failed run is a
//!   crash for the restart policy, and `ready.timeout` (if given) bounds the run.
//! - **forking**: `starting` while the start command runs, whose exit 0 is no exit of the unit:
//!   the group is left alone (the daemon lives in it, or left it) and the daemon is asked for
//!   the main pid ([`Action::FindMainPid`]), which it reads from `pidfile` or finds among the
//!   unit's processes. [`Supervisor::handle_main_pid`] then makes that process the unit's main
//!   process: its exit is the unit's, stop signals go to it. `ready.timeout` bounds the whole
//!   start, command and search included.

use super::backoff::fmt_duration;
use super::record::Record;
use super::state::Exit;
use super::{Action, ExitStatus, Reason, ReasonKind, SIGKILL, State, Supervisor, UnitId};
use crate::unit::{RestartPolicy, UnitType};
use std::time::Instant;

/// Where a start stands, for the types whose start outlives the spawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum StartStep {
    /// The unit's pid (if any) is its main process.
    #[default]
    Main,
    /// Forking: the pid is the start command, which is to daemonize and exit 0.
    Command,
    /// Forking: the start command (this pid, its group's id) exited 0; the daemon looks for
    /// the main process.
    FindingMain(u32),
}

impl Record {
    /// Whether this unit counts as there for the units that `require` it: running (and
    /// ready), a oneshot that finished and remains (`exited`), or one that finished without
    /// remaining and was not stopped or started since.
    pub(super) fn satisfies_requires(&self) -> bool {
        match self.state {
            State::Running | State::Exited => true,
            State::Inactive => self.reason.kind == ReasonKind::Finished,
            _ => false,
        }
    }

    /// Whether a ready verdict counts now: never for a oneshot (its exit is its readiness),
    /// for a forking unit once its main process is known (the start command is not the
    /// daemon).
    pub(super) fn counts_ready(&self) -> bool {
        match self.config.kind {
            UnitType::Oneshot => false,
            UnitType::Forking => self.start_step == StartStep::Main,
            UnitType::Simple | UnitType::Notify => true,
        }
    }

    /// Whether the unit stays `starting` after its spawn whatever its checks: a oneshot until
    /// it exits, a forking unit until its main process is known.
    pub(super) fn waits_after_spawn(&self) -> bool {
        matches!(self.config.kind, UnitType::Oneshot | UnitType::Forking)
    }
}

impl Supervisor {
    /// The daemon found the main process of a forking unit whose start command exited 0
    /// (asked by [`Action::FindMainPid`]): `pid`, a process of the unit that svcd reaps. The
    /// unit is running from now (or once its ready check passes); the exit of `pid` is its
    /// exit. Ignored unless the unit still waits for it.
    pub fn handle_main_pid(&mut self, now: Instant, id: UnitId, pid: u32) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            let finding = matches!(unit.start_step, StartStep::FindingMain(_));
            if unit.state != State::Starting || unit.pid.is_some() || !finding {
                return;
            }
            unit.start_step = StartStep::Main;
            unit.pid = Some(pid);
            unit.ready_note = None;
            if let Some(reason) = unit.pending_stop.take() {
                let then_start = unit.then_start.take();
                sup.begin_stop(now, id, reason);
                sup.units[id].then_start = then_start;
            } else if !unit.config.checks.ready {
                let reason = std::mem::take(&mut unit.reason);
                sup.become_ready(now, id, reason);
            }
            // Else its ready check runs now; the deadline armed at the spawn still holds.
        });
        self.settle(now);
    }

    /// The daemon cannot find the main process of a forking unit (`why`: "pidfile names pid
    /// 12, which is not a process of the unit", "cannot tell the main process; set pidfile"):
    /// a failed start, as a spawn failure is. Ignored unless the unit still waits for it.
    pub fn handle_main_pid_failed(&mut self, now: Instant, id: UnitId, why: &str) {
        let reason = Reason::new(ReasonKind::MainPid, why);
        self.publishing(id, |sup| sup.main_pid_failed(now, id, reason));
        self.settle(now);
    }

    /// Why the main process of a forking unit is not found yet (the pidfile is not written,
    /// the pid it names is not svcd's child yet): shown while `starting`, and in the timeout's
    /// reason if it comes to that.
    pub fn handle_main_pid_note(&mut self, _now: Instant, id: UnitId, why: &str) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.state == State::Starting && matches!(unit.start_step, StartStep::FindingMain(_))
            {
                unit.ready_note = Some(why.to_string());
            }
        });
    }

    /// `handle_exit` of a oneshot or forking unit whose start ends with this exit; false
    /// (nothing done) for every other exit, which the common path handles.
    pub(super) fn exit_of_kind(&mut self, now: Instant, id: UnitId, status: ExitStatus) -> bool {
        let unit = &self.units[id];
        let Some(pid) = unit.pid else {
            return false;
        };
        if unit.state != State::Starting || !status.is_success() {
            return false;
        }
        match (unit.config.kind, unit.start_step) {
            (UnitType::Oneshot, _) => self.publishing(id, |sup| sup.finish_oneshot(now, id, pid)),
            (UnitType::Forking, StartStep::Command) => self.publishing(id, |sup| {
                let unit = &mut sup.units[id];
                // The group is the daemon's too: no SIGKILL. The start's deadline still runs.
                unit.pid = None;
                unit.start_step = StartStep::FindingMain(pid);
                sup.actions.push_back(Action::FindMainPid {
                    unit: id,
                    command: pid,
                });
            }),
            _ => return false,
        }
        self.settle(now);
        true
    }

    /// A oneshot exited 0: `exited` with `remain`, else `inactive` (finished). What it left in
    /// its group ends with it, as after any exit.
    fn finish_oneshot(&mut self, now: Instant, id: UnitId, pid: u32) {
        self.kill_group(id, pid);
        let unit = &mut self.units[id];
        unit.pid = None;
        unit.spawned_at = None;
        unit.paused = None;
        unit.status_text = None;
        unit.ready_note = None;
        unit.crashes = 0;
        unit.timers.clear();
        let status = ExitStatus::Code(0);
        let reason = Reason::new(ReasonKind::Finished, format!("finished ({status})"));
        unit.last_exit = Some(Exit::new(Some(status), now, reason.clone()));
        let state = if unit.config.remain {
            State::Exited
        } else {
            State::Inactive
        };
        unit.set_state(now, state, reason);
    }

    /// The start's deadline (`ready.timeout`) of a oneshot or a forking unit passed before the
    /// start completed: a failed start. Returns false for the other units (their ready
    /// timeout is the common one).
    pub(super) fn kind_timeout(&mut self, now: Instant, id: UnitId) -> bool {
        let unit = &mut self.units[id];
        let limit = fmt_duration(unit.config.checks.ready_timeout);
        let words = match (unit.config.kind, unit.start_step) {
            (UnitType::Oneshot, _) => format!("did not finish within {limit}"),
            (UnitType::Forking, StartStep::Command) => {
                format!("the start command did not exit within {limit}")
            }
            (UnitType::Forking, StartStep::FindingMain(_)) => match unit.ready_note.take() {
                Some(note) => format!("no main process within {limit}: {note}"),
                None => format!("no main process within {limit}"),
            },
            _ => return false,
        };
        let reason = Reason::new(ReasonKind::ReadyTimeout, words);
        if unit.pid.is_some() {
            self.fail_stop(now, id, reason);
        } else {
            self.main_pid_failed(now, id, reason);
        }
        true
    }

    /// SIGKILL to what is left in group `pgid` of unit `id` (and to its processes outside it).
    fn kill_group(&mut self, id: UnitId, pgid: u32) {
        let signal = SIGKILL;
        self.actions.push_back(Action::Signal {
            unit: id,
            pgid,
            signal,
        });
    }

    /// No main process for a forking unit: what its start command left is killed (its group,
    /// and the unit's orphans), and the start failed.
    fn main_pid_failed(&mut self, now: Instant, id: UnitId, reason: Reason) {
        let unit = &mut self.units[id];
        let StartStep::FindingMain(command) = unit.start_step else {
            return;
        };
        if unit.state != State::Starting || unit.pid.is_some() {
            return;
        }
        unit.start_step = StartStep::Main;
        unit.ready_note = None;
        unit.timers.clear();
        self.kill_group(id, command);
        let unit = &mut self.units[id];
        unit.last_exit = Some(Exit::new(None, now, reason.clone()));
        if let Some(stop) = unit.pending_stop.take() {
            self.finish_stop(now, id, stop);
        } else if unit.config.restart.policy == RestartPolicy::Never {
            let words = format!("{reason}; restart policy is never");
            unit.set_state(now, State::Failed, reason.reworded(words));
        } else {
            self.schedule_restart(now, id, true);
        }
    }
}
