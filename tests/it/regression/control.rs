//! Regressions of the control socket and the `svc` client: requests, permissions, bounded work.

use crate::util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Sends `lines` on one connection, shuts the write side if `half_close`, and reads one answer
/// per line (fewer if svcd closes the connection first).
fn raw(socket: &std::path::Path, lines: &[&str], half_close: bool) -> Vec<serde_json::Value> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    for line in lines {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }
    if half_close {
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }
    let mut reader = BufReader::new(stream);
    let mut answers = Vec::new();
    for _ in lines {
        let mut answer = String::new();
        match reader.read_line(&mut answer) {
            Ok(n) if n > 0 => {
                answers.push(serde_json::from_str(&answer).expect("a JSON answer"));
            }
            _ => break,
        }
    }
    answers
}

/// The error kind of an answer, or "ok".
fn kind(answer: &serde_json::Value) -> String {
    if answer["ok"] == true {
        return "ok".into();
    }
    answer["error"]["kind"].as_str().unwrap_or("?").to_string()
}

/// `svc --socket SOCKET ARGS` as `user`, with its groups.
fn svc_as(user: &TestUser, socket: &std::path::Path, args: &[&str]) -> Command {
    let mut command = user.command(SVC);
    command.arg("--socket").arg(socket).args(args);
    command
}

