//! svcd as a container's init on real processes: `svcd -- CMD` (tini's job), the exit status of
//! a fatal unit, `svc kill`, `forward_signals`; and a real container image under podman
//! (`image`).

mod image;

use crate::pid1::stops_politely;
use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// A python3 app that appends the name of each signal it gets to the file named by its
/// argument, and exits 5 on SIGTERM; `FILE.ready` once its handlers are in place.
const CATCHER: &str = r#"
import signal, sys
out = sys.argv[1]
def got(number, frame):
    with open(out, "a") as f:
        f.write(signal.Signals(number).name + "\n")
    if number == signal.SIGTERM:
        sys.exit(5)
for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGWINCH):
    signal.signal(s, got)
open(out + ".ready", "w").close()
while True:
    signal.pause()
"#;

/// Runs svcd on `dir` with `extra` arguments until it exits by itself: its exit code, stdout
/// and stderr.
fn run_to_end(dir: &Dir, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = dir.path().join("run.out");
    let err = dir.path().join("run.err");
    let mut child = Command::new(SVCD)
        .args(dir.svcd_args())
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn svcd");
    let status = wait_until("svcd to exit", DEADLINE, || child.try_wait().ok().flatten());
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    (status.code(), read(&out), read(&err))
}

/// The lines of `file` once it has `count` of them.
fn lines_of(file: &Path, count: usize) -> Vec<String> {
    wait_until(
        &format!("{count} lines in {}", file.display()),
        DEADLINE,
        || {
            let text = std::fs::read_to_string(file).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            (lines.len() >= count).then_some(lines)
        },
    )
}

fn wait_for_file(file: &Path) {
    wait_until(&format!("{}", file.display()), DEADLINE, || {
        file.exists().then_some(())
    });
}

/// Writes the unit `catcher`, [`CATCHER`] appending to `seen`.
fn catcher_unit(dir: &Dir, seen: &Path) {
    dir.unit(
        "catcher",
        &format!(
            "exec = [\"python3\", \"-c\", {}, \"{}\"]\n",
            toml_string(CATCHER),
            seen.display()
        ),
    );
}

#[test]
fn the_apps_exit_code_is_svcds_after_the_units_beside_it_stop() {
    let dir = Dir::new();
    let stopped = dir.path().join("stopped");
    dir.unit("side", &stops_politely("side", &stopped));
    let up = dir.path().join("side-up");
    dir.unit(
        "marker",
        &format!(
            "exec = [\"sh\", \"-c\", \"touch {}; exec sleep 1000\"]\nrequires = [\"side\"]\n",
            up.display()
        ),
    );
    let script = format!(
        "until [ -e {} ]; do sleep 0.02; done; echo hello from the app; exit 7",
        up.display()
    );
    let (code, stdout, stderr) = run_to_end(&dir, &["--", "sh", "-c", &script]);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stdout.contains("app | hello from the app"), "{stdout}");
    let text = std::fs::read_to_string(&stopped).unwrap_or_default();
    assert_eq!(text.trim(), "stopped side", "{stderr}");
}

#[test]
fn an_app_killed_by_a_signal_gives_128_plus_its_number() {
    let dir = Dir::new();
    let (code, _, stderr) = run_to_end(&dir, &["--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, Some(137), "{stderr}");
    assert!(
        stderr.contains("unit `app` ended (killed by SIGKILL)"),
        "{stderr}"
    );
}

#[test]
fn an_app_that_cannot_start_gives_3() {
    let dir = Dir::new();
    let (code, _, stderr) = run_to_end(&dir, &["--", "/nonexistent/app"]);
    assert_eq!(code, Some(3), "{stderr}");
}

#[test]
fn a_fatal_unit_that_hits_its_start_limit_gives_3() {
    let dir = Dir::new();
    dir.unit(
        "main",
        "exec = [\"sh\", \"-c\", \"exit 1\"]\nfatal = true\n[restart]\ndelay = \"0s\"\nburst = 1\ninterval = \"1m\"\n",
    );
    let (code, _, stderr) = run_to_end(&dir, &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("start limit"), "{stderr}");
}

#[test]
fn a_unit_file_named_app_clashes_with_the_app() {
    let dir = Dir::new();
    dir.unit("app", "exec = [\"sleep\", \"1000\"]\n");
    let (code, _, stderr) = run_to_end(&dir, &["--", "true"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("rename the file"), "{stderr}");
}

#[test]
fn signals_reach_the_app_which_exits_by_itself_on_sigterm() {
    let dir = Dir::new();
    let seen = dir.path().join("seen");
    let seen_arg = seen.display().to_string();
    let mut svcd = dir.start_with(&["--", "python3", "-c", CATCHER, &seen_arg]);
    wait_for_file(&seen.with_extension("ready"));
    kill(svcd.pid(), 10); // SIGUSR1
    assert_eq!(lines_of(&seen, 1), ["SIGUSR1"]);
    kill(svcd.pid(), 1); // SIGHUP: the app's, not a reload
    assert_eq!(lines_of(&seen, 2), ["SIGUSR1", "SIGHUP"]);
    kill(svcd.pid(), 28); // SIGWINCH
    assert_eq!(lines_of(&seen, 3)[2], "SIGWINCH");
    let status = svcd.signal_and_wait(15);
    assert_eq!(lines_of(&seen, 4)[3], "SIGTERM");
    assert_eq!(status.code(), Some(5), "{}", svcd.stderr());
    let out = svcd.svc(&["status"]);
    assert!(!out.status.success(), "svcd is gone");
}

#[test]
fn with_g_signals_reach_the_apps_process_group() {
    let dir = Dir::new();
    let seen = dir.path().join("seen");
    // sh is the main process, and survives SIGUSR1; the python3 catcher is its child, in its
    // group.
    let script = format!(
        "trap : USR1; python3 -c \"$0\" {} & while :; do wait; done",
        seen.display()
    );
    let mut svcd = dir.start_with(&["-g", "--", "sh", "-c", &script, CATCHER]);
    wait_for_file(&seen.with_extension("ready"));
    kill(svcd.pid(), 10);
    assert_eq!(lines_of(&seen, 1), ["SIGUSR1"]);
    // SIGTERM to the group: the shell dies of it (128 + 15).
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(143), "{}", svcd.stderr());
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_within_shutdown_timeout() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("svcd.toml"), "shutdown_timeout = \"1s\"\n").expect("config");
    let ready = dir.path().join("ready");
    let code = format!(
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nopen('{}', 'w').close()\nwhile True: signal.pause()",
        ready.display()
    );
    let mut svcd = dir.start_with(&["--", "python3", "-c", &code]);
    wait_for_file(&ready);
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(137), "{}", svcd.stderr());
}

