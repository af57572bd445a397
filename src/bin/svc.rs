//! `svc`: the client. See `man svc`.
//!
//! svc has a C `main` of its own (`no_main`). std's start-up before a Rust `main` (an alternate
//! signal stack, the main thread's stack bounds read from /proc/self/maps: a dozen system
//! calls) was a tenth of the whole `svc status` command, which scripts and probes run in loops.
//! Of that start-up svc keeps what it needs: SIGPIPE ignored (a reader that left is an EPIPE,
//! see `cli::print`), and descriptors 0, 1 and 2 opened on /dev/null where the caller closed
//! them, so that the socket to svcd never becomes stdout. The arguments are std's as ever
//! (glibc hands them to std before `main`), and the end goes through `process::exit`, which
//! flushes stdout as a return from a Rust `main` does. A stack overflow is a plain SIGSEGV,
//! without std's message.
#![cfg_attr(not(test), no_main)]

/// Not in a test build of this file, whose harness brings its own `main` (it has no tests).
#[cfg(not(test))]
mod entry {
    use clap::Parser;
    use std::ffi::{c_char, c_int};

    #[unsafe(no_mangle)]
    extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
        start();
        let argv: Vec<_> = std::env::args_os().collect();
        let code = match svc::cli::quick_status(&argv) {
            Some(code) => code,
            None => match svc::cli::Args::try_parse_from(argv) {
                Ok(args) => svc::cli::run(args),
                Err(e) => {
                    let _ = e.print();
                    if e.use_stderr() {
                        svc::cli::exit::USAGE
                    } else {
                        svc::cli::exit::OK
                    }
                }
            },
        };
        std::process::exit(i32::from(code))
    }

    /// What svc needs of std's start-up: SIGPIPE ignored, and 0, 1 and 2 open.
    fn start() {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: SIG_IGN runs no code of ours, and no other thread exists yet.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
        for fd in 0..3 {
            // SAFETY: F_GETFD only reads the descriptor's flags; it fails (EBADF) only on a
            // descriptor that is not open.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                // Opened for good as the lowest free number, which is `fd` (the lower ones are
                // open by then): the process's stdin, stdout or stderr until it ends.
                // SAFETY: a constant NUL-terminated path; the descriptor is never closed here.
                unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            }
        }
    }
}
