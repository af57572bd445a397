//! The duties of an init: adopt orphans, never die of a stray signal, and end every process
//! before exiting as PID 1.
//!
//! Reaping itself needs nothing more here: the daemon's one `waitpid(-1)` loop reaps every
//! child on SIGCHLD, its own units' main processes and adopted orphans alike; only the last
//! step, after the event loop ended, reaps here.

use nix::sys::signal::Signal as Sig;
use nix::unistd::Pid;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// After the SIGKILL to every remaining process: how long to wait for them to be gone. SIGKILL
/// is not delayed by the process; only one stuck in the kernel outlives this.
const KILL_WAIT: Duration = Duration::from_secs(1);
/// How often to look for processes that are not svcd's children (no SIGCHLD tells of them),
/// during the last seconds of a shutdown only.
const RECHECK: Duration = Duration::from_millis(20);

/// Signals whose default action ends (or stops) a process, that svcd as init logs and otherwise
/// ignores. Not here: SIGTERM, SIGINT, SIGHUP and SIGCHLD (the event loop's own); SIGPIPE (the
/// Rust runtime already ignores it, and restores it for children); SIGKILL and SIGSTOP (cannot be
/// caught); and the faults ([`FAULTS`], handled apart; SIGSEGV not even that).
const IGNORED: [Sig; 13] = [
    Sig::SIGQUIT,
    Sig::SIGUSR1,
    Sig::SIGUSR2,
    Sig::SIGALRM,
    Sig::SIGVTALRM,
    Sig::SIGPROF,
    Sig::SIGIO,
    Sig::SIGPWR,
    Sig::SIGXCPU,
    Sig::SIGXFSZ,
    Sig::SIGTSTP,
    Sig::SIGTTIN,
    Sig::SIGTTOU,
];

/// Signals that are a fault when the kernel raises them for svcd's own bug, and a plain
/// (deadly by default) message when another process sends them with kill(2): svcd as init
/// ignores the latter and still dies of the former ([`on_fault_signal`]). SIGSEGV is left at
/// its default: a bug that corrupts memory must end svcd, and nothing sends SIGSEGV by
/// accident.
const FAULTS: [Sig; 7] = [
    Sig::SIGILL,
    Sig::SIGTRAP,
    Sig::SIGABRT,
    Sig::SIGBUS,
    Sig::SIGFPE,
    Sig::SIGSTKFLT,
    Sig::SIGSYS,
];

/// Installs [`on_fault_signal`] for [`FAULTS`]. tokio (signal-hook) refuses some of them, and a
/// handler that only wakes the event loop could not tell a fault from a message: this one looks
/// at who sent the signal, in the handler itself.
pub fn ignore_sent_faults() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let action = SigAction::new(
        SigHandler::SigAction(on_fault_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FAULTS {
        // SAFETY: the handler only makes async-signal-safe calls (getpid, sigaction, raise,
        // write) and touches no Rust state.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            tracing::debug!("cannot catch {signal}: {e}");
        }
    }
}

