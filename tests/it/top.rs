//! `svc top`: in a real terminal (tmux: keys sent, the screen read back) and as plain text.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CHAT: &str = "exec = [\"sh\", \"-c\", \"while :; do echo tick; sleep 1; done\"]\n";
const WORKER: &str = "exec = [\"sleep\", \"1000\"]\n";

/// A tmux server of the test's own (its socket in the test's dir), killed when dropped, also
/// when the test fails.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A server running `svc --socket SOCKET top` in an 80×24 session, followed by a shell's
    /// report of how it exited and of the terminal's modes; `None`, after `skip`, without tmux.
    fn top(svcd: &Svcd) -> Option<Tmux> {
        Tmux::top_as(svcd, Command::new(SVC))
    }

    /// [`Tmux::top`] with `svc` run by `command` (e.g. `setpriv` as another user).
    fn top_as(svcd: &Svcd, mut command: Command) -> Option<Tmux> {
        if !Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            skip("tmux is not installed (.ci/run installs it)");
            return None;
        }
        let tmux = Tmux {
            socket: svcd.dir.path().join("tmux.sock"),
        };
        // The command and the paths are the script's arguments, never part of its text.
        let script =
            "\"$0\" \"$@\" top; echo \"EXITED $?\"; stty -a; echo END-OF-MODES; exec sleep 600";
        command.arg("--socket").arg(&svcd.socket);
        let program = command.get_program().to_string_lossy().into_owned();
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut argv = vec!["new-session", "-d", "-s", "top", "-x", "80", "-y", "24"];
        argv.extend(["sh", "-c", script, &program]);
        argv.extend(args.iter().map(String::as_str));
        let out = tmux.run(&argv);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout)
    }

    /// Waits until the pane shows what `condition` looks for; its answer.
    fn wait_for<T>(&self, what: &str, condition: impl Fn(&str) -> Option<T>) -> T {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(what, DEADLINE, || {
                last = self.screen();
                condition(&last)
            })
        }));
        found.unwrap_or_else(|_| panic!("the screen never showed {what}:\n{last}"))
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    /// The pid of the shell in the pane; `svc` is its child.
    fn shell_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "top", "#{pane_pid}"]);
        text(&out.stdout).trim().parse().expect("pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The words of the row of `unit` on `screen`: NAME STATE SINCE RESTARTS ...
fn row(screen: &str, unit: &str) -> Option<Vec<String>> {
    let line = screen
        .lines()
        .find(|line| line.split_whitespace().next() == Some(unit))?;
    Some(line.split_whitespace().map(str::to_string).collect())
}

fn starts(svcd: &Svcd, unit: &str) -> u64 {
    svcd.status(unit)["starts"].as_u64().expect("starts")
}

/// After svc exited, the pane's shell printed its exit status and `stty -a`: the terminal must
/// be back in cooked mode with echo (and off the alternate screen, or the lines would not show).
/// `stty -a` writes its lines one by one, and the modes come last: the screen is read once the
/// marker after them shows (reading at its first line failed once in CI).
fn assert_exited_and_restored(tmux: &Tmux, code: i32) {
    let exited = format!("EXITED {code}");
    let screen = tmux.wait_for("the terminal's modes", |s| {
        s.contains("END-OF-MODES").then(|| s.to_string())
    });
    assert!(screen.contains(&exited), "{screen}");
    let words: Vec<&str> = screen.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(words.contains(&mode), "{mode} not restored:\n{screen}");
    }
    let alternate = tmux.run(&["display-message", "-p", "-t", "top", "#{alternate_on}"]);
    assert_eq!(
        text(&alternate.stdout).trim(),
        "0",
        "still on the alternate screen"
    );
}

