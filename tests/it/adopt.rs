//! svcd's own crash or upgrade takes no unit down: a svcd started after a `kill -9` of the
//! previous one adopts its units (same pids), restarts those that died meanwhile, and leaves a
//! process alone whose pid merely matches; `svc upgrade` re-executes svcd in place, every unit
//! and every line of their output kept.

use crate::util::{DEADLINE, Dir, Svcd, is_dead, kill, wait_until};
use serde_json::Value;
use std::path::Path;

const SLEEPER: &str = "exec = [\"sleep\", \"300\"]\n[restart]\ndelay = \"0s\"\n";

/// Kills, when dropped, the unit processes a test saw that still run as `sleep`: a test that
/// fails after `kill -9` of svcd must not leave its orphans behind.
struct Orphans(Vec<u32>);

impl Drop for Orphans {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if svc::proc::comm(pid).is_some_and(|comm| comm == "sleep") {
                kill(pid, 9);
            }
        }
    }
}

fn three_sleepers() -> Dir {
    Dir::new()
        .with("a", SLEEPER)
        .with("b", SLEEPER)
        .with("c", SLEEPER)
}

fn list(svcd: &Svcd) -> Vec<Value> {
    let out = svcd.svc_ok(&["list", "--json"], 0);
    serde_json::from_str::<Vec<Value>>(&out).expect("list --json")
}

pub(crate) fn pid_of(svcd: &Svcd, name: &str) -> u32 {
    let status = svcd.status(name);
    status["pid"].as_u64().expect("a pid") as u32
}

/// Waits until the state file (written by a thread of svcd's, soon after each change) records
/// the pids `svc list` shows.
fn wait_saved(svcd: &Svcd) {
    let pids =
        |units: &[Value]| -> Vec<Option<u64>> { units.iter().map(|u| u["pid"].as_u64()).collect() };
    let listed = pids(&list(svcd));
    wait_until("the state file to record every pid", DEADLINE, || {
        let text = std::fs::read_to_string(svcd.dir.path().join("state/state")).ok()?;
        let state: Value = serde_json::from_str(&text).ok()?;
        (pids(state["units"].as_array()?) == listed).then_some(())
    });
}

/// `kill -9` of svcd, then a new svcd on the same directory: the units' processes run on.
pub(crate) fn crash_and_start_again(svcd: Svcd) -> Svcd {
    crash_and_start_again_after(svcd, || {})
}

/// [`crash_and_start_again`], with `while_down` run between the two svcds.
pub(crate) fn crash_and_start_again_after(mut svcd: Svcd, while_down: impl FnOnce()) -> Svcd {
    wait_saved(&svcd);
    svcd.signal_and_wait(9);
    while_down();
    let dir = std::mem::replace(&mut svcd.dir, Dir::new());
    drop(svcd);
    dir.start()
}

/// A unit that prints `line N`, N counting up from 1, every 10 ms.
const PRINTER: &str = "exec = [\"sh\", \"-c\", \"i=0; while :; do i=$((i+1)); echo line $i; \
                       sleep 0.01; done\"]\n";

/// A printer that `kill -9` of svcd can meet only between two lines: svcd loses what it read
/// from a unit's pipe and had not written yet when it is killed (its read and its write are
/// microseconds apart, but a loaded machine may preempt it there), which no supervisor that
/// stamps lines can keep. The unit prints `line N` every 10 ms while the file `go` is in its
/// directory; without it, it prints nothing and writes the last N into `paused`. `count`
/// holds the last N printed.
struct Printer {
    dir: std::path::PathBuf,
}

impl Printer {
    fn new(dir: &Dir) -> Printer {
        let printer = Printer {
            dir: dir.path().join("printer"),
        };
        std::fs::create_dir_all(&printer.dir).expect("printer dir");
        std::fs::write(printer.dir.join("go"), "").expect("go");
        let script = "i=0; while :; do if [ -e go ]; then i=$((i+1)); echo line $i; \
                      echo $i > count.new; mv count.new count; \
                      else echo $i > paused.new; mv paused.new paused; fi; sleep 0.01; done";
        dir.unit(
            "printer",
            &format!(
                "exec = [\"sh\", \"-c\", \"{script}\"]\nworkdir = \"{}\"\n",
                printer.dir.display()
            ),
        );
        printer
    }

