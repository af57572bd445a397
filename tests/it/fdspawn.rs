//! A spawn's descriptors: the child shares svcd's descriptor table until it takes one of its
//! own with only the low descriptors (svcd's reserved slots), so that a spawn costs the same
//! beside 1,000 units as alone. The unit must get exactly its stdio and held sockets, and
//! svcd's own descriptors must come out of every spawn as they went in.

use crate::util::*;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Idle units beside the one under test: two output pipes each in svcd.
const IDLE: usize = 100;
const RUNS: u64 = 200;
const LONG: std::time::Duration = std::time::Duration::from_secs(90);

/// svcd on `dir` holding nothing but stdio at its start, as at boot: the test process may have
/// inherited descriptors without close-on-exec, which svcd would pass on to its units (those
/// are not what these tests look for).
fn start_clean(dir: Dir) -> Svcd {
    let out = std::fs::File::create(dir.path().join("svcd.out")).expect("stdout file");
    let err = std::fs::File::create(dir.path().join("svcd.err")).expect("stderr file");
    let mut command = Command::new(SVCD);
    command
        .args(dir.svcd_args())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("SVCD_LOG", "debug");
    // SAFETY: close_range is async-signal-safe and touches only the child's own descriptors
    // (std's exec-failure pipe is close-on-exec and above 2, but std reports through it only
    // when exec fails, which the test's `adopt` then sees as an early exit).
    unsafe {
        command.pre_exec(|| {
            let flags = nix::libc::CLOSE_RANGE_CLOEXEC;
            nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, flags);
            Ok(())
        });
    }
    let child = command.spawn().expect("spawn svcd");
    Svcd::adopt(dir, child)
}

fn with_idle_units(mut dir: Dir) -> Dir {
    for i in 0..IDLE {
        dir = dir.with(&format!("idle{i:03}"), "exec = [\"sleep\", \"600\"]\n");
    }
    dir
}

fn wait_idle_running(svcd: &Svcd) {
    let mut args = vec!["wait".to_string()];
    args.extend((0..IDLE).map(|i| format!("idle{i:03}")));
    args.extend(["--for", "running", "--timeout", "60s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    svcd.svc_ok(&args, 0);
}

/// `pid`'s descriptors: number → what it refers to.
fn fds_of(pid: u32) -> BTreeMap<i32, String> {
    let dir = format!("/proc/{pid}/fd");
    let mut fds = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let entry = entry.expect("an fd entry");
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // Gone since the listing (svcd closed it): not open.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            fds.insert(fd, target.display().to_string());
        }
    }
    fds
}

/// Each run lists its shell's descriptors (`ls` sees the shell's, not its own), then crashes.
const LIST_FDS: &str = "exec = [\"/bin/sh\", \"-c\", \"echo begin; ls -l /proc/$$/fd; echo end; exit 1\"]\nenabled = false\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\nmultiplier = 1.0\nmax_delay = \"1ms\"\nreset_after = \"1ms\"\n";

/// The runs' listings in `log` (`svc logs` lines): descriptor → target, one map per run.
fn listings(log: &str) -> Vec<BTreeMap<i32, String>> {
    let mut runs = Vec::new();
    let mut current: Option<BTreeMap<i32, String>> = None;
    for line in log.lines() {
        if line.ends_with(" begin") {
            current = Some(BTreeMap::new());
        } else if line.ends_with(" end") {
            runs.extend(current.take());
        } else if let (Some(run), Some((left, target))) = (&mut current, line.split_once(" -> ")) {
            let fd = left.split_whitespace().last().and_then(|n| n.parse().ok());
            if let Some(fd) = fd {
                run.insert(fd, target.trim().to_string());
            }
        }
    }
    runs
}