#[test]
fn top_in_a_terminal_shows_a_crash_filters_restarts_and_quits_cleanly() {
    let svcd = Dir::new().with("chat", CHAT).with("worker", WORKER).start();
    svcd.wait_for("chat", "running");
    svcd.wait_for("worker", "running");
    let Some(tmux) = Tmux::top(&svcd) else { return };
    tmux.wait_for("both units", |s| {
        (row(s, "chat").is_some() && row(s, "worker").is_some()).then_some(())
    });
    let header = tmux.screen();
    assert!(header.contains("RESTARTS"), "{header}");
    assert!(
        header.lines().next().is_some_and(|l| l.contains("svcd ")),
        "{header}"
    );

    // A crash: the restart count on screen changes, from svcd's events.
    let pid = svcd.status("chat")["pid"].as_u64().expect("pid") as u32;
    kill(pid, 9);
    tmux.wait_for("chat's restart count of 1", |s| {
        row(s, "chat").filter(|w| w.get(3).map(String::as_str) == Some("1"))
    });

    // `/` and a name: only that unit is left; `r` restarts it.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "work"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filter to leave worker alone", |s| {
        (row(s, "worker").is_some() && row(s, "chat").is_none() && s.contains("filter \"work\""))
            .then_some(())
    });
    let before = starts(&svcd, "worker");
    tmux.keys(&["r"]);
    svcd.wait_status("worker", "worker started again", |s| {
        s["starts"].as_u64() > Some(before) && s["state"] == "running"
    });
    tmux.wait_for("the restart said", |s| {
        s.contains("restarting worker").then_some(())
    });

    // The log view, then back, then `q`.
    tmux.keys(&["l"]);
    tmux.wait_for("worker's log", |s| {
        (s.contains("log of worker") && s.contains("restarted by operator")).then_some(())
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the table again", |s| row(s, "worker").map(|_| ()));
    tmux.keys(&["q"]);
    assert_exited_and_restored(&tmux, 0);
}

#[test]
fn top_says_svcd_is_gone_and_sigterm_restores_the_terminal() {
    let mut svcd = Dir::new().with("worker", WORKER).start();
    svcd.wait_for("worker", "running");
    let Some(tmux) = Tmux::top(&svcd) else { return };
    tmux.wait_for("the unit", |s| row(s, "worker").map(|_| ()));
    let status = svcd.signal_and_wait(15);
    assert!(status.success(), "svcd: {status}");
    tmux.wait_for("svcd gone", |s| s.contains("svcd gone").then_some(()));
    let svc = wait_until("svc under the pane's shell", DEADLINE, || {
        children(tmux.shell_pid()).first().copied()
    });
    kill(svc, 15);
    assert_exited_and_restored(&tmux, 128 + 15);
}

#[test]
fn top_shows_a_refused_command_in_its_status_line_and_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = TestUser::new(0) else { return };
    let svcd = Dir::new().with("worker", WORKER).start();
    svcd.wait_for("worker", "running");
    // A reader who is no admin: the operator opened the socket to everyone.
    for path in [
        svcd.dir.path(),
        &svcd.dir.path().join("state"),
        &svcd.socket,
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let Some(tmux) = Tmux::top_as(&svcd, user.command(SVC)) else {
        return;
    };
    tmux.wait_for("the unit", |s| row(s, "worker").map(|_| ()));
    tmux.keys(&["r"]);
    tmux.wait_for("the refusal", |s| {
        s.contains("may read status but not change it")
            .then_some(())
    });
    assert_eq!(svcd.status("worker")["starts"], 1, "nothing restarted");
    // Still running: the keys still work.
    tmux.keys(&["s"]);
    tmux.wait_for("sorted by state", |s| {
        s.contains("sort state").then_some(())
    });
    tmux.keys(&["q"]);
    assert_exited_and_restored(&tmux, 0);
}

fn top_text(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(SVC)
        .arg("--socket")
        .arg(socket)
        .arg("top")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("svc top");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn top_without_a_terminal_prints_snapshots_as_text() {
    let svcd = Dir::new().with("chat", CHAT).with("worker", WORKER).start();
    svcd.wait_for("chat", "running");
    svcd.wait_for("worker", "running");
    let once = top_text(&svcd.socket, &[]);
    assert_eq!(once.matches("svc top - svcd ").count(), 1, "{once}");
    assert!(once.contains("2 units: 2 running"), "{once}");
    assert!(
        once.lines().nth(1).is_some_and(|l| l.starts_with("mem [")),
        "{once}"
    );
    let header = once.lines().nth(2).unwrap_or_default();
    for title in [
        "NAME",
        "STATE",
        "SINCE",
        "RESTARTS",
        "CPU%",
        "RSS",
        "SWAP",
        "LAST LOG LINE",
    ] {
        assert!(header.contains(title), "{title}: {once}");
    }
    let chat = row(&once, "chat").expect("chat's row");
    assert_eq!(chat[1], "running", "{once}");
    assert_eq!(chat[3], "0", "{once}");
    assert!(row(&once, "worker").is_some(), "{once}");
    // `--batch N`: N snapshots, `--interval` apart, each with its own memory history.
    let twice = top_text(&svcd.socket, &["--batch", "2", "--interval", "100ms"]);
    assert_eq!(twice.matches("svc top - svcd ").count(), 2, "{twice}");
    assert!(twice.contains("every 100ms"), "{twice}");
    // No svcd: exit 1, saying where it looked, before anything is drawn.
    let out = Command::new(SVC)
        .arg("--socket")
        .arg(svcd.dir.path().join("nothing.sock"))
        .args(["top", "--batch", "1"])
        .output()
        .expect("svc top");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing.sock"),
        "{}",
        text(&out.stderr)
    );
}