    fn number(&self, file: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the printing, and waits until svcd has logged every line printed.
    fn pause(&self, svcd: &Svcd) {
        std::fs::remove_file(self.dir.join("go")).expect("remove go");
        let last = wait_until("the printer to pause", DEADLINE, || self.number("paused"));
        let log = svcd.dir.path().join("state/logs/printer.log");
        wait_until("every printed line in the log", DEADLINE, || {
            (printed_lines(&log).last().copied().unwrap_or(0) >= last).then_some(())
        });
    }

    /// Printing again, and `lines` more printed (into the pipe, with svcd down).
    fn resume(&self, lines: u64) {
        let from = self.number("paused").unwrap_or(0);
        std::fs::write(self.dir.join("go"), "").expect("go");
        wait_until("lines printed", DEADLINE, || {
            (self.number("count")? >= from + lines).then_some(())
        });
        // Printing for good now: no `paused` is written while `go` is there.
        std::fs::remove_file(self.dir.join("paused")).expect("remove paused");
    }
}

/// The numbers of the `line N` lines in the log file `log`, in order.
fn printed_lines(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(" out line "))
        .filter_map(|(_, n)| n.trim().parse().ok())
        .collect()
}

/// The state file, parsed.
fn state_file(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state/state")).expect("state file");
    serde_json::from_str(&text).expect("state file is JSON")
}

