//! Regressions of the state directory, the notify socket and the files svcd creates.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Runs `command` to its end, killing it if it is still running after [`DEADLINE`] (a daemon
/// that should have refused to start); `None` then.
fn run_to_end(command: &mut Command) -> Option<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let exited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("the command to end", DEADLINE, || {
            child.try_wait().ok().flatten()
        })
    }));
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    child.wait_with_output().ok()
}

/// A second svcd beside the test's, with no units of its own.
fn second_svcd(svcd: &Svcd, state_dir: &Path, socket: &Path) -> Output {
    let empty = svcd.dir.path().join("no-units");
    std::fs::create_dir_all(&empty).expect("empty units dir");
    let out = run_to_end(
        Command::new(SVCD)
            .arg("--units")
            .arg(&empty)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--socket")
            .arg(socket)
            .arg("--config")
            .arg(svcd.dir.path().join("svcd.toml")),
    );
    out.expect("the second svcd was not refused: it ran on the first one's state directory")
}

/// A python unit that sends `READY=1` to `$NOTIFY_SOCKET`, then idles.
const NOTIFY_READY: &str = "exec = [\"python3\", \"-c\", \"import os, socket, time; \
     socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); \
     time.sleep(1000)\"]\nenabled = false\n[ready]\nnotify = true\ntimeout = \"20s\"\n";

#[test]
fn a_second_svcd_on_the_same_state_dir_is_refused_before_it_touches_the_first_ones_files() {
    let svcd = Dir::new().with("late", NOTIFY_READY).start();
    let state = svcd.dir.path().join("state");
    let other_socket = svcd.dir.path().join("other.sock");
    for socket in [svcd.socket.clone(), other_socket.clone()] {
        let out = second_svcd(&svcd, &state, &socket);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let expected = format!(
            "another svcd (pid {}) runs on {}",
            svcd.pid(),
            state.display()
        );
        assert!(stderr.contains(&expected), "{stderr}");
    }
    assert!(!other_socket.exists(), "the refused svcd left its socket");
    let lock = std::fs::read_to_string(state.join("svcd.lock")).expect("lock file");
    assert_eq!(lock.trim(), svcd.pid().to_string());
    // The first one still answers, and still hears its units on its notify socket.
    svcd.svc_ok(&["list"], 0);
    svcd.svc_ok(&["start", "late"], 0);
    svcd.wait_for("late", "ready");
}

/// svcd started by hand (not by the harness, which passes an absolute `--state-dir`); stopped
/// when dropped.
struct Bare {
    child: Child,
    socket: PathBuf,
    dir: Dir,
}

