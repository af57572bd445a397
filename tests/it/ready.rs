//! Dependencies, readiness checks, health checks and the watchdog, on real processes.

use crate::util::*;
use std::process::Command;

/// A port nothing listens on right now (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Writes `name` into the test dir and returns its path, for scripts units run.
fn script(dir: &Dir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write script");
    path.display().to_string()
}

/// A unit that records, when it starts, whether `port` already accepts connections.
fn probe_unit(port: u16, out: &std::path::Path) -> String {
    format!(
        "exec = [\"python3\", \"-c\", \"\"\"\nimport socket, time\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 2).close()\n    r = 'ok'\nexcept OSError as e:\n    r = 'refused'\nopen('{out}', 'w').write(r)\ntime.sleep(1000)\n\"\"\"]\n",
        out = out.display()
    )
}

#[test]
fn a_server_that_listens_late_gates_its_dependent() {
    let dir = Dir::new();
    let port = free_port();
    let seen = dir.path().join("seen");
    dir.unit(
        "server",
        &format!(
            "exec = [\"python3\", \"-c\", \"\"\"\nimport socket, time\ntime.sleep(0.7)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', {port}))\ns.listen(16)\nwhile True:\n    s.accept()[0].close()\n\"\"\"]\n\
             [ready]\ntcp = \"127.0.0.1:{port}\"\ntimeout = \"20s\"\n"
        ),
    );
    dir.unit(
        "web",
        &format!("requires = [\"server\"]\n{}", probe_unit(port, &seen)),
    );
    let svcd = dir.start();
    svcd.wait_for("web", "ready");
    let status = svcd.status("server");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["ready"], true, "{status}");
    let seen = wait_until("web's probe", DEADLINE, || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(seen, "ok", "web started before the server listened");
}

#[test]
fn sd_notify_gates_its_dependent_and_its_status_shows() {
    let dir = Dir::new();
    let marker = dir.path().join("ready-sent");
    let seen = dir.path().join("seen");
    let notifier = script(
        &dir,
        "notifier.py",
        &format!(
            "import os, socket, time\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             addr = os.environ['NOTIFY_SOCKET']\n\
             s.sendto(b'STATUS=warming up', addr)\n\
             time.sleep(0.5)\n\
             open('{marker}', 'w').write('x')\n\
             s.sendto(b'READY=1\\nSTATUS=serving 42 rooms', addr)\n\
             time.sleep(1000)\n",
            marker = marker.display()
        ),
    );
    dir.unit(
        "chat",
        &format!("exec = [\"python3\", \"{notifier}\"]\n[ready]\nnotify = true\n"),
    );
    dir.unit(
        "proxy",
        &format!(
            "requires = [\"chat\"]\nexec = [\"sh\", \"-c\", \"if test -e {m}; then echo ok; else echo early; fi > {s}; exec sleep 1000\"]\n",
            m = marker.display(),
            s = seen.display()
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("proxy", "running");
    let seen = wait_until("proxy's check", DEADLINE, || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(seen.trim(), "ok", "proxy started before chat sent READY=1");
    let status = svcd.status("chat");
    assert_eq!(status["status_text"], "serving 42 rooms", "{status}");
    assert_eq!(status["ready"], true, "{status}");
    let human = svcd.svc_ok(&["status", "chat"], 0);
    assert!(human.contains("Status: serving 42 rooms"), "{human}");
}

#[test]
fn a_stranger_cannot_speak_for_a_unit() {
    let dir = Dir::new();
    dir.unit(
        "quiet",
        "exec = [\"sleep\", \"1000\"]\n[ready]\nnotify = true\ntimeout = \"20s\"\n",
    );
    let svcd = dir.start();
    svcd.wait_for("quiet", "starting");
    let socket = dir_notify(&svcd);
    // This test process is not in the unit's group: its READY=1 must be ignored.
    let sent = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'READY=1', '{socket}')"
        ))
        .status()
        .expect("python3");
    assert!(sent.success());
    wait_until("svcd to log the stranger", DEADLINE, || {
        svcd.stderr().contains("of no unit").then_some(())
    });
    assert_eq!(svcd.status("quiet")["state"], "starting");
}

