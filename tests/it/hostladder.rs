//! The host policy's ladder (`memory.on_pressure`): as the host enters `warn` or `critical`,
//! units with `notify` are told through their `MEMORY_PRESSURE_WATCH` FIFO, with or without
//! cgroups or `memory.max`; units with `"none"` are left alone; in `critical` the one unit
//! that allows `restart` is restarted. The host is put in `warn` (or `critical`) at once by a
//! threshold of `"0"` bytes of swap, reached on any host, also one without swap.

use crate::util::*;
use std::path::{Path, PathBuf};

/// Waits on the FIFO named by `MEMORY_PRESSURE_WATCH` and, each time bytes come, writes
/// `told N` (the bytes read so far) to `argv[1]`. Without the variable it fails at once. A
/// hang-up (no writer left) is waited out.
const LISTENER: &str = r#"
import os, select, sys, time
fd = os.open(os.environ["MEMORY_PRESSURE_WATCH"], os.O_RDONLY | os.O_NONBLOCK)
told = 0
while True:
    select.select([fd], [], [])
    try:
        data = os.read(fd, 64)
    except BlockingIOError:
        continue
    if not data:
        time.sleep(0.05)
        continue
    told += len(data)
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write("told %d\n" % told)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"#;

/// A test dir whose svcd samples every 100 ms with the host thresholds `thresholds` (lines of
/// `[memory]` in svcd.toml), and the listener's script written.
fn host_dir(thresholds: &str) -> (Dir, PathBuf) {
    let dir = Dir::new();
    std::fs::write(
        dir.path().join("svcd.toml"),
        format!("[memory]\ninterval = \"100ms\"\n{thresholds}"),
    )
    .expect("config");
    let script = dir.path().join("listener.py");
    std::fs::write(&script, LISTENER).expect("script");
    (dir, script)
}

/// The unit file of a [`LISTENER`] writing to `marker`, with `on_pressure` as given.
fn listener(script: &Path, marker: &Path, on_pressure: &str) -> String {
    format!(
        "exec = [\"python3\", \"{}\", \"{}\"]\n[memory]\non_pressure = {on_pressure}\n",
        script.display(),
        marker.display()
    )
}

/// A unit that records its environment in `env`, then sleeps (`on_pressure` as given).
fn sleeper(env: &Path, on_pressure: &str) -> String {
    format!(
        "shell = true\nexec = \"env > {} && exec sleep 1000\"\n[memory]\non_pressure = {on_pressure}\n",
        env.display()
    )
}

/// The `told N` a listener wrote to `marker`, once it reaches `n`.
fn wait_told(marker: &Path, n: u32) -> String {
    wait_until(&format!("the unit told {n} time(s)"), DEADLINE, || {
        let text = std::fs::read_to_string(marker).ok()?;
        let count: u32 = text.trim().strip_prefix("told ")?.parse().ok()?;
        (count >= n).then_some(text)
    })
}

#[test]
fn on_pressure_takes_a_word_or_an_array_of_steps_and_svc_check_says_where_a_step_is_wrong() {
    let dir = Dir::new();
    for (name, value) in [
        ("word", "\"restart\""),
        ("none", "\"none\""),
        ("steps", "[\"notify\", \"reclaim\", \"restart\"]"),
        ("empty", "[]"),
    ] {
        dir.unit(
            name,
            &format!("exec = \"true\"\n[memory]\non_pressure = {value}\n"),
        );
    }
    let out = svc_check(&dir.units());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    dir.unit(
        "bad",
        "exec = \"true\"\n[memory]\non_pressure = [\"notify\", \"kill\"]\n",
    );
    dir.unit("worse", "exec = \"true\"\n[memory]\non_pressure = 3\n");
    let out = svc_check(&dir.units());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:3:15")
            && stderr.contains("memory.on_pressure")
            && stderr.contains("\"kill\""),
        "{stderr}"
    );
    assert!(stderr.contains("worse.toml:3:15"), "{stderr}");
}

