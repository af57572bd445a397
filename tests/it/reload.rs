//! `svc reload` and SIGHUP: new units start, removed ones stop, changed ones restart, and an
//! invalid file changes nothing.

use crate::util::*;

#[test]
fn reload_applies_the_difference() {
    let svcd = Dir::new()
        .with("keep", "exec = [\"sleep\", \"1000\"]\n")
        .with("change", "exec = [\"sleep\", \"1000\"]\n")
        .with("remove", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    for name in ["keep", "change", "remove"] {
        svcd.wait_for(name, "running");
    }
    let pid = |name: &str| svcd.status(name)["pid"].as_u64().expect("pid");
    let (keep, change, remove) = (pid("keep"), pid("change"), pid("remove"));

    // An invalid file refuses the whole reload.
    svcd.dir.unit("change", "exec = [\"sleep\", \"2000\"]\n");
    svcd.dir.unit("broken", "exec = [\"sleep\"]\nnope = 1\n");
    let out = svcd.svc(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.toml:2:1") && stderr.contains("nothing changed"),
        "{stderr}"
    );
    // Decided by what svcd holds, not by timing: a reload applies its new definitions before
    // it answers (the accepted one below shows the new command at once), so a refused one
    // must show the old command, the same run, and no new unit.
    let status = svcd.status("change");
    assert_eq!(
        status["command"],
        serde_json::json!(["sleep", "1000"]),
        "nothing may change on a refused reload: {status}"
    );
    assert_eq!(status["pid"].as_u64(), Some(change), "{status}");
    assert_eq!(status["state"], "running", "{status}");
    svcd.svc_ok(&["status", "broken"], 4);

    std::fs::remove_file(svcd.dir.units().join("broken.toml")).expect("rm");
    std::fs::remove_file(svcd.dir.units().join("remove.toml")).expect("rm");
    svcd.dir.unit("new", "exec = [\"sleep\", \"1000\"]\n");
    let summary = svcd.svc_ok(&["reload"], 0);
    assert!(
        summary.contains("1 added, 1 removed, 1 changed (1 restarted)"),
        "{summary}"
    );

    assert_eq!(pid("keep"), keep, "an unchanged unit is left alone");
    let status = svcd.status("change");
    assert_eq!(
        status["command"],
        serde_json::json!(["sleep", "2000"]),
        "{status}"
    );
    svcd.wait_for("change", "running");
    assert_ne!(pid("change"), change);
    svcd.wait_for("new", "running");
    svcd.svc_ok(&["status", "remove"], 4);
    wait_until("the removed unit's process to end", DEADLINE, || {
        is_dead(remove as u32).then_some(())
    });
}

#[test]
fn sighup_reloads() {
    let svcd = Dir::new()
        .with("first", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("first", "running");
    svcd.dir.unit("second", "exec = [\"sleep\", \"1000\"]\n");
    kill(svcd.pid(), 1);
    // The signal is handled asynchronously: until then `second` is an unknown unit (exit 4).
    wait_until("second to run", DEADLINE, || {
        (svcd.svc(&["status", "second"]).status.code() == Some(0)).then_some(())
    });
    assert_eq!(svcd.status("first")["state"], "running");
}
