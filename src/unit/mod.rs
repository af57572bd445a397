//! Unit files: `NAME.toml`, one service each.
//!
//! Parsing has two stages, as in ripgrep's flags: [`raw`] deserializes what is written (with the
//! span of every key), then [`validate`] turns it into a typed [`Unit`], refusing what is
//! wrong with an error that names file, line, column and key. Both read [`keys`], where each key
//! is defined once: its name, type, documentation and where its value goes; the checks of single
//! values its rows call are in [`check`].
//!
//! Beside them: [`duration`] reads durations and sizes, [`envfile`] reads `env_file`s,
//! [`load`] reads files, units directories and the paths given to `svc check`, and [`host`]
//! warns `svc check` of what this host lacks for a unit (its workdir, its program).
//! [`template`] makes the instances of a template `NAME@.toml`; [`limits`] checks the
//! per-process settings (`[limits]`, `nice`, `supplementary_groups`); [`hooks`] reads the
//! commands run around the main one and the directories made for it.

pub mod check;
pub mod duration;
pub mod envfile;
pub mod error;
pub mod graph;
pub mod hooks;
pub mod host;
pub mod keys;
pub mod kinds;
pub mod limits;
pub mod load;
pub mod probe;
pub mod raw;
pub mod reload;
pub mod schedule;
pub mod sockets;
pub mod template;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{UnitError, UnitErrors};
pub use hooks::{DirConfig, DirsConfig, HookCommand, HooksConfig};
pub use kinds::{TypeConfig, UnitType};
pub use limits::{LimitsConfig, Rlimit};
pub use load::{LoadError, Loaded, check_paths, load_dirs, load_file};
pub use probe::{HealthConfig, HttpTarget, Probe, ReadyConfig};
pub use reload::{ReloadConfig, ReloadMethod};
pub use sockets::{ListenAddr, SocketsConfig};

/// A validated unit, ready to be supervised.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The file's stem: `chat` for `chat.toml`.
    pub name: String,
    /// Where the unit was read from, for messages.
    pub path: PathBuf,
    pub description: Option<String>,
    /// The argv to exec. With `shell = true` this is `["/bin/sh", "-c", STRING]`.
    pub argv: Vec<String>,
    /// Working directory, already resolved against the units directory. `None`: the units
    /// directory itself is *not* implied; the child inherits svcd's cwd.
    pub workdir: Option<PathBuf>,
    /// Extra environment: `env_file` first, then `env` on top (so `env` wins).
    pub env: BTreeMap<String, String>,
    /// The env_file's path (resolved), read at validation time; kept for messages.
    pub env_file: Option<PathBuf>,
    pub user: Option<String>,
    /// `user_if_root`: the user to run as when svcd runs as root, ignored otherwise (the unit
    /// then runs as svcd's own user). Never set together with `user`.
    pub user_if_root: Option<String>,
    pub group: Option<String>,
    pub umask: Option<u32>,
    /// Groups added to the user's (or, without `user`, to svcd's primary group) in the child.
    pub supplementary_groups: Vec<String>,
    /// Scheduling priority set in the child before exec; `None` keeps svcd's.
    pub nice: Option<i8>,
    /// Resource limits set in the child before exec.
    pub limits: LimitsConfig,
    pub enabled: bool,
    /// In a template (`NAME@.toml`): the instances svcd makes of it. Empty in other units.
    pub instances: Vec<String>,
    /// Units that must be running and ready before this one starts; stopped after it.
    pub requires: Vec<String>,
    /// Units this one starts after (ordering only).
    pub after: Vec<String>,
    /// Units this one starts after when they start too, and pulls in on `svc start`; it keeps
    /// running when they stop or fail (systemd's `Wants=` with `After=`).
    pub wants: Vec<String>,
    /// When this unit reaches `failed`, svcd stops everything and exits non-zero.
    pub fatal: bool,
    /// Who may speak for the unit on the sd_notify socket.
    pub notify_access: NotifyAccess,
    pub restart: RestartConfig,
    pub stop: StopConfig,
    /// `stop.mode`: who gets the signals of a stop. Beside [`StopConfig`], which the supervisor
    /// keeps: only the daemon reads it, where it sends a signal.
    pub stop_mode: StopMode,
    pub ready: ReadyConfig,
    pub health: HealthConfig,
    pub memory: MemoryConfig,
    pub log: LogConfig,
    /// What `svc reload NAME` does to the running unit.
    pub reload: ReloadConfig,
    /// `type`, `remain`, `pidfile`: how the start completes.
    pub kind: TypeConfig,
    /// `exec_start_pre`, `exec_start_post`, `exec_stop`.
    pub hooks: HooksConfig,
    /// `runtime_dir`, `state_dir`, `logs_dir`: made for the unit before it starts.
    pub dirs: DirsConfig,
    /// `[schedule]`: run when due instead of at boot; `None` for a service.
    pub schedule: Option<crate::schedule::ScheduleConfig>,
    /// `listen` and its options, `restart.overlap`.
    pub sockets: SocketsConfig,
}

