//! Real processes: spawn a unit, signal its process group, reap exits.
//!
//! This is the only module with `unsafe` code (the `pre_exec` hook), each block with its
//! `// SAFETY:`. Reaping has one owner: [`reap`], a `waitpid(-1)` loop the daemon runs on
//! SIGCHLD. Children are spawned with `std::process::Command` and the `Child` handle is dropped
//! without waiting, so nothing else ever reaps them.

mod credentials;
mod memory;
mod output;
mod strays;

pub use credentials::Credentials;
pub use memory::{GroupMemory, group_memory};
pub use output::forward_output;
pub use strays::{UNIT_ENV, children, signal_strays};

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
    #[error("cannot create the output pipe: {0}")]
    Pipe(#[source] Errno),
    #[error("cannot execute `{program}`: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A process just started: its pid (also its process group) and the read end of its output.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    /// stdout and stderr of the unit, merged, for [`forward_output`].
    pub output: OwnedFd,
}

/// Spawns `unit` in its own process group, stdin from /dev/null, stdout and stderr into one
/// pipe. The environment is svcd's own, then the unit's `env_file`, then its `env`, then
/// `SVC_UNIT=<name>`, by which [`signal_strays`] recognizes the unit's processes.
pub fn spawn(unit: &Unit) -> Result<Spawned, SpawnError> {
    let creds = Credentials::resolve(unit.user.as_deref(), unit.group.as_deref())
        .map_err(SpawnError::Credentials)?;
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let write_err = write
        .try_clone()
        .map_err(|e| SpawnError::Pipe(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;

    let program = unit.argv.first().cloned().unwrap_or_default();
    let mut command = Command::new(&program);
    command
        .args(unit.argv.iter().skip(1))
        .envs(&unit.env)
        .env(UNIT_ENV, &unit.name)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write_err))
        .process_group(0);
    if let Some(dir) = &unit.workdir {
        command.current_dir(dir);
    }
    let unit_umask = unit.umask;
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: setgroups, setgid, setuid and umask are plain system calls, and
    // `creds` was fully built (all allocation done) before the fork.
    unsafe {
        command.pre_exec(move || {
            creds.apply()?;
            if let Some(mask) = unit_umask {
                umask(Mode::from_bits_truncate(mask));
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|source| SpawnError::Exec { program, source })?;
    // Dropping `child` neither kills nor waits: the daemon's reap loop owns the exit.
    let pid = child.id();
    drop(command);
    Ok(Spawned { pid, output: read })
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

/// Reaps every child that has exited, without blocking: (pid, how it ended).
pub fn reap() -> Vec<(u32, ExitStatus)> {
    let mut exits = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                exits.push((pid.as_raw() as u32, ExitStatus::Code(code)));
            }
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                exits.push((pid.as_raw() as u32, ExitStatus::Signal(signal as i32)));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => continue, // stopped/continued: not an exit
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    exits
}