#[test]
fn a_child_gets_exactly_its_stdio_and_held_sockets_beside_many_descriptors_of_svcd() {
    let dir = with_idle_units(Dir::new());
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let unit = format!(
        "listen = [\"unix:{}\", \"unix:{}\"]\n{LIST_FDS}",
        a.display(),
        b.display()
    );
    let svcd = start_clean(dir.with("listing", &unit));
    wait_idle_running(&svcd);
    assert!(
        fds_of(svcd.pid()).len() > 2 * IDLE,
        "svcd holds its units' pipes"
    );
    svcd.svc_ok(&["start", "--no-wait", "listing"], 0);
    let runs = wait_until("20 runs' listings", LONG, || {
        let log = svcd.svc_ok(&["logs", "listing", "-n", "10000"], 0);
        Some(listings(&log)).filter(|runs| runs.len() >= 20)
    });
    svcd.svc_ok(&["stop", "listing"], 0);
    for run in &runs {
        let fds: Vec<i32> = run.keys().copied().collect();
        assert_eq!(fds, [0, 1, 2, 3, 4], "the unit's descriptors: {run:?}");
        assert_eq!(run[&0], "/dev/null", "{run:?}");
        assert!(run[&1].starts_with("pipe:"), "{run:?}");
        assert!(run[&2].starts_with("pipe:"), "{run:?}");
        assert_ne!(run[&1], run[&2], "stdout and stderr are pipes of their own");
        assert!(run[&3].starts_with("socket:"), "{run:?}");
        assert!(run[&4].starts_with("socket:"), "{run:?}");
    }
}

#[test]
fn svcd_keeps_its_own_descriptors_as_they_were_across_two_hundred_respawns() {
    let dir = with_idle_units(Dir::new());
    let unit = "exec = [\"/bin/sh\", \"-c\", \"exit 1\"]\nenabled = false\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\nmultiplier = 1.0\nmax_delay = \"1ms\"\nreset_after = \"1ms\"\n";
    let svcd = start_clean(dir.with("crash", unit));
    wait_idle_running(&svcd);
    // One run first, so that what svcd keeps per unit across runs (its log file) is there.
    svcd.svc_ok(&["start", "crash"], 0);
    svcd.svc_ok(&["stop", "crash"], 0);
    let before = fds_of(svcd.pid());
    // The idle units' pipes, as their own ends name them: svcd must hold the other ends.
    let idle_pipes: Vec<String> = (0..IDLE)
        .map(|i| {
            svcd.status(&format!("idle{i:03}"))["pid"]
                .as_u64()
                .expect("a pid") as u32
        })
        .flat_map(|pid| {
            let fds = fds_of(pid);
            [fds[&1].clone(), fds[&2].clone()]
        })
        .collect();
    for pipe in &idle_pipes {
        assert!(before.values().any(|t| t == pipe), "svcd holds {pipe}");
    }
    svcd.svc_ok(&["start", "--no-wait", "crash"], 0);
    wait_until(&format!("{RUNS} restarts"), LONG, || {
        Some(svcd.status("crash")).filter(|s| s["restarts"].as_u64() >= Some(RUNS))
    });
    svcd.svc_ok(&["stop", "crash"], 0);
    // The last run's pipes close as svcd drains them: wait for that, then compare what a
    // spawn could leave behind: the slots (/dev/null, also when one kept a cgroup's file) and
    // pipes. (svcd opens and closes others meanwhile: its state file, sockets, cgroup files.)
    let before = spawn_fds(before);
    let kept = |after: &BTreeMap<i32, String>| spawn_fds(after.clone()) == before;
    let deadline = std::time::Instant::now() + DEADLINE;
    let after = loop {
        let after = fds_of(svcd.pid());
        if kept(&after) || std::time::Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(spawn_fds(after), before, "svcd's descriptors changed");
}

/// Of `fds`, /dev/null (svcd's slots) and pipes (the units' output).
fn spawn_fds(mut fds: BTreeMap<i32, String>) -> BTreeMap<i32, String> {
    fds.retain(|_, t| t == "/dev/null" || t.starts_with("pipe:"));
    fds
}
