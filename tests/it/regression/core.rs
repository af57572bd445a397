//! Regressions of the supervisor and the event loop: spawn failures, restarts, stops, shutdown.

use crate::util::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `svc ARGS...` against `svcd`, killing it if it has not answered within `timeout`: a
/// daemon that never returns to its event loop accepts connections but never answers.
fn svc_within(svcd: &Svcd, args: &[&str], timeout: Duration) -> Option<Output> {
    let mut child = Command::new(SVC)
        .arg("--socket")
        .arg(&svcd.socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run svc");
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().ok();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The unit's `status --json` object, or a failure naming the unit if svcd does not answer.
fn status_within(svcd: &Svcd, name: &str) -> serde_json::Value {
    let out = svc_within(svcd, &["status", name, "--json"], DEADLINE)
        .unwrap_or_else(|| panic!("svcd did not answer `svc status {name}` within {DEADLINE:?}"));
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    units[0].clone()
}

#[test]
fn a_spawn_that_fails_with_zero_delay_does_not_freeze_svcd() {
    let dir = Dir::new();
    let not_a_program = dir.path().join("a-directory");
    std::fs::create_dir(&not_a_program).expect("dir");
    let zero = "[restart]\ndelay = \"0s\"\n";
    dir.unit("typo", &format!("exec = [\"/no/such/program\"]\n{zero}"));
    dir.unit(
        "noworkdir",
        &format!("exec = [\"true\"]\nworkdir = \"/no/such/dir\"\n{zero}"),
    );
    dir.unit(
        "isdir",
        &format!("exec = [{:?}]\n{zero}", not_a_program.display().to_string()),
    );
    let mut svcd = dir.start();
    for name in ["typo", "noworkdir", "isdir"] {
        // Retried through the backoff: the daemon keeps answering while it retries.
        let status = wait_until(&format!("{name} retried"), DEADLINE, || {
            let status = status_within(&svcd, name);
            (status["restarts"].as_u64() >= Some(3)).then_some(status)
        });
        let reason = status["last_exit"]["reason"].as_str().unwrap_or("");
        assert!(reason.contains("spawn failed"), "{status}");
    }
    // And it still ends on SIGTERM.
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(0), "{}", svcd.stderr());
}

#[test]
fn zero_delay_crash_loop_is_throttled() {
    let svcd = Dir::new()
        .with("false", "exec = [\"false\"]\n[restart]\ndelay = \"0s\"\n")
        .start();
    svcd.wait_status("false", "a first restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let first = status_within(&svcd, "false")["restarts"]
        .as_u64()
        .unwrap_or(0);
    let start = Instant::now();
    // At least 2 s of wall time, measured here: load can only lower the count.
    let last = wait_until("2s to pass", DEADLINE, || {
        let status = status_within(&svcd, "false");
        (start.elapsed() >= Duration::from_secs(2)).then_some(status)
    });
    let restarts = last["restarts"].as_u64().unwrap_or(0) - first;
    // The floor (10ms, doubling to 1s) allows about a dozen; without it, thousands.
    assert!(
        restarts < 200,
        "{restarts} restarts in {:?}",
        start.elapsed()
    );
    assert!(restarts >= 2, "{last}");
}

#[test]
fn start_limit_message_counts_the_starts_allowed() {
    let svcd = Dir::new()
        .with(
            "flaky",
            "exec = [\"false\"]\n[restart]\ndelay = \"0s\"\nburst = 5\ninterval = \"1m\"\n",
        )
        .start();
    svcd.wait_for("flaky", "failed");
    let status = svcd.status("flaky");
    // Five starts (the first and four restarts), then the sixth is refused.
    assert_eq!(status["restarts"], 4, "{status}");
    assert_eq!(
        status["reason"], "start limit hit: 5 starts within 1m",
        "{status}"
    );
}

#[test]
fn a_setsid_child_with_a_cleared_environment_is_stopped_with_its_unit() {
    let dir = Dir::new();
    let pidfile = dir.path().join("stray.pid");
    // The child leaves the unit's group and session, and forgets SVC_UNIT: only the walk
    // below the main process, done before the main process dies, finds it.
    dir.unit(
        "leaky",
        &format!(
            "exec = [\"sh\", \"-c\", \"setsid env -i sh -c 'echo $$ > {}.tmp && mv {0}.tmp {0}; exec sleep 1000' & wait\"]\nenabled = false\n",
            pidfile.display()
        ),
    );
    let svcd = dir.start();
    for round in 0..30 {
        let _ = std::fs::remove_file(&pidfile);
        svcd.svc_ok(&["start", "leaky"], 0);
        let stray = read_pids(&pidfile, 1)[0];
        svcd.svc_ok(&["stop", "leaky"], 0);
        wait_until(
            &format!("round {round}: the stray {stray} to end with its unit"),
            Duration::from_secs(10),
            || is_dead(stray).then_some(()),
        );
    }
}

#[test]
fn a_main_process_that_leaves_its_group_can_be_stopped() {
    let dir = Dir::new();
    let moved = dir.path().join("moved");
    // Ignores SIGTERM, then tries to move itself into its child's new group, leaving its own
    // group empty. Units now lead their own session, where the kernel refuses that move
    // (EPERM); the stop must end the unit either way.
    let script = format!(
        "import os, signal, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         child = os.fork()\n\
         if child == 0:\n    time.sleep(1000)\n    os._exit(0)\n\
         os.setpgid(child, child)\n\
         try:\n    os.setpgid(0, child)\n    outcome = 'moved'\n\
         except OSError:\n    outcome = 'refused'\n\
         open({:?}, 'w').write(outcome)\n\
         time.sleep(1000)\n",
        moved.display().to_string()
    );
    dir.unit(
        "mover",
        &format!(
            "exec = [\"/usr/bin/python3\", \"-c\", {script:?}]\n[stop]\ntimeout = \"500ms\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("mover", "running");
    wait_until("the main process to try to move", DEADLINE, || {
        std::fs::read_to_string(&moved)
            .ok()
            .filter(|t| t == "moved" || t == "refused")
    });
    let main = svcd.status("mover")["pid"].as_u64().expect("a pid") as u32;
    let out = svc_within(&svcd, &["stop", "mover"], DEADLINE).expect("`svc stop` to return");
    assert_eq!(out.status.code(), Some(0), "{}", svcd.stderr());
    let status = svcd.status("mover");
    assert_eq!(status["state"], "inactive", "{status}");
    assert!(is_dead(main), "{status}");
}

/// A unit that ignores SIGTERM (so does its `sleep`, which inherits the ignored disposition).
const STUBBORN: &str = "exec = [\"sh\", \"-c\", \"trap '' TERM; exec sleep 1000\"]\n";

#[test]
fn shutdown_ends_within_its_timeout_whatever_the_stop_timeouts() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("svcd.toml"), "shutdown_timeout = \"1s\"\n").expect("config");
    let slow = "[stop]\ntimeout = \"30s\"\n";
    dir.unit("a", &format!("{STUBBORN}{slow}"));
    dir.unit("b", &format!("{STUBBORN}requires = [\"a\"]\n{slow}"));
    dir.unit("c", &format!("{STUBBORN}requires = [\"b\"]\n{slow}"));
    let mut svcd = dir.start();
    for name in ["a", "b", "c"] {
        svcd.wait_for(name, "running");
    }
    let pids: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|name| svcd.status(name)["pid"].as_u64().expect("a pid") as u32)
        .collect();
    let start = Instant::now();
    kill(svcd.pid(), 15);
    // Three stop timeouts of 30s in a row would take 90s; the shutdown's 1s bounds them all.
    let status = wait_until("svcd to exit", Duration::from_secs(15), || svcd.try_exit());
    assert_eq!(status.code(), Some(0), "{}", svcd.stderr());
    assert!(start.elapsed() < Duration::from_secs(15));
    for pid in pids {
        assert!(is_dead(pid), "unit process {pid} outlived svcd");
    }
}

#[test]
fn as_pid1_a_process_of_no_unit_gets_sigterm_before_svcd_exits() {
    let dir = Dir::new();
    let got = dir.path().join("got-term");
    let ready = dir.path().join("ready");
    dir.unit("app", "exec = [\"sleep\", \"1000\"]\n");
    let Some(mut svcd) = dir.start_pid1() else {
        return;
    };
    svcd.wait_for("app", "running");
    // As `docker exec` does: a process that enters svcd's namespace from outside, no unit's.
    let script = format!(
        "trap 'echo TERM > {}; exit 0' TERM; touch {}; while :; do sleep 0.05; done",
        got.display(),
        ready.display()
    );
    let mut outsider = Command::new("nsenter")
        .args([
            "--target",
            &svcd.pid().to_string(),
            "--pid",
            "--mount",
            "--",
        ])
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("nsenter");
    wait_until("the outsider to run", DEADLINE, || {
        ready.exists().then_some(())
    });
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(0), "{}", svcd.stderr());
    let outsider_status = wait_until("the outsider to end", DEADLINE, || {
        outsider.try_wait().ok().flatten()
    });
    let text = std::fs::read_to_string(&got).unwrap_or_default();
    assert_eq!(
        text.trim(),
        "TERM",
        "outsider: {outsider_status}; svcd: {}",
        svcd.stderr()
    );
}

