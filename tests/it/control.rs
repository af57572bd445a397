//! The control socket and the `svc` client: exit codes, JSON, bad requests, permissions.

use crate::util::*;
use std::io::{BufRead, BufReader, Write};

#[test]
fn unknown_units_exit_4() {
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("real", "running");
    for args in [
        &["status", "nope"][..],
        &["start", "nope"],
        &["stop", "real", "nope"],
        &["restart", "nope"],
    ] {
        let out = svcd.svc(args);
        assert_eq!(out.status.code(), Some(4), "svc {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nope"),
            "svc {args:?}"
        );
    }
    // Nothing was stopped by the refused `stop real nope`.
    assert_eq!(svcd.status("real")["state"], "running");
}

#[test]
fn status_json_has_the_fixed_fields() {
    let svcd = Dir::new()
        .with(
            "chat",
            "description = \"chat server\"\nexec = [\"sleep\", \"1000\"]\n",
        )
        .start();
    svcd.wait_for("chat", "running");
    // Memory is sampled: a unit read in the instant after its spawn, before its exec, counts
    // nothing yet, and that reading stands for one sampling interval (failed once under load).
    let status = svcd.wait_status("chat", "its memory counted", |s| {
        s["memory"]["rss"].as_u64().is_some_and(|rss| rss > 0)
    });
    assert_eq!(status["name"], "chat");
    assert_eq!(status["state"], "running");
    assert_eq!(status["ready"], true);
    assert!(status["pid"].as_u64().is_some_and(|p| p > 1), "{status}");
    let since = status["since"].as_str().expect("since");
    assert!(
        since.len() >= 20 && since.ends_with('Z') && since.as_bytes()[10] == b'T',
        "{since}"
    );
    assert_eq!(status["restarts"], 0);
    assert_eq!(status["last_exit"], serde_json::Value::Null);
    assert!(
        status["memory"]["rss"].as_u64().is_some_and(|rss| rss > 0),
        "{status}"
    );
    assert!(status["memory"]["swap"].as_u64().is_some(), "{status}");

    let human = svcd.svc_ok(&["status", "chat"], 0);
    assert!(human.contains("chat - chat server"), "{human}");
    assert!(human.contains("State: running since"), "{human}");
    assert!(human.contains("Command: sleep 1000"), "{human}");
    let list = svcd.svc_ok(&["list"], 0);
    assert!(
        list.lines()
            .any(|l| l.starts_with("chat ") && l.contains("running")),
        "{list}"
    );
}

