//! One unit's supervision record: its visible status plus the bookkeeping behind it.

use super::config::UnitConfig;
use super::kinds::StartStep;
use super::reason::{Reason, ReasonKind};
use super::state::{Exit, State, UnitStatus};
use super::timers::{Timer, Timers};
use std::collections::VecDeque;
use std::time::Instant;

/// Everything the core knows about one unit.
#[derive(Debug)]
pub(super) struct Record {
    /// The unit's settings, as last added or updated.
    pub config: UnitConfig,

    pub state: State,
    /// When `state` last changed.
    pub since: Instant,
    /// Why the unit is in `state`, shown by `status`.
    pub reason: Reason,
    /// The main process (its own group leader), while one exists.
    pub pid: Option<u32>,
    pub restarts: u32,
    pub starts: u64,
    pub last_exit: Option<Exit>,

    /// The unit's deadlines, one slot per kind (next start, ready timeout, watchdog, stop
    /// escalation); none armed for an idle unit, so it never wakes the daemon.
    pub timers: Timers,
    /// Consecutive crashes (exits the policy restarted, spawn failures): the exponent of the
    /// backoff. Reset by an operator start and by a run that lasted `reset_after`.
    pub crashes: u32,
    /// Times of recent spawns, only kept when the unit has a start limit.
    pub start_history: VecDeque<Instant>,
    /// When the last start was attempted (the spawn asked for): the throttle floor counts
    /// from it.
    pub last_start: Option<Instant>,
    /// When the current run began (`handle_spawned`), to measure uptime for `reset_after`.
    pub spawned_at: Option<Instant>,

    /// A stop arrived while starting and no pid existed yet, with its words: signal as soon as
    /// it is spawned.
    pub pending_stop: Option<Reason>,
    /// A start (or the start half of a restart) arrived while stopping, with its words (the
    /// reason of the new run): when the process exits, spawn again instead of going inactive.
    pub then_start: Option<Reason>,
    /// In `stopping`: the stop under way.
    pub stop: Option<Stop>,

    /// In `starting` without a process: waiting for `requires`/`after`/`wants` before the spawn.
    pub hold: Option<Hold>,

    /// sd_notify `RELOADING=1` until the next `READY=1`: running but not ready.
    pub reloading: bool,
    /// Consecutive memory samples of the current run over a limit.
    pub over_limit: u32,
    /// When the current run of samples over a limit began (`memory.grace` counts from it).
    pub over_since: Option<Instant>,
    /// Consecutive failed health checks of the current run.
    pub health_failed: u32,
    /// The unit's own words about itself: its last sd_notify `STATUS=` of the current run.
    pub status_text: Option<String>,
    /// The main process is stopped (SIGSTOP, SIGTSTP, ...) by this signal: it runs nothing,
    /// whatever the state says. Cleared when it is continued, and with the process.
    pub paused: Option<i32>,
    /// Why the ready check of the current run does not pass yet, when that is worth showing
    /// (another process holds the unit's port): shown in the reason while `starting`, and in
    /// the ready timeout's.
    pub ready_note: Option<String>,
    /// Oneshot and forking units: where their start stands (the pid is the main process, or
    /// a forking unit's start command, or the main process is being looked for).
    pub start_step: StartStep,

    /// The `exec_start_pre`, `exec_start_post` or `exec_stop` command running now.
    pub hook: Option<super::hooks::HookRun>,
    /// The `exec_start_post` commands of the current run have all run: ready means running.
    pub post_done: bool,
    /// The current run got to `running`: its stop runs `exec_stop` (once).
    pub was_ready: bool,
    /// In `stopping`, `exec_stop` ran or runs: by then the main process must have exited, or
    /// the stop signal follows.
    pub exec_stop_until: Option<Instant>,
    /// A scheduled unit's runs: what is due next, what ran last.
    pub sched: super::schedule::SchedState,
    /// `restart.overlap`: the old run, kept aside while the new one starts.
    pub overlap: Option<Overlap>,
    /// Old runs told to stop once their successor was ready, not reaped yet: (main pid, when
    /// its group gets SIGKILL). Back-to-back restarts may leave several.
    pub retiring: Vec<(u32, Option<Instant>)>,
    /// The `starts` count of the last overlapping restart that failed (the old run serves on):
    /// a waiter for that restart learns it failed.
    pub overlap_failed: Option<u64>,
}

/// The old run of an overlapping restart (see [`super::overlap`]).
#[derive(Debug)]
pub(super) struct Overlap {
    /// Its main process, leader of its own group.
    pub pid: u32,
    pub spawned_at: Option<Instant>,
    /// The unit's reason while it ran alone, for its status if it comes back.
    pub reason: Reason,
    /// The new run was not ready in time and is being stopped for it.
    pub failure: Option<Reason>,
}