#[test]
fn a_svcd_started_after_a_crash_adopts_the_running_units_instead_of_starting_copies() {
    let svcd = three_sleepers().start();
    for name in ["a", "b", "c"] {
        svcd.wait_for(name, "running");
    }
    let pids: Vec<u32> = ["a", "b", "c"].iter().map(|n| pid_of(&svcd, n)).collect();
    let _orphans = Orphans(pids.clone());
    // The state file is there and private before anything goes wrong.
    wait_saved(&svcd);
    let state = state_file(svcd.dir.path());
    assert_eq!(state["units"][0]["pid"].as_u64(), Some(u64::from(pids[0])));
    assert!(state["units"][0]["start_time"].as_u64().is_some());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(svcd.dir.path().join("state/state"))
            .expect("state")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let svcd = crash_and_start_again(svcd);
    let units = list(&svcd);
    // Answered, so svcd has said how long it took from its exec (issue 14's figure).
    let log = svcd.stderr();
    let said = log
        .lines()
        .find(|l| l.contains("every unit adopted and svcd answering"))
        .unwrap_or_else(|| panic!("no figure from exec in svcd's log:\n{log}"));
    assert!(
        said.contains("after its exec") && said.contains("adopted=3"),
        "{said}"
    );
    for (unit, pid) in units.iter().zip(&pids) {
        assert_eq!(unit["state"], "running", "{unit}");
        assert_eq!(unit["pid"].as_u64(), Some(u64::from(*pid)), "{unit}");
        assert_eq!(unit["adopted"], true, "{unit}");
        assert_eq!(unit["starts"], 1, "{unit}");
    }
    let table = svcd.svc_ok(&["list"], 0);
    assert!(table.contains(&format!("{}*", pids[0])), "{table}");
    // No second copy: each unit has only its one process.
    let sleepers = svc::proc::pids()
        .filter(|&pid| svc::proc::stat(pid).is_some_and(|s| s.ppid == svcd.pid()))
        .count();
    assert_eq!(sleepers, 0, "the new svcd spawned something");

    // A later crash of each adopted process is seen (not a child: a pidfd) and restarted.
    for (name, pid) in ["a", "b", "c"].iter().zip(&pids) {
        kill(*pid, 9);
        let status = svcd.wait_status(name, "a new process", |s| {
            s["state"] == "running" && s["pid"].as_u64() != Some(u64::from(*pid))
        });
        assert_eq!(status["restarts"], 1, "{status}");
        assert_eq!(
            status["last_exit"]["reason"], "exited while not a child of svcd",
            "{status}"
        );
        let unit = list(&svcd).into_iter().find(|u| u["name"] == *name);
        assert_eq!(unit.expect("listed")["adopted"], false);
    }
    // The adoption itself left the file as it was; the restarts wrote every unit in it.
    wait_saved(&svcd);
    assert_eq!(
        state_file(svcd.dir.path())["units"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn a_unit_killed_while_svcd_was_down_is_restarted_with_the_reason() {
    let mut svcd = three_sleepers().start();
    for name in ["a", "b", "c"] {
        svcd.wait_for(name, "running");
    }
    let pids: Vec<u32> = ["a", "b", "c"].iter().map(|n| pid_of(&svcd, n)).collect();
    let _orphans = Orphans(pids.clone());
    wait_saved(&svcd);
    svcd.signal_and_wait(9);
    kill(pids[1], 9);
    wait_until("b's process to die", DEADLINE, || {
        is_dead(pids[1]).then_some(())
    });
    let dir = std::mem::replace(&mut svcd.dir, Dir::new());
    drop(svcd);
    let svcd = dir.start();
    let status = svcd.wait_status("b", "b running again", |s| s["state"] == "running");
    assert_ne!(status["pid"].as_u64(), Some(u64::from(pids[1])));
    assert_eq!(status["reason"], "restarted (exited while svcd was down)");
    assert_eq!(status["last_exit"]["reason"], "exited while svcd was down");
    assert_eq!(status["restarts"], 1);
    assert_eq!(pid_of(&svcd, "a"), pids[0]);
    assert_eq!(pid_of(&svcd, "c"), pids[2]);
}

#[test]
fn a_process_whose_pid_matches_but_start_time_does_not_is_not_adopted() {
    let mut svcd = Dir::new().with("a", SLEEPER).start();
    svcd.wait_for("a", "running");
    let pid = pid_of(&svcd, "a");
    let _orphans = Orphans(vec![pid]);
    wait_saved(&svcd);
    svcd.signal_and_wait(9);
    // The same pid, another process: as if the unit had died and its pid been reused.
    let path = svcd.dir.path().join("state/state");
    let mut state = state_file(svcd.dir.path());
    let start = state["units"][0]["start_time"]
        .as_u64()
        .expect("start time");
    state["units"][0]["start_time"] = Value::from(start + 1);
    std::fs::write(&path, state.to_string()).expect("rewrite state");
    let dir = std::mem::replace(&mut svcd.dir, Dir::new());
    drop(svcd);
    let svcd = dir.start();
    let status = svcd.wait_status("a", "a running again", |s| s["state"] == "running");
    assert_ne!(status["pid"].as_u64(), Some(u64::from(pid)), "{status}");
    assert_eq!(status["last_exit"]["reason"], "exited while svcd was down");
    // Not the unit's (as far as svcd can tell): left alone, not signalled.
    assert!(!is_dead(pid), "svcd killed a process it did not own");
}

#[test]
fn svc_upgrade_keeps_svcd_pid_the_units_pids_and_every_line_they_print() {
    let mut svcd = Dir::new()
        .with("printer", PRINTER)
        .with("sleeper", SLEEPER)
        .start();
    svcd.wait_for("printer", "running");
    svcd.wait_for("sleeper", "running");
    let pids = (pid_of(&svcd, "printer"), pid_of(&svcd, "sleeper"));
    let _orphans = Orphans(vec![pids.1]);
    let svcd_pid = svcd.pid();
    for _ in 0..3 {
        svcd.svc_ok(&["upgrade"], 0);
    }
    assert!(svcd.try_exit().is_none(), "svcd exited: {}", svcd.stderr());
    assert_eq!(pid_of(&svcd, "printer"), pids.0);
    assert_eq!(pid_of(&svcd, "sleeper"), pids.1);
    assert_eq!(svcd.status("sleeper")["adopted"], true);
    assert_eq!(svcd.stderr().matches("upgrade asked for").count(), 3);
    assert_eq!(svcd.pid(), svcd_pid);

    // Every line, in order, none twice, also those printed across the three execs.
    let log = svcd.dir.path().join("state/logs/printer.log");
    let seen = printed_lines(&log);
    let target = seen.last().copied().unwrap_or(0) + 30;
    let lines = wait_until("30 more lines", DEADLINE, || {
        let lines = printed_lines(&log);
        (lines.last().copied()? >= target).then_some(lines)
    });
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert_eq!(
        lines, expected,
        "lines lost or repeated across the upgrades"
    );

    // Still svcd's children: a crash is reaped with its real status.
    kill(pids.1, 9);
    let status = svcd.wait_status("sleeper", "a new process", |s| {
        s["state"] == "running" && s["pid"].as_u64() != Some(u64::from(pids.1))
    });
    assert_eq!(status["last_exit"]["signal"], "SIGKILL", "{status}");
}

#[test]
fn sigusr2_upgrades_too() {
    let svcd = Dir::new().with("a", SLEEPER).start();
    svcd.wait_for("a", "running");
    let pid = pid_of(&svcd, "a");
    let _orphans = Orphans(vec![pid]);
    kill(svcd.pid(), 12);
    wait_until("svcd re-executed", DEADLINE, || {
        svcd.stderr().contains("re-executing").then_some(())
    });
    // Answers again, and still runs the same process.
    wait_until("the new svcd's answer", DEADLINE, || {
        let out = svcd.svc(&["status", "a", "--json"]);
        let units: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        (units[0]["adopted"] == true).then_some(())
    });
    assert_eq!(pid_of(&svcd, "a"), pid);
}

#[test]
fn a_unit_printing_through_two_crashes_of_svcd_keeps_running_and_every_line_is_logged() {
    let dir = Dir::new();
    let printer = Printer::new(&dir);
    let mut svcd = dir.start();
    svcd.wait_for("printer", "running");
    let pid = pid_of(&svcd, "printer");
    let log = svcd.dir.path().join("state/logs/printer.log");
    let numbers = move || printed_lines(&log);
    let more_than = |svcd: &Svcd, n: u64| {
        wait_until("more lines", DEADLINE, || {
            let lines = numbers();
            (lines.last().copied().unwrap_or(0) > n).then_some(lines)
        });
        assert!(svcd.status("printer")["pid"].as_u64() == Some(u64::from(pid)));
    };
    more_than(&svcd, 5);
    for _ in 0..2 {
        printer.pause(&svcd);
        // Ten lines printed while svcd is down, kept in the pipe the fd holder holds.
        svcd = crash_and_start_again_after(svcd, || printer.resume(10));
        let seen = numbers().last().copied().unwrap_or(0);
        more_than(&svcd, seen + 10);
    }
    let lines = numbers();
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert_eq!(lines, expected, "lines lost or repeated across the crashes");
    let status = svcd.status("printer");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["adopted"], true, "{status}");
}

#[test]
fn svc_upgrade_as_pid1_keeps_every_unit() {
    let Some(mut svcd) = Dir::new().with("a", SLEEPER).start_pid1() else {
        return;
    };
    svcd.wait_for("a", "running");
    // Pids as the namespace sees them: svcd is 1 there.
    let pid = svcd.status("a")["pid"].as_u64();
    svcd.svc_ok(&["upgrade"], 0);
    assert!(svcd.try_exit().is_none(), "svcd exited: {}", svcd.stderr());
    let status = svcd.status("a");
    assert_eq!(status["pid"].as_u64(), pid, "{status}");
    assert_eq!(status["adopted"], true, "{status}");
    assert_eq!(status["state"], "running", "{status}");
}

#[test]
fn a_unit_whose_command_changed_while_svcd_was_down_is_adopted_then_restarted() {
    let svcd = Dir::new().with("a", SLEEPER).start();
    svcd.wait_for("a", "running");
    let pid = pid_of(&svcd, "a");
    let _orphans = Orphans(vec![pid]);
    svcd.dir.unit(
        "a",
        "exec = [\"sleep\", \"301\"]\n[restart]\ndelay = \"0s\"\n",
    );
    let svcd = crash_and_start_again(svcd);
    let status = svcd.wait_status("a", "a new process", |s| {
        s["state"] == "running" && s["pid"].as_u64() != Some(u64::from(pid))
    });
    assert_eq!(
        status["reason"], "its unit file changed while svcd was down",
        "{status}"
    );
    wait_until("the old process to be stopped", DEADLINE, || {
        is_dead(pid).then_some(())
    });
}

/// The pid of the fd holder of the svcd whose state directory is `dir`.
fn holder_of(dir: &Path) -> Option<u32> {
    let dir = dir.to_string_lossy();
    svc::proc::pids().find(|&pid| {
        svc::proc::cmdline(pid).is_some_and(|argv| {
            argv.get(1).is_some_and(|a| a == "--fd-holder")
                && argv.get(2).is_some_and(|socket| socket.starts_with(&*dir))
        })
    })
}

/// Once idle, the fd holder waits with the code it ran let go of (its PSS was 1 MiB of svcd's
/// binary): then, after `kill -9` of svcd, it still hands the pipes back, and no line is lost.
#[test]
fn an_idle_fd_holder_lets_go_of_its_code_and_still_hands_the_pipes_back() {
    let dir = Dir::new();
    let printer = Printer::new(&dir);
    let svcd = dir.start();
    svcd.wait_for("printer", "running");
    let pid = pid_of(&svcd, "printer");
    let holder = wait_until("svcd's fd holder", DEADLINE, || holder_of(svcd.dir.path()));
    // A debug build's holder maps about 7 MiB of svcd's binary while it works, and under
    // 1 MiB once it let go.
    let rss = wait_until("the holder to let go of its code", DEADLINE, || {
        svc::proc::rollup(holder)
            .map(|r| r.rss)
            .filter(|&rss| rss < 1024)
    });
    let log = svcd.dir.path().join("state/logs/printer.log");
    let numbers = move || printed_lines(&log);
    printer.pause(&svcd);
    let before = numbers().len();
    let svcd = crash_and_start_again_after(svcd, || printer.resume(10));
    let status = svcd.status("printer");
    assert_eq!(status["pid"].as_u64(), Some(u64::from(pid)), "{status}");
    assert_eq!(status["adopted"], true, "{status}");
    let lines = wait_until("lines after the crash", DEADLINE, || {
        let lines = numbers();
        (lines.len() > before + 20).then_some(lines)
    });
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert_eq!(
        lines, expected,
        "lines lost or repeated (holder RSS was {rss} KiB)"
    );
}

/// The inodes of the sockets `pid` holds, sorted.
fn sockets_of(pid: u32) -> Vec<u64> {
    let mut inodes = svc::proc::socket_inodes(pid);
    inodes.sort_unstable();
    inodes
}

/// A unit's held sockets outlive svcd: after `kill -9` of svcd (through the fd holder) and
/// across `svc upgrade` (across the `exec`), the next svcd takes the same sockets back and its
/// next run gets them, not new ones bound while the old ones still held the address.
#[test]
fn held_sockets_are_taken_back_after_a_crash_and_an_upgrade() {
    let dir = Dir::new();
    let port = crate::ready::free_port();
    let path = dir.path().join("app.sock");
    dir.unit(
        "app",
        &format!(
            "exec = [\"sleep\", \"300\"]\nlisten = [\"127.0.0.1:{port}\", \"unix:{}\"]\n",
            path.display()
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("app", "running");
    let first = pid_of(&svcd, "app");
    let held = sockets_of(first);
    assert_eq!(held.len(), 2, "{held:?}");
    let _orphans = Orphans(vec![first]);
    // The holder has them once svcd told it (with the spawn): then the crash.
    wait_until("the fd holder to hold the sockets", DEADLINE, || {
        let holder = holder_of(svcd.dir.path())?;
        let kept = sockets_of(holder);
        held.iter().all(|i| kept.contains(i)).then_some(())
    });
    let mut svcd = crash_and_start_again(svcd);
    assert_eq!(pid_of(&svcd, "app"), first, "adopted");
    let restarted = |svcd: &Svcd, before: u32| {
        svcd.svc_ok(&["restart", "app"], 0);
        let pid = pid_of(svcd, "app");
        assert_ne!(pid, before);
        pid
    };
    let second = restarted(&svcd, first);
    assert_eq!(sockets_of(second), held, "the same sockets after the crash");
    let state = state_file(svcd.dir.path());
    let app = &state["units"][0];
    assert_eq!(
        app["sockets"][0]["addr"],
        format!("127.0.0.1:{port}"),
        "{state}"
    );
    svcd.svc_ok(&["upgrade"], 0);
    assert!(svcd.try_exit().is_none(), "svcd exited: {}", svcd.stderr());
    let third = restarted(&svcd, second);
    assert_eq!(
        sockets_of(third),
        held,
        "the same sockets after the upgrade"
    );
    assert!(path.exists(), "the Unix socket's file is kept");
}

/// After a clean `svc shutdown` every unit is stopped: the next svcd on the same directory
/// starts them afresh. The state file was kept, recording the units as they were while they
/// stopped, and the next svcd took each for a run lost while it was down: "restarted (exited
/// while svcd was down)", its restarts counted on (seen in the README's demo).
#[test]
fn after_a_clean_shutdown_the_next_svcd_starts_its_units_afresh() {
    let mut svcd = three_sleepers().start();
    for name in ["a", "b", "c"] {
        svcd.wait_for(name, "running");
    }
    wait_saved(&svcd);
    svcd.svc_ok(&["shutdown"], 0);
    let status = wait_until("svcd to exit", DEADLINE, || svcd.try_exit());
    assert!(status.success(), "{status}");
    assert!(
        !svcd.dir.path().join("state/state").exists(),
        "the state file outlived a clean shutdown"
    );
    let dir = std::mem::replace(&mut svcd.dir, Dir::new());
    drop(svcd);
    let svcd = dir.start();
    for name in ["a", "b", "c"] {
        svcd.wait_for(name, "running");
        let status = svcd.status(name);
        assert_eq!(status["restarts"], 0, "{status}");
        assert!(status["last_exit"].is_null(), "{status}");
    }
}
