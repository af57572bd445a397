//! Units for real daemons: per-unit resource limits, nice and supplementary groups, seen on the
//! running process in /proc.

use crate::util::*;

const SLEEP: &str = "exec = [\"sleep\", \"1000\"]\nrestart.policy = \"never\"\n";

/// The running unit's main pid.
fn main_pid(svcd: &Svcd, name: &str) -> u32 {
    svcd.wait_for(name, "running");
    let status = svcd.status(name);
    status["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid: {status}"))
}

/// The reason of the unit's failed start.
fn failed_start(svcd: &Svcd, name: &str) -> String {
    let status = svcd.wait_status(name, "a failed start", |s| !s["last_exit"].is_null());
    status["last_exit"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `(soft, hard)` of the line of /proc/PID/limits that starts with `what`.
fn limit(pid: u32, what: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/PID/limits");
    let line = text
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in {text}"));
    let fields: Vec<&str> = line[what.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

/// The unit's line `key:` of /proc/PID/status, without the key.
fn status_line(pid: u32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_string()
}

/// The nice value, field 19 of /proc/PID/stat (the 17th after the command's `)`).
fn nice_of(pid: u32) -> i32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(16)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nice in {text}"))
}

#[test]
fn limits_are_set_in_the_process_before_exec() {
    // Lowered only: raising a hard limit needs CAP_SYS_RESOURCE, which a container may lack.
    let svcd = Dir::new()
        .with(
            "limited",
            &format!(
                "{SLEEP}[limits]\nnofile = \"100:200\"\nnproc = \"500:1000\"\ncore = 0\n\
                 memlock = 65536\n"
            ),
        )
        .with("plain", SLEEP)
        .start();
    let pid = main_pid(&svcd, "limited");
    assert_eq!(limit(pid, "Max open files"), ("100".into(), "200".into()));
    assert_eq!(limit(pid, "Max processes"), ("500".into(), "1000".into()));
    assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
    assert_eq!(
        limit(pid, "Max locked memory"),
        ("65536".into(), "65536".into())
    );
    // A unit without limits keeps svcd's (and takes the posix_spawn path).
    let plain = main_pid(&svcd, "plain");
    assert_eq!(
        limit(plain, "Max open files"),
        limit(svcd.pid(), "Max open files")
    );
}

#[test]
fn a_limit_the_kernel_refuses_is_named_in_the_failed_start() {
    // Above fs.nr_open (at most 2^30 on Linux): setrlimit refuses it even for root.
    let svcd = Dir::new()
        .with(
            "toomany",
            &format!("{SLEEP}limits.nofile = 1099511627776\n"),
        )
        .start();
    let reason = failed_start(&svcd, "toomany");
    assert!(reason.contains("setrlimit (limits.nofile"), "{reason}");
}

#[test]
fn nice_is_set_in_the_process() {
    let svcd = Dir::new()
        .with("nice", &format!("{SLEEP}nice = 7\n"))
        .with("eager", &format!("{SLEEP}nice = -3\nuser = \"nobody\"\n"))
        .start();
    assert_eq!(nice_of(main_pid(&svcd, "nice")), 7);
    // Lowered before dropping to the user, who could not.
    let eager = main_pid(&svcd, "eager");
    assert_eq!(nice_of(eager), -3);
    assert_ne!(status_line(eager, "Uid:"), status_line(svcd.pid(), "Uid:"));
}

#[test]
fn supplementary_groups_are_added_to_the_process() {
    let svcd = Dir::new()
        .with(
            "grouped",
            &format!("{SLEEP}supplementary_groups = [4242, \"4343\"]\n"),
        )
        .with(
            "missing",
            &format!("{SLEEP}supplementary_groups = [\"no-such-group-here\"]\n"),
        )
        .start();
    let pid = main_pid(&svcd, "grouped");
    let mut groups: Vec<String> = status_line(pid, "Groups:")
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    // svcd's primary group (root's, 0) and the two; root's other groups are dropped.
    let primary = status_line(svcd.pid(), "Gid:")
        .split_whitespace()
        .nth(1)
        .map(String::from)
        .unwrap_or_default();
    let mut expected = vec![primary, "4242".to_string(), "4343".to_string()];
    expected.sort();
    expected.dedup();
    assert_eq!(groups, expected);
    let reason = failed_start(&svcd, "missing");
    assert!(reason.contains("no-such-group-here"), "{reason}");
}

#[test]
fn svc_check_names_a_bad_limit_and_an_unknown_group() {
    let dir = Dir::new()
        .with("bad", &format!("{SLEEP}limits.core = \"2:1\"\nnice = 20\n"))
        .with(
            "nogroup",
            &format!("{SLEEP}supplementary_groups = [\"no-such-group-here\"]\n"),
        );
    let out = svc_check(&dir.units().join("bad.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.toml:3:") && err.contains("above its hard limit"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:4:") && err.contains("nice must be"),
        "{err}"
    );
    let out = svc_check(&dir.units().join("nogroup.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no-such-group-here"),
        "{err}"
    );
}

/// A template whose instances write `%i` and `$SVC_INSTANCE` to `%i.out` in the workdir.
const TEMPLATE: &str = "\
description = \"worker %i\"
instances = [\"a\", \"b.2\"]
exec = [\"sh\", \"-c\", \"echo %i $SVC_INSTANCE 100%% > %i.out; exec sleep 1000\"]
workdir = \"out\"
env = { SLOT = \"slot-%i\" }
restart.policy = \"never\"
";

/// svcd on [`TEMPLATE`], and the instances' output directory.
fn template_svcd() -> (Svcd, std::path::PathBuf) {
    let dir = Dir::new().with("worker@", TEMPLATE);
    let out = dir.units().join("out");
    std::fs::create_dir(&out).expect("workdir");
    (dir.start(), out)
}

#[test]
fn a_template_runs_each_listed_instance_with_its_name() {
    let (svcd, out) = template_svcd();
    for instance in ["a", "b.2"] {
        let name = format!("worker@{instance}");
        let pid = main_pid(&svcd, &name);
        let file = out.join(format!("{instance}.out"));
        let text = wait_until("the instance's file", DEADLINE, || {
            std::fs::read_to_string(&file)
                .ok()
                .filter(|t| t.ends_with('\n'))
        });
        assert_eq!(text, format!("{instance} {instance} 100%\n"));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        let slot = format!("SLOT=slot-{instance}");
        assert!(
            environ.split(|&b| b == 0).any(|v| v == slot.as_bytes()),
            "{slot}"
        );
        assert_eq!(
            svcd.status(&name)["description"],
            format!("worker {instance}")
        );
    }
    // The template is no unit.
    assert!(!svcd.svc(&["start", "worker@"]).status.success());
}

/// The names `svc list` shows.
fn listed(svcd: &Svcd) -> Vec<String> {
    let out = svcd.svc_ok(&["list", "--json"], 0);
    let units: serde_json::Value = serde_json::from_str(&out).expect("list --json");
    let units = units.as_array().cloned().unwrap_or_default();
    units
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn an_unlisted_instance_is_made_on_demand_and_forgotten_once_stopped() {
    let (svcd, out) = template_svcd();
    main_pid(&svcd, "worker@a");
    assert!(!listed(&svcd).contains(&"worker@c".to_string()));
    svcd.svc_ok(&["start", "worker@c"], 0);
    let pid = main_pid(&svcd, "worker@c");
    let file = out.join("c.out");
    let text = wait_until("the instance's file", DEADLINE, || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    assert_eq!(text, "c c 100%\n");
    assert!(listed(&svcd).contains(&"worker@c".to_string()));
    // A reload keeps it, same process.
    svcd.svc_ok(&["reload"], 0);
    assert_eq!(main_pid(&svcd, "worker@c"), pid);
    // Stopped: forgotten, as systemd unloads an inactive instance.
    svcd.svc_ok(&["stop", "worker@c"], 0);
    assert!(!listed(&svcd).contains(&"worker@c".to_string()));
    assert_eq!(svcd.svc(&["status", "worker@c"]).status.code(), Some(4));
    wait_until(
        "the stopped instance's process to be gone",
        DEADLINE,
        || is_dead(pid).then_some(()),
    );
    // And made again on the next start; a bad instance name is an unknown unit still.
    svcd.svc_ok(&["start", "worker@c"], 0);
    assert_eq!(
        svcd.svc(&["start", "worker@no/slash"]).status.code(),
        Some(4)
    );
    assert_eq!(svcd.svc(&["start", "nothing@x"]).status.code(), Some(4));
}

#[test]
fn svc_check_validates_a_template_and_names_the_place() {
    let dir = Dir::new()
        .with("good@", TEMPLATE)
        .with(
            "bad@",
            "instances = [\"ok\", \"no/slash\"]\nexec = [\"echo\", \"50%\"]\n",
        )
        .with("plain", &format!("{SLEEP}instances = [\"a\"]\n"));
    std::fs::create_dir(dir.units().join("out")).expect("workdir");
    let out = svc_check(&dir.units().join("good@.toml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = svc_check(&dir.units().join("bad@.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad@.toml:1:") && err.contains("no/slash"),
        "{err}"
    );
    assert!(
        err.contains("bad@.toml:2:") && err.contains("unknown specifier `%`"),
        "{err}"
    );
    let out = svc_check(&dir.units().join("plain.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain.toml:3:") && err.contains("for a template"),
        "{err}"
    );
}

/// The main process starts `child.sh` (which writes its pid, and `got-term` on SIGTERM), and on
/// SIGTERM waits for `got-term` before it exits: with the stop signal to the whole group both
/// get it and the unit stops at once; to the main process alone, only the timeout ends it.
const MAIN_SH: &str = "trap 'while [ ! -e got-term ]; do sleep 0.05; done; exit 0' TERM
sh child.sh &
wait
wait
";
const CHILD_SH: &str = "trap 'echo > got-term; exit 0' TERM
echo $$ > child.pid
while :; do sleep 0.05; done
";

/// A unit running [`MAIN_SH`] with `stop.mode = mode`, in a units directory of its own.
fn stop_mode_unit(mode: &str) -> (Svcd, std::path::PathBuf) {
    let dir = Dir::new().with(
        "db",
        &format!(
            "exec = [\"sh\", \"main.sh\"]\nworkdir = \".\"\nrestart.policy = \"never\"\n\
             stop.mode = \"{mode}\"\nstop.timeout = \"1s\"\n"
        ),
    );
    let units = dir.units();
    std::fs::write(units.join("main.sh"), MAIN_SH).expect("main.sh");
    std::fs::write(units.join("child.sh"), CHILD_SH).expect("child.sh");
    (dir.start(), units)
}

#[test]
fn stop_mode_main_signals_only_the_main_process_then_kills_the_rest() {
    let (svcd, units) = stop_mode_unit("main");
    svcd.wait_for("db", "running");
    let child = read_pids(&units.join("child.pid"), 1)[0];
    svcd.svc_ok(&["stop", "db"], 0);
    svcd.wait_for("db", "inactive");
    wait_until("the child to be killed", DEADLINE, || {
        is_dead(child).then_some(())
    });
    assert!(
        !units.join("got-term").exists(),
        "the child got the stop signal"
    );
    let status = svcd.status("db");
    assert!(
        status["last_exit"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("after stop timeout")),
        "{status}"
    );
}

#[test]
fn stop_mode_process_leaves_the_other_processes_running() {
    let (svcd, units) = stop_mode_unit("process");
    svcd.wait_for("db", "running");
    let child = read_pids(&units.join("child.pid"), 1)[0];
    svcd.svc_ok(&["stop", "db"], 0);
    svcd.wait_for("db", "inactive");
    let alive = !is_dead(child);
    kill(child, 9);
    assert!(alive, "the child was killed");
    assert!(!units.join("got-term").exists());
}

#[test]
fn stop_mode_group_is_the_default_and_signals_every_process() {
    let (svcd, units) = stop_mode_unit("group");
    svcd.wait_for("db", "running");
    read_pids(&units.join("child.pid"), 1);
    svcd.svc_ok(&["stop", "db"], 0);
    svcd.wait_for("db", "inactive");
    assert!(units.join("got-term").exists());
}
