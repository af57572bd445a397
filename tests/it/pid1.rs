//! svcd as a container's init: PID 1 of a fresh PID namespace (skipped without root), and the
//! init duties it keeps outside one (child subreaper, `--init`, `svc status --check`).

use crate::util::*;
use std::path::Path;

/// The pid, as the host sees it, of svcd's child that is `ns_pid` inside svcd's namespace.
fn host_pid(svcd: &Svcd, ns_pid: u64) -> u32 {
    wait_until(&format!("svcd's child {ns_pid}"), DEADLINE, || {
        children(svcd.pid()).into_iter().find(|pid| {
            svc::proc::status(*pid)
                .and_then(|status| {
                    Some(
                        status
                            .field("NSpid")?
                            .split_whitespace()
                            .last()?
                            .to_string(),
                    )
                })
                .is_some_and(|id| id == ns_pid.to_string())
        })
    })
}

/// A unit that appends `stopped NAME` to `file` when it gets SIGTERM.
pub(crate) fn stops_politely(name: &str, file: &Path) -> String {
    format!(
        "exec = [\"sh\", \"-c\", \"trap 'echo stopped {name} >> {}; exit 0' TERM; sleep 1000 & wait\"]\n",
        file.display()
    )
}

#[test]
fn orphans_of_a_unit_leave_no_zombie() {
    let dir = Dir::new();
    let done = dir.path().join("done");
    // `( cmd & )`: the subshell exits at once, so each `cmd` is orphaned to PID 1 (svcd), lives
    // a moment, then exits.
    dir.unit(
        "spawner",
        &format!(
            "exec = [\"sh\", \"-c\", \"i=0; while [ $i -lt 200 ]; do ( sh -c 'echo x >> {}' & ); i=$((i+1)); done; exec sleep 1000\"]\n",
            done.display()
        ),
    );
    let Some(svcd) = dir.start_pid1() else { return };
    wait_until("200 orphans to have run", DEADLINE, || {
        let text = std::fs::read_to_string(&done).ok()?;
        (text.lines().count() >= 200).then_some(())
    });
    // Every orphan has exited and been reaped: svcd's only child is the unit's `sleep`.
    let left = wait_until("svcd's only child to be the unit", DEADLINE, || {
        let kids = children(svcd.pid());
        (kids.len() == 1).then_some(kids)
    });
    assert!(zombies_of(svcd.pid()).is_empty());
    let main = svcd.status("spawner")["pid"].as_u64().expect("a pid");
    assert_eq!(left, [host_pid(&svcd, main)]);
}

#[test]
fn sigterm_to_pid1_stops_every_unit_then_exits_0() {
    let dir = Dir::new();
    let stopped = dir.path().join("stopped");
    dir.unit("a", &stops_politely("a", &stopped));
    dir.unit("b", &stops_politely("b", &stopped));
    let Some(mut svcd) = dir.start_pid1() else {
        return;
    };
    svcd.wait_for("a", "running");
    svcd.wait_for("b", "running");
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(0), "{}", svcd.stderr());
    let text = std::fs::read_to_string(&stopped).unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, ["stopped a", "stopped b"], "{}", svcd.stderr());
}

#[test]
fn a_unit_killed_from_outside_is_restarted() {
    let Some(svcd) = Dir::new()
        .with(
            "app",
            "exec = [\"sleep\", \"1000\"]\n[restart]\ndelay = \"0s\"\n",
        )
        .start_pid1()
    else {
        return;
    };
    svcd.wait_for("app", "running");
    let first = svcd.status("app")["pid"].as_u64().expect("a pid");
    kill(host_pid(&svcd, first), 9);
    let status = svcd.wait_status("app", "a restart", |s| {
        s["restarts"] == 1 && s["state"] == "running"
    });
    assert_eq!(status["last_exit"]["signal"], "SIGKILL", "{status}");
    assert_ne!(status["pid"].as_u64(), Some(first));
}