impl Bare {
    fn svc(&self, args: &[&str], code: i32) -> String {
        let out = Command::new(SVC)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("svc");
        let stderr = std::fs::read_to_string(self.dir.path().join("svcd.err")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.path().join("state/logs/n.log"))
                .unwrap_or_default();
        assert_eq!(out.status.code(), Some(code), "svc {args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("svcd.err")).unwrap_or_default()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        kill(self.child.id(), 15);
        let gone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("svcd to stop", DEADLINE, || {
                self.child.try_wait().ok().flatten()
            })
        }));
        if gone.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_relative_state_dir_exports_an_absolute_notify_socket_and_passed_fds_are_closed() {
    let dir = Dir::new();
    // 40 messages with a descriptor each: FDSTORE=1 (not kept by svcd), then a barrier, which
    // returns only once svcd closed the pipe's write end.
    let script = dir.path().join("barrier.py");
    std::fs::write(
        &script,
        "import os, select, socket, time\n\
         path = os.environ['NOTIFY_SOCKET']\n\
         open('notify-socket', 'w').write(path)\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.connect(path)\n\
         for _ in range(40):\n\
         \x20   r, w = os.pipe()\n\
         \x20   socket.send_fds(s, [b'FDSTORE=1'], [r, w])\n\
         \x20   os.close(r)\n\
         \x20   os.close(w)\n\
         r, w = os.pipe()\n\
         socket.send_fds(s, [b'BARRIER=1'], [w])\n\
         os.close(w)\n\
         p = select.poll()\n\
         p.register(r, select.POLLHUP)\n\
         open('barrier', 'w').write('passed' if p.poll(20000) else 'timed out')\n\
         s.send(b'READY=1')\n\
         time.sleep(1000)\n",
    )
    .expect("script");
    dir.unit(
        "n",
        &format!(
            "exec = [\"python3\", \"{}\"]\nenabled = false\n[ready]\nnotify = true\ntimeout = \"20s\"\n",
            script.display()
        ),
    );
    std::fs::write(dir.path().join("svcd.toml"), "").expect("config");
    let stderr = std::fs::File::create(dir.path().join("svcd.err")).expect("stderr");
    let child = Command::new(SVCD)
        .args([
            "--units",
            "units",
            "--state-dir",
            "state",
            "--config",
            "svcd.toml",
        ])
        .current_dir(dir.path())
        .env("SVCD_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("svcd");
    let svcd = Bare {
        child,
        socket: dir.path().join("state/svcd.sock"),
        dir,
    };
    wait_until("svcd's socket", DEADLINE, || {
        std::os::unix::net::UnixStream::connect(&svcd.socket).ok()
    });
    let before = fd_count(svcd.child.id());
    svcd.svc(&["start", "n"], 0);
    let timeout = format!("{}s", DEADLINE.as_secs());
    svcd.svc(&["wait", "n", "--for", "ready", "--timeout", &timeout], 0);
    let root = svcd.dir.path();
    let exported = std::fs::read_to_string(root.join("notify-socket")).expect("exported");
    assert!(exported.starts_with('/'), "NOTIFY_SOCKET={exported}");
    assert_eq!(
        std::fs::read_to_string(root.join("barrier")).expect("barrier"),
        "passed"
    );
    // The unit's log file and output pipes are new; none of the 81 descriptors it passed.
    let after = fd_count(svcd.child.id());
    assert!(after < before + 10, "svcd had {before} fds, now {after}");
    let log = svcd.stderr();
    assert!(!log.contains("No buffer space"), "{log}");
}

/// A unit whose main process runs python `setup`, then starts a child that runs python `pre`
/// (a string the setup may set) and sends `READY=1`, staying alive so that svcd can see its
/// parent; then the main process sends `STATUS=sent`: once the status shows, svcd has handled
/// the child's message.
fn child_says_ready(access: &str, setup: &str, marker: &Path) -> String {
    format!(
        "notify_access = \"{access}\"\n\
         exec = [\"python3\", \"-c\", \"\"\"\n\
import os, socket, subprocess, sys, time\n\
path = os.environ['NOTIFY_SOCKET']\n\
pre = ''\n\
{setup}\n\
child = \\\"import os, socket, time; \\\" + pre + \\\"socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); open('{m}', 'w').close(); time.sleep(1000)\\\"\n\
subprocess.Popen([sys.executable, '-c', child])\n\
while not os.path.exists('{m}'):\n\
\x20   time.sleep(0.01)\n\
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'STATUS=sent', path)\n\
time.sleep(1000)\n\
\"\"\"]\n\
         [ready]\nnotify = true\ntimeout = \"30s\"\n",
        m = marker.display()
    )
}

#[test]
fn a_child_of_a_unit_is_heard_only_with_notify_access_all() {
    let dir = Dir::new();
    let (m1, m2) = (dir.path().join("m1"), dir.path().join("m2"));
    dir.unit("main", &child_says_ready("main", "", &m1));
    dir.unit("all", &child_says_ready("all", "", &m2));
    let svcd = dir.start();
    svcd.wait_for("all", "ready");
    let status = svcd.wait_status("main", "its STATUS=sent", |s| s["status_text"] == "sent");
    assert_eq!(status["ready"], false, "{status}");
    assert_eq!(status["state"], "starting", "{status}");
}

#[test]
fn a_process_that_joins_another_units_group_cannot_speak_for_it() {
    let dir = Dir::new();
    let pgid_file = dir.path().join("pgid");
    let sent = dir.path().join("sent");
    // B waits for READY=1 that never comes from B; C requires B.
    dir.unit(
        "b",
        "exec = [\"sleep\", \"1000\"]\n[ready]\nnotify = true\ntimeout = \"30s\"\n",
    );
    dir.unit("c", "requires = [\"b\"]\nexec = [\"sleep\", \"1000\"]\n");
    // A's child joins B's process group (the pgid the test hands it) and sends READY=1. Units
    // now lead sessions of their own, so the kernel refuses the join (EPERM); the child sends
    // READY=1 either way, and it must not count for B.
    let setup = format!(
        "while not os.path.exists('{p}') or not open('{p}').read().strip():\n\
         \x20   time.sleep(0.01)\n\
         pre = 'import contextlib\\\\nwith contextlib.suppress(OSError): os.setpgid(0, %d)\\\\n' % int(open('{p}').read())\n",
        p = pgid_file.display()
    );
    dir.unit("a", &child_says_ready("main", &setup, &sent));
    let svcd = dir.start();
    svcd.wait_for("b", "starting");
    let b = svcd.wait_status("b", "b's pid", |s| s["pid"].is_u64());
    std::fs::write(&pgid_file, b["pid"].to_string()).expect("pgid");
    svcd.wait_status("a", "a's STATUS=sent", |s| s["status_text"] == "sent");
    let b = svcd.status("b");
    assert_eq!(b["ready"], false, "{b}");
    let c = svcd.status("c");
    assert!(c["pid"].is_null(), "c started before b was ready: {c}");
}

#[test]
fn a_flood_of_notify_messages_from_a_stranger_is_counted_not_logged() {
    let svcd = Dir::new()
        .with("idle", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("idle", "running");
    let socket = svcd.dir.path().join("state/notify.sock");
    let sent = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import socket\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             for i in range(5000):\n\
             \x20   s.sendto(b'READY=1\\nSTATUS=' + str(i).encode(), '{}')\n",
            socket.display()
        ))
        .status()
        .expect("python3");
    assert!(sent.success());
    svcd.svc_ok(&["list"], 0);
    wait_until("the drop summary", DEADLINE, || {
        svcd.stderr()
            .contains("notify messages from pids of no unit")
            .then_some(())
    });
    let log = svcd.stderr();
    let lines = log.lines().filter(|l| l.contains("notify")).count();
    assert!(lines <= 3, "{lines} lines about notify messages:\n{log}");
    assert_eq!(svcd.status("idle")["state"], "running");
}

