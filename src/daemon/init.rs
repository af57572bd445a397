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
/// caught); and the faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS): a handler
/// that returns from a real fault would loop on it, and dying is the honest answer to a bug.
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
pub fn ignore_stray_signals() {
    let realtime = sigrtmin()..=sigrtmax();
    let mut streams: Vec<(i32, Signal)> = Vec::new();
    for number in IGNORED.into_iter().map(|s| s as i32).chain(realtime) {
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
    // kill(-1, 0) reaches every process but init itself: ESRCH means there is none.
    nix::sys::signal::kill(Pid::from_raw(-1), None).is_ok()
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
