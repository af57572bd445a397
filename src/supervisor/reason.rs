//! Why a unit is where it is: a kind a program can match on, and the words a person reads.
//!
//! The kinds are part of the protocol (`reason_kind` and `last_exit.kind` in `status --json`):
//! extend the list, never rename a kind. The words stay free to improve.

/// What brought a unit to its state, or ended its last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// Nothing happened to the unit yet.
    NotStarted,
    /// An operator's command (`svc start`, `stop`, `restart`).
    Operator,
    /// svcd started it as it came up.
    Boot,
    /// A reload added, changed or removed its unit file.
    Reload,
    /// svcd is shutting down.
    Shutdown,
    /// The main process exited with a code.
    Exited,
    /// The main process was killed by a signal.
    Killed,
    /// The process had to be killed because it outlived its stop timeout.
    StopTimeout,
    /// The process could not be spawned (no such file, unknown user, ...).
    SpawnFailed,
    /// Waiting in `backoff` for an automatic restart, or restarted by the policy.
    Restart,
    /// The restart policy gave up: too many starts within the limit's interval.
    StartLimit,
    /// The restart policy gave up: the next delay is too long to represent.
    RestartDelay,
    /// A unit it depends on is starting, failed, going down or came back.
    Dependency,
    /// Over its `memory.max` or `memory.swap_max`.
    MemoryLimit,
    /// svcd's host memory policy chose it (swap pressure).
    MemoryPressure,
    /// Its health check failed too often.
    HealthCheck,
    /// Not ready within its ready timeout.
    ReadyTimeout,
    /// No sd_notify `WATCHDOG=1` within its watchdog period.
    Watchdog,
    /// Its unit file is invalid (never a supervised unit's: svcd lists it as `failed`).
    InvalidUnitFile,
    /// The kernel's OOM killer killed its main process at the unit's cgroup limit.
    OomKill,
    /// A oneshot ran to completion (exited 0).
    Finished,
    /// A forking unit's main process could not be found (no pidfile, not a process of the
    /// unit, several candidates).
    MainPid,
    /// An `exec_start_pre` or `exec_start_post` command failed (or did not finish in time).
    Hook,
    /// Its schedule was due (`[schedule]`).
    Schedule,
}

impl ReasonKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [ReasonKind; 24] = [
        ReasonKind::NotStarted,
        ReasonKind::Operator,
        ReasonKind::Boot,
        ReasonKind::Reload,
        ReasonKind::Shutdown,
        ReasonKind::Exited,
        ReasonKind::Killed,
        ReasonKind::StopTimeout,
        ReasonKind::SpawnFailed,
        ReasonKind::Restart,
        ReasonKind::StartLimit,
        ReasonKind::RestartDelay,
        ReasonKind::Dependency,
        ReasonKind::MemoryLimit,
        ReasonKind::MemoryPressure,
        ReasonKind::HealthCheck,
        ReasonKind::ReadyTimeout,
        ReasonKind::Watchdog,
        ReasonKind::InvalidUnitFile,
        ReasonKind::OomKill,
        ReasonKind::Finished,
        ReasonKind::MainPid,
        ReasonKind::Hook,
        ReasonKind::Schedule,
    ];

    /// The stable name `--json` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::NotStarted => "not_started",
            ReasonKind::Operator => "operator",
            ReasonKind::Boot => "boot",
            ReasonKind::Reload => "reload",
            ReasonKind::Shutdown => "shutdown",
            ReasonKind::Exited => "exited",
            ReasonKind::Killed => "killed",
            ReasonKind::StopTimeout => "stop_timeout",
            ReasonKind::SpawnFailed => "spawn_failed",
            ReasonKind::Restart => "restart",
            ReasonKind::StartLimit => "start_limit",
            ReasonKind::RestartDelay => "restart_delay",
            ReasonKind::Dependency => "dependency",
            ReasonKind::MemoryLimit => "memory_limit",
            ReasonKind::MemoryPressure => "memory_pressure",
            ReasonKind::HealthCheck => "health_check",
            ReasonKind::ReadyTimeout => "ready_timeout",
            ReasonKind::Watchdog => "watchdog",
            ReasonKind::InvalidUnitFile => "invalid_unit_file",
            ReasonKind::OomKill => "oom_kill",
            ReasonKind::Finished => "finished",
            ReasonKind::MainPid => "main_pid",
            ReasonKind::Hook => "hook",
            ReasonKind::Schedule => "schedule",
        }
    }
}

impl std::fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason: its kind, and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    pub text: String,
}

impl Reason {
    pub fn new(kind: ReasonKind, text: impl Into<String>) -> Reason {
        Reason {
            kind,
            text: text.into(),
        }
    }

    /// The same kind with other words (a note added, a prefix).
    pub(super) fn reworded(&self, text: String) -> Reason {
        Reason::new(self.kind, text)
    }
}

/// A placeholder, for `std::mem::take`: always replaced before anyone sees it.
impl Default for Reason {
    fn default() -> Reason {
        Reason::new(ReasonKind::Operator, "")
    }
}

/// An operator's words ("started by operator"): what a plain string handed to a command
/// handler means.
impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::new(ReasonKind::Operator, text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_distinct_snake_case() {
        let mut names: Vec<&str> = ReasonKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ReasonKind::ALL.len());
    }

    #[test]
    fn every_kind_is_documented() {
        let protocol = include_str!("../../docs/protocol.md");
        let man = include_str!("../../man/svc.1");
        for kind in ReasonKind::ALL {
            assert!(
                protocol.contains(&format!("| `{kind}` |")),
                "{kind} in protocol.md"
            );
            assert!(man.contains(&format!("\\fB{kind}\\fR")), "{kind} in svc.1");
        }
    }
}
