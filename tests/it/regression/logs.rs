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

/// A tmpfs mounted for one test, unmounted (and its mount point removed) when dropped, also
/// when the test fails.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`, or `None`, with a note on stderr, where mounting is
    /// refused (not root, no capability).
    fn mount(path: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            skip(&format!("cannot mount a tmpfs at {}", path.display()));
            return None;
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        // The temp dir above it was removed while this was mounted, all but the mount point.
        let _ = std::fs::remove_dir(&self.path);
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The count of lines not written, from `status`' log error.
fn lost_lines(status: &serde_json::Value) -> Option<u64> {
    let error = status["log_error"].as_str()?;
    let (_, count) = error.rsplit_once("; ")?;
    count.split(' ').next()?.parse().ok()
}

#[test]
fn a_full_disk_leaves_whole_lines_and_counts_every_lost_one() {
    let dir = Dir::new().with(
        "talk",
        &format!(
            "shell = true\nexec = \"i=0; while :; do i=$((i+1)); echo line $i {}; sleep 0.005; done\"\n",
            "x".repeat(80)
        ),
    );
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("state"), "256k") else {
        return;
    };
    let svcd = dir.start();
    let log = svcd.dir.path().join("state/logs/talk.log");
    wait_until("lines in talk.log", DEADLINE, || {
        let text = std::fs::read_to_string(&log).ok()?;
        (text.lines().count() >= 5).then_some(())
    });
    // Fill the disk: the unit's next lines find no room, one of them in mid-write.
    let fill = svcd.dir.path().join("state/fill");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&fill).expect("fill file");
        while file.write_all(&[b'.'; 4096]).is_ok() {}
    }
    // The retries (after 1 s, then 2 s more) open the file again and fail again: the count
    // of lost lines only grows, and the file is never said to be writable. At most 200 lines a
    // second: 250 lost lines span the first retry.
    let mut last = 0;
    wait_until("250 lost lines", DEADLINE, || {
        let status = svcd.status("talk");
        let lost = lost_lines(&status);
        assert!(
            !svcd.stderr().contains("writable again"),
            "said writable while full: {}",
            svcd.stderr()
        );
        if last > 0 {
            let lost = lost.unwrap_or_else(|| panic!("the trouble went: {status}"));
            assert!(lost >= last, "lost lines went from {last} down to {lost}");
        }
        last = lost.unwrap_or(0);
        (last >= 250).then_some(())
    });
    let lines = |text: &str| text.lines().count();
    let before = lines(&std::fs::read_to_string(&log).expect("talk.log"));
    std::fs::remove_file(&fill).expect("free the disk");
    svcd.wait_status("talk", "the log writable again", |s| {
        s["log_error"].is_null()
    });
    assert!(
        svcd.stderr().contains("writable again"),
        "{}",
        svcd.stderr()
    );
    let text = wait_until("lines after the trouble", DEADLINE, || {
        let text = std::fs::read_to_string(&log).ok()?;
        (lines(&text) >= before + 3 && text.ends_with('\n')).then_some(text)
    });
    let mut previous = 0;
    for line in text.lines().filter(|l| !l.contains(" svcd ")) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            matches!(fields[..], [_, "out", "line", _, x] if x.len() == 80),
            "a line not whole: {line:?}"
        );
        let number: u64 = fields[3].parse().expect("a line number");
        assert!(number > previous, "{number} after {previous}");
        previous = number;
    }
}

#[test]
fn svcd_events_about_a_unit_are_in_its_log() {
    let svcd = Dir::new()
        .with(
            "crash",
            "shell = true\nexec = \"echo pid $$; exit 3\"\n[restart]\npolicy = \"never\"\n",
        )
        .start();
    svcd.wait_for("crash", "failed");
    let logs = svcd.svc_ok(&["logs", "crash", "-n", "50"], 0);
    let pid = logs
        .lines()
        .find_map(|line| line.split_once(" out pid ").map(|(_, pid)| pid))
        .unwrap_or_else(|| panic!("the unit's own line: {logs}"));
    let lines: Vec<&str> = logs
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |p| p.1))
        .collect();
    assert_eq!(
        lines,
        [
            format!("svcd running, pid {pid}: started with svcd"),
            format!("out pid {pid}"),
            "svcd failed: exited with code 3; restart policy is never".to_string(),
        ],
        "{logs}"
    );
    let status = svcd.svc_ok(&["status", "crash"], 3);
    assert!(
        status.contains(" svcd failed: exited with code 3"),
        "{status}"
    );
    let file = std::fs::read_to_string(svcd.dir.path().join("state/logs/crash.log"));
    assert!(file.is_ok_and(|f| f.contains(" svcd running, pid ")));
}

