//! Regressions of users, groups, environment files and what a unit inherits from svcd.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// A `Name:` line of /proc/PID/status, its fields.
fn proc_status(pid: u64, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn running_pid(svcd: &Svcd, name: &str) -> u64 {
    let status = svcd.wait_status(name, "running with a pid", |s| {
        s["state"] == "running" && s["pid"].is_u64()
    });
    status["pid"].as_u64().expect("pid")
}

/// (uid, gid, sorted groups) of a running process.
fn identity_of(pid: u64) -> (u32, u32, Vec<u32>) {
    let first = |f: &str| proc_status(pid, f)[0].parse::<u32>().expect("id");
    let mut groups: Vec<u32> = proc_status(pid, "Groups")
        .iter()
        .map(|g| g.parse().expect("gid"))
        .collect();
    groups.sort();
    (first("Uid"), first("Gid"), groups)
}

const SLEEP: &str = "exec = [\"sleep\", \"1000\"]\n";

#[test]
fn a_unit_runs_as_www_data_under_the_default_nsswitch() {
    let svcd = Dir::new()
        .with("web", &format!("{SLEEP}user = \"www-data\"\n"))
        .with("plain", SLEEP)
        .start();
    let pid = running_pid(&svcd, "web");
    assert_eq!(identity_of(pid), (33, 33, vec![33]));
    // svcd lives on and answers, also across a reload (which resolves again on restart).
    svcd.svc_ok(&["reload"], 0);
    running_pid(&svcd, "plain");
}

#[test]
fn a_useradd_user_runs_with_its_uid_gid_and_supplementary_groups() {
    let Some(user) = TestUser::new(2) else {
        return;
    };
    let svcd = Dir::new()
        .with("app", &format!("{SLEEP}user = \"{}\"\n", user.name))
        .with(
            "bygroup",
            &format!(
                "{SLEEP}user = \"{}\"\ngroup = \"{}\"\n",
                user.name, user.groups[0].0
            ),
        )
        .start();
    let (uid, gid) = (user.uid, user.gid);
    let (g0, g1) = (user.groups[0].1, user.groups[1].1);
    let sorted = |mut v: Vec<u32>| {
        v.sort();
        v
    };
    assert_eq!(
        identity_of(running_pid(&svcd, "app")),
        (uid, gid, sorted(vec![gid, g0, g1]))
    );
    // With `group`, that group and the user's memberships (as getgrouplist gives them).
    assert_eq!(
        identity_of(running_pid(&svcd, "bygroup")),
        (uid, g0, sorted(vec![g0, g1]))
    );
}

#[test]
fn a_numeric_user_without_an_entry_runs_with_no_supplementary_groups() {
    let svcd = Dir::new()
        .with("num", &format!("{SLEEP}user = 4242\n"))
        .with(
            "numgroup",
            &format!("{SLEEP}user = \"4242\"\ngroup = 4343\n"),
        )
        .start();
    assert_eq!(
        identity_of(running_pid(&svcd, "num")),
        (4242, 4242, vec![4242])
    );
    assert_eq!(
        identity_of(running_pid(&svcd, "numgroup")),
        (4242, 4343, vec![4343])
    );
}

#[test]
fn an_unknown_user_fails_its_unit_with_a_reason_and_svcd_goes_on() {
    let dir = Dir::new()
        .with("ghost", &format!("{SLEEP}user = \"no-such-user-here\"\n"))
        .with(
            "ghostgroup",
            &format!("{SLEEP}group = \"no-such-group-here\"\n"),
        )
        .with("plain", SLEEP);
    let check = svc_check(&dir.units());
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("no such user `no-such-user-here`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no such group `no-such-group-here`"),
        "{stderr}"
    );
    let svcd = dir.start();
    for (name, what) in [("ghost", "user"), ("ghostgroup", "group")] {
        let status = svcd.wait_status(name, "a failed start", |s| !s["last_exit"].is_null());
        let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("no such {what}")), "{status}");
    }
    running_pid(&svcd, "plain");
}

