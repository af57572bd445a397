//! `type = "oneshot"` and `type = "forking"`.

use crate::util::*;

/// A unit that requires a one-shot setup task was stopped when the task exited 0, and the task
/// counted as up once spawned: `app` must start after `prep` finished and keep running.
#[test]
fn a_unit_requiring_a_oneshot_keeps_running_after_it_exits_0() {
    let dir = Dir::new();
    let root = dir.path().display();
    dir.unit(
        "prep",
        &format!("type = \"oneshot\"\nworkdir = \"{root}\"\nexec = [\"touch\", \"prepared\"]\n"),
    );
    dir.unit(
        "app",
        &format!(
            "requires = [\"prep\"]\nworkdir = \"{root}\"\nshell = true\n\
             exec = \"test -e prepared && exec sleep 1000\"\nrestart.policy = \"never\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("app", "running");
    let prep = svcd.status("prep");
    assert_eq!(prep["state"], "inactive", "{prep}");
    assert_eq!(prep["reason_kind"], "finished", "{prep}");
    let app = svcd.status("app");
    assert_eq!(
        (app["state"].as_str(), app["starts"].as_u64()),
        (Some("running"), Some(1)),
        "{app}"
    );
    let log = svcd.stderr();
    assert!(!log.contains("required unit prep is going down"), "{log}");
}

/// A daemonizing command's exit 0 ended the unit: its group got SIGKILL (a daemon that stayed
/// in it died at once) and a daemon that left it ran on untracked.
#[test]
fn a_daemonizing_command_leaves_its_daemon_running_and_tracked() {
    let dir = Dir::new();
    let root = dir.path().display();
    dir.unit(
        "daemon",
        &format!(
            "type = \"forking\"\nworkdir = \"{root}\"\nshell = true\npidfile = \"{root}/daemon.pid\"\n\
             exec = \"sleep 1000 & echo $! > daemon.pid\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("daemon", "running");
    let pid = read_pids(&svcd.dir.path().join("daemon.pid"), 1)[0];
    let status = svcd.status("daemon");
    assert_eq!(status["pid"].as_u64(), Some(u64::from(pid)), "{status}");
    assert!(!is_dead(pid), "the daemon runs");
    svcd.svc_ok(&["stop", "daemon"], 0);
    wait_until("the daemon gone", DEADLINE, || is_dead(pid).then_some(()));
}