/// A stop under way (the unit is `stopping`).
#[derive(Debug)]
pub(super) struct Stop {
    /// Its words: the reason of `inactive` once the process is gone.
    pub reason: Reason,
    /// The stop signal waits until the units that depend on this one are down.
    pub signal_pending: bool,
    /// SIGKILL was sent because the stop timeout passed: the exit's reason says so.
    pub escalated: bool,
    /// svcd stops the unit because it failed (not ready in time, unhealthy, watchdog): after
    /// the exit, the restart policy decides, and the exit's reason says why.
    pub failure: Option<Reason>,
}

impl Stop {
    pub fn new(reason: Reason) -> Stop {
        Stop {
            reason,
            signal_pending: false,
            escalated: false,
            failure: None,
        }
    }
}

/// A start held back by the unit's dependencies.
#[derive(Debug)]
pub(super) struct Hold {
    /// The start's own words, its reason once released (meanwhile the state's reason says
    /// what it waits for).
    pub reason: Reason,
    /// A requirement is `failed`: it waits until someone starts that one.
    pub blocked: bool,
}

/// The per-unit memory limits the core enforces on samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    pub max: Option<u64>,
    pub swap_max: Option<u64>,
    /// `memory.grace`: how long the unit may stay over a limit before its restart.
    pub grace: std::time::Duration,
    /// `memory.on_limit` without `restart`: over a limit, only the kernel's hard limit acts.
    pub no_restart: bool,
}

impl Record {
    pub fn new(now: Instant, config: UnitConfig) -> Record {
        Record {
            config,
            state: State::Inactive,
            since: now,
            reason: Reason::new(ReasonKind::NotStarted, "not started yet"),
            pid: None,
            restarts: 0,
            starts: 0,
            last_exit: None,
            timers: Timers::default(),
            crashes: 0,
            start_history: VecDeque::new(),
            last_start: None,
            spawned_at: None,
            pending_stop: None,
            then_start: None,
            stop: None,
            over_limit: 0,
            over_since: None,
            health_failed: 0,
            status_text: None,
            hold: None,
            reloading: false,
            paused: None,
            ready_note: None,
            start_step: StartStep::Main,
            hook: None,
            post_done: false,
            was_ready: false,
            exec_stop_until: None,
            sched: Default::default(),
            overlap: None,
            retiring: Vec::new(),
            overlap_failed: None,
        }
    }

    /// Moves to `state`; `since` only changes when the state does, so a new reason alone (a
    /// second stop while stopping) does not reset the clock `status` shows.
    pub fn set_state(&mut self, now: Instant, state: State, reason: Reason) {
        if self.state != state {
            self.since = now;
        }
        self.state = state;
        self.reason = reason;
    }

    /// In `stopping`, its stop signal still waits for its dependents.
    pub fn is_signal_pending(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop.signal_pending)
    }

    /// Held by a requirement in `failed`.
    pub fn is_blocked(&self) -> bool {
        self.hold.as_ref().is_some_and(|hold| hold.blocked)
    }

    /// Forgets what a previous stop or restart command asked for, as a new state begins.
    pub fn clear_intents(&mut self) {
        self.pending_stop = None;
        self.then_start = None;
        self.hold = None;
        self.stop = None;
        self.reloading = false;
    }

    pub fn status(&self) -> UnitStatus {
        UnitStatus {
            state: self.state,
            ready: self.state == State::Running && !self.reloading,
            blocked: self.is_blocked(),
            pid: self.pid,
            since: self.since,
            restarts: self.restarts,
            starts: self.starts,
            last_exit: self.last_exit.clone(),
            reason: match (&self.ready_note, self.state) {
                (Some(note), State::Starting) => format!("{}; not ready yet: {note}", self.reason),
                _ => self.reason.text.clone(),
            },
            reason_kind: self.reason.kind,
            next_start: match self.state {
                State::Backoff => self.timers.get(Timer::Restart),
                _ => None,
            },
            paused: self.paused.filter(|_| self.pid.is_some()),
            schedule: self
                .config
                .schedule
                .as_ref()
                .map(|_| self.sched.status(&self.timers)),
            old_pid: self
                .overlap
                .as_ref()
                .map(|old| old.pid)
                .or_else(|| self.retiring.first().map(|(pid, _)| *pid)),
            restart_failed: self.overlap_failed == Some(self.starts),
        }
    }
}
