//! A memory cgroup per unit (svcd.toml `memory.cgroups`, on by default where the memory
//! controller is usable): every process of a unit is in it and ends with it, the kernel holds
//! the limit, its OOM kill is the reason, svcd's cgroups are its own and gone when it exits.
//! Skipped (visibly) where svcd cannot make memory cgroups; CI runs where it can.

use crate::util::*;
use std::path::PathBuf;

const SLEEP: &str = "exec = [\"sleep\", \"1000\"]\n";

/// A unit whose processes leave its process group, its session and its environment.
const ESCAPING: &str = r#"
shell = true
exec = "setsid sh -c 'env -i sleep 1000 & exec sleep 1000' & exec sleep 1000"
"#;

/// `name`'s status, or `None` (with a skip note) where svcd runs it without a cgroup.
fn in_cgroup(svcd: &Svcd, name: &str) -> Option<serde_json::Value> {
    let status = svcd.status(name);
    if status["memory"]["mode"] != "cgroup" {
        skip(&format!(
            "svcd cannot make memory cgroups here: {}",
            svcd.stderr()
                .lines()
                .find(|l| l.contains("cgroup"))
                .unwrap_or("(no word on cgroups in its log)")
        ));
        return None;
    }
    Some(status)
}

/// The directory of the v1 memory cgroup of process `pid`.
fn memory_cgroup_of(pid: u64) -> PathBuf {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
    let path = cgroups
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        })
        .expect("a memory cgroup line");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let (root, mount) = mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut after = after.split(' ');
            let (fstype, _, options) = (after.next()?, after.next()?, after.next()?);
            if fstype != "cgroup" || !options.split(',').any(|o| o == "memory") {
                return None;
            }
            let fields: Vec<&str> = before.split(' ').collect();
            Some((fields.get(3)?.to_string(), fields.get(4)?.to_string()))
        })
        .expect("the memory controller's mount");
    let rest = path.strip_prefix(root.as_str()).unwrap_or(path);
    PathBuf::from(mount).join(rest.trim_start_matches('/'))
}

fn procs(cgroup: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default()
}

fn pid_of(status: &serde_json::Value) -> u64 {
    status["pid"].as_u64().expect("a pid")
}

#[test]
fn every_process_of_a_unit_is_in_its_cgroup_and_ends_with_it() {
    let mut svcd = Dir::new().with("escape", ESCAPING).start();
    svcd.wait_for("escape", "running");
    let Some(status) = in_cgroup(&svcd, "escape") else {
        return;
    };
    let cgroup = memory_cgroup_of(pid_of(&status));
    assert!(cgroup.ends_with("escape"), "{}", cgroup.display());
    // sh, the setsid'ed sh's sleep, its env -i'd sleep, and the main sleep: all four.
    let members = wait_until("the unit's four processes in its cgroup", DEADLINE, || {
        Some(procs(&cgroup)).filter(|p| p.len() >= 3)
    });
    svcd.svc_ok(&["stop", "escape"], 0);
    wait_until("the unit's cgroup empty after stop", DEADLINE, || {
        procs(&cgroup).is_empty().then_some(())
    });
    for pid in members {
        wait_until(&format!("process {pid} gone"), DEADLINE, || {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
            // Gone, or a zombie about to be reaped by svcd.
            state.is_none_or(|s| s.contains(") Z ")).then_some(())
        });
    }
    let base = cgroup.parent().expect("svcd's cgroup").to_path_buf();
    svcd.signal_and_wait(15);
    assert!(!base.exists(), "{} left behind", base.display());
}

