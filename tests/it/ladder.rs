//! The memory ladder (`memory.on_limit`): a unit is told through `MEMORY_PRESSURE_WATCH` as it
//! nears its limit, and one that sheds its caches then is not restarted. Skipped (visibly)
//! where svcd cannot make memory cgroups.

use crate::util::*;

/// Grows a cache by 4 MiB at a time, each page touched, to 84 MiB (with the interpreter, past
/// 90% of a 96M limit, below the limit), then waits on the FIFO named by
/// `MEMORY_PRESSURE_WATCH`; told, it drops the cache, writes `shed <MiB>` to `argv[1]` and
/// waits. Without the variable it just waits. No race with the kernel's limit: it never grows
/// that far.
const SHEDDER: &str = r#"
import os, select, sys, time
watch = os.environ.get("MEMORY_PRESSURE_WATCH")
fd = os.open(watch, os.O_RDONLY | os.O_NONBLOCK) if watch else None
cache = []
while len(cache) < 21:
    cache.append(b"c" * (4 << 20))
    time.sleep(0.01)
if fd is None:
    time.sleep(3600)
select.select([fd], [], [])
os.read(fd, 64)
size = len(cache) * 4
cache.clear()
with open(sys.argv[1], "w") as out:
    out.write("shed %d\n" % size)
time.sleep(3600)
"#;

/// svcd running the [`SHEDDER`] as unit `name` (limit 96M, grace 30s, `on_limit` as given),
/// with the path its marker goes to; `None` (after [`skip`]) where svcd cannot make memory
/// cgroups.
fn shedder(name: &str, on_limit: &str) -> Option<(Svcd, std::path::PathBuf)> {
    let dir = Dir::new();
    let script = dir.path().join("shedder.py");
    let marker = dir.path().join("shed");
    std::fs::write(&script, SHEDDER).expect("script");
    let unit = format!(
        "exec = [\"python3\", \"{}\", \"{}\"]\n[memory]\nmax = \"96M\"\non_limit = {on_limit}\ngrace = \"30s\"\n",
        script.display(),
        marker.display()
    );
    let svcd = dir.with(name, &unit).start();
    svcd.wait_for(name, "running");
    if svcd.status(name)["memory"]["mode"] != "cgroup" {
        skip("svcd cannot make memory cgroups here");
        return None;
    }
    Some((svcd, marker))
}

#[test]
fn a_unit_told_of_its_memory_sheds_its_cache_and_is_not_restarted() {
    let Some((svcd, marker)) = shedder("shedder", r#"["notify", "restart"]"#) else {
        return;
    };
    let shed = wait_until("the unit told and its cache shed", DEADLINE, || {
        std::fs::read_to_string(&marker).ok()
    });
    assert!(shed.starts_with("shed "), "{shed}");
    let status = svcd.status("shedder");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["state"], "running", "{status}");
    // Its status says when it was told, at what use (past 90% of 96M).
    let ladder = &status["memory"]["ladder"];
    assert_eq!(ladder["told"], 1, "{status}");
    assert!(ladder["last_told"].is_string(), "{status}");
    let at = ladder["last_told_bytes"].as_u64().unwrap_or(0);
    assert!(at >= 96 * 1024 * 1024 / 10 * 9, "{status}");
    let text = svcd.svc_ok(&["status", "shedder"], 0);
    assert!(text.contains("Told: of its memory at "), "{text}");
    assert!(
        svcd.stderr()
            .contains("unit told through MEMORY_PRESSURE_WATCH"),
        "{}",
        svcd.stderr()
    );
}

#[test]
fn a_unit_without_notify_is_given_no_pressure_watch() {
    let dir = Dir::new();
    let env = dir.path().join("env");
    let unit = format!(
        "shell = true\nexec = \"env > {} && exec sleep 1000\"\n[memory]\nmax = \"96M\"\n",
        env.display()
    );
    let svcd = dir.with("plain", &unit).start();
    svcd.wait_for("plain", "running");
    let seen = wait_until("the unit's environment", DEADLINE, || {
        std::fs::read_to_string(&env).ok().filter(|t| !t.is_empty())
    });
    assert!(!seen.contains("MEMORY_PRESSURE_WATCH"), "{seen}");
}