fn dir_notify(svcd: &Svcd) -> String {
    svcd.dir
        .path()
        .join("state/notify.sock")
        .display()
        .to_string()
}

#[test]
fn a_health_endpoint_that_turns_to_500_restarts_the_unit() {
    let dir = Dir::new();
    let port = free_port();
    let flag = dir.path().join("sick");
    let server = script(
        &dir,
        "health.py",
        &format!(
            "import http.server, os\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       code = 500 if os.path.exists('{flag}') else 200\n\
             \x20       self.send_response(code)\n\
             \x20       self.end_headers()\n\
             \x20   def log_message(self, *a):\n\
             \x20       pass\n\
             http.server.ThreadingHTTPServer.allow_reuse_address = True\n\
             http.server.ThreadingHTTPServer(('127.0.0.1', {port}), H).serve_forever()\n",
            flag = flag.display()
        ),
    );
    dir.unit(
        "api",
        &format!(
            "exec = [\"python3\", \"{server}\"]\n\
             [restart]\ndelay = \"50ms\"\n\
             [ready]\nhttp = \"http://127.0.0.1:{port}/\"\n\
             [health]\nhttp = \"http://127.0.0.1:{port}/health\"\ninterval = \"100ms\"\ntimeout = \"2s\"\nfailures = 2\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("api", "ready");
    let before = svcd.status("api");
    assert_eq!(before["restarts"], 0, "{before}");
    std::fs::write(&flag, "").expect("flag");
    let status = svcd.wait_status("api", "a health restart", |s| {
        s["last_exit"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("health check failed"))
    });
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("answered HTTP/1.0 500"), "{status}");
    // Healthy again: it comes back and stays.
    std::fs::remove_file(&flag).expect("unflag");
    svcd.wait_status("api", "ready again", |s| {
        s["ready"] == true && s["restarts"].as_u64() >= Some(1)
    });
}

#[test]
fn a_silent_watchdog_restarts_the_unit() {
    let dir = Dir::new();
    let env = dir.path().join("env");
    let pinger = script(
        &dir,
        "pinger.py",
        &format!(
            "import os, socket, time\n\
             open('{env}', 'a').write(os.environ.get('WATCHDOG_USEC', '-') + '\\n')\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
             for _ in range(5):\n\
             \x20   s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n\
             \x20   time.sleep(0.1)\n\
             time.sleep(1000)\n",
            env = env.display()
        ),
    );
    dir.unit(
        "pinger",
        &format!(
            "exec = [\"python3\", \"{pinger}\"]\n[restart]\ndelay = \"50ms\"\n\
             [ready]\nnotify = true\ntimeout = \"20s\"\n[health]\nwatchdog = \"1s\"\n"
        ),
    );
    let svcd = dir.start();
    let status = svcd.wait_status("pinger", "a watchdog restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("watchdog: no WATCHDOG=1 within 1s"),
        "{status}"
    );
    let usec = std::fs::read_to_string(&env).unwrap_or_default();
    assert_eq!(usec.lines().next(), Some("1000000"));
}

#[test]
fn cycles_unknown_names_and_self_dependencies_are_check_errors() {
    let dir = Dir::new();
    dir.unit("a", "exec = \"true\"\nrequires = [\"b\"]\n");
    dir.unit("b", "exec = \"true\"\nafter = [\"c\"]\n");
    dir.unit("c", "exec = \"true\"\nrequires = [\"a\"]\n");
    dir.unit("lost", "exec = \"true\"\nrequires = [\"nowhere\"]\n");
    dir.unit("me", "exec = \"true\"\nafter = [\"me\"]\n");
    dir.unit("fine", "exec = \"true\"\n");
    let out = svc_check(&dir.units());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dependency cycle: a requires b is after c requires a"),
        "{stderr}"
    );
    assert!(stderr.contains("no unit named `nowhere`"), "{stderr}");
    assert!(stderr.contains("`me` names itself"), "{stderr}");
    assert!(stderr.contains("5 of 6 unit files invalid"), "{stderr}");

    // svcd runs the rest and shows the broken ones with their errors.
    let svcd = dir.start();
    svcd.wait_for("fine", "inactive");
    let a = svcd.status("a");
    assert_eq!(a["state"], "failed", "{a}");
    assert!(
        a["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("dependency cycle"),
        "{a}"
    );
}

#[test]
fn stop_order_is_the_reverse_of_start_order() {
    let dir = Dir::new();
    let log = dir.path().join("log");
    let unit = |name: &str, deps: &str| {
        let flag = dir.path().join(format!("{name}.up"));
        format!(
            "{deps}\nexec = '''sh -c 'trap \"echo stop {name} >> {log}; exit 0\" TERM; echo start {name} >> {log}; touch {flag}; sleep 1000 & wait' '''\n\
             [ready]\nexec = [\"test\", \"-e\", \"{flag}\"]\n",
            log = log.display(),
            flag = flag.display()
        )
    };
    dir.unit("a", &unit("a", ""));
    dir.unit("b", &unit("b", "requires = [\"a\"]"));
    dir.unit("c", &unit("c", "requires = [\"b\"]\nafter = [\"a\"]"));
    let mut svcd = dir.start();
    svcd.wait_for("c", "ready");
    svcd.svc_ok(&["shutdown"], 0);
    let status = wait_until("svcd to exit", DEADLINE, || svcd.try_exit());
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "start a", "start b", "start c", "stop c", "stop b", "stop a"
        ],
        "{text}"
    );
}

