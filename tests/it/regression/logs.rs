//! Regressions of log capture, log files and svcd's own output.

use crate::util::*;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

/// A unit that prints on both streams and crashes, restarted again and again.
const CRASHING: &str = r#"
shell = true
exec = "echo out; echo err >&2; exit 1"
[restart]
delay = "10ms"
max_delay = "50ms"
"#;

/// svcd with the outputs a test chooses, started through `sh` as a shell script would start it
/// (`sh_prelude` may set what the shell leaves to it, e.g. `trap '' PIPE`).
fn start_svcd(dir: Dir, sh_prelude: &str, stdout: Stdio, stderr: Stdio) -> Svcd {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("{sh_prelude}\nexec \"$0\" \"$@\""))
        .arg(SVCD)
        .args(dir.svcd_args())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .env("SVCD_LOG", "debug")
        .spawn()
        .expect("spawn svcd");
    Svcd::adopt(dir, child)
}

/// The unit's `restarts` once `svc status` answers with at least `at_least`.
fn wait_restarts(svcd: &mut Svcd, name: &str, at_least: u64) -> u64 {
    wait_until(&format!("{at_least} restarts of {name}"), DEADLINE, || {
        if let Some(status) = svcd.try_exit() {
            panic!("svcd exited with {status}");
        }
        let out = svcd.svc(&["status", name, "--json"]);
        let units: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        units[0]["restarts"].as_u64().filter(|&n| n >= at_least)
    })
}

/// The write end of a pipe whose read end is already closed: writing to it fails with EPIPE
/// (or raises SIGPIPE).
fn unread_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    write
}

/// svcd keeps supervising, answering and stops cleanly although every one of its writes to
/// stderr and stdout fails: a crash is restarted, `svc status` answers, SIGTERM exits 0.
fn keeps_going(mut svcd: Svcd) {
    let restarts = wait_restarts(&mut svcd, "crash", 1);
    wait_restarts(&mut svcd, "crash", restarts + 2);
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(0), "svcd ended with {status}");
}

#[test]
fn svcd_survives_stderr_and_stdout_nobody_reads() {
    // SIGPIPE as a shell leaves it: default, or ignored (`trap '' PIPE`).
    for prelude in ["", "trap '' PIPE"] {
        let dir = Dir::new().with("crash", CRASHING);
        let out = Stdio::from(unread_pipe());
        let err = Stdio::from(unread_pipe());
        keeps_going(start_svcd(dir, prelude, out, err));
    }
}

#[test]
fn svcd_survives_a_terminal_that_hung_up() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = pty.slave.try_clone().expect("dup");
    let dir = Dir::new().with("crash", CRASHING);
    let (out, err) = (Stdio::from(pty.slave), Stdio::from(slave));
    // The terminal hangs up (its master closes) before svcd writes: each write fails with EIO.
    drop(pty.master);
    keeps_going(start_svcd(dir, "", out, err));
}