/// Entering `warn` tells the unit with `notify` (no `memory.max` needed); its status says when
/// and why; a unit with `"none"` gets no FIFO and no step. With svcd's memory cgroups where it
/// can make them.
#[test]
fn entering_warn_tells_a_unit_with_notify_and_leaves_one_with_none_alone() {
    entering_warn_tells("");
}

/// [`entering_warn_tells_a_unit_with_notify_and_leaves_one_with_none_alone`] without cgroups.
#[test]
fn entering_warn_tells_a_unit_with_notify_also_without_cgroups() {
    entering_warn_tells("cgroups = \"off\"\n");
}

/// The two tests above, with `settings` added to svcd.toml's `[memory]`.
fn entering_warn_tells(settings: &str) {
    let (dir, script) = host_dir(&format!("swap_warn = \"0\"\n{settings}"));
    let marker = dir.path().join("told");
    let env = dir.path().join("env");
    let svcd = dir
        .with("told", &listener(&script, &marker, "[\"notify\"]"))
        .with("quiet", &sleeper(&env, "\"none\""))
        .start();
    let told = wait_told(&marker, 1);
    assert_eq!(told.trim(), "told 1");
    let status = svcd.wait_status("told", "the step in its status", |s| {
        s["memory"]["host_ladder"]["told"] == 1
    });
    let ladder = &status["memory"]["host_ladder"];
    assert!(ladder["last_told"].is_string(), "{status}");
    let cause = ladder["cause"].as_str().unwrap_or_default();
    assert!(cause.starts_with("host memory warn: swap "), "{status}");
    assert!(status["memory"]["ladder"].is_null(), "not its own limit");
    assert_eq!(status["restarts"], 0, "{status}");
    let text = svcd.svc_ok(&["status", "told"], 0);
    assert!(text.contains("Pressure: host memory warn"), "{text}");
    assert!(text.contains("Told: of host memory pressure at "), "{text}");
    let log = svcd.stderr();
    assert!(
        log.contains("told through MEMORY_PRESSURE_WATCH of host memory pressure"),
        "{log}"
    );
    // The unit with "none": no FIFO in its environment, nothing in its status.
    let seen = wait_until("the quiet unit's environment", DEADLINE, || {
        std::fs::read_to_string(&env).ok().filter(|t| !t.is_empty())
    });
    assert!(!seen.contains("MEMORY_PRESSURE_WATCH"), "{seen}");
    assert!(svcd.status("quiet")["memory"]["host_ladder"].is_null());
    if !settings.is_empty() {
        assert_eq!(status["memory"]["mode"], "sampled", "{status}");
    }
}

/// `reclaim` at `warn`: the unit's memory is paged out where swap has room, else the step is
/// skipped with the reason (as on a host without swap, where `"0"` bytes is reached too); its
/// status says which, and svcd's log names host memory pressure, at the step and at its outcome.
/// With cgroups and without.
#[test]
fn entering_warn_reclaims_a_unit_with_reclaim_or_says_why_not() {
    for settings in ["", "cgroups = \"off\"\n"] {
        let (dir, _) = host_dir(&format!("swap_warn = \"0\"\n{settings}"));
        let svcd = dir
            .with(
                "paged",
                "exec = [\"sleep\", \"1000\"]\n[memory]\non_pressure = [\"reclaim\"]\n",
            )
            .start();
        let status = svcd.wait_status("paged", "the reclaim in its status", |s| {
            s["memory"]["host_ladder"]["reclaims"] == 1
        });
        let ladder = &status["memory"]["host_ladder"];
        assert!(
            ladder["last_reclaim_freed"].is_u64() || ladder["last_reclaim_skipped"].is_string(),
            "{status}"
        );
        assert_eq!(ladder["told"], 0, "{status}");
        assert!(
            svcd.stderr()
                .contains("paging it out to swap for host memory warn"),
            "{}",
            svcd.stderr()
        );
        // The outcome's line names the cause too, in a cgroup as without one.
        let stderr = svcd.stderr();
        let outcome = stderr
            .lines()
            .find(|l| l.contains("reclaimed ") || l.contains("no reclaim"))
            .unwrap_or_else(|| panic!("no reclaim's outcome in svcd's log: {stderr}"));
        assert!(outcome.contains(" for host memory warn"), "{outcome}");
        let text = svcd.svc_ok(&["status", "paged"], 0);
        assert!(
            text.contains("Reclaim: for host memory pressure, "),
            "{text}"
        );
    }
}

