//! The command table: what `start`, `stop` and `restart` do in each phase of a unit, kept once,
//! as s6-supervise keeps its `actions[state][event]`.
//!
//! [`Supervisor::command`] looks the outcome up here and carries it out; the table in the
//! module documentation of [`super`] is generated from [`COMMANDS`] (a test checks it is), and
//! another test walks every (phase, command) pair on the fake clock against it.

use super::record::Record;
use super::{Reason, State, Supervisor, UnitId};
use std::time::Instant;

/// Where a unit is, as far as commands care: [`State`] with `starting` split by what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Inactive,
    Failed,
    Backoff,
    /// `starting`, held by its dependencies: no process, no spawn asked for yet.
    Held,
    /// `starting`, the spawn asked for and not reported yet.
    Spawning,
    /// `starting`, the spawn not reported yet, and a stop already waits for it.
    SpawningDoomed,
    /// `starting` with a process, not ready yet.
    Starting,
    Running,
    Stopping,
    /// `exited`: a oneshot that finished and remains.
    Exited,
}

/// An operator's (or svcd's) command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Start,
    Stop,
    Restart,
}

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing at all.
    Nothing,
    /// An operator spawn: timers cancelled, backoff and start-limit history forgotten.
    Spawn,
    /// Straight to `inactive` (no process to stop), timers and intents dropped.
    ToInactive,
    /// Nothing to signal yet: stop as soon as the spawn is reported; `then_start`: spawn again
    /// after that stop.
    StopWhenSpawned { then_start: bool },
    /// → `stopping` (dependents first); `then_start`: spawn again after the exit.
    Stop { then_start: bool },
    /// Already stopping: the signals sent stand; a start that waited is forgotten.
    KeepStopping,
    /// A stop is under way or pending: spawn again once it is done.
    StartAfterStop,
}

use Outcome::*;

/// Every phase's row: the outcome of start, stop and restart.
pub(super) const COMMANDS: [(Phase, [Outcome; 3]); 10] = [
    (Phase::Inactive, [Spawn, Nothing, Spawn]),
    (Phase::Failed, [Spawn, ToInactive, Spawn]),
    (Phase::Backoff, [Spawn, ToInactive, Spawn]),
    (Phase::Held, [Nothing, ToInactive, Spawn]),
    (
        Phase::Spawning,
        [
            Nothing,
            StopWhenSpawned { then_start: false },
            StopWhenSpawned { then_start: true },
        ],
    ),
    (
        Phase::SpawningDoomed,
        [
            StartAfterStop,
            StopWhenSpawned { then_start: false },
            StopWhenSpawned { then_start: true },
        ],
    ),
    (
        Phase::Starting,
        [
            Nothing,
            Stop { then_start: false },
            Stop { then_start: true },
        ],
    ),
    (
        Phase::Running,
        [
            Nothing,
            Stop { then_start: false },
            Stop { then_start: true },
        ],
    ),
    (
        Phase::Stopping,
        [StartAfterStop, KeepStopping, StartAfterStop],
    ),
    (Phase::Exited, [Nothing, ToInactive, Spawn]),
];

/// The outcome of `command` in `phase`.
pub(super) fn outcome(phase: Phase, command: Command) -> Outcome {
    let column = match command {
        Command::Start => 0,
        Command::Stop => 1,
        Command::Restart => 2,
    };
    COMMANDS
        .iter()
        .find(|(p, _)| *p == phase)
        .map_or(Nothing, |(_, row)| row[column])
}

impl Record {
    /// The unit's [`Phase`].
    pub(super) fn phase(&self) -> Phase {
        match self.state {
            State::Inactive => Phase::Inactive,
            State::Failed => Phase::Failed,
            State::Backoff => Phase::Backoff,
            State::Starting if self.hold.is_some() => Phase::Held,
            State::Starting if self.pid.is_none() && self.pending_stop.is_some() => {
                Phase::SpawningDoomed
            }
            State::Starting if self.pid.is_none() => Phase::Spawning,
            State::Starting => Phase::Starting,
            State::Running => Phase::Running,
            State::Stopping => Phase::Stopping,
            State::Exited => Phase::Exited,
        }
    }
}

impl Supervisor {
    /// Carries out `command` on unit `id`, as [`COMMANDS`] says.
    pub(super) fn command(&mut self, now: Instant, id: UnitId, command: Command, reason: Reason) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            match outcome(unit.phase(), command) {
                Nothing => {}
                Spawn => sup.operator_spawn(now, id, reason),
                ToInactive => {
                    // An `exited` oneshot was up: what requires it goes down with it.
                    let was_up = unit.state == State::Exited;
                    unit.timers.clear();
                    unit.clear_intents();
                    unit.set_state(now, State::Inactive, reason.clone());
                    if was_up {
                        sup.stop_dependents(now, id, &reason.text);
                    }
                }
                StopWhenSpawned { then_start } => {
                    unit.pending_stop = Some(reason.clone());
                    unit.then_start = then_start.then_some(reason);
                    sup.kill_pre_hook(id);
                }
                Stop { then_start } => {
                    sup.request_stop(now, id, reason.clone());
                    if then_start {
                        sup.units[id].then_start = Some(reason);
                    }
                }
                KeepStopping => {
                    unit.then_start = None;
                    if let Some(stop) = &mut unit.stop {
                        stop.failure = None;
                        stop.reason = reason.clone();
                    }
                    unit.reason = reason;
                }
                StartAfterStop => {
                    unit.then_start = Some(reason);
                }
            }
        });
        self.settle(now);
    }
}

/// The table as the module documentation shows it (markdown).
#[cfg(test)]
pub(super) fn markdown() -> String {
    fn phase(phase: Phase) -> &'static str {
        match phase {
            Phase::Inactive => "inactive",
            Phase::Failed => "failed",
            Phase::Backoff => "backoff",
            Phase::Held => "starting, held by its dependencies",
            Phase::Spawning => "starting, spawn not reported yet",
            Phase::SpawningDoomed => "the same, a stop pending",
            Phase::Starting => "starting (a process, not ready)",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Exited => "exited",
        }
    }
    fn cell(outcome: Outcome) -> &'static str {
        match outcome {
            Nothing => "·",
            Spawn => "spawn",
            ToInactive => "→ inactive",
            StopWhenSpawned { then_start: false } => "stop once spawned",
            StopWhenSpawned { then_start: true } => "stop once spawned, then spawn",
            Stop { then_start: false } => "→ stopping",
            Stop { then_start: true } => "→ stopping, then spawn",
            KeepStopping => "keep stopping, forget start",
            StartAfterStop => "spawn after the stop",
        }
    }
    let mut text = String::from("| state | start | stop | restart |\n| --- | --- | --- | --- |\n");
    for (p, row) in COMMANDS {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            phase(p),
            cell(row[0]),
            cell(row[1]),
            cell(row[2])
        ));
    }
    text
}
