//! `type = "oneshot"` (with `remain`) and `type = "forking"` on real processes: a setup task
//! before the app, a daemon that double-forks and writes a pidfile, the real nginx and Redis.

use crate::util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// `prep` waits until the test creates `go`, then writes `prepared` and exits 0; `app` runs
/// only if `prepared` is there (else it fails, and is not restarted).
fn prep_and_app(dir: &Dir, prep_extra: &str) {
    let root = dir.path().display();
    dir.unit(
        "prep",
        &format!(
            "type = \"oneshot\"\nworkdir = \"{root}\"\nshell = true\n\
             exec = \"while [ ! -e go ]; do sleep 0.01; done; echo migrated > prepared\"\n\
             {prep_extra}"
        ),
    );
    dir.unit(
        "app",
        &format!(
            "requires = [\"prep\"]\nworkdir = \"{root}\"\nshell = true\n\
             exec = \"test -e prepared && exec sleep 1000\"\nrestart.policy = \"never\"\n"
        ),
    );
}

fn pid_of(status: &serde_json::Value) -> Option<u32> {
    status["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

/// The pid a pidfile holds, once it holds one.
fn pidfile(path: &Path) -> u32 {
    wait_until(&format!("a pid in {}", path.display()), DEADLINE, || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

#[test]
fn a_oneshot_runs_to_completion_before_its_dependent_which_keeps_running() {
    let dir = Dir::new();
    prep_and_app(&dir, "");
    let svcd = dir.start();
    let prep = svcd.wait_status("prep", "prep running", |s| !s["pid"].is_null());
    assert_eq!(prep["state"], "starting", "{prep}");
    let app = svcd.status("app");
    assert_eq!(app["state"], "starting", "{app}");
    assert!(app["pid"].is_null(), "app waits for prep: {app}");
    assert_eq!(app["reason"], "waiting for prep (starting)", "{app}");

    std::fs::write(svcd.dir.path().join("go"), "").expect("write go");
    svcd.wait_for("app", "running");
    let prep = svcd.status("prep");
    assert_eq!(prep["state"], "inactive", "{prep}");
    assert_eq!(prep["reason_kind"], "finished", "{prep}");
    assert_eq!(prep["last_exit"]["code"], 0, "{prep}");
    // prep's end was handled before app was spawned: had it taken app down, app would not be
    // on its first run.
    let app = svcd.status("app");
    assert_eq!(app["state"], "running", "{app}");
    assert_eq!(app["starts"], 1, "{app}");
    svcd.svc_ok(&["status", "app", "prep"], 0);
    svcd.svc_ok(&["status", "--check"], 0);
}

#[test]
fn remain_shows_exited_and_satisfies_requires_until_stopped() {
    let dir = Dir::new();
    prep_and_app(&dir, "remain = true\n");
    std::fs::write(dir.path().join("go"), "").expect("write go");
    let svcd = dir.start();
    svcd.wait_for("prep", "exited");
    svcd.wait_for("app", "running");
    let prep = svcd.status("prep");
    assert!(prep["pid"].is_null(), "{prep}");
    assert_eq!(prep["reason"], "finished (exited with code 0)", "{prep}");
    let text = svcd.svc_ok(&["status", "prep"], 0);
    assert!(text.contains("exited"), "{text}");
    // start leaves an exited oneshot be.
    svcd.svc_ok(&["start", "prep"], 0);
    assert_eq!(svcd.status("prep")["starts"], 1);
    // stop: inactive, and what requires it goes down (held until prep is back).
    let app_pid = pid_of(&svcd.status("app")).expect("app's pid");
    svcd.svc_ok(&["stop", "prep"], 0);
    assert_eq!(svcd.status("prep")["state"], "inactive");
    let app = svcd.wait_status("app", "app down", |s| s["pid"].is_null());
    assert_eq!(app["reason"], "waiting for prep (inactive)", "{app}");
    wait_until("app's process gone", DEADLINE, || {
        is_dead(app_pid).then_some(())
    });
    // restart runs it again, and app comes back.
    svcd.svc_ok(&["restart", "prep"], 0);
    svcd.wait_for("app", "running");
    assert_eq!(svcd.status("prep")["starts"], 2);
}

#[test]
fn a_failing_oneshot_fails_the_start_and_blocks_its_dependent() {
    let dir = Dir::new();
    dir.unit(
        "prep",
        "type = \"oneshot\"\nshell = true\nexec = \"echo cannot migrate; exit 3\"\n",
    );
    dir.unit(
        "app",
        "requires = [\"prep\"]\nexec = [\"sleep\", \"1000\"]\n",
    );
    let svcd = dir.start();
    svcd.wait_for("prep", "failed");
    let prep = svcd.status("prep");
    assert_eq!(
        prep["reason"], "exited with code 3; restart policy is never",
        "{prep}"
    );
    let app = svcd.status("app");
    assert_eq!(app["state"], "starting", "{app}");
    assert_eq!(app["reason"], "waiting for prep (failed)", "{app}");
    let out = svcd.svc(&["start", "app"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waiting for prep (failed)"), "{err}");
    let out = svcd.svc(&["start", "prep"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a oneshot's start waits for its end: {out:?}"
    );
}

/// A classic daemon: forks, the child calls setsid and forks again, the grandchild writes its
/// pid to `daemon.pid` (after its parent exited) and lives on. The first process exits 0 at once.
const DOUBLE_FORK: &str = r#"
import os, sys, time
if os.fork() > 0:
    sys.exit(0)
os.setsid()
if os.fork() > 0:
    os._exit(0)
with open("daemon.pid.tmp", "w") as f:
    f.write(str(os.getpid()) + "\n")
os.rename("daemon.pid.tmp", "daemon.pid")
print("daemon up", flush=True)
time.sleep(1000)
"#;

#[test]
fn a_forking_daemon_is_tracked_by_its_pidfile_restarted_and_stopped() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("daemon.py"), DOUBLE_FORK).expect("daemon.py");
    let root = dir.path().display();
    dir.unit(
        "daemon",
        &format!(
            "type = \"forking\"\nworkdir = \"{root}\"\npidfile = \"{root}/daemon.pid\"\n\
             exec = [\"python3\", \"daemon.py\"]\nrestart.delay = \"0s\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("daemon", "running");
    let pidfile_path = svcd.dir.path().join("daemon.pid");
    let first = pidfile(&pidfile_path);
    let status = svcd.status("daemon");
    assert_eq!(pid_of(&status), Some(first), "{status}");
    assert_eq!(state_and_parent(first).map(|s| s.1), Some(svcd.pid()));

    // Its crash is the unit's: restarted, with the new daemon's pid.
    std::fs::remove_file(&pidfile_path).expect("remove the pidfile");
    kill(first, 9);
    let status = svcd.wait_status("daemon", "a new run", |s| {
        s["state"] == "running" && pid_of(s).is_some_and(|p| p != first)
    });
    let second = pidfile(&pidfile_path);
    assert_eq!(pid_of(&status), Some(second), "{status}");
    assert_eq!(status["restarts"], 1, "{status}");
    assert_eq!(status["last_exit"]["signal"], "SIGKILL", "{status}");

    // The stop reaches it, though it left the group svcd made for the unit.
    svcd.svc_ok(&["stop", "daemon"], 0);
    wait_until("the daemon gone", DEADLINE, || {
        is_dead(second).then_some(())
    });
    let status = svcd.status("daemon");
    assert_eq!(status["last_exit"]["signal"], "SIGTERM", "{status}");
}

#[test]
fn without_pidfile_the_one_process_left_is_the_main_process() {
    let dir = Dir::new();
    let root = dir.path().display();
    dir.unit(
        "one",
        &format!(
            "type = \"forking\"\nshell = true\nworkdir = \"{root}\"\n\
             exec = \"sleep 1000 & echo $! > left.pid\"\n"
        ),
    );
    dir.unit(
        "two",
        "type = \"forking\"\nshell = true\nexec = \"sleep 1000 & sleep 1001 & exit 0\"\n\
         restart.policy = \"never\"\n",
    );
    let svcd = dir.start();
    svcd.wait_for("one", "running");
    let left = pidfile(&svcd.dir.path().join("left.pid"));
    assert_eq!(pid_of(&svcd.status("one")), Some(left));
    svcd.wait_for("two", "failed");
    let two = svcd.status("two");
    assert_eq!(two["reason_kind"], "main_pid", "{two}");
    let reason = two["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("cannot tell the main process: the start command left 2 processes"),
        "{two}"
    );
    // What it left is not left running.
    wait_until("two's sleeps gone", DEADLINE, || {
        let pids = children(svcd.pid());
        let comms: Vec<String> = pids
            .iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).ok())
            .collect();
        (!comms.iter().any(|c| c.contains("1001"))).then_some(())
    });
    svcd.svc_ok(&["stop", "one"], 0);
    wait_until("one's sleep gone", DEADLINE, || is_dead(left).then_some(()));
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .any(|dir| dir.join(program).is_file())
}

/// For a test of the real `program`: a dir, its path, and a free port; `None` (skipped,
/// visibly) where the program is not installed.
fn daemon_test(program: &str, package: &str) -> Option<(Dir, String, u16)> {
    if !on_path(program) {
        skip(&format!(
            "{program} not installed (apt-get install {package})"
        ));
        return None;
    }
    let dir = Dir::new();
    let root = dir.path().display().to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    Some((dir, root, port))
}

/// What the server at `port` answers to `request`, up to its first line.
fn ask(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.contains(&b'\n') {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn nginx_as_a_forking_daemon_is_tracked_reloaded_and_stopped() {
    let Some((dir, root, port)) = daemon_test("nginx", "nginx-light") else {
        return;
    };
    std::fs::create_dir(dir.path().join("temp")).expect("temp dir");
    let conf = format!(
        "daemon on;\nworker_processes 2;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {root}/temp/body;\n\
           proxy_temp_path {root}/temp/proxy;\n  fastcgi_temp_path {root}/temp/fastcgi;\n\
           uwsgi_temp_path {root}/temp/uwsgi;\n  scgi_temp_path {root}/temp/scgi;\n\
           server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("nginx.conf");
    dir.unit(
        "web",
        &format!(
            "type = \"forking\"\npidfile = \"{root}/nginx.pid\"\n\
             exec = [\"nginx\", \"-p\", \"{root}\", \"-c\", \"{root}/nginx.conf\", \"-e\", \"{root}/error.log\"]\n\
             env = {{ PATH = \"/usr/sbin:/usr/bin:/sbin:/bin\" }}\n\
             reload.signal = \"SIGHUP\"\n[ready]\ntcp = \"127.0.0.1:{port}\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("web", "ready");
    let master = pidfile(&svcd.dir.path().join("nginx.pid"));
    let status = svcd.status("web");
    assert_eq!(pid_of(&status), Some(master), "{status}");
    assert!(
        ask(port, "GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"),
        "nginx answers"
    );
    let old_workers = wait_until("nginx's workers", DEADLINE, || {
        Some(children(master)).filter(|w| w.len() == 2)
    });

    let out = svcd.svc_ok(&["reload", "web"], 0);
    assert!(out.contains("SIGHUP sent"), "{out}");
    let new_workers = wait_until("nginx's new workers", DEADLINE, || {
        let now = children(master);
        (now.len() == 2 && now.iter().all(|w| !old_workers.contains(w))).then_some(now)
    });
    eprintln!("nginx reloaded: workers {old_workers:?} → {new_workers:?}");
    let status = svcd.status("web");
    assert_eq!(pid_of(&status), Some(master), "the same master: {status}");
    assert_eq!(status["state"], "running", "{status}");

    svcd.svc_ok(&["stop", "web"], 0);
    for pid in std::iter::once(master).chain(new_workers) {
        wait_until("nginx gone", DEADLINE, || is_dead(pid).then_some(()));
    }
    assert_eq!(svcd.status("web")["state"], "inactive");
}

#[test]
fn redis_with_daemonize_yes_is_tracked_restarted_and_stopped() {
    let Some((dir, root, port)) = daemon_test("redis-server", "redis-server") else {
        return;
    };
    dir.unit(
        "redis",
        &format!(
            "type = \"forking\"\npidfile = \"{root}/redis.pid\"\n\
             exec = [\"redis-server\", \"--daemonize\", \"yes\", \"--port\", \"{port}\", \
             \"--bind\", \"127.0.0.1\", \"--pidfile\", \"{root}/redis.pid\", \"--dir\", \"{root}\", \
             \"--logfile\", \"{root}/redis.log\", \"--save\", \"\", \"--appendonly\", \"no\"]\n\
             restart.delay = \"0s\"\n[ready]\ntcp = \"127.0.0.1:{port}\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("redis", "ready");
    let pidfile_path = svcd.dir.path().join("redis.pid");
    let first = pidfile(&pidfile_path);
    assert_eq!(pid_of(&svcd.status("redis")), Some(first));
    assert_eq!(ask(port, "PING\r\n").trim_end(), "+PONG");

    // Redis removes its pidfile on a clean exit only: after kill -9 the file names a dead pid
    // until the new server writes its own.
    kill(first, 9);
    let status = svcd.wait_status("redis", "a new run", |s| {
        s["state"] == "running" && pid_of(s).is_some_and(|p| p != first)
    });
    let second = pid_of(&status).expect("redis's pid");
    assert_eq!(pidfile(&pidfile_path), second);
    assert_eq!(ask(port, "PING\r\n").trim_end(), "+PONG");

    svcd.svc_ok(&["stop", "redis"], 0);
    wait_until("redis gone", DEADLINE, || is_dead(second).then_some(()));
    assert_eq!(svcd.status("redis")["state"], "inactive");
}