/// Lets anyone reach the socket of `svcd` (the test's temp dirs are 0700).
fn open_dirs(svcd: &Svcd) {
    for path in [svcd.dir.path(), &svcd.dir.path().join("state")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `Vm...` of /proc/PID/status, in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = svc::proc::status(pid).expect("svcd's status");
    assert!(status.field(field).is_some(), "no {field} in {status:?}");
    status.number(field)
}

#[test]
fn half_closed_clients_get_every_answer() {
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("real", "running");
    // `printf ... | socat`: the request, then the end of input; the answer used to be lost
    // about half the time. Many tries, so that luck cannot pass the test.
    for _ in 0..40 {
        let answers = raw(
            &svcd.socket,
            &[
                r#"{"v":1,"cmd":"list"}"#,
                r#"{"v":1,"cmd":"status","names":["real"]}"#,
                r#"{"v":1,"cmd":"wait","names":["real"],"state":"running"}"#,
            ],
            true,
        );
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
    }
}

#[test]
fn unknown_fields_are_refused_for_every_command() {
    let svcd = Dir::new()
        .with("hello", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("hello", "running");
    for line in [
        r#"{"v":1,"cmd":"shutdown","names":["hello"]}"#,
        r#"{"v":1,"cmd":"reload","bogus":true}"#,
        r#"{"v":1,"cmd":"list","bogus":true}"#,
        r#"{"v":1,"cmd":"status","bogus":true}"#,
        r#"{"v":1,"cmd":"stop","names":["hello"],"bogus":true}"#,
        r#"{"v":1,"cmd":"start","names":["hello"],"bogus":true}"#,
        r#"{"v":1,"cmd":"restart","names":["hello"],"bogus":true}"#,
        r#"{"v":1,"cmd":"wait","names":["hello"],"state":"running","bogus":true}"#,
        r#"{"v":1,"cmd":"logs","names":["hello"],"bogus":true}"#,
    ] {
        let answers = raw(&svcd.socket, &[line], false);
        assert_eq!(answers.len(), 1, "{line}");
        assert_eq!(kind(&answers[0]), "bad_request", "{line}: {}", answers[0]);
    }
    // Nothing was stopped, nothing restarted, and svcd still answers.
    let status = svcd.status("hello");
    assert_eq!(status["state"], "running");
    assert_eq!(status["starts"], 1, "{status}");
}

#[test]
fn duplicate_keys_are_refused() {
    let svcd = Dir::new()
        .with("hello", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("hello", "running");
    for line in [
        r#"{"v":1,"cmd":"list","cmd":"shutdown"}"#,
        r#"{"v":1,"cmd":"status","names":["hello"],"cmd":"stop","names":["hello"]}"#,
    ] {
        let answers = raw(&svcd.socket, &[line], false);
        assert_eq!(answers.len(), 1, "{line}");
        assert_eq!(kind(&answers[0]), "bad_request", "{line}: {}", answers[0]);
    }
    assert_eq!(svcd.status("hello")["state"], "running");
}

#[test]
fn every_command_as_a_non_admin_peer() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("real", "running");
    // A reader who is no admin: the operator opened the socket to everyone.
    open_dirs(&svcd);
    std::fs::set_permissions(&svcd.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    for args in [
        &["status", "real"][..],
        &["list"],
        &["wait", "real", "--for", "running"],
        &["logs", "real"],
    ] {
        let out = svc_as(&user, &svcd.socket, args).output().expect("svc");
        assert_eq!(out.status.code(), Some(0), "svc {args:?}: {}", text(&out));
    }
    for args in [
        &["start", "real"][..],
        &["stop", "real"],
        &["restart", "real"],
        &["reload"],
        &["shutdown"],
    ] {
        let out = svc_as(&user, &svcd.socket, args).output().expect("svc");
        assert_eq!(out.status.code(), Some(1), "svc {args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("may read status but not change it"),
            "svc {args:?}: {}",
            text(&out)
        );
    }
    let status = svcd.status("real");
    assert_eq!(status["state"], "running");
    assert_eq!(status["starts"], 1, "{status}");
}

#[test]
fn admin_group_members_may_connect_and_change() {
    let Some(member) = TestUser::new(1) else {
        return;
    };
    let Some(outsider) = TestUser::new(0) else {
        return;
    };
    let Some((group, gid)) = member.groups.first().cloned() else {
        return;
    };
    let dir = Dir::new().with("real", "exec = [\"sleep\", \"1000\"]\n");
    std::fs::write(
        dir.path().join("svcd.toml"),
        format!("admin_group = \"{group}\"\n"),
    )
    .expect("svcd.toml");
    let svcd = dir.start();
    svcd.wait_for("real", "running");
    open_dirs(&svcd);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&svcd.socket).expect("socket");
    assert_eq!((meta.uid(), meta.gid()), (0, gid));
    assert_eq!(meta.mode() & 0o777, 0o660);

    let out = svc_as(&member, &svcd.socket, &["restart", "real"])
        .output()
        .expect("svc");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(svcd.status("real")["starts"], 2);

    let out = svc_as(&outsider, &svcd.socket, &["status"])
        .output()
        .expect("svc");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "permission denied (socket is root:{group} 0660; join {group})"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("is svcd running"), "{stderr}");
}

/// A unit that prints 30 MB of 100-byte lines once started, then `done`, then is quiet.
const NOISY: &str = r#"exec = ["sh", "-c", "i=0; while [ $i -lt 300 ]; do head -c 100000 /dev/zero | tr '\\0' x | fold -w 99; i=$((i+1)); done; echo done; exec sleep 1000"]
enabled = false
"#;

/// `count` followers of `noisy` as `user` that never read their output.
fn idle_followers(svcd: &Svcd, user: &TestUser, count: usize) -> Vec<std::process::Child> {
    (0..count)
        .map(|_| {
            svc_as(user, &svcd.socket, &["logs", "noisy", "-f"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("follower")
        })
        .collect()
}

fn start_noisy_and_wait(svcd: &Svcd) {
    let out = svcd.svc(&["start", "noisy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_until("the noisy unit's 30 MB", Duration::from_secs(120), || {
        let out = svcd.svc(&["logs", "noisy", "-n", "1"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("done")
            .then_some(())
    });
}

#[test]
fn connections_are_capped_per_user_and_root_is_always_served() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let svcd = Dir::new().with("noisy", NOISY).start();
    open_dirs(&svcd);
    std::fs::set_permissions(&svcd.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut followers = idle_followers(&svcd, &user, 40);
    let refused = wait_until("the followers over the cap to be refused", DEADLINE, || {
        let exited: Vec<usize> = (0..followers.len())
            .filter(|&i| followers[i].try_wait().ok().flatten().is_some())
            .collect();
        (exited.len() >= 8).then_some(exited)
    });
    // What each follower that ended said, so that a wrong count says why they ended.
    let said: Vec<String> = refused
        .iter()
        .map(|&i| {
            let mut stderr = String::new();
            if let Some(mut pipe) = followers[i].stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            stderr
        })
        .collect();
    assert_eq!(
        refused.len(),
        8,
        "32 connections per user; they said {said:?}"
    );
    for stderr in said {
        assert!(stderr.contains("too many connections"), "{stderr}");
    }
    // Root is served all the same.
    svcd.svc_ok(&["list"], 0);
    for mut follower in followers {
        let _ = follower.kill();
        let _ = follower.wait();
    }
}

#[test]
fn hostile_requests_keep_svcd_small() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let svcd = Dir::new()
        .with("noisy", NOISY)
        .with("n", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    let pid = svcd.pid();
    open_dirs(&svcd);
    std::fs::set_permissions(&svcd.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let followers = idle_followers(&svcd, &user, 20);
    wait_until("the followers to connect", DEADLINE, || {
        let fds = svc::proc::fd_count(pid)?;
        (fds >= 20).then_some(())
    });
    eprintln!("note: svcd VmHWM {} KiB before", vm_kib(pid, "VmHWM"));
    start_noisy_and_wait(&svcd);
    eprintln!(
        "note: svcd VmHWM {} KiB after the followers",
        vm_kib(pid, "VmHWM")
    );

    // `logs` naming the unit 300 times, 10,000 lines each: one unit's 10,000 lines.
    let names = vec!["\"noisy\""; 300].join(",");
    let logs = format!(r#"{{"v":1,"cmd":"logs","names":[{names}],"lines":10000}}"#);
    let mut stream = UnixStream::connect(&svcd.socket).expect("connect");
    stream
        .write_all(format!("{logs}\n").as_bytes())
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let lines = BufReader::new(&stream)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("\"end\":true"))
        .count();
    assert_eq!(lines, 10_001, "the answer and 10,000 lines");
    eprintln!("note: svcd VmHWM {} KiB after logs", vm_kib(pid, "VmHWM"));
    // A 64 KB `status` naming a unit 16,000 times: refused before anything is built from it.
    let names = vec!["\"n\""; 16_000].join(",");
    let status = format!(r#"{{"v":1,"cmd":"status","names":[{names}]}}"#);
    assert!(status.len() < 64 * 1024);
    let answers = raw(&svcd.socket, &[&status], false);
    assert_eq!(kind(&answers[0]), "bad_request", "{}", answers[0]);
    // 4,096 times, the most a request may name: one unit's answer, left unread many times.
    let names = vec!["\"n\""; 4_096].join(",");
    let status = format!(r#"{{"v":1,"cmd":"status","names":[{names}]}}"#);
    let answers = raw(&svcd.socket, &[&status], false);
    assert_eq!(answers[0]["units"].as_array().map(Vec::len), Some(1));
    let mut unread = Vec::new();
    for _ in 0..20 {
        let mut stream = UnixStream::connect(&svcd.socket).expect("connect");
        stream
            .write_all(format!("{status}\n").as_bytes())
            .expect("write");
        unread.push(stream);
    }
    // A line too long is refused, not buffered.
    let answers = raw(&svcd.socket, &[&"x".repeat(100 * 1024)], false);
    assert_eq!(kind(&answers[0]), "bad_request");
    svcd.svc_ok(&["list"], 0);

    let rss = vm_kib(pid, "VmRSS");
    let hwm = vm_kib(pid, "VmHWM");
    eprintln!("note: svcd VmRSS {rss} KiB, VmHWM {hwm} KiB");
    assert!(
        hwm < 32 * 1024,
        "svcd's peak RSS {hwm} KiB (now {rss} KiB) after hostile requests"
    );
    for mut follower in followers {
        let _ = follower.kill();
        let _ = follower.wait();
    }
}

#[test]
fn svc_gives_up_on_a_svcd_that_does_not_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("mute.sock");
    // Connections complete in the listen backlog; nobody ever reads or answers them.
    let _listener = UnixListener::bind(&socket).expect("bind");
    let svc = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(SVC);
        command.arg("--socket").arg(&socket).args(args);
        command.env_remove("SVC_TIMEOUT");
        if let Some(timeout) = env {
            command.env("SVC_TIMEOUT", timeout);
        }
        command.output().expect("svc")
    };
    for (args, env) in [
        (&["--timeout", "300ms", "status"][..], None),
        (&["list"], Some("300ms")),
        (&["reload", "--timeout", "300ms"], None),
        (&["stop", "x", "--timeout", "300ms"], None),
    ] {
        let out = svc(args, env);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("did not answer within 300ms"), "{stderr}");
        assert!(stderr.contains("mute.sock"), "{stderr}");
    }
    // The default: 10 s, not for ever.
    let started = std::time::Instant::now();
    let out = svc(&["status"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer within 10s"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Runs svc with its stdout a pipe whose reader is already gone, as `svc ... | head -c0`.
fn svc_into_closed_pipe(socket: &std::path::Path, args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    Command::new(SVC)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("svc")
}

#[test]
fn a_closed_stdout_is_no_crash() {
    let svcd = Dir::new()
        .with(
            "real",
            "exec = [\"sh\", \"-c\", \"echo hello; exec sleep 1000\"]\n",
        )
        .start();
    svcd.wait_for("real", "running");
    wait_until("the unit's line in its log", DEADLINE, || {
        svcd.svc_ok(&["logs", "real"], 0)
            .contains("hello")
            .then_some(())
    });
    for (args, code) in [
        (&["status"][..], 0),
        (&["status", "real", "--json"], 0),
        (&["status", "--check"], 0),
        (&["list"], 0),
        (&["logs", "real"], 0),
    ] {
        let out = svc_into_closed_pipe(&svcd.socket, args);
        // The answer's own exit status (not 134 of an abort, nor 141 of SIGPIPE), no message.
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
    // `svc status | grep -q real` under pipefail: as grep says.
    let script = format!(
        "set -o pipefail; {SVC} --socket '{}' status | grep -q real",
        svcd.socket.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Runs svc under a pseudo-terminal (python3's pty module); its output as the terminal got it.
fn svc_on_a_terminal(socket: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
            SVC,
        ])
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into()),
        Ok(out) => panic!("svc {args:?} on a terminal: {}", text(&out)),
        Err(e) => {
            skip(&format!("no python3 for a pty: {e}"));
            None
        }
    }
}

#[test]
fn start_stop_restart_say_what_they_did_on_a_terminal() {
    let svcd = Dir::new()
        .with("chat", "exec = [\"sleep\", \"1000\"]\n")
        .with("proxy", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("chat", "running");
    svcd.wait_for("proxy", "running");
    let Some(said) = svc_on_a_terminal(&svcd.socket, &["stop", "chat", "proxy"]) else {
        return;
    };
    assert_eq!(said.replace('\r', ""), "stopped chat\nstopped proxy\n");
    let said = svc_on_a_terminal(&svcd.socket, &["start", "chat"]).unwrap_or_default();
    assert_eq!(said.replace('\r', ""), "started chat\n");
    let said = svc_on_a_terminal(&svcd.socket, &["restart", "chat"]).unwrap_or_default();
    assert_eq!(said.replace('\r', ""), "restarted chat\n");
    let said = svc_on_a_terminal(&svcd.socket, &["restart", "-q", "chat"]).unwrap_or_default();
    assert_eq!(said, "");
    // In a pipe: quiet.
    assert_eq!(svcd.svc_ok(&["restart", "chat"], 0), "");
}

#[test]
fn a_follower_is_told_that_svcd_shut_down() {
    let mut svcd = Dir::new()
        .with(
            "real",
            "exec = [\"sh\", \"-c\", \"echo hello; exec sleep 1000\"]\n",
        )
        .start();
    let mut follower = Command::new(SVC)
        .arg("--socket")
        .arg(&svcd.socket)
        .args(["logs", "real", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("follower");
    let mut stdout = BufReader::new(follower.stdout.take().expect("stdout"));
    // svcd's own line about the start may come first.
    let mut line = String::new();
    while !line.contains("hello") {
        line.clear();
        let read = stdout.read_line(&mut line).expect("a line");
        assert!(read > 0, "the follower ended before the unit's line");
    }
    svcd.svc_ok(&["shutdown"], 0);
    let _ = svcd.signal_and_wait(15);
    let out = follower.wait_with_output().expect("follower");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("svcd shut down"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_says_a_path_does_not_exist() {
    let out = svc_check(std::path::Path::new("/nonexistent/chat.toml"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/chat.toml: no such file or directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid"), "{stderr}");
}

#[test]
fn a_follower_far_behind_is_dropped_and_told_why() {
    // The flood, then a line now and then, which carries the count of lines the follower
    // missed.
    let noisy = r#"exec = ["sh", "-c", "i=0; while [ $i -lt 100 ]; do head -c 100000 /dev/zero | tr '\\0' x | fold -w 99; echo; i=$((i+1)); done; echo done; while true; do echo tick; sleep 0.1; done"]
enabled = false
"#;
    let svcd = Dir::new().with("noisy", noisy).start();
    let mut stream = UnixStream::connect(&svcd.socket).expect("connect");
    stream
        .write_all(
            b"{\"v\":1,\"cmd\":\"logs\",\"names\":[\"noisy\"],\"lines\":0,\"follow\":true}\n",
        )
        .expect("write");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut reader = BufReader::new(&stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).expect("the answer");
    assert!(answer.contains("\"ok\":true"), "{answer}");
    // The follower reads nothing while the unit floods.
    svcd.svc_ok(&["start", "noisy"], 0);
    wait_until("the flood to end", Duration::from_secs(120), || {
        let out = svcd.svc(&["logs", "noisy", "-n", "1"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("tick")
            .then_some(())
    });
    // What svcd buffered, then the last line; bounded, so that a follower never dropped fails
    // the test instead of reading ticks for ever.
    let started = std::time::Instant::now();
    let last = reader
        .lines()
        .map_while(Result::ok)
        .take_while(|_| started.elapsed() < DEADLINE)
        .find(|line| line.contains("\"end\":true"))
        .expect("a last line");
    assert!(last.contains("lines behind"), "{last}");
}

#[test]
fn answers_a_reader_leaves_unread_are_bounded() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    // 100 units whose last 10 lines are 1 KB each: a `status` answer of about 1 MB.
    let mut dir = Dir::new();
    let unit = r#"exec = ["sh", "-c", "i=0; while [ $i -lt 10 ]; do head -c 1000 /dev/zero | tr '\\0' x; echo; i=$((i+1)); done; exec sleep 1000"]
"#;
    for n in 0..100 {
        dir = dir.with(&format!("u{n}"), unit);
    }
    let svcd = dir.start();
    let pid = svcd.pid();
    wait_until("every unit's 10 lines", DEADLINE, || {
        let out = svcd.svc(&["status", "--json"]);
        let units: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let units = units.as_array()?;
        (units.len() == 100
            && units
                .iter()
                .all(|u| u["logs"].as_array().is_some_and(|l| l.len() == 10)))
        .then_some(())
    });
    open_dirs(&svcd);
    std::fs::set_permissions(&svcd.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let before = vm_kib(pid, "VmHWM");
    // 32 connections, each asking for every unit's status and never reading the answer.
    let script = "import socket, sys\n\
        conns = []\n\
        for _ in range(32):\n    \
            s = socket.socket(socket.AF_UNIX)\n    \
            s.connect(sys.argv[1])\n    \
            s.sendall(b'{\"v\":1,\"cmd\":\"status\"}\\n')\n    \
            conns.append(s)\n\
        print('sent', flush=True)\n\
        sys.stdin.read()\n";
    let mut reader = Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .args(["/usr/bin/python3", "-c", script])
        .arg(&svcd.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut said = String::new();
    let mut stdout = BufReader::new(reader.stdout.take().expect("stdout"));
    stdout.read_line(&mut said).expect("python3's line");
    assert_eq!(said.trim(), "sent");
    // Round trips through the daemon task, after which it has seen the requests it will take.
    for _ in 0..3 {
        svcd.svc_ok(&["list"], 0);
    }
    let hwm = vm_kib(pid, "VmHWM");
    eprintln!("note: svcd VmHWM {before} KiB before, {hwm} KiB after");
    let _ = reader.kill();
    let _ = reader.wait();
    assert!(
        hwm < before + 16 * 1024,
        "svcd's peak RSS went from {before} KiB to {hwm} KiB"
    );
}