#[test]
fn a_symlink_planted_as_a_log_file_is_not_followed() {
    let dir = Dir::new();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let logs = dir.path().join("state/logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    // Whatever the test's umask: a state dir svcd accepts.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path().join("state"), mode).expect("chmod");
    std::os::unix::fs::symlink(&victim, logs.join("u.log")).expect("symlink");
    dir.unit(
        "u",
        "exec = [\"sh\", \"-c\", \"echo hello; exec sleep 1000\"]\n",
    );
    let svcd = dir.start();
    let status = svcd.wait_status("u", "a log error", |s| s["log_error"].is_string());
    let error = status["log_error"].as_str().unwrap_or_default();
    assert!(error.contains("symbolic link"), "{status}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert_eq!(status["state"], "running", "{status}");
    svcd.svc_ok(&["list"], 0);
}

#[test]
fn a_state_dir_made_by_another_user_is_refused() {
    let is_root = nix::unistd::Uid::effective().is_root();
    if !is_root || Command::new("setpriv").arg("--version").output().is_err() {
        skip("needs root, useradd and setpriv");
        return;
    }
    let (Some(attacker), Some(victim)) = (TestUser::new(0), TestUser::new(0)) else {
        return;
    };
    // The attacker made the victim's default state dir first, open to itself.
    let planted = PathBuf::from(format!("/tmp/svc-{}", victim.uid));
    std::fs::create_dir(&planted).expect("planted dir");
    std::os::unix::fs::chown(&planted, Some(attacker.uid), Some(attacker.uid)).expect("chown");
    // Units and config the victim can read.
    let dir = Dir::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.path().join("svcd.toml"), "").expect("config");
    let uid = victim.uid.to_string();
    let out = run_to_end(
        Command::new("setpriv")
            .args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
            .arg(SVCD)
            .arg("--units")
            .arg(dir.units())
            .arg("--config")
            .arg(dir.path().join("svcd.toml"))
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir("/"),
    )
    .expect("svcd ran in a state dir another user made");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&planted.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("belongs to uid {}", attacker.uid)),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&planted).expect("planted").count(),
        0,
        "svcd wrote into the planted dir"
    );
    // svc, on the same default path, does not talk to a socket there either.
    let out = run_to_end(
        Command::new("setpriv")
            .args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
            .args([SVC, "list"])
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SVC_SOCKET")
            .current_dir("/"),
    )
    .expect("svc list");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("belongs to uid {}", attacker.uid)),
        "{stderr}"
    );
}