/// The handler of [`FAULTS`]. A signal another process sent (`si_code` ≤ 0: kill, sigqueue,
/// tgkill) is ignored, with a line on stderr. One the kernel raised (`si_code` > 0: a real
/// illegal instruction, bus error, breakpoint, seccomp kill) or that svcd sent itself (abort)
/// gets its default action back: returning from a fault runs the faulting instruction again,
/// which then ends svcd as it should, with a core dump where enabled; svcd's own signal is
/// raised again.
extern "C" fn on_fault_signal(
    signal: nix::libc::c_int,
    info: *mut nix::libc::siginfo_t,
    _context: *mut nix::libc::c_void,
) {
    use nix::libc;
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler; `si_pid` is
    // meaningful for the codes that come from a process (≤ 0), the only case it is read in.
    let (code, sender) = unsafe {
        let code = (*info).si_code;
        let sender = if code <= 0 { (*info).si_pid() } else { 0 };
        (code, sender)
    };
    // SAFETY: getpid is async-signal-safe.
    let me = unsafe { libc::getpid() };
    if code > 0 || sender == me {
        // SAFETY: sigaction and raise are async-signal-safe; `default` is a plain C struct
        // zeroed and then given SIG_DFL.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
            if code <= 0 {
                libc::raise(signal);
            }
        }
        return;
    }
    let message: &[u8] = match signal {
        libc::SIGILL => b"svcd: ignored SIGILL sent by another process (init mode)\n",
        libc::SIGTRAP => b"svcd: ignored SIGTRAP sent by another process (init mode)\n",
        libc::SIGABRT => b"svcd: ignored SIGABRT sent by another process (init mode)\n",
        libc::SIGBUS => b"svcd: ignored SIGBUS sent by another process (init mode)\n",
        libc::SIGFPE => b"svcd: ignored SIGFPE sent by another process (init mode)\n",
        libc::SIGSTKFLT => b"svcd: ignored SIGSTKFLT sent by another process (init mode)\n",
        libc::SIGSYS => b"svcd: ignored SIGSYS sent by another process (init mode)\n",
        _ => b"svcd: ignored a signal sent by another process (init mode)\n",
    };
    // SAFETY: write is async-signal-safe; the message is static. A failed write is ignored.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
    }
}

/// The inode of the initial PID namespace (the kernel's `PROC_PID_INIT_INO`, fixed since 3.8):
/// `/proc/self/ns/pid` names it where svcd is the machine's own init, not a container's.
const INITIAL_PID_NAMESPACE: &str = "pid:[4026531836]";

/// At svcd's end as the machine's init (PID 1 of the initial PID namespace): the file systems
/// synced and the machine powered off, as the init of a machine must never exit (the kernel
/// panics). As a container's PID 1 (a PID namespace of its own) or anywhere else this returns,
/// and svcd exits: that ends the container.
pub fn power_off_if_machine_init() {
    if std::process::id() != 1 {
        return;
    }
    if !is_machine_init() {
        return;
    }
    // SAFETY: sync and reboot take no pointers; reboot returns only where it failed.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    tracing::error!("cannot power off: {}", std::io::Error::last_os_error());
}

/// Makes svcd the child subreaper of its descendants: a process a unit orphans (a double-forked
/// daemon) becomes svcd's child instead of PID 1's, so svcd reaps it and can end it with its
/// unit. Pointless but harmless as PID 1; a failure (an old kernel) is logged, not fatal.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(
            "cannot become child subreaper ({e}): processes that units orphan will not be reaped by svcd nor ended with their unit"
        );
    }
}

/// Catches every signal of [`IGNORED`] and of the real-time range, logging each: as init, svcd
/// must not die of a signal nobody meant for it. Handled (not `SIG_IGN`), so units do not
/// inherit an ignored disposition across exec.
pub fn ignore_stray_signals(forwarded: &[i32]) {
    let realtime = sigrtmin()..=sigrtmax();
    let mut streams: Vec<(i32, Signal)> = Vec::new();
    // Those svcd forwards are caught to be forwarded, not said to be ignored.
    let ignored = IGNORED.into_iter().map(|s| s as i32).chain(realtime);
    for number in ignored.filter(|n| !forwarded.contains(n)) {
        match signal(SignalKind::from_raw(number)) {
            Ok(stream) => streams.push((number, stream)),
            Err(e) => tracing::debug!("cannot catch {}: {e}", crate::signal::name(number)),
        }
    }
    tokio::spawn(async move {
        loop {
            let numbers = std::future::poll_fn(|cx| {
                let mut got = Vec::new();
                // A stream that ends (the runtime is going away) is dropped, never polled again.
                streams.retain_mut(|(number, stream)| match stream.poll_recv(cx) {
                    Poll::Ready(Some(())) => {
                        got.push(*number);
                        true
                    }
                    Poll::Ready(None) => false,
                    Poll::Pending => true,
                });
                if !got.is_empty() {
                    Poll::Ready(Some(got))
                } else if streams.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            })
            .await;
            let Some(numbers) = numbers else { return };
            for number in numbers {
                tracing::warn!(
                    "svcd got {}: ignored (as init, svcd ends only on SIGTERM, SIGINT or `svc shutdown`)",
                    crate::signal::name(number)
                );
            }
        }
    });
}