#[test]
fn a_fatal_unit_that_fails_ends_svcd_with_status_3() {
    let dir = Dir::new();
    let stopped = dir.path().join("stopped");
    dir.unit(
        "app",
        "exec = [\"sleep\", \"1000\"]\nfatal = true\n[restart]\npolicy = \"never\"\n",
    );
    dir.unit(
        "flaky",
        "exec = [\"sh\", \"-c\", \"exit 1\"]\n[restart]\npolicy = \"never\"\n",
    );
    dir.unit("other", &stops_politely("other", &stopped));
    let Some(mut svcd) = dir.start_pid1() else {
        return;
    };
    // A unit without `fatal` that fails leaves svcd running.
    svcd.wait_for("flaky", "failed");
    svcd.wait_for("other", "running");
    svcd.wait_for("app", "running");
    assert!(svcd.try_exit().is_none(), "{}", svcd.stderr());

    let app = svcd.status("app")["pid"].as_u64().expect("a pid");
    kill(host_pid(&svcd, app), 9);
    let status = wait_until("svcd to exit", DEADLINE, || svcd.try_exit());
    // The app's status is svcd's: 128 + SIGKILL.
    assert_eq!(status.code(), Some(137), "{}", svcd.stderr());
    let stderr = svcd.stderr();
    assert!(
        stderr.contains("svcd: unit `app` ended (killed by SIGKILL) and is fatal"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&stopped).unwrap_or_default();
    assert_eq!(text.trim(), "stopped other", "{stderr}");
}

/// A classic daemon: forks, the child calls `setsid` and forks again, the middle one exits. The
/// daemon (a shell with a `sleep` child) writes its pid into `pidfile`.
fn double_fork(pidfile: &Path, then: &str) -> String {
    format!(
        "exec = [\"sh\", \"-c\", \"( setsid sh -c 'echo $$ > {p}.new; mv {p}.new {p}; sleep 1000; true' & ); {then}\"]\n",
        p = pidfile.display()
    )
}

#[test]
fn a_double_forked_daemon_is_adopted_and_ended_with_its_unit() {
    let dir = Dir::new();
    let pidfile = dir.path().join("daemon.pid");
    dir.unit("daemon", &double_fork(&pidfile, "exec sleep 1000"));
    let svcd = dir.start();
    let daemon = read_pids(&pidfile, 1)[0];
    // Its parent exited: it is svcd's now (child subreaper), in a session of its own.
    wait_until("the daemon to be adopted by svcd", DEADLINE, || {
        state_and_parent(daemon).filter(|(_, ppid)| *ppid == svcd.pid())
    });
    let worker = wait_until("the daemon's sleep", DEADLINE, || {
        children(daemon).first().copied()
    });
    svcd.svc_ok(&["stop", "daemon"], 0);
    // Ended, and reaped (gone, not a zombie) by svcd; its own child too.
    wait_until("the daemon to be gone", DEADLINE, || {
        state_and_parent(daemon).is_none().then_some(())
    });
    wait_until("the daemon's child to be dead", DEADLINE, || {
        is_dead(worker).then_some(())
    });
    // The child was adopted by svcd too: reaped as soon as svcd sees its SIGCHLD.
    wait_until("svcd to leave no zombie", DEADLINE, || {
        zombies_of(svcd.pid()).is_empty().then_some(())
    });
}

#[test]
fn the_strays_of_a_unit_end_when_its_main_process_exits() {
    let dir = Dir::new();
    let pidfile = dir.path().join("daemon.pid");
    // The main process waits until the daemon runs, then exits 0.
    let wait = format!(
        "while [ ! -s {} ]; do sleep 0.01; done; exit 0",
        pidfile.display()
    );
    dir.unit(
        "forking",
        &format!(
            "{}[restart]\npolicy = \"never\"\n",
            double_fork(&pidfile, &wait)
        ),
    );
    let svcd = dir.start();
    let daemon = read_pids(&pidfile, 1)[0];
    svcd.wait_for("forking", "inactive");
    wait_until("the daemon to be gone", DEADLINE, || {
        state_and_parent(daemon).is_none().then_some(())
    });
    // Found by the walk of its group and svcd's children, or as a member of its cgroup.
    let stderr = svcd.stderr();
    assert!(
        stderr.contains("outside its process group") || stderr.contains("besides the main one"),
        "{stderr}"
    );
}

#[test]
fn with_init_svcd_survives_stray_signals() {
    let mut svcd = Dir::new()
        .with("app", "exec = [\"sleep\", \"1000\"]\n")
        .start_with(&["--init"]);
    svcd.wait_for("app", "running");
    for (number, name) in [
        (10, "SIGUSR1"),
        (12, "SIGUSR2"),
        (14, "SIGALRM"),
        (3, "SIGQUIT"),
    ] {
        kill(svcd.pid(), number);
        wait_until(&format!("svcd to log {name}"), DEADLINE, || {
            svcd.stderr()
                .contains(&format!("svcd got {name}: ignored"))
                .then_some(())
        });
    }
    assert!(svcd.try_exit().is_none(), "{}", svcd.stderr());
    svcd.wait_for("app", "running");
    assert_eq!(svcd.signal_and_wait(15).code(), Some(0));
}

#[test]
fn status_check_is_a_liveness_probe() {
    let svcd = Dir::new()
        .with("web", "exec = [\"sleep\", \"1000\"]\n")
        .with("tool", "exec = [\"sleep\", \"1000\"]\nenabled = false\n")
        .start();
    svcd.wait_for("web", "running");
    let out = svcd.svc_ok(&["status", "--check"], 0);
    assert_eq!(out.trim(), "ok: 1 unit running and ready");
    // Named units must run, enabled or not.
    let out = svcd.svc_ok(&["status", "--check", "tool"], 3);
    assert!(out.starts_with("not ok: tool is inactive"), "{out}");
    // A stopped unit fails the probe, with the reason.
    svcd.svc_ok(&["stop", "web"], 0);
    let out = svcd.svc_ok(&["status", "--check"], 3);
    assert_eq!(out.trim(), "not ok: web is inactive (stopped by operator)");
}
