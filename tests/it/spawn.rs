//! The hooked spawn (a unit with a user, umask, workdir, OOM score, nice, limits or a cgroup)
//! runs its child on svcd's own memory until exec: nothing the child changes may reach svcd,
//! and each child must have all of its unit's settings, spawn after spawn.

use crate::util::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Enough crashes for a leak of any step to show, and done within the deadline when loaded.
const RUNS: u64 = 200;
const LONG: Duration = Duration::from_secs(90);

/// What a child could leak into svcd: its identity, umask, signal mask and actions (status),
/// cgroups, cwd, OOM score, nice and limits; read while svcd is not spawning (which blocks
/// every signal for the while, as glibc's posix_spawn does too).
fn own_state(pid: u32) -> BTreeMap<&'static str, String> {
    let spawning = "SigBlk:\tfffffffffffbfeff";
    wait_until(
        "svcd between spawns (not every signal blocked)",
        DEADLINE,
        || Some(state_now(pid)).filter(|state| state["SigBlk"] != spawning),
    )
}

fn state_now(pid: u32) -> BTreeMap<&'static str, String> {
    let read = |what: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{what}"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/{what}: {e}"))
    };
    let status = read("status");
    let mut state = BTreeMap::new();
    for key in [
        "Uid", "Gid", "Groups", "Umask", "SigBlk", "SigIgn", "SigCgt",
    ] {
        let line = status.lines().find(|l| l.split(':').next() == Some(key));
        state.insert(key, line.unwrap_or("(none)").to_string());
    }
    // glibc installs handlers of its own two signals (32, 33) at the first thread's creation,
    // which may come after the first look: not svcd's, and no step of a child's.
    let caught = state["SigCgt"].split_whitespace().nth(1).unwrap_or("");
    let caught = u64::from_str_radix(caught, 16).expect("SigCgt in hex") & !(0b11 << 31);
    state.insert("SigCgt", format!("{caught:016x}"));
    state.insert("cgroup", read("cgroup"));
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("svcd's cwd");
    state.insert("cwd", cwd.display().to_string());
    state.insert("oom_score_adj", read("oom_score_adj"));
    let stat = read("stat");
    let nice = stat.rsplit(')').next().and_then(|s| s.split(' ').nth(17));
    state.insert("nice", nice.unwrap_or("").to_string());
    state.insert("limits", read("limits"));
    state
}

/// A run's line of the unit below: `run KEY: VALUES... cwd=... oom=... nice=... CGROUP`, as
/// key → values.
fn fields(line: &str) -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut key = String::new();
    for token in line.split_whitespace().skip_while(|t| *t != "run").skip(1) {
        if let Some(name) = token.strip_suffix(':') {
            key = name.to_string();
            fields.entry(key.clone()).or_default();
        } else if let Some((name, value)) = token.split_once('=') {
            fields.insert(name.to_string(), vec![value.to_string()]);
        } else if token.contains(":memory:") {
            fields.insert("cgroup".to_string(), vec![token.to_string()]);
        } else {
            fields
                .entry(key.clone())
                .or_default()
                .push(token.to_string());
        }
    }
    fields
}

/// Prints what the unit got, from its own /proc, then crashes.
const REPORT: &str = r#"echo "run $(grep -E "^(Uid|Gid|Groups|Umask|SigBlk|SigIgn):" /proc/self/status | tr -s "\t\n" "  ") cwd=$(pwd -P) oom=$(cat /proc/self/oom_score_adj) nice=$(cut -d" " -f19 /proc/self/stat) $(grep :memory: /proc/self/cgroup)"; exit 1"#;