/// svcd's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = svc::proc::status(pid).expect("status");
    assert!(status.field("VmRSS").is_some(), "no VmRSS in {status:?}");
    status.number("VmRSS")
}

/// Adds then removes unit `gone`, `cycles` times, each with a reload.
fn reload_cycles(svcd: &Svcd, cycles: usize) {
    let file = svcd.dir.units().join("gone.toml");
    for _ in 0..cycles {
        std::fs::write(&file, "exec = [\"sleep\", \"1000\"]\n").expect("write unit");
        svcd.svc_ok(&["reload"], 0);
        std::fs::remove_file(&file).expect("remove unit");
        svcd.svc_ok(&["reload"], 0);
    }
}

#[test]
fn reloads_that_remove_and_add_a_unit_do_not_grow_svcd() {
    let svcd = Dir::new()
        .with("stays", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    // Warm up: the allocator's arenas, the log registry's entry for the name.
    reload_cycles(&svcd, 50);
    let before = rss_kib(svcd.pid());
    reload_cycles(&svcd, 1000);
    let after = rss_kib(svcd.pid());
    let grown = after.saturating_sub(before);
    assert!(
        grown < 512,
        "svcd grew by {grown} KiB over 1000 reload cycles ({before} → {after} KiB)"
    );
    svcd.wait_for("stays", "running");
}

#[test]
fn init_mode_survives_fault_signals_sent_by_another_process() {
    let mut svcd = Dir::new()
        .with("app", "exec = [\"sleep\", \"1000\"]\n")
        .start_with(&["--init"]);
    svcd.wait_for("app", "running");
    // SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSTKFLT, SIGSYS.
    for signal in [4, 5, 6, 7, 8, 16, 31] {
        kill(svcd.pid(), signal);
        // Answering afterwards proves it alive (the signal is delivered before kill returns).
        let out = svc_within(&svcd, &["status", "app", "--json"], DEADLINE);
        assert!(
            out.is_some_and(|o| o.status.success()) && svcd.try_exit().is_none(),
            "svcd --init died of signal {signal}: {}",
            svcd.stderr()
        );
    }
    assert!(
        svcd.stderr()
            .contains("ignored SIGABRT sent by another process")
    );
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(0), "{}", svcd.stderr());
}