#[test]
fn a_peer_without_a_passwd_entry_is_refused_not_a_crash() {
    let Some(group) = TestUser::new(1) else {
        return;
    };
    let dir = Dir::new().with("plain", SLEEP);
    std::fs::write(
        dir.path().join("svcd.toml"),
        format!("admin_group = \"{}\"\n", group.groups[0].0),
    )
    .expect("config");
    // The peer must reach the socket: the test dir is 0700.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let svcd = dir.start();
    running_pid(&svcd, "plain");
    // uid 4244 has no entry; group 0 lets it open the socket (root:root 0660).
    let out = Command::new("setpriv")
        .args(["--reuid", "4244", "--regid", "4244", "--groups", "0", SVC])
        .arg("--socket")
        .arg(&svcd.socket)
        .args(["stop", "plain"])
        .output()
        .expect("setpriv svc");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // svcd still answers, and the unit still runs.
    assert_eq!(svcd.status("plain")["state"], "running");
}

/// The system's python3 itself, not a version manager's shim script (whose own short-lived
/// children would be taken for svcd).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Runs its arguments with SIGCHLD and SIGTERM blocked and SIGTERM and SIGINT ignored, as a
/// careless parent would leave them, in a child that it waits for.
const CARELESS_PARENT: &str = "import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
";

#[test]
fn inherited_blocked_and_ignored_signals_reach_neither_svcd_nor_units() {
    let dir = Dir::new()
        .with("plain", SLEEP)
        .with("hooked", &format!("{SLEEP}umask = \"022\"\n"))
        .with(
            "crash",
            "exec = [\"/bin/false\"]\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\n",
        );
    let mut svcd = dir.start_wrapped(&[python(), "-c", CARELESS_PARENT]);
    svcd.wait_status("crash", "restarts of a crash", |s| {
        s["restarts"].as_u64() >= Some(3)
    });
    for name in ["plain", "hooked"] {
        let pid = running_pid(&svcd, name);
        for field in ["SigBlk", "SigIgn"] {
            assert_eq!(
                proc_status(pid, field),
                ["0000000000000000"],
                "{name} {field}"
            );
        }
        // Stopped by its SIGTERM, not by the SIGKILL after the timeout.
        svcd.svc_ok(&["stop", name], 0);
        let status = svcd.status(name);
        assert_eq!(status["last_exit"]["signal"], "SIGTERM", "{status}");
    }
    let status = svcd.signal_and_wait(15);
    assert!(status.success(), "svcd after SIGTERM: {status}");
}

/// Runs its arguments in a child whose controlling terminal (and stdin) is a new pty, its
/// stdout and stderr kept, reading the pty until the child ends.
const ON_A_TERMINAL: &str = "import os, pty, sys
out, err = os.dup(1), os.dup(2)
pid, fd = pty.fork()
if pid == 0:
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    try:
        if not os.read(fd, 65536):
            break
    except OSError:
        break
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
";

/// (session id, tty_nr) of a process, from /proc/PID/stat.
fn session_and_tty(pid: u64) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // After state: ppid, pgrp, session, tty_nr.
    (fields[2], fields[3])
}

#[test]
fn units_run_in_their_own_session_without_svcds_terminal() {
    let dir = Dir::new()
        .with("plain", SLEEP)
        .with("nobody", &format!("{SLEEP}user = \"nobody\"\n"));
    let svcd = dir.start_wrapped(&[python(), "-c", ON_A_TERMINAL]);
    let (_, svcd_tty) = session_and_tty(u64::from(svcd.pid()));
    assert_ne!(svcd_tty, 0, "svcd should have the pty as its terminal");
    for name in ["plain", "nobody"] {
        let pid = running_pid(&svcd, name);
        assert_eq!(session_and_tty(pid), (pid, 0), "{name}");
        // Still stoppable as a process group.
        svcd.svc_ok(&["stop", name], 0);
        wait_until("the unit to be gone", DEADLINE, || {
            is_dead(pid as u32).then_some(())
        });
    }
}

#[test]
fn a_missing_workdir_is_named_as_the_failing_chdir() {
    let svcd = Dir::new()
        .with("plain", &format!("{SLEEP}workdir = \"/no/such/dir\"\n"))
        .with(
            "hooked",
            &format!("{SLEEP}workdir = \"/no/such/dir\"\nuser = \"nobody\"\n"),
        )
        .with("noexec", "exec = [\"no-such-program-here\"]\n")
        .start();
    for name in ["plain", "hooked"] {
        let status = svcd.wait_status(name, "a failed start", |s| !s["last_exit"].is_null());
        let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("chdir to workdir /no/such/dir"),
            "{name}: {reason}"
        );
    }
    let status = svcd.wait_status("noexec", "a failed start", |s| !s["last_exit"].is_null());
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot execute `no-such-program-here`"),
        "{reason}"
    );
}