/// Sets its flag when dropped.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A temp dir whose units may enter `work`, a directory only `user` may enter.
fn dir_with_workdir(user: &TestUser) -> (Dir, std::path::PathBuf) {
    let dir = Dir::new();
    let traverse = std::fs::Permissions::from_mode(0o711);
    std::fs::set_permissions(dir.path(), traverse).expect("chmod the test dir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("workdir");
    std::os::unix::fs::chown(&work, Some(user.uid), Some(user.gid)).expect("chown workdir");
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    (dir, work)
}

#[test]
fn two_hundred_hooked_respawns_leave_svcd_as_it_was_and_each_child_as_its_unit_says() {
    let Some(user) = TestUser::new(1) else {
        return;
    };
    let (dir, work) = dir_with_workdir(&user);
    let unit = format!(
        "exec = ['/bin/sh', '-c', '{REPORT}']\nuser = \"{}\"\numask = \"027\"\nworkdir = \"{}\"\nnice = 4\nenabled = false\n[memory]\noom_score_adj = 300\n[limits]\nnofile = 512\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\nmultiplier = 1.0\nmax_delay = \"1ms\"\nreset_after = \"1ms\"\n",
        user.name,
        work.display()
    );
    let svcd = dir.with("crash", &unit).start();
    let before = own_state(svcd.pid());

    // Someone asking all along: svcd must answer between the spawns.
    let done = AtomicBool::new(false);
    let (answered, unanswered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let status = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                match svcd.svc(&["status", "crash"]).status.code() {
                    Some(0 | 3) => answered.fetch_add(1, Ordering::Relaxed),
                    _ => unanswered.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        // The asker stops also when this thread fails, or the scope would wait for it forever.
        let _stop = Done(&done);
        svcd.svc_ok(&["start", "--no-wait", "crash"], 0);
        let status = wait_until(&format!("{RUNS} restarts"), LONG, || {
            Some(svcd.status("crash")).filter(|s| s["restarts"].as_u64() >= Some(RUNS))
        });
        svcd.svc_ok(&["stop", "crash"], 0);
        status
    });
    assert_eq!(
        unanswered.load(Ordering::Relaxed),
        0,
        "svcd went unanswered"
    );
    assert!(answered.load(Ordering::Relaxed) > 0);
    assert_eq!(own_state(svcd.pid()), before, "svcd's own state changed");

    let in_cgroup = status["memory"]["mode"] == "cgroup";
    if !in_cgroup {
        skip("svcd cannot make memory cgroups here: the cgroup join is not checked");
    }
    let mut groups = vec![user.gid.to_string()];
    groups.extend(user.groups.iter().map(|(_, gid)| gid.to_string()));
    groups.sort();
    let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
    let runs = wait_until("every run's line in the log", DEADLINE, || {
        let out = svcd.svc_ok(&["logs", "crash", "-n", "10000"], 0);
        let runs: Vec<String> = out
            .lines()
            .filter(|l| l.contains(" run "))
            .map(str::to_string)
            .collect();
        (runs.len() as u64 >= RUNS).then_some(runs)
    });
    for line in &runs {
        let got = fields(line);
        let one = |key: &str| got.get(key).map(|v| v.join(" ")).unwrap_or_default();
        assert_eq!(one("Uid"), [&uid[..]; 4].join(" "), "{line}");
        assert_eq!(one("Gid"), [&gid[..]; 4].join(" "), "{line}");
        let mut got_groups = got.get("Groups").cloned().unwrap_or_default();
        got_groups.sort();
        assert_eq!(got_groups, groups, "{line}");
        assert_eq!(one("Umask"), "0027", "{line}");
        assert_eq!(one("SigBlk"), "0000000000000000", "{line}");
        assert_eq!(one("SigIgn"), "0000000000000000", "{line}");
        assert_eq!(one("cwd"), work.display().to_string(), "{line}");
        assert_eq!(one("oom"), "300", "{line}");
        assert_eq!(one("nice"), "4", "{line}");
        if in_cgroup {
            assert!(one("cgroup").ends_with("/crash"), "{line}");
        }
    }
}

#[test]
fn failing_steps_of_hooked_units_are_named_and_svcd_and_its_other_units_go_on() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let (dir, work) = dir_with_workdir(&user);
    let retry =
        "[restart]\npolicy = \"always\"\ndelay = \"1ms\"\nmultiplier = 1.0\nmax_delay = \"1ms\"\n";
    let name = &user.name;
    let svcd = dir
        .with(
            "steady",
            &format!(
                "exec = [\"sleep\", \"600\"]\nuser = \"{name}\"\numask = \"077\"\nworkdir = \"{}\"\n",
                work.display()
            ),
        )
        .with(
            "noworkdir",
            &format!("exec = [\"true\"]\nuser = \"{name}\"\nworkdir = \"/no/such/dir\"\nenabled = false\n{retry}"),
        )
        .with(
            "noprogram",
            &format!("exec = [\"/no/such/program\"]\nuser = \"{name}\"\numask = \"022\"\nenabled = false\n{retry}"),
        )
        .start();
    let steady = svcd.wait_status("steady", "steady running", |s| s["pid"].is_u64());
    let before = own_state(svcd.pid());
    svcd.svc_ok(&["start", "--no-wait", "noworkdir", "noprogram"], 0);
    let reasons = [
        (
            "noworkdir",
            format!(
                "chdir to workdir /no/such/dir as user `{name}` failed: No such file or directory"
            ),
        ),
        (
            "noprogram",
            "cannot execute `/no/such/program`: No such file or directory".to_string(),
        ),
    ];
    for (unit, reason) in &reasons {
        let status = svcd.wait_status(unit, "50 failed starts", |s| {
            s["restarts"].as_u64() >= Some(50)
        });
        let got = status["last_exit"]["reason"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{unit}: {got}");
    }
    svcd.svc_ok(&["stop", "noworkdir", "noprogram"], 0);
    let now = svcd.status("steady");
    assert_eq!(
        (now["state"].clone(), now["pid"].clone()),
        ("running".into(), steady["pid"].clone())
    );
    assert_eq!(own_state(svcd.pid()), before, "svcd's own state changed");
}