#[test]
fn orphans_of_the_app_are_reaped() {
    let dir = Dir::new();
    let orphan = dir.path().join("orphan");
    // `( cmd & )`: the subshell exits at once, so `sleep` is orphaned to svcd (a subreaper).
    let script = format!(
        "( sleep 0.2 & echo $! > {} ); exec sleep 1000",
        orphan.display()
    );
    let mut svcd = dir.start_with(&["--", "sh", "-c", &script]);
    let pid: u32 = lines_of(&orphan, 1)[0].trim().parse().expect("a pid");
    wait_until("the orphan to be reaped", DEADLINE, || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(zombies_of(svcd.pid()).is_empty());
    // The app (sleep) dies of the forwarded SIGTERM: 128 + 15.
    let status = svcd.signal_and_wait(15);
    assert_eq!(status.code(), Some(143), "{}", svcd.stderr());
}

#[test]
fn svc_kill_signals_a_units_group_or_main_process() {
    let dir = Dir::new();
    let seen = dir.path().join("seen");
    catcher_unit(&dir, &seen);
    dir.unit("idle", "exec = [\"sleep\", \"1000\"]\nenabled = false\n");
    let svcd = dir.start();
    wait_for_file(&seen.with_extension("ready"));
    svcd.svc_ok(&["kill", "catcher", "--signal", "USR1"], 0);
    assert_eq!(lines_of(&seen, 1), ["SIGUSR1"]);
    svcd.svc_ok(&["kill", "catcher", "-s", "12", "--main"], 0);
    assert_eq!(lines_of(&seen, 2)[1], "SIGUSR2");
    assert_eq!(svcd.svc(&["kill", "nope"]).status.code(), Some(4));
    assert_eq!(svcd.svc(&["kill", "idle"]).status.code(), Some(1));
    assert_eq!(
        svcd.svc(&["kill", "catcher", "--signal", "SIGNOPE"])
            .status
            .code(),
        Some(2)
    );
    // Default SIGTERM: the catcher exits 5, and its policy restarts it.
    svcd.svc_ok(&["kill", "catcher"], 0);
    assert_eq!(lines_of(&seen, 3)[2], "SIGTERM");
}

#[test]
fn forward_signals_pass_a_signal_of_svcd_to_the_units_named() {
    let dir = Dir::new();
    let seen = dir.path().join("seen");
    std::fs::write(
        dir.path().join("svcd.toml"),
        "forward_signals = { SIGUSR2 = [\"catcher\"] }\n",
    )
    .expect("config");
    catcher_unit(&dir, &seen);
    let svcd = dir.start();
    wait_for_file(&seen.with_extension("ready"));
    kill(svcd.pid(), 12);
    assert_eq!(lines_of(&seen, 1), ["SIGUSR2"]);
    svcd.wait_for("catcher", "running");
}

#[test]
fn forward_signals_refuse_sigterm() {
    let dir = Dir::new();
    std::fs::write(
        dir.path().join("svcd.toml"),
        "forward_signals = { SIGTERM = [\"x\"] }\n",
    )
    .expect("config");
    let (code, _, stderr) = run_to_end(&dir, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("SIGTERM cannot be forwarded"), "{stderr}");
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a JSON string is a TOML basic string")
}
