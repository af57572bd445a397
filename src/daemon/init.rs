//! The duties of an init: adopt orphans, and never die of a stray signal.
//!
//! Reaping itself needs nothing more here: the daemon's one `waitpid(-1)` loop reaps every
//! child on SIGCHLD, its own units' main processes and adopted orphans alike.

use nix::sys::signal::Signal as Sig;
use std::task::Poll;
use tokio::signal::unix::{Signal, SignalKind, signal};

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

/// The real-time signals' range on Linux with glibc or musl: 34..=64 (glibc keeps 32 and 33 for
/// its threads; musl likewise reserves the first few). Only the kernel's upper bound is fixed.
fn sigrtmin() -> i32 {
    34
}

fn sigrtmax() -> i32 {
    64
}