/// As PID 1 (of the host or of a PID namespace), after every unit stopped: SIGTERM to every
/// process that is left (`kill(-1)`: `docker exec`'d shells, daemons that escaped their unit),
/// a grace until `deadline` (the shutdown's), then SIGKILL, reaping all, as s6-overlay's stage
/// 3 does. When PID 1 exits, the kernel kills whatever is left in its namespace with SIGKILL
/// and no warning; this gives them their SIGTERM first. Not PID 1: nothing to do, the other
/// processes are not svcd's to end.
pub async fn end_remaining_processes(sigchld: &mut Signal, deadline: Instant) {
    if nix::unistd::getpid().as_raw() != 1 || !any_process_left() {
        return;
    }
    tracing::info!("sending SIGTERM to every remaining process");
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Sig::SIGTERM);
    if wait_until_none_left(sigchld, deadline).await {
        return;
    }
    tracing::warn!("shutdown timeout: sending SIGKILL to every remaining process");
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Sig::SIGKILL);
    if !wait_until_none_left(sigchld, Instant::now() + KILL_WAIT).await {
        tracing::warn!("processes are left after SIGKILL (stuck in the kernel?)");
    }
}

/// Reaps what has exited; whether any process besides svcd is left to signal.
fn any_process_left() -> bool {
    let _ = crate::process::reap();
    // kill(-1, 0) reaches every process but init itself: ESRCH means there is none. On a
    // machine (not a container) it reaches the kernel's threads too, which never exit: there
    // the processes are counted from /proc instead.
    nix::sys::signal::kill(Pid::from_raw(-1), None).is_ok()
        && (!is_machine_init() || user_process_left())
}

/// Whether svcd runs in the initial PID namespace (the machine's, not a container's).
fn is_machine_init() -> bool {
    std::fs::read_link("/proc/self/ns/pid").is_ok_and(|ns| ns.as_os_str() == INITIAL_PID_NAMESPACE)
}

/// Whether a process other than svcd and the kernel's threads is left (/proc). A process gone
/// meanwhile is not left.
fn user_process_left() -> bool {
    // Without /proc nothing can be told apart: as many as kill(-1, 0) reached are left.
    if std::fs::metadata("/proc/self").is_err() {
        return true;
    }
    let me = std::process::id();
    crate::proc::pids()
        .any(|pid| pid != me && crate::proc::stat(pid).is_some_and(|stat| !stat.is_kernel_thread()))
}

/// Waits until no process is left (true) or until `deadline` (false).
async fn wait_until_none_left(sigchld: &mut Signal, deadline: Instant) -> bool {
    loop {
        if !any_process_left() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wake = deadline.min(now + RECHECK);
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// The real-time signals' range on Linux with glibc or musl: 34..=64 (glibc keeps 32 and 33 for
/// its threads; musl likewise reserves the first few). Only the kernel's upper bound is fixed.
fn sigrtmin() -> i32 {
    34
}

fn sigrtmax() -> i32 {
    64
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    /// Runs `body` in a forked child that has the fault handlers; how the child ended.
    fn child_with_handlers(body: fn()) -> WaitStatus {
        // SAFETY: the child only installs signal handlers (no allocation on success) and runs
        // `body`, which faults or aborts; it leaves with _exit, never back into the harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                ignore_sent_faults();
                body();
                // SAFETY: _exit ends the child at once, as a forked child of a threaded
                // process must.
                unsafe { nix::libc::_exit(0) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    #[test]
    fn svcds_own_faults_still_end_it() {
        let status = child_with_handlers(|| std::process::abort());
        assert!(
            matches!(status, WaitStatus::Signaled(_, Sig::SIGABRT, _)),
            "{status:?}"
        );
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: ud2 raises an illegal instruction fault on purpose, in the child.
            let status = child_with_handlers(|| unsafe { std::arch::asm!("ud2") });
            assert!(
                matches!(status, WaitStatus::Signaled(_, Sig::SIGILL, _)),
                "{status:?}"
            );
        }
    }
}
