//! `exec_start_pre`, `exec_start_post`, `exec_stop` and the directories svcd makes for a unit,
//! on real processes; and PostgreSQL run as a real deployment would.

use crate::util::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The file's lines, or none while it does not exist.
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A pid the unit wrote into `path`, once it is there.
fn pid_in(path: &Path) -> u32 {
    wait_until("a pid in a file", DEADLINE, || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

#[test]
fn a_failing_pre_hook_fails_the_start_naming_the_command_and_its_exit() {
    let dir = Dir::new();
    let ran = dir.path().join("main-ran");
    let unit = format!(
        "exec = [\"touch\", \"{}\"]\nrestart.policy = \"never\"\n\
         exec_start_pre = [\"true\", [\"sh\", \"-c\", \"echo preparing; exit 2\"]]\n",
        ran.display()
    );
    let svcd = dir.with("app", &unit).start();
    let status = svcd.wait_status("app", "a failed start", |s| s["state"] == "failed");
    assert_eq!(
        status["last_exit"]["reason"],
        "exec_start_pre[1] sh -c echo preparing; exit 2 exited with code 2"
    );
    assert_eq!(status["last_exit"]["kind"], "hook");
    assert_eq!(status["last_exit"]["code"], 2);
    assert!(
        !ran.exists(),
        "the main command ran after a failed pre hook"
    );
    // The hook's output is in the unit's log.
    let logs = svcd.svc_ok(&["logs", "app"], 0);
    assert!(logs.contains("preparing"), "{logs}");
    // An operator's start fails the same way, with the reason.
    let out = svcd.svc(&["start", "app"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!ran.exists());
}

#[test]
fn hooks_run_in_order_with_the_units_environment_and_post_after_readiness() {
    let dir = Dir::new();
    let trace = dir.path().join("trace");
    let ready = dir.path().join("ready");
    let t = trace.display();
    let r = ready.display();
    let unit = format!(
        "exec = [\"sh\", \"-c\", \"echo main >> {t}; touch {r}; exec sleep 1000\"]\n\
         env = {{ WHO = \"unit-env\" }}\n\
         exec_start_pre = [[\"sh\", \"-c\", \"echo pre1 $WHO >> {t}\"], \"-false\", \
         [\"sh\", \"-c\", \"echo pre2 >> {t}\"]]\n\
         exec_start_post = [[\"sh\", \"-c\", \"test -e {r} && echo post $MAINPID >> {t}\"]]\n\
         ready.exec = [\"test\", \"-e\", \"{r}\"]\n"
    );
    let svcd = dir.with("app", &unit).start();
    svcd.wait_for("app", "running");
    let pid = svcd.status("app")["pid"].as_u64().unwrap();
    assert_eq!(
        lines(&trace),
        [
            "pre1 unit-env".to_string(),
            "pre2".to_string(),
            "main".to_string(),
            format!("post {pid}")
        ]
    );
}

#[test]
fn exec_stop_runs_before_the_stop_signal_with_mainpid() {
    let dir = Dir::new();
    let stopped = dir.path().join("stop-ran");
    let record = dir.path().join("record");
    let (s, r) = (stopped.display(), record.display());
    // The main process records, when SIGTERM comes, whether exec_stop had run by then. The
    // command fails, so the signal follows at once (after one that exits 0, the main process
    // would have until the stop timeout to exit by itself: see the nginx test).
    let unit = format!(
        "exec = [\"sh\", \"-c\", \"trap 'test -s {s} && echo saw-stop >> {r}; exit 0' TERM; \
         sleep 1000 & wait\"]\n\
         exec_stop = [[\"sh\", \"-c\", \"echo $MAINPID > {s}; exit 1\"]]\n"
    );
    let svcd = dir.with("app", &unit).start();
    svcd.wait_for("app", "running");
    let pid = svcd.status("app")["pid"].as_u64().unwrap();
    svcd.svc_ok(&["stop", "app"], 0);
    assert_eq!(pid_in(&stopped) as u64, pid);
    assert_eq!(lines(&record), ["saw-stop"]);
    let status = svcd.status("app");
    assert_eq!(status["state"], "inactive");
    assert_eq!(status["last_exit"]["code"], 0, "{status}");
}

#[test]
fn a_stop_while_a_pre_hook_runs_kills_it() {
    let dir = Dir::new();
    let hook_pid = dir.path().join("hook-pid");
    let unit = format!(
        "exec = [\"sleep\", \"1000\"]\n\
         exec_start_pre = [[\"sh\", \"-c\", \"echo $$ > {}; exec sleep 1000\"]]\n",
        hook_pid.display()
    );
    let svcd = dir.with("app", &unit).start();
    let pid = pid_in(&hook_pid);
    assert_eq!(svcd.status("app")["state"], "starting");
    svcd.svc_ok(&["stop", "app"], 0);
    assert_eq!(svcd.status("app")["state"], "inactive");
    wait_until("the hook to be gone", DEADLINE, || {
        is_dead(pid).then_some(())
    });
}

#[test]
fn directories_are_made_with_owner_and_mode_and_the_runtime_one_goes_on_stop() {
    let Some(user) = TestUser::new(0) else {
        return;
    };
    let dir = Dir::new();
    // The unit's user must reach its directories inside the test's (0700) temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let unit = format!(
        "exec = [\"sh\", \"-c\", \"echo dirs $RUNTIME_DIRECTORY $STATE_DIRECTORY $LOGS_DIRECTORY; \
         exec sleep 1000\"]\nuser = \"{}\"\n\
         runtime_dir = \"app\"\nstate_dir = [\"app\", \"app/cache\"]\nstate_dir_mode = \"0700\"\n\
         logs_dir = \"app\"\nruntime_dir_mode = \"0750\"\n\
         exec_start_pre = [[\"sh\", \"-c\", \"touch ${{STATE_DIRECTORY%%:*}}/made-by-pre\"]]\n",
        user.name
    );
    let svcd = dir.with("app", &unit).start();
    svcd.wait_for("app", "running");
    let roots = svcd.dir.path().join("state/dirs");
    let runtime = roots.join("runtime/app");
    let state = roots.join("state/app");
    for (path, mode) in [
        (&runtime, 0o750),
        (&state, 0o700),
        (&state.join("cache"), 0o700),
        (&roots.join("logs/app"), 0o755),
    ] {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            (meta.uid(), meta.gid()),
            (user.uid, user.gid),
            "{}",
            path.display()
        );
        assert_eq!(meta.mode() & 0o7777, mode, "{}", path.display());
    }
    // Made before the pre hook, which ran as the user, with the paths in its environment.
    let made = std::fs::metadata(state.join("made-by-pre")).expect("the pre hook's file");
    assert_eq!(made.uid(), user.uid);
    let expected = format!(
        "dirs {} {}:{} {}",
        runtime.display(),
        state.display(),
        state.join("cache").display(),
        roots.join("logs/app").display()
    );
    // The output is captured as it comes: wait for the line.
    wait_until("the unit's line in its log", DEADLINE, || {
        svcd.svc_ok(&["logs", "app"], 0)
            .contains(&expected)
            .then_some(())
    });
    svcd.svc_ok(&["stop", "app"], 0);
    assert!(!runtime.exists(), "the runtime dir outlived the stop");
    assert!(state.join("made-by-pre").exists(), "the state dir is kept");
}

/// The directory of PostgreSQL's server programs (`postgres`, `initdb`): on PATH, or Debian's
/// `/usr/lib/postgresql/VERSION/bin` (the newest).
fn postgres_bin() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path)
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file());
    on_path.or_else(|| {
        let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("postgres").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

#[test]
fn postgres_runs_as_its_user_with_initdb_before_and_stops_leaving_no_process() {
    let Some(bin) = postgres_bin() else {
        skip("PostgreSQL is not installed (Debian's postgresql package)");
        return;
    };
    for tool in ["psql", "pg_isready"] {
        if !bin.join(tool).is_file()
            && std::process::Command::new(tool)
                .arg("--version")
                .output()
                .is_err()
        {
            skip(&format!("{tool} is not installed"));
            return;
        }
    }
    let tool = |name: &str| {
        let local = bin.join(name);
        if local.is_file() {
            local.display().to_string()
        } else {
            name.to_string()
        }
    };
    let dir = Dir::new();
    // The postgres user must reach its directories inside the test's (0700) temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let roots = dir.path().join("state/dirs");
    let data = roots.join("state/pg");
    let sockets = roots.join("runtime/pg");
    let (d, s) = (data.display(), sockets.display());
    let isready = tool("pg_isready");
    // Fast shutdown: SIGINT to the postmaster alone (stop.mode main), which ends its backends
    // itself; SIGKILL to all that is left after the timeout.
    let unit = format!(
        "description = \"PostgreSQL\"\n\
         exec = [\"{postgres}\", \"-D\", \"{d}\", \"-k\", \"{s}\", \"-c\", \"listen_addresses=\", \
         \"-p\", \"5432\"]\n\
         user = \"postgres\"\n\
         state_dir = \"pg\"\nstate_dir_mode = \"0700\"\n\
         runtime_dir = \"pg\"\nruntime_dir_mode = \"2775\"\n\
         exec_start_pre = [[\"sh\", \"-c\", \"test -s \\\"$STATE_DIRECTORY/PG_VERSION\\\" || \
         exec {initdb} -D \\\"$STATE_DIRECTORY\\\" -A trust -U postgres --no-sync\"]]\n\
         restart.policy = \"never\"\n\
         [stop]\nmode = \"main\"\nsignal = \"SIGINT\"\ntimeout = \"30s\"\n\
         [ready]\nexec = [\"{isready}\", \"-q\", \"-h\", \"{s}\", \"-p\", \"5432\"]\n\
         timeout = \"120s\"\n",
        postgres = bin.join("postgres").display(),
        initdb = bin.join("initdb").display(),
    );
    let svcd = dir.with("postgres", &unit).start();
    svcd.wait_for("postgres", "running");
    let query = || {
        let out = std::process::Command::new(tool("psql"))
            .args([
                "-h",
                &sockets.display().to_string(),
                "-p",
                "5432",
                "-U",
                "postgres",
            ])
            .args(["-tA", "-c", "select 6 * 7"])
            .output()
            .expect("run psql");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(query(), "42", "svcd: {}", svcd.stderr());
    assert!(
        data.join("PG_VERSION").is_file(),
        "initdb ran in the state dir"
    );
    let main = svcd.status("postgres")["pid"].as_u64().unwrap() as u32;
    // Its processes each call setsid: in sessions of their own, still its children.
    let mut members = children(main);
    assert!(!members.is_empty(), "a postmaster and its processes");
    members.push(main);

    svcd.svc_ok(&["stop", "postgres"], 0);
    let status = svcd.status("postgres");
    // The fast shutdown's own end: exit 0 of the postmaster, not a SIGKILL.
    assert_eq!(status["last_exit"]["code"], 0, "{status}");
    for pid in members {
        wait_until("every postgres process to be gone", DEADLINE, || {
            is_dead(pid).then_some(())
        });
    }
    assert!(
        !sockets.exists(),
        "the runtime dir (its socket dir) goes with the stop"
    );

    // Started again: the data is kept, initdb is skipped.
    svcd.svc_ok(&["start", "postgres"], 0);
    assert_eq!(query(), "42");
    svcd.svc_ok(&["stop", "postgres"], 0);
}

/// nginx's path: on PATH, or Debian's `/usr/sbin/nginx`.
fn nginx() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

#[test]
fn nginx_stops_gracefully_by_its_own_exec_stop_with_its_pid_file_in_runtime_dir() {
    let Some(nginx) = nginx() else {
        skip("nginx is not installed (Debian's nginx package)");
        return;
    };
    let dir = Dir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let run = dir.path().join("state/dirs/runtime/nginx");
    let temp = dir.path().join("nginx-temp");
    std::fs::create_dir(&temp).expect("temp dir");
    let (r, t) = (run.display(), temp.display());
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\npid {r}/nginx.pid;\nerror_log stderr notice;\nworker_processes 1;\n\
             events {{}}\nhttp {{\n access_log off;\n client_body_temp_path {t}/body;\n\
             proxy_temp_path {t}/proxy;\n fastcgi_temp_path {t}/fastcgi;\n\
             uwsgi_temp_path {t}/uwsgi;\n scgi_temp_path {t}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; return 200 \"ok\"; }}\n}}\n"
        ),
    )
    .expect("nginx.conf");
    let (n, c) = (nginx.display(), conf.display());
    let unit = format!(
        "exec = [\"{n}\", \"-c\", \"{c}\"]\nruntime_dir = \"nginx\"\n\
         exec_stop = [[\"{n}\", \"-c\", \"{c}\", \"-s\", \"quit\"]]\n\
         ready.tcp = \"127.0.0.1:{port}\"\nstop.timeout = \"20s\"\n"
    );
    let svcd = dir.with("nginx", &unit).start();
    svcd.wait_for("nginx", "running");
    let main = svcd.status("nginx")["pid"].as_u64().unwrap() as u32;
    assert_eq!(pid_in(&run.join("nginx.pid")), main);
    let mut members = children(main);
    members.push(main);
    svcd.svc_ok(&["stop", "nginx"], 0);
    // The master got its graceful SIGQUIT from `nginx -s quit`, never svcd's SIGTERM.
    let logs = svcd.svc_ok(&["logs", "nginx"], 0);
    assert!(logs.contains("signal 3 (SIGQUIT)"), "{logs}");
    assert!(!logs.contains("SIGTERM"), "{logs}");
    assert_eq!(svcd.status("nginx")["last_exit"]["code"], 0);
    for pid in members {
        wait_until("every nginx process to be gone", DEADLINE, || {
            is_dead(pid).then_some(())
        });
    }
    assert!(!run.exists(), "the runtime dir goes with the stop");
}
