//! `svc reload NAME` (reload.signal, reload.exec, sd_notify RELOADING=1) and `svc reload` of
//! unit files that names what it did and restarts only what the process sees.

use crate::util::*;

/// A shell that writes `hup` to `file` on each SIGHUP, and waits for its one child, a `sleep`
/// that a SIGHUP would end (and the shell with it).
fn hup_writer(file: &std::path::Path) -> String {
    let script = format!(
        "sleep 1000 & child=$!; trap 'echo hup >> {}' HUP; \
         while kill -0 $child 2>/dev/null; do wait $child; done",
        file.display()
    );
    format!("exec = [\"sh\", \"-c\", {script:?}]\n")
}

fn read(file: &std::path::Path) -> String {
    std::fs::read_to_string(file).unwrap_or_default()
}

#[test]
fn reload_name_sends_reload_signal_to_the_main_process_only() {
    let dir = Dir::new();
    let file = dir.path().join("hups");
    dir.unit(
        "app",
        &format!("{}[reload]\nsignal = \"SIGHUP\"\n", hup_writer(&file)),
    );
    let svcd = dir.start();
    svcd.wait_for("app", "running");
    let pid = svcd.status("app")["pid"].as_u64();
    let main = u32::try_from(pid.expect("pid")).expect("a pid");
    let sleep = wait_until("the sleep child", DEADLINE, || {
        Some(children(main)).filter(|c| c.len() == 1)
    });
    let out = svcd.svc_ok(&["reload", "app"], 0);
    assert!(out.contains("reloaded app: SIGHUP sent"), "{out}");
    wait_until("the unit to get SIGHUP", DEADLINE, || {
        read(&file).contains("hup").then_some(())
    });
    let status = svcd.status("app");
    assert_eq!(
        status["pid"].as_u64(),
        pid,
        "a reload keeps the process: {status}"
    );
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["last_reload"]["ok"], true, "{status}");
    assert!(status["last_reload"]["at"].is_string(), "{status}");
    let text = svcd.svc_ok(&["status", "app"], 0);
    assert!(text.contains("Reload: reloaded at "), "{text}");
    // Only the main process got it: its `sleep` child would have died of it.
    assert_eq!(children(main), sleep);
    assert_eq!(read(&file), "hup\n");
}

#[test]
fn reload_name_runs_reload_exec_with_mainpid_and_reports_its_failure() {
    let dir = Dir::new();
    let file = dir.path().join("mainpid");
    let exec = format!("echo \"$MAINPID\" > {}", file.display());
    dir.unit(
        "good",
        &format!("exec = [\"sleep\", \"1000\"]\n[reload]\nexec = [\"sh\", \"-c\", {exec:?}]\n"),
    );
    dir.unit(
        "bad",
        "exec = [\"sleep\", \"1000\"]\n[reload]\nexec = [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    dir.unit(
        "slow",
        "exec = [\"sleep\", \"1000\"]\n[reload]\nexec = [\"sleep\", \"1000\"]\ntimeout = \"200ms\"\n",
    );
    let svcd = dir.start();
    for name in ["good", "bad", "slow"] {
        svcd.wait_for(name, "running");
    }
    let pid = svcd.status("good")["pid"].as_u64().expect("pid");
    svcd.svc_ok(&["reload", "good"], 0);
    assert_eq!(read(&file).trim(), pid.to_string());
    assert_eq!(svcd.status("good")["last_reload"]["ok"], true);

    let out = svcd.svc(&["reload", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad: `sh -c exit 3` exited with code 3"),
        "{stderr}"
    );
    let status = svcd.status("bad");
    assert_eq!(status["last_reload"]["ok"], false, "{status}");
    assert_eq!(
        status["state"], "running",
        "a failed reload leaves the unit: {status}"
    );

    let out = svcd.svc(&["reload", "slow"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not finish within 200ms"), "{stderr}");
}

#[test]
fn reload_name_exit_codes() {
    let svcd = Dir::new()
        .with("plain", "exec = [\"sleep\", \"1000\"]\n")
        .with(
            "off",
            "exec = [\"sleep\", \"1000\"]\nenabled = false\nreload.signal = \"SIGHUP\"\n",
        )
        .start();
    svcd.wait_for("plain", "running");
    svcd.svc_ok(&["reload", "nope"], 4);
    let out = svcd.svc(&["reload", "plain"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reload method"));
    let out = svcd.svc(&["reload", "off"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("off: not running"));
    assert!(svcd.status("off")["last_reload"].is_null());
}

#[test]
fn a_notify_unit_that_says_reloading_then_ready_has_reloaded() {
    let dir = Dir::new();
    // On SIGHUP it says RELOADING=1, then READY=1 (systemd's Type=notify-reload).
    let script = "import os, signal, socket, time\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        say = lambda m: s.sendto(m, os.environ['NOTIFY_SOCKET'])\n\
        def hup(*_):\n    say(b'RELOADING=1')\n    say(b'READY=1')\n\
        signal.signal(signal.SIGHUP, hup)\n\
        say(b'READY=1')\n\
        while True: time.sleep(1000)\n";
    std::fs::write(dir.path().join("notifier.py"), script).expect("write");
    let notifier = dir.path().join("notifier.py");
    dir.unit(
        "app",
        &format!(
            "exec = [\"python3\", {:?}]\n[ready]\nnotify = true\n[reload]\nsignal = \"SIGHUP\"\n",
            notifier.display().to_string()
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("app", "ready");
    svcd.svc_ok(&["reload", "app"], 0);
    let status = svcd.wait_status("app", "the unit's own reload", |s| {
        s["last_reload"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("RELOADING=1"))
    });
    assert_eq!(status["ready"], true, "{status}");
}

#[test]
fn reload_of_svcd_only_keys_keeps_the_process_and_names_the_units() {
    let svcd = Dir::new()
        .with(
            "calm",
            "exec = [\"sleep\", \"1000\"]\ndescription = \"old\"\n",
        )
        .with(
            "moved",
            "exec = [\"sleep\", \"1000\"]\nenv = { A = \"1\" }\n",
        )
        .with("gone", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    for name in ["calm", "moved", "gone"] {
        svcd.wait_for(name, "running");
    }
    let pid = |name: &str| svcd.status(name)["pid"].as_u64().expect("pid");
    let (calm, moved) = (pid("calm"), pid("moved"));
    svcd.dir.unit(
        "calm",
        "exec = [\"sleep\", \"1000\"]\ndescription = \"new\"\n[restart]\ndelay = \"1h\"\nmax_delay = \"2h\"\n",
    );
    svcd.dir.unit(
        "moved",
        "exec = [\"sleep\", \"1000\"]\nenv = { A = \"2\" }\n",
    );
    std::fs::remove_file(svcd.dir.units().join("gone.toml")).expect("rm");
    svcd.dir.unit("fresh", "exec = [\"sleep\", \"1000\"]\n");
    let out = svcd.svc_ok(&["reload"], 0);
    for line in [
        "started: fresh",
        "stopped: gone",
        "restarted: moved",
        "updated: calm",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    let status = svcd.status("calm");
    assert_eq!(status["pid"].as_u64(), Some(calm), "{status}");
    assert_eq!(status["description"], "new", "{status}");
    svcd.wait_status("moved", "moved to restart", |s| {
        s["state"] == "running" && s["pid"].as_u64().is_some_and(|p| p != moved)
    });
    // The new restart.delay applies to the process that kept running.
    kill(calm as u32, 9);
    let status = svcd.wait_status("calm", "calm in backoff", |s| s["state"] == "backoff");
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("1h"), "{status}");
}