#[test]
fn restarts_that_fail_or_crash_at_once_leak_no_descriptors() {
    // A short delay, not 0: svcd answers `status` between the restarts. Disabled: the count
    // before is of an idle svcd.
    let crash = "enabled = false\n[restart]\npolicy = \"always\"\ndelay = \"2ms\"\nmultiplier = 1.0\nmax_delay = \"2ms\"\n";
    let svcd = Dir::new()
        .with("crash", &format!("exec = [\"/bin/false\"]\n{crash}"))
        .with(
            "nochdir",
            &format!("exec = [\"true\"]\nworkdir = \"/no/such/dir\"\n{crash}"),
        )
        .with(
            "hookfails",
            &format!("exec = [\"true\"]\nworkdir = \"/no/such/dir\"\numask = \"022\"\n{crash}"),
        )
        .with(
            "crashhook",
            &format!("exec = [\"/bin/false\"]\numask = \"022\"\n{crash}"),
        )
        .start();
    let names = ["crash", "nochdir", "hookfails", "crashhook"];
    let before = non_socket_fds(svcd.pid()).len();
    let mut start = vec!["start", "--no-wait"];
    start.extend(names);
    svcd.svc_ok(&start, 0);
    // 100 restarts of each: a leak of the field's size (0.8 descriptors per restart) shows as
    // 80 per unit, and four units get there within the deadline on a loaded machine too.
    for name in names {
        svcd.wait_status(name, "100 restarts", |s| {
            s["restarts"].as_u64() >= Some(100)
        });
    }
    let mut stop = vec!["stop"];
    stop.extend(names);
    svcd.svc_ok(&stop, 0);
    // Once every run is over, svcd holds what it held before them, plus each unit's log file
    // (open since svcd's first line about the unit); a leak (the field's: 0.8 descriptors per
    // restart) never comes back down.
    let mut now = 0;
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("svcd's descriptors back to their count", DEADLINE, || {
            now = non_socket_fds(svcd.pid()).len();
            (now <= before + names.len()).then_some(())
        })
    }));
    let held = non_socket_fds(svcd.pid());
    assert!(
        settled.is_ok(),
        "svcd's descriptors grew from {before} to {now} over ~400 restarts: {held:?}"
    );
}

/// What svcd's descriptors other than sockets point to: the leak guarded against was of
/// pipes; sockets come and go with clients and svcd's fd holder on their own time.
fn non_socket_fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|target| target.display().to_string())
                .filter(|target| !target.starts_with("socket:"))
                .collect()
        })
        .unwrap_or_default()
}

/// `svc reload`, failing the test if it has not answered by the deadline (a frozen svcd).
fn reload_within_deadline(svcd: &Svcd) -> std::process::Output {
    let mut child = Command::new(SVC)
        .arg("--socket")
        .arg(&svcd.socket)
        .arg("reload")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("svc reload");
    // On a timeout svcd is killed when the test unwinds, which ends this svc too.
    wait_until(
        "svc reload's answer (a frozen svcd gives none)",
        DEADLINE,
        || child.try_wait().ok().flatten(),
    );
    child.wait_with_output().expect("svc reload output")
}

/// Loads a unit whose env_file is set up by `setup`, expecting the load to be refused with `why`; svcd
/// answers at once and goes on.
fn refused_env_file(setup: impl FnOnce(&Path), why: &str) {
    let svcd = Dir::new().with("plain", SLEEP).start();
    running_pid(&svcd, "plain");
    let units = svcd.dir.units();
    setup(&units);
    std::fs::write(
        units.join("app.toml"),
        format!("{SLEEP}env_file = \"app.env\"\n"),
    )
    .expect("unit");
    let out = reload_within_deadline(&svcd);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("app.env") && text.contains(why), "{text}");
    assert_eq!(svcd.status("plain")["state"], "running");
}