#[test]
fn unit_output_reaches_a_terminal_escaped() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let dir = Dir::new().with(
        "esc",
        r#"exec = ["sh", "-c", "printf 'a\\033[2J\\033]0;owned\\007b\\tc\\n'; sleep 1000"]"#,
    );
    let err = std::fs::File::create(dir.path().join("svcd.err")).expect("stderr file");
    let svcd = start_svcd(dir, "", Stdio::from(pty.slave), Stdio::from(err));
    // What the terminal shows, read as it comes (a terminal nobody reads would fill up).
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut master = std::fs::File::from(pty.master);
    let sink = shown.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        // Ends with EIO once svcd, the last holder of the terminal, is gone.
        while let Ok(n @ 1..) = master.read(&mut buffer) {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buffer[..n]);
        }
    });
    let shown = wait_until("the unit's line on the terminal", DEADLINE, || {
        let shown = shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let text = String::from_utf8_lossy(&shown).into_owned();
        text.contains("\n").then_some(text)
    });
    assert!(
        shown.contains("esc | a\\x1b[2J\\x1b]0;owned\\x07b\tc\r\n"),
        "{shown:?}"
    );
    assert!(
        !shown.contains('\x1b'),
        "an escape reached the terminal: {shown:?}"
    );
    let log = std::fs::read_to_string(svcd.dir.path().join("state/logs/esc.log"));
    assert!(
        log.as_ref()
            .is_ok_and(|l| l.contains(" out a\x1b[2J\x1b]0;owned\x07b\tc\n")),
        "the log file keeps what was printed: {log:?}"
    );
}

/// `svc logs` and `svc status` on a terminal showed a unit's escape sequences raw, so a unit
/// could rewrite the operator's screen through them too; piped, the lines stay as written.
#[test]
fn svc_shows_a_units_escapes_escaped_on_a_terminal() {
    let svcd = Dir::new()
        .with(
            "esc",
            r#"exec = ["sh", "-c", "printf 'a\\033[2Jb\\n'; exec sleep 1000"]"#,
        )
        .start();
    svcd.wait_for("esc", "running");
    wait_until("the unit's line in its log", DEADLINE, || {
        svcd.svc_ok(&["logs", "esc"], 0)
            .contains("a\x1b[2Jb")
            .then_some(())
    });
    for args in [&["logs", "esc"][..], &["status", "esc"][..]] {
        let out = Command::new("python3")
            .args([
                "-c",
                "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
                SVC,
            ])
            .arg("--socket")
            .arg(&svcd.socket)
            .args(args)
            .output()
            .expect("python3 runs svc on a pty");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains("a\\x1b[2Jb"), "svc {args:?}: {shown:?}");
        assert!(!shown.contains('\x1b'), "svc {args:?}: {shown:?}");
    }
}

/// A pipe whose read end the test keeps open but never reads, made as small as the kernel
/// allows (one page) so that svcd fills it within a few lines: (read end, write end).
fn small_unread_pipe() -> (OwnedFd, OwnedFd) {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("F_SETPIPE_SZ");
    (read, write)
}

/// Bytes waiting in the pipe of `read`.
fn pending(read: &OwnedFd) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which outlives the call.
    let rc = unsafe { nix::libc::ioctl(read.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    usize::try_from(n).unwrap_or(0)
}

#[test]
fn svcd_does_not_stall_on_a_full_stderr_pipe() {
    // As under a supervisor that stopped reading svcd's stderr: once the pipe is full, a
    // blocking write of svcd's own log stalled its one thread, and with it every unit.
    let (read, write) = small_unread_pipe();
    let dir = Dir::new().with("crash", CRASHING);
    let out = std::fs::File::create(dir.path().join("svcd.out")).expect("stdout file");
    let mut svcd = start_svcd(dir, "", Stdio::from(out), Stdio::from(write));
    // Thirty crashes log far more than the pipe's 4 KiB (each a few lines at debug level).
    wait_restarts(&mut svcd, "crash", 30);
    assert!(pending(&read) > 0, "svcd wrote nothing to its stderr");
    keeps_going(svcd);
    drop(read);
}