#[test]
fn a_sigstopped_unit_shows_as_paused_until_continued() {
    let svcd = Dir::new()
        .with("app", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("app", "running");
    let pid = svcd.status("app")["pid"].as_u64().expect("a pid") as u32;
    kill(pid, 19); // SIGSTOP
    let status = svcd.wait_status("app", "paused", |s| s["paused"] == true);
    assert_eq!(status["state"], "running", "{status}");
    let text = svcd.svc_ok(&["status", "app"], 0);
    assert!(text.contains("stopped (SIGSTOP)"), "{text}");
    kill(pid, 18); // SIGCONT
    svcd.wait_status("app", "continued", |s| s["paused"] == false);
    let text = svcd.svc_ok(&["status", "app"], 0);
    assert!(!text.contains("stopped ("), "{text}");
    // A stop of a stopped unit takes effect at once, not at the SIGKILL 10s later.
    kill(pid, 19);
    svcd.wait_status("app", "paused again", |s| s["paused"] == true);
    let start = Instant::now();
    svcd.svc_ok(&["stop", "app"], 0);
    let status = svcd.status("app");
    assert_eq!(status["last_exit"]["signal"], "SIGTERM", "{status}");
    assert!(start.elapsed() < DEADLINE);
}

/// A python3 that listens on a free port of 127.0.0.1: (its process, the port).
fn port_holder() -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket, sys, time\n\
             s = socket.socket()\n\
             s.bind(('127.0.0.1', 0))\n\
             s.listen(16)\n\
             print(s.getsockname()[1], flush=True)\n\
             time.sleep(1000)\n",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the port");
    let port = line.trim().parse().expect("a port number");
    (child, port)
}