#[test]
fn the_kernel_stops_a_unit_that_outruns_its_limit_and_says_so() {
    // 8 MiB more at a time, deaf to SIGTERM: whether svcd's samples see it over memory.max
    // first (and its stop signal is ignored) or not, the kernel stops it at its own limit.
    let leak = r#"
exec = ["python3", "-c", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nx = []\nwhile True:\n    x.append(b'a' * (8 << 20))"]
[memory]
max = "64M"
[restart]
policy = "never"
"#;
    let svcd = Dir::new().with("leak", leak).start();
    let status = svcd.wait_status("leak", "leak failed", |s| s["state"] == "failed");
    if status["memory"]["mode"] != "cgroup" && svcd.stderr().contains("without cgroups") {
        skip("svcd cannot make memory cgroups here");
        return;
    }
    let exit = &status["last_exit"];
    assert_eq!(exit["kind"], "oom_kill", "{status}");
    let reason = exit["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("killed by the kernel: out of memory (memory.max 64M"),
        "{status}"
    );
    assert_eq!(status["reason_kind"], "oom_kill", "{status}");
}

#[test]
fn with_cgroups_off_units_are_sampled_and_svcd_makes_no_cgroup() {
    let dir = Dir::new().with("web", SLEEP);
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ncgroups = \"off\"\n",
    )
    .expect("svcd.toml");
    let svcd = dir.start();
    svcd.wait_for("web", "running");
    let status = svcd.status("web");
    assert_eq!(status["memory"]["mode"], "sampled", "{status}");
    let cgroup =
        std::fs::read_to_string(format!("/proc/{}/cgroup", pid_of(&status))).expect("its cgroups");
    assert!(!cgroup.contains("/svc."), "{cgroup}");
}

#[test]
fn two_svcds_with_the_same_unit_names_do_not_share_cgroups() {
    let first = Dir::new().with("web", SLEEP).start();
    let second = Dir::new().with("web", SLEEP).start();
    first.wait_for("web", "running");
    second.wait_for("web", "running");
    let (Some(a), Some(b)) = (in_cgroup(&first, "web"), in_cgroup(&second, "web")) else {
        return;
    };
    let (a, b) = (memory_cgroup_of(pid_of(&a)), memory_cgroup_of(pid_of(&b)));
    assert_ne!(a, b);
    assert_eq!(
        procs(&a),
        vec![u32::try_from(pid_of(&first.status("web"))).unwrap_or(0)]
    );
    assert_eq!(
        procs(&b),
        vec![u32::try_from(pid_of(&second.status("web"))).unwrap_or(0)]
    );
}

#[test]
fn crossing_the_limit_is_acted_on_at_once_not_at_the_next_sample() {
    // Samples a minute apart: only the cgroup's threshold event can make svcd see the unit
    // over its limit within the test's deadline. It holds 264M and python's own ~10M, over
    // `max` (256M), under the kernel's limit (288M): svcd's graceful restart, not the kernel's
    // kill.
    let hold = r#"
exec = ["python3", "-c", "import sys, time\nx = b'a' * (264 << 20)\nprint('holding', flush=True)\ntime.sleep(1000)"]
[memory]
max = "256M"
[restart]
policy = "never"
"#;
    let dir = Dir::new().with("hold", hold);
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"60s\"\n",
    )
    .expect("svcd.toml");
    let svcd = dir.start();
    let status = svcd.wait_status("hold", "hold stopped over its limit", |s| {
        s["state"] == "failed" || s["memory"]["mode"] == "sampled"
    });
    if status["memory"]["mode"] == "sampled" && status["state"] != "failed" {
        skip("svcd cannot make memory cgroups here");
        return;
    }
    assert_eq!(status["last_exit"]["kind"], "memory_limit", "{status}");
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("memory limit: rss "), "{status}");
}

/// The memory cgroup line of `/proc/PID/cgroup` as a process wrote it to `file`.
fn memory_line(file: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        })
        .map(str::to_string)
}

/// A unit's hook commands run in its cgroup, as its main process does: what a hook leaves
/// behind is the unit's (the kernel limit and the stop take it too).
#[test]
fn hook_commands_run_in_the_units_cgroup() {
    let dir = Dir::new();
    let pre = dir.path().join("pre");
    let post = dir.path().join("post");
    let main = dir.path().join("main");
    let unit = format!(
        "shell = true\nexec = \"cat /proc/self/cgroup > {main} && exec sleep 1000\"\n\
         exec_start_pre = [\"sh -c 'cat /proc/self/cgroup > {pre}'\"]\n\
         exec_start_post = [\"sh -c 'cat /proc/self/cgroup > {post}'\"]\n",
        main = main.display(),
        pre = pre.display(),
        post = post.display(),
    );
    let svcd = dir.with("hooked", &unit).start();
    svcd.wait_for("hooked", "running");
    let Some(_) = in_cgroup(&svcd, "hooked") else {
        return;
    };
    let main_line = wait_until("the main process's cgroup", DEADLINE, || memory_line(&main));
    assert!(main_line.ends_with("/hooked"), "{main_line}");
    assert_eq!(
        memory_line(&pre).as_deref(),
        Some(main_line.as_str()),
        "exec_start_pre"
    );
    let post_line = wait_until("exec_start_post's cgroup", DEADLINE, || memory_line(&post));
    assert_eq!(post_line, main_line, "exec_start_post");
}