#[test]
fn malformed_requests_get_an_error_and_the_daemon_goes_on() {
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    for bad in [
        "this is not json",
        "{\"v\":1,\"cmd\":\"explode\"}",
        "{\"v\":99,\"cmd\":\"list\"}",
        "[1,2",
    ] {
        let mut stream = std::os::unix::net::UnixStream::connect(&svcd.socket).expect("connect");
        stream
            .write_all(format!("{bad}\n").as_bytes())
            .expect("write");
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .expect("read");
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
        assert_eq!(answer["ok"], false, "{bad}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some(), "{answer}");
    }
    // A client that hangs up mid-request changes nothing either.
    drop(std::os::unix::net::UnixStream::connect(&svcd.socket).expect("connect"));
    svcd.wait_for("real", "running");
}

#[test]
fn socket_is_not_world_accessible() {
    use std::os::unix::fs::PermissionsExt;
    let svcd = Dir::new().start();
    let mode = std::fs::metadata(&svcd.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "{mode:o}");
}

#[test]
fn unreachable_daemon_names_the_socket() {
    let out = std::process::Command::new(SVC)
        .args(["--socket", "/nonexistent/svcd.sock", "status"])
        .output()
        .expect("svc");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/svcd.sock"));
}

#[test]
fn usage_errors_exit_2() {
    let out = std::process::Command::new(SVC)
        .args(["frobnicate"])
        .output()
        .expect("svc");
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(SVC)
        .args(["start"])
        .output()
        .expect("svc");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn wait_times_out_with_exit_1() {
    let svcd = Dir::new()
        .with("idle", "exec = [\"sleep\", \"1000\"]\nenabled = false\n")
        .start();
    let out = svcd.svc(&["wait", "idle", "--for", "running", "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(1));
    svcd.svc_ok(&["wait", "idle", "--for", "inactive", "--timeout", "5s"], 0);
}

#[test]
fn a_second_svcd_on_the_same_socket_is_refused() {
    let svcd = Dir::new().start();
    let out = std::process::Command::new(SVCD)
        .arg("--units")
        .arg(svcd.dir.units())
        .arg("--socket")
        .arg(&svcd.socket)
        // Never the default state dir (`/run/svc`): the machine's own svcd may live there.
        .arg("--state-dir")
        .arg(svcd.dir.path().join("state2"))
        .arg("--config")
        .arg(svcd.dir.path().join("svcd.toml"))
        .output()
        .expect("second svcd");
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another svcd"));
    // The first still answers.
    svcd.svc_ok(&["list"], 0);
}

#[test]
fn only_admins_may_change_anything() {
    use std::os::unix::fs::PermissionsExt;
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root
        || std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        skip("needs root and setpriv");
        return;
    }
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("real", "running");
    // Let `nobody` reach the socket, as a member of svcd's group would.
    for path in [svcd.dir.path(), &svcd.dir.path().join("state")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&svcd.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                SVC,
                "--socket",
            ])
            .arg(&svcd.socket)
            .args(args)
            .output()
            .expect("setpriv svc")
    };
    let out = as_nobody(&["status", "real"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&["stop", "real"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("may read status but not change it"));
    assert_eq!(svcd.status("real")["state"], "running");
}

/// No answer of the socket, readable by every peer that may read, carries a unit's
/// environment (its secrets): neither `env` nor the values of its `env_file`.
#[test]
fn no_answer_carries_a_units_environment() {
    let dir = Dir::new();
    let env_file = dir.path().join("secrets.env");
    std::fs::write(&env_file, "FILE_SECRET=s3cr3t-from-file\n").expect("env file");
    let svcd = dir
        .with(
            "app",
            &format!(
                "exec = [\"sleep\", \"1000\"]\nenv = {{ INLINE_SECRET = \"s3cr3t-inline\" }}\n\
                 env_file = {:?}\n",
                env_file.display().to_string()
            ),
        )
        .start();
    svcd.wait_for("app", "running");
    for args in [
        &["status", "app"][..],
        &["status", "app", "--json"][..],
        &["list"][..],
        &["list", "--json"][..],
    ] {
        let said = svcd.svc_ok(args, 0);
        assert!(said.contains("app"), "svc {args:?}: {said}");
        assert!(
            !said.contains("s3cr3t"),
            "svc {args:?} shows a secret: {said}"
        );
    }
}

/// `svc status` with a socket and names only takes a way of its own, past the parser of every
/// command (`cli::quick_status`); `-q` makes the parser take it. Both print and exit alike:
/// for a running unit, a stopped one, an unknown one.
#[test]
fn the_quick_status_prints_and_exits_as_the_parsers_status_does() {
    let svcd = Dir::new()
        .with("real", "exec = [\"sleep\", \"1000\"]\n")
        .with("idle", "exec = [\"sleep\", \"1000\"]\nenabled = false\n")
        .start();
    svcd.wait_for("real", "running");
    // Words with digits masked: time passes between the two answers ("980ms ago", "1s ago").
    let masked = |out: &std::process::Output| {
        let text = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(|line| {
                    let words = line.split(' ');
                    let words = words.map(|w| match w.contains(|c: char| c.is_ascii_digit()) {
                        true => "#",
                        false => w,
                    });
                    words.collect::<Vec<_>>().join(" ")
                })
                .collect::<Vec<_>>()
        };
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    for names in [&["real"][..], &["real", "idle"], &["nope"], &[]] {
        let quick = svcd.svc(&[&["status"][..], names].concat());
        let parsed = svcd.svc(&[&["-q", "status"][..], names].concat());
        assert_eq!(masked(&quick), masked(&parsed), "svc status {names:?}");
    }
    let quick = svcd.svc(&["status", "real", "idle"]);
    assert_eq!(quick.status.code(), Some(3), "{quick:?}");
    assert!(String::from_utf8_lossy(&quick.stdout).contains("● real"));
}

/// svc is linked with `src/bin/svc.ld` and svcd with `src/bin/svcd.ld` (build.rs): what `svc
/// status` runs sits in a section of its own ahead of `.text`, its `main` among it, and so does
/// what svcd runs to answer it (`Daemon::handle_request` among it).
#[test]
fn svc_and_svcd_are_linked_with_their_status_paths_in_a_section_of_their_own() {
    let tool = |name: &str, args: &[&str]| {
        let out = std::process::Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e} (binutils)"));
        assert!(out.status.success(), "{name} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `[11] .text.hot PROGBITS 000000000008f000 08e000 067add ...`: address and size.
    let section = |binary: &str, name: &str| {
        let sections = tool("readelf", &["-SW", binary]);
        sections.lines().find_map(|line| {
            let words: Vec<&str> = line.split(['[', ']']).nth(2)?.split_whitespace().collect();
            (words.first() == Some(&name)).then(|| {
                let hex = |i: usize| u64::from_str_radix(words[i], 16).expect("hex");
                (hex(2), hex(4))
            })
        })
    };
    // The address of the first function of `binary` whose (mangled) name `is`.
    let function = |binary: &str, is: &dyn Fn(&str) -> bool| {
        tool("nm", &["--defined-only", binary])
            .lines()
            .find_map(
                |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [address, "T" | "t", name] if is(name) => u64::from_str_radix(address, 16).ok(),
                    _ => None,
                },
            )
            .unwrap_or_else(|| panic!("{binary} has no such function"))
    };
    for (binary, is) in [
        (SVC, &(|name: &str| name == "main") as &dyn Fn(&str) -> bool),
        (SVCD, &|name: &str| {
            name.ends_with("6Daemon14handle_request")
        }),
    ] {
        let (start, size) = section(binary, ".text.hot").expect("a .text.hot section");
        let (text, _) = section(binary, ".text").expect(".text");
        assert!(
            size > 0 && start + size <= text,
            "{binary}: {start:x}+{size:x}, .text at {text:x}"
        );
        let address = function(binary, is);
        assert!(
            (start..start + size).contains(&address),
            "{binary}: at {address:x}, out of .text.hot"
        );
    }
}

/// svc starts without std's runtime (`src/bin/svc.rs`): it opens what its caller closed of 0, 1
/// and 2 on /dev/null itself, so that its socket to svcd never takes one of those numbers: the
/// lines `svc logs -f` prints while its connection is open would go to svcd as requests. A
/// listener of the test's plays svcd and keeps what it is sent after its answer.
#[test]
fn svc_with_its_stdio_closed_sends_svcd_nothing_but_its_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let unknown = r#"{"v":1,"ok":false,"error":{"kind":"unknown_unit","message":"unknown unit: nope","names":["nope"]}}"#;
    let log = concat!(
        r#"{"v":1,"ok":true}"#,
        "\n",
        r#"{"log":{"unit":"chat","time":"2026-11-26T14:10:13.345Z","stream":"stdout","line":"hello"}}"#,
        "\n",
        r#"{"end":true}"#
    );
    for (closed, args, answer, want) in [
        (">&-", "logs -f chat", log, 0),
        ("2>&-", "logs -f chat", log, 0),
        ("<&- >&- 2>&-", "logs -f chat", log, 0),
        ("<&- >&- 2>&-", "status nope", unknown, 4),
        ("<&- >&- 2>&-", "-q status nope", unknown, 4),
    ] {
        let script = format!(
            "{SVC} --socket '{}' {args} {closed}; echo \"exit $?\" >&3",
            socket.display()
        );
        let child = std::process::Command::new("bash")
            .args(["-c", &format!("exec 3>&1; {script}")])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        let (stream, _) = wait_until("svc's connection", DEADLINE, || listener.accept().ok());
        stream.set_nonblocking(false).expect("blocking");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut reader = BufReader::new(&stream);
        let mut request = String::new();
        reader.read_line(&mut request).expect("request");
        (&stream)
            .write_all(format!("{answer}\n").as_bytes())
            .expect("answer");
        // Until svc closes its end, after the last line.
        let mut after = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut after).expect("the rest");
        let out = child.wait_with_output().expect("bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.lines().last(),
            Some(format!("exit {want}").as_str()),
            "svc {args} {closed}"
        );
        assert!(
            after.is_empty(),
            "svc {args} {closed} sent svcd its output: {}",
            String::from_utf8_lossy(&after)
        );
    }
}