/// `reclaim` acts at the same crossing: with swap room it pages the unit out and says what that
/// freed; without (as on a host with no swap) it says why not. Either way, in svcd's log.
#[test]
fn reclaim_acts_at_the_crossing_and_says_what_it_freed_or_why_not() {
    let Some((svcd, _)) = shedder("reclaimed", r#"["reclaim", "restart"]"#) else {
        return;
    };
    let line = wait_until("a reclaim line in svcd's log", DEADLINE, || {
        let log = svcd.stderr();
        log.lines()
            .find(|l| l.contains("reclaimed ") || l.contains("no reclaim: "))
            .map(str::to_string)
    });
    assert!(line.contains("unit=reclaimed"), "{line}");
    assert_eq!(svcd.status("reclaimed")["restarts"], 0);
    // Its status says the same: what was freed, or why nothing was.
    let ladder = wait_until("the reclaim in the unit's status", DEADLINE, || {
        let status = svcd.status("reclaimed");
        let ladder = status["memory"]["ladder"].clone();
        (ladder["reclaims"].as_u64() >= Some(1)).then_some(ladder)
    });
    assert!(
        ladder["last_reclaim_freed"].is_u64() || ladder["last_reclaim_skipped"].is_string(),
        "{ladder}"
    );
    assert_eq!(ladder["told"], 0, "{ladder}");
}

/// The leaker of `bench/ladder.rs`: times notify and restart on its own clock.
const LEAKER: &str = include_str!("../../bench/ladder_leaker.py");

#[path = "../../bench/ladder_box.rs"]
mod ladder_box;
use ladder_box::BoxCgroup;

/// The bench's situation, short: svcd in a 256 MiB box with a unit leaking 10 MB/s (1.6 s from
/// its limit to the kernel's: no race with a loaded machine). Each time, the unit is told
/// before svcd restarts it, and the kernel kills nothing.
#[test]
fn in_a_small_box_a_leak_is_told_then_restarted_and_the_kernel_kills_nothing() {
    let cgroup = match BoxCgroup::create("test-ladder", 256 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => return skip(&why),
    };
    let dir = Dir::new();
    let leaker = dir.path().join("leaker.py");
    std::fs::write(&leaker, LEAKER).expect("leaker");
    let unit = format!(
        "exec = [\"python3\", \"{}\", \"2\", \"0.2\", \"32\"]\n[restart]\npolicy = \"always\"\n\
         delay = \"100ms\"\nburst = 1000\n[memory]\nmax = \"32M\"\non_limit = [\"notify\", \"restart\"]\n",
        leaker.display()
    );
    let procs = cgroup.dir.join("cgroup.procs");
    // svcd a child of the shell (no exec), so that the harness finds and stops svcd itself.
    let join = format!("echo 0 > {} && \"$@\"; exit $?", procs.display());
    let svcd = dir
        .with("leak", &unit)
        .start_wrapped(&["sh", "-c", &join, "sh"]);
    let log = svcd.dir.path().join("state/logs/leak.log");
    let lines = wait_until("two restarts of the leak, timed", DEADLINE, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let timed: Vec<String> = text
            .lines()
            // "early byte" lines too, for the message: the leaker says so when svcd's byte
            // came before it saw 90% itself.
            .filter(|l| l.contains(" notify ") || l.contains(" restart ") || l.contains(" early "))
            .map(str::to_string)
            .collect();
        (timed.iter().filter(|l| l.contains(" restart ")).count() >= 2).then_some(timed)
    });
    // svcd's side of it, for a failure's message: what it told, what it restarted and why.
    let said = || -> Vec<String> {
        svcd.stderr()
            .lines()
            .filter(|l| l.contains("leak"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(cgroup.oom_kills(), 0, "{lines:?} {:?}", said());
    // Each run: told first, then restarted, within seconds even on a loaded machine.
    let mut told = false;
    for line in lines.iter().filter(|l| !l.contains(" early ")) {
        let ms: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|ms| ms.parse().ok())
            .expect("a time in ms");
        assert!(ms < 5000.0, "{line} {:?}", said());
        if line.contains(" notify ") {
            told = true;
        } else {
            assert!(
                told,
                "restarted before being told: {lines:?}; svcd: {:?}",
                said()
            );
            told = false;
        }
    }
    drop(svcd);
}
