//! The states, events' payloads and actions of the core.

use super::reason::ReasonKind;
use std::time::Instant;

/// Index of a unit in the [`super::Supervisor`].
pub type UnitId = usize;

/// A unit's state, as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Inactive,
    Starting,
    Running,
    Stopping,
    Backoff,
    Failed,
    /// A oneshot with `remain` that exited 0: up, with no process, until stopped.
    Exited,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Failed => "failed",
            State::Exited => "exited",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        [
            State::Inactive,
            State::Starting,
            State::Running,
            State::Stopping,
            State::Backoff,
            State::Failed,
            State::Exited,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    pub fn is_success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// `exited` or `killed`.
    pub fn kind(self) -> ReasonKind {
        match self {
            ExitStatus::Code(_) => ReasonKind::Exited,
            ExitStatus::Signal(_) => ReasonKind::Killed,
        }
    }

    /// The exit as a reason: "exited with code 1", "killed by SIGTERM".
    pub fn reason(self) -> super::Reason {
        super::Reason::new(self.kind(), self.to_string())
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signal(sig) => write!(f, "killed by {}", crate::signal::name(*sig)),
        }
    }
}

/// The last exit of a unit's main process.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// `None` when the process never ran (spawn failed).
    pub status: Option<ExitStatus>,
    pub at: Instant,
    /// Human words: "exited with code 1", "killed by SIGKILL after stop timeout",
    /// "stopped by operator", "spawn failed: No such file or directory".
    pub reason: String,
    /// What ended the run, for programs: `exited`, `killed`, `stop_timeout`, `spawn_failed`,
    /// or the failure svcd stopped it for (`memory_limit`, `health_check`, ...).
    pub kind: ReasonKind,
}

impl Exit {
    pub fn new(status: Option<ExitStatus>, at: Instant, reason: super::Reason) -> Exit {
        Exit {
            status,
            at,
            reason: reason.text,
            kind: reason.kind,
        }
    }
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the unit's process now, then call `handle_spawned` or `handle_spawn_failed`.
    Spawn { unit: UnitId },
    /// Send `signal` to the whole process group `pgid` (the main pid, group leader).
    Signal {
        unit: UnitId,
        pgid: u32,
        signal: i32,
    },
    /// The unit's visible status changed: wake whoever waits on it.
    Publish { unit: UnitId },
    /// Run the unit's health check once, then call `handle_health_check` with the verdict.
    CheckHealth { unit: UnitId },
    /// The start command of a forking unit (pid `command`, its group's id) exited 0: find
    /// the unit's main process (its `pidfile`, or the one process it left), then call
    /// `handle_main_pid`, `handle_main_pid_failed`, or `handle_main_pid_note` meanwhile.
    FindMainPid { unit: UnitId, command: u32 },
    /// Run command `index` of the unit's `hook` list (with the unit's user, environment and
    /// log; `MAINPID` set for `exec_start_post` and `exec_stop`), then call
    /// `handle_hook_spawned` or `handle_hook_failed`, and `handle_hook_exited` once it ends.
    RunHook {
        unit: UnitId,
        hook: super::HookKind,
        index: usize,
    },
    /// SIGKILL to the process group `pgid` of a hook command of the unit.
    KillHook { unit: UnitId, pgid: u32 },
    /// A `persistent` scheduled unit ran at `unix_secs` (wall clock): keep it on disk, so a run
    /// missed while svcd is down is made up at its next start.
    RecordRun { unit: UnitId, unix_secs: i64 },
}

/// A snapshot of one unit for status and waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStatus {
    pub state: State,
    /// Running and ready: its readiness check passed (or it has none), and it is not
    /// reloading (sd_notify `RELOADING=1`).
    pub ready: bool,
    /// Held in `starting` because a unit it requires is `failed`: it will not start until that
    /// one is started again. The reason names it.
    pub blocked: bool,
    pub pid: Option<u32>,
    /// When the current state began.
    pub since: Instant,
    /// Automatic restarts since svcd started (operator starts do not count).
    pub restarts: u32,
    /// Spawns since svcd started, operator starts included; lets a waiter tell a new run from
    /// the old one.
    pub starts: u64,
    pub last_exit: Option<Exit>,
    /// Why the unit is in its current state: "started by operator", "restarting in 400ms",
    /// "start limit hit: 10 starts within 5m", ...
    pub reason: String,
    /// The kind of `reason`, for programs.
    pub reason_kind: ReasonKind,
    /// In `backoff`: when the next start is due.
    pub next_start: Option<Instant>,
    /// The main process is stopped by this signal (SIGSTOP, ...): the state stays what it
    /// was (`running`), but nothing runs until SIGCONT.
    pub paused: Option<i32>,
    /// A scheduled unit's runs; `None` for a service.
    pub schedule: Option<super::schedule::ScheduleStatus>,
    /// `restart.overlap`: the old run's main process, while it still runs beside the new one.
    pub old_pid: Option<u32>,
    /// The last overlapping restart failed: the run shown is the old one, serving on.
    pub restart_failed: bool,
}
