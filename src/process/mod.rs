//! Real processes: spawn a unit, signal its process group, reap exits.
//!
//! This is the only module with `unsafe` code (`posix_spawn` in [`mod@spawn`], and the clone of the
//! hooked spawn in `vfork`, whose child runs on svcd's memory), each block with its
//! `// SAFETY:`. Reaping has one owner: [`reap`], a `waitpid(-1)` loop the daemon runs on
//! SIGCHLD. Children are spawned by `posix_spawn` or by our own `clone`, neither of which reaps
//! (but a child that failed before exec, which the spawn reaps itself, as posix_spawn does).

mod clone3;
mod credentials;
pub mod dirs;
mod listen_fds;
mod slots;
mod spawn;
mod strays;
mod vfork;

pub use crate::memory::{GroupMemory, group_memory};
pub use clone3::CgroupFd;
pub use credentials::Credentials;
pub use slots::reserve as reserve_spawn_slots;
pub use spawn::{SpawnError, Spawned, spawn, spawn_with};
pub use strays::{UNIT_ENV, orphans_of, signal_pids, strays_below, svcd_orphans};

use crate::supervisor::ExitStatus;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Unblocks every signal of the calling thread: svcd's first act, for a mask it inherited.
pub fn unblock_signals() {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None) {
        use std::io::Write;
        // Not eprintln!: it panics when stderr fails.
        let _ = writeln!(
            crate::logs::output::Stderr,
            "svcd: cannot unblock signals: {e}"
        );
    }
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

/// Whether `signal` goes to the unit's main process only, under `stop.mode = mode`: the stop
/// signal under `main`, every signal under `process` (systemd's `KillMode=mixed`, `process`).
pub fn signals_main_only(mode: crate::unit::StopMode, signal: i32) -> bool {
    use crate::unit::StopMode;
    match mode {
        StopMode::Group => false,
        StopMode::Main => signal != libc::SIGKILL,
        StopMode::Process => true,
    }
}

/// Sends `signal` to the main process `pid` alone (it is gone: nothing to do).
pub fn signal_main(pid: u32, signal: i32) {
    let (Ok(signal), Ok(pid)) = (Signal::try_from(signal), i32::try_from(pid)) else {
        return;
    };
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
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