impl Unit {
    /// The user the unit runs as: `user`, else `user_if_root` when svcd runs as root (`root`),
    /// else none (svcd's own).
    pub fn run_as(&self, root: bool) -> Option<&str> {
        self.user
            .as_deref()
            .or(self.user_if_root.as_deref().filter(|_| root))
    }
}

/// `notify_access`: whose sd_notify messages count for the unit (systemd's `NotifyAccess`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotifyAccess {
    /// Only its main process (or the one it named with `MAINPID=`).
    #[default]
    Main,
    /// Any process of its tree: the main process and its descendants.
    All,
}

/// Smallest `log.max_size`: a file must hold at least a few lines.
pub const MIN_LOG_SIZE: u64 = 1024;

/// `[log]`: rotation of the unit's log file; `None` takes the daemon's default (`svcd.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub max_size: Option<u64>,
    pub keep: Option<u32>,
}

/// When to restart, and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartConfig {
    pub policy: RestartPolicy,
    /// Delay before the first restart.
    pub delay: Duration,
    /// Growth of the delay per consecutive crash (≥ 1).
    pub multiplier: f64,
    /// Cap of the delay.
    pub max_delay: Duration,
    /// Running this long resets the backoff to `delay`.
    pub reset_after: Duration,
    /// More than `burst` starts within `interval` → failed. `None`: never give up.
    pub limit: Option<StartLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    pub burst: u32,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// How to stop: a first signal to the whole process group, then SIGKILL after `timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct StopConfig {
    /// Signal number (e.g. `libc::SIGTERM` = 15).
    pub signal: i32,
    pub timeout: Duration,
}

/// `stop.mode`: which of the unit's processes the stop signal and the SIGKILL reach (systemd's
/// `KillMode=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StopMode {
    /// Both to the whole process group (and the unit's processes outside it): `control-group`.
    #[default]
    Group,
    /// The stop signal to the main process only, SIGKILL to everything left: `mixed`.
    Main,
    /// Both to the main process only; the rest is left running: `process`.
    Process,
}

/// `[memory]`: limits svcd enforces by sampling, and what the host policy may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryConfig {
    /// RSS of all the unit's processes, in bytes; over it on two samples in a row → restart.
    pub max: Option<u64>,
    /// Swap of all the unit's processes, in bytes; same rule.
    pub swap_max: Option<u64>,
    /// Written to /proc/self/oom_score_adj before exec (−1000..=1000).
    pub oom_score_adj: Option<i16>,
    /// `on_pressure`: the steps the host swap policy may take for this unit when the host's
    /// memory runs short (tell it, reclaim, restart it); none by default (`"none"`).
    pub on_pressure: crate::memory::OnPressure,
    /// `on_limit`: the steps svcd takes as the unit nears and crosses `max`.
    pub on_limit: crate::memory::ladder::OnLimit,
    /// `grace`: how long the unit may stay over `max` before its restart (0: at once).
    pub grace: std::time::Duration,
}

impl MemoryConfig {
    /// Whether the unit has a limit that needs periodic samples.
    pub fn has_limit(&self) -> bool {
        self.max.is_some() || self.swap_max.is_some()
    }
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            limit: None,
        }
    }
}

impl Default for StopConfig {
    fn default() -> Self {
        StopConfig {
            signal: 15,
            timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        })
    }
}

#[cfg(test)]
mod field_tests;
#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;