#[test]
fn an_env_file_that_is_a_fifo_is_refused_without_blocking() {
    refused_env_file(
        |units| run("mkfifo", &[&units.join("app.env").to_string_lossy()]),
        "not a regular file (it is a FIFO)",
    );
}

#[test]
fn an_env_file_that_is_dev_zero_or_huge_is_refused() {
    refused_env_file(
        |units| std::os::unix::fs::symlink("/dev/zero", units.join("app.env")).expect("symlink"),
        "symbolic link",
    );
    refused_env_file(
        |units| {
            run(
                "mknod",
                &[&units.join("app.env").to_string_lossy(), "c", "1", "5"],
            )
        },
        "character device",
    );
    refused_env_file(
        |units| std::fs::write(units.join("app.env"), "A=1\n".repeat(300_000)).expect("write"),
        "larger than 1048576 bytes",
    );
}

#[test]
fn an_env_file_its_user_can_swap_for_a_symlink_is_refused() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let secret_dir = tempfile::tempdir().expect("secret dir");
    let secret = secret_dir.path().join("root-only.env");
    std::fs::write(&secret, "ROOT_SECRET=hunter2\n").expect("secret");
    let dir = Dir::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The unit's user owns the directory of its env file (a common layout: /srv/app/app.env).
    let appdir = dir.path().join("app");
    std::fs::create_dir(&appdir).expect("app dir");
    std::fs::write(appdir.join("app.env"), "PORT=3000\n").expect("env");
    run("chown", &[&user.name, &appdir.to_string_lossy()]);
    let unit = format!(
        "exec = [\"sh\", \"-c\", \"echo \\\"secret=$ROOT_SECRET\\\"; exec sleep 1000\"]\n\
         user = \"{}\"\nenv_file = \"../app/app.env\"\n",
        user.name
    );
    let svcd = dir.with("app", &unit).with("plain", SLEEP).start();
    running_pid(&svcd, "plain");
    // Refused from the start: its user could swap the file.
    assert!(svcd.stderr().contains("its directory"), "{}", svcd.stderr());
    let swapped = svcd.dir.path().join("app/app.env");
    // The swap, done by the user.
    let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
    let status = Command::new("setpriv")
        .args(["--reuid", &uid, "--regid", &gid, "--clear-groups"])
        .args(["sh", "-c", "rm -f \"$1\" && ln -s \"$2\" \"$1\"", "swap"])
        .arg(&swapped)
        .arg(&secret)
        .status()
        .expect("setpriv");
    assert!(status.success(), "the user's swap");
    let out = svcd.svc(&["reload"]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    let log = svcd.svc(&["logs", "app"]);
    assert!(
        !String::from_utf8_lossy(&log.stdout).contains("hunter2"),
        "the secret reached the unit"
    );
}

#[test]
fn a_storm_of_crashing_units_holds_no_more_pipes_than_runs() {
    // 100 units that crash at once, restarted without delay until each gives up (11 starts):
    // ~1,100 runs in a few seconds, with svcd always busy. Each run's pipes must close when it
    // is reaped; in the field they piled up until EMFILE (1,512 → 6,899 in 6 s).
    const UNITS: usize = 100;
    let mut dir = Dir::new();
    let names: Vec<String> = (0..UNITS).map(|i| format!("c{i:03}")).collect();
    for name in &names {
        dir = dir.with(
            name,
            "exec = [\"/bin/false\"]\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\n\
             multiplier = 1.0\nburst = 10\ninterval = \"10m\"\n",
        );
    }
    let svcd = dir.start();
    let pid = svcd.pid();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::SeqCst) {
                peak = peak.max(fd_count(pid));
            }
            peak
        })
    };
    let timeout = format!("{}s", DEADLINE.as_secs() * 3);
    let mut wait = vec!["wait", "--for", "failed", "--timeout", &timeout];
    wait.extend(names.iter().map(String::as_str));
    let out = svcd.svc(&wait);
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().expect("sampler");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Two pipes per unit at most in flight, its log file (open since svcd's own line about
    // the start), and what svcd holds anyway.
    let bound = 3 * UNITS + 64;
    assert!(
        peak <= bound,
        "svcd held up to {peak} descriptors for {UNITS} units (at most {bound} expected)"
    );
}