/// `critical` restarts the one unit that allows `restart`, with host pressure as the reason;
/// the others run on, and the one with `notify` is told instead.
#[test]
fn critical_restarts_only_the_unit_with_restart_and_tells_the_others() {
    let (dir, script) = host_dir("swap_critical = \"0\"\n");
    let marker = dir.path().join("told");
    let env = dir.path().join("env");
    let svcd = dir
        .with(
            "victim",
            "exec = [\"sleep\", \"1000\"]\n[memory]\non_pressure = \"restart\"\n",
        )
        .with("told", &listener(&script, &marker, "[\"notify\"]"))
        .with("quiet", &sleeper(&env, "\"none\""))
        .start();
    let status = svcd.wait_status("victim", "the victim restarted", |s| {
        s["restarts"] == 1 && s["state"] == "running"
    });
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("host memory pressure: "), "{status}");
    assert!(
        status["memory"]["host_ladder"].is_null(),
        "restarted, not told: {status}"
    );
    wait_told(&marker, 1);
    let told = svcd.status("told");
    let cause = &told["memory"]["host_ladder"]["cause"];
    assert!(
        cause
            .as_str()
            .is_some_and(|c| c.starts_with("host memory critical: ")),
        "{told}"
    );
    // Within the cooldown (60 s by default) nothing else is restarted: the others ran on.
    for name in ["told", "quiet"] {
        let status = svcd.status(name);
        assert_eq!(status["restarts"], 0, "{status}");
        assert_eq!(status["state"], "running", "{status}");
    }
}

/// Straight from `ok` to `critical`, a unit that allows `notify` and `restart` is told first and
/// restarted at the next sample (svcd's log has both, in that order).
#[test]
fn critical_tells_a_victim_that_allows_notify_before_it_restarts_it() {
    let (dir, script) = host_dir("swap_critical = \"0\"\n");
    let marker = dir.path().join("told");
    let svcd = dir
        .with(
            "victim",
            &listener(&script, &marker, "[\"notify\", \"restart\"]"),
        )
        .start();
    let status = svcd.wait_status("victim", "the victim restarted", |s| s["restarts"] == 1);
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("host memory pressure: "), "{status}");
    let log = svcd.stderr();
    let order = (
        log.find("told through MEMORY_PRESSURE_WATCH of host memory pressure"),
        log.find("restarting: host memory pressure"),
    );
    assert!(
        matches!(order, (Some(told), Some(restarted)) if told < restarted),
        "{log}"
    );
}

/// A unit adopted after svcd's crash keeps the FIFO `memory.on_pressure` gave it (no cgroup
/// needed): the next svcd opens it again, and the unit is told through it at the next episode.
#[test]
fn an_adopted_unit_is_told_through_the_fifo_it_was_given() {
    let (dir, script) = host_dir("swap_warn = \"0\"\n");
    let marker = dir.path().join("told");
    let svcd = dir
        .with("told", &listener(&script, &marker, "[\"notify\"]"))
        .start();
    wait_told(&marker, 1);
    let pid = svcd.status("told")["pid"].as_u64();
    let svcd = crate::adopt::crash_and_start_again(svcd);
    let status = svcd.wait_status("told", "the unit adopted", |s| s["adopted"] == true);
    assert_eq!(status["pid"].as_u64(), pid, "{status}");
    // The new svcd's first sample enters warn: the same process is told a second time.
    assert_eq!(wait_told(&marker, 2).trim(), "told 2");
    assert_eq!(svcd.status("told")["pid"].as_u64(), pid);
}
