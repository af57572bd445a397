//! Real processes: spawn a unit, signal its process group, reap exits.
//!
//! This is the only module with `unsafe` code (the `pre_exec` hook), each block with its
//! `// SAFETY:`. Reaping has one owner: [`reap`], a `waitpid(-1)` loop the daemon runs on
//! SIGCHLD. Children are spawned with `std::process::Command` and the `Child` handle is dropped
//! without waiting, so nothing else ever reaps them.

mod credentials;
mod strays;

pub use crate::memory::{GroupMemory, group_memory};
pub use credentials::Credentials;
pub use strays::{UNIT_ENV, orphans_of, signal_pids, strays_below, svcd_orphans};

use crate::supervisor::ExitStatus;
use crate::unit::Unit;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Why a unit could not be spawned.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot resolve user/group: {0}")]
    Credentials(String),
    #[error("cannot create an output pipe: {0}")]
    Pipe(#[source] Errno),
    #[error("cannot execute `{program}`: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A process just started: its pid (also its process group) and the read ends of its output.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    /// The unit's stdout, for [`crate::logs::capture`].
    pub stdout: OwnedFd,
    /// The unit's stderr, a pipe of its own so that each line is stamped with its stream.
    pub stderr: OwnedFd,
}

/// Spawns `unit` in its own process group, stdin from /dev/null, stdout and stderr into a pipe
/// each. The environment is svcd's own, then the unit's `env_file`, then its `env`, then
/// `SVC_UNIT=<name>`, by which [`svcd_orphans`] recognizes the unit's processes.
pub fn spawn(unit: &Unit) -> Result<Spawned, SpawnError> {
    let creds = Credentials::resolve(unit.user.as_deref(), unit.group.as_deref())
        .map_err(SpawnError::Credentials)?;
    let (read_out, write_out) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let (read_err, write_err) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;

    let program = unit.argv.first().cloned().unwrap_or_default();
    let mut command = Command::new(&program);
    command
        .args(unit.argv.iter().skip(1))
        .envs(&unit.env)
        .env(UNIT_ENV, &unit.name)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_out))
        .stderr(Stdio::from(write_err))
        .process_group(0);
    if let Some(dir) = &unit.workdir {
        command.current_dir(dir);
    }
    // Formatted now: the child must not allocate.
    let oom_score_adj: Option<Vec<u8>> = unit
        .memory
        .oom_score_adj
        .map(|adj| format!("{adj}\n").into_bytes());
    // Without identity, umask or OOM score to set, std spawns with posix_spawn (clone with
    // CLONE_VFORK), several times faster than fork for a daemon with a large heap: only hook
    // when needed.
    if !creds.is_noop() || unit.umask.is_some() || oom_score_adj.is_some() {
        let unit_umask = unit.umask;
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: open, write, close, setgroups, setgid, setuid
        // and umask are plain system calls (the path is a C string literal, so nix does not
        // allocate for it), and `creds` and the oom_score_adj text were fully built (all
        // allocation done) before the fork.
        unsafe {
            command.pre_exec(move || {
                if let Some(text) = &oom_score_adj {
                    // Before dropping privileges: lowering the score needs CAP_SYS_RESOURCE.
                    write_oom_score_adj(text)?;
                }
                creds.apply()?;
                if let Some(mask) = unit_umask {
                    umask(Mode::from_bits_truncate(mask));
                }
                Ok(())
            });
        }
    }
    let child = command
        .spawn()
        .map_err(|source| SpawnError::Exec { program, source })?;
    // Dropping `child` neither kills nor waits: the daemon's reap loop owns the exit.
    let pid = child.id();
    drop(command);
    Ok(Spawned {
        pid,
        stdout: read_out,
        stderr: read_err,
    })
}

/// Writes `text` to /proc/self/oom_score_adj; runs in the forked child, so it does not allocate.
fn write_oom_score_adj(text: &[u8]) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    let to_io = |e: Errno| std::io::Error::from_raw_os_error(e as i32);
    let fd = open(
        c"/proc/self/oom_score_adj",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(to_io)?;
    let written = nix::unistd::write(&fd, text).map_err(to_io)?;
    if written != text.len() {
        return Err(std::io::Error::from_raw_os_error(Errno::EIO as i32));
    }
    Ok(())
}

/// Sends `signal` to every process of the group `pgid`. A group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: i32) -> Result<(), Errno> {
    let signal = Signal::try_from(signal)?;
    let pgid = i32::try_from(pgid).map_err(|_| Errno::EINVAL)?;
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `waitpid` reported of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    /// It ended (and is reaped).
    Exited(ExitStatus),
    /// It was stopped by this signal (SIGSTOP, SIGTSTP, ...): alive, but running nothing.
    Stopped(i32),
    /// It was continued (SIGCONT).
    Continued,
}

/// Reaps every child that has exited, without blocking, and collects the stops and continues
/// (WUNTRACED, WCONTINUED): (pid, what happened), in order.
pub fn reap() -> Vec<(u32, ChildEvent)> {
    let mut events = Vec::new();
    let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED | WaitPidFlag::WCONTINUED;
    loop {
        let (pid, event) = match waitpid(None, Some(flags)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, ChildEvent::Exited(ExitStatus::Code(code))),
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                (pid, ChildEvent::Exited(ExitStatus::Signal(signal as i32)))
            }
            Ok(WaitStatus::Stopped(pid, signal)) => (pid, ChildEvent::Stopped(signal as i32)),
            Ok(WaitStatus::Continued(pid)) => (pid, ChildEvent::Continued),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        };
        events.push((pid.as_raw() as u32, event));
    }
    events
}

/// Descriptors svcd holds per unit while it runs: two output pipes, and room for a check's.
const FDS_PER_UNIT: u64 = 4;
/// The socket, the notify socket, log files, signal pipes and what the runtime keeps, and the
/// control connections of peers other than root (capped), so they never take a unit's.
const FDS_BASE: u64 = 64 + crate::control::server::MAX_UNPRIVILEGED as u64;

/// Raises svcd's soft limit of open files, if `units` need more than it allows, up to the hard
/// limit. The common soft limit of 1024 would stop svcd at a few hundred units. Children
/// inherit the raised limit; svcd only raises it as far as its units need, so a small
/// installation keeps the usual 1024 for its services.
pub fn ensure_fd_limit(units: usize) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = FDS_BASE + FDS_PER_UNIT * units as u64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    if soft >= need {
        return Ok(());
    }
    let new = need.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, new, hard)
        .map_err(|e| format!("cannot raise RLIMIT_NOFILE from {soft} to {new}: {e}"))?;
    if new < need {
        return Err(format!(
            "{units} units may need {need} open files, but the hard limit is {hard}; raise it (ulimit -Hn)"
        ));
    }
    Ok(())
}