#[test]
fn a_failed_requirement_leaves_its_dependent_waiting_with_the_reason() {
    let dir = Dir::new();
    let fixed = dir.path().join("fixed");
    dir.unit(
        "db",
        &format!(
            "exec = [\"sh\", \"-c\", \"test -e {} || exit 7; exec sleep 1000\"]\n[restart]\npolicy = \"never\"\n",
            fixed.display()
        ),
    );
    dir.unit("app", "requires = [\"db\"]\nexec = [\"sleep\", \"1000\"]\n");
    let svcd = dir.start();
    svcd.wait_for("db", "failed");
    let app = svcd.wait_status("app", "app waiting for the failed db", |s| {
        s["reason"] == "waiting for db (failed)"
    });
    assert_eq!(app["state"], "starting", "{app}");
    assert_eq!(app["pid"], serde_json::Value::Null, "{app}");
    // Starting it by hand cannot help: the answer says why at once.
    let out = svcd.svc(&["start", "app"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for db (failed)"), "{stderr}");
    // Once db is fixed and started, app follows by itself.
    std::fs::write(&fixed, "").expect("fix db");
    svcd.svc_ok(&["start", "db"], 0);
    svcd.wait_for("app", "running");
    let app = svcd.status("app");
    assert!(app["pid"].as_u64().is_some(), "{app}");
}

#[test]
fn starting_a_unit_starts_what_it_requires() {
    let svcd = Dir::new()
        .with("db", "exec = [\"sleep\", \"1000\"]\nenabled = false\n")
        .with(
            "app",
            "requires = [\"db\"]\nexec = [\"sleep\", \"1000\"]\nenabled = false\n",
        )
        .start();
    assert_eq!(svcd.status("db")["state"], "inactive");
    svcd.svc_ok(&["start", "app"], 0);
    assert_eq!(svcd.status("app")["state"], "running");
    let db = svcd.status("db");
    assert_eq!(db["state"], "running", "{db}");
    assert_eq!(db["reason"], "started as a requirement of app", "{db}");
}