/// Kills the port holder, also when the test fails.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_port_held_by_another_process_is_named_and_not_taken_for_ready() {
    let (child, port) = port_holder();
    let holder = Holder(child);
    let holder_pid = holder.0.id();
    let dir = Dir::new();
    // Tries to listen on the port, fails with EADDRINUSE.
    dir.unit(
        "clash",
        &format!(
            "exec = [\"/usr/bin/python3\", \"-c\", \"import socket; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(1)\"]\n\
             [restart]\npolicy = \"never\"\n[ready]\ntcp = \"127.0.0.1:{port}\"\n"
        ),
    );
    // Never listens: only the other process answers its ready check.
    dir.unit(
        "idle",
        &format!(
            "exec = [\"sleep\", \"1000\"]\n[ready]\ntcp = \"127.0.0.1:{port}\"\ntimeout = \"60s\"\n"
        ),
    );
    let svcd = dir.start();
    let in_use = format!("127.0.0.1:{port} is in use by pid {holder_pid} (python3)");
    svcd.wait_for("clash", "failed");
    let clash = svcd.status("clash");
    let reason = clash["last_exit"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains(&in_use), "{clash}");
    let idle = svcd.wait_status("idle", "the holder named", |s| {
        s["reason"].as_str().is_some_and(|r| r.contains(&in_use))
    });
    assert_eq!(idle["state"], "starting", "{idle}");
    assert_eq!(idle["ready"], false, "{idle}");
    assert!(
        idle["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not by this unit"),
        "{idle}"
    );
}

#[test]
fn status_json_gives_each_reason_a_stable_kind() {
    let svcd = Dir::new()
        .with(
            "quits",
            "exec = [\"sh\", \"-c\", \"exit 3\"]\n[restart]\npolicy = \"never\"\n",
        )
        .with("sleeps", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("quits", "failed");
    let quits = svcd.status("quits");
    assert_eq!(quits["reason_kind"], "exited", "{quits}");
    assert_eq!(quits["last_exit"]["kind"], "exited", "{quits}");
    assert_eq!(quits["last_exit"]["code"], 3, "{quits}");

    svcd.wait_for("sleeps", "running");
    assert_eq!(svcd.status("sleeps")["reason_kind"], "boot");
    svcd.svc_ok(&["stop", "sleeps"], 0);
    svcd.wait_for("sleeps", "inactive");
    let sleeps = svcd.status("sleeps");
    assert_eq!(sleeps["reason_kind"], "operator", "{sleeps}");
    assert_eq!(sleeps["last_exit"]["kind"], "killed", "{sleeps}");
}
