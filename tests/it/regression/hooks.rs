//! Hooks, unit directories and instances made on demand.

use crate::util::*;

#[test]
fn stopping_an_instance_made_on_demand_beside_a_slower_unit_answers_success() {
    let dir = Dir::new();
    let go = dir.path().join("go");
    // `slow` stops once the test says so: its exec_stop waits for the file.
    let slow = format!(
        "exec = [\"sleep\", \"1000\"]\n\
         exec_stop = [[\"sh\", \"-c\", \"while ! test -e {}; do sleep 0.01; done\"]]\n",
        go.display()
    );
    let svcd = dir
        .with("slow", &slow)
        .with("w@", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("slow", "running");
    svcd.svc_ok(&["start", "w@x"], 0);
    let mut stop = std::process::Command::new(SVC)
        .arg("--socket")
        .arg(&svcd.socket)
        .args(["stop", "slow", "w@x"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("svc stop");
    // The instance is down (inactive, or forgotten already) while `slow` still stops.
    svcd.wait_status("w@x", "the instance down", |s| s["state"] != "running");
    std::fs::write(&go, "").expect("go");
    let status = stop.wait().expect("svc stop's exit");
    let mut err = String::new();
    if let Some(mut stderr) = stop.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut err);
    }
    assert!(status.success(), "svc stop: {status}: {err}");
    // Forgotten once answered.
    wait_until("the instance forgotten", DEADLINE, || {
        (svcd.svc(&["status", "w@x"]).status.code() == Some(4)).then_some(())
    });
}

#[test]
fn an_instance_made_on_demand_then_listed_by_its_template_stays_after_a_stop() {
    let dir = Dir::new().with("w@", "exec = [\"sleep\", \"1000\"]\n");
    let template = dir.units().join("w@.toml");
    let svcd = dir.start();
    svcd.svc_ok(&["start", "w@x"], 0);
    std::fs::write(
        &template,
        "exec = [\"sleep\", \"1000\"]\ninstances = [\"x\"]\n",
    )
    .expect("template");
    svcd.svc_ok(&["reload"], 0);
    svcd.svc_ok(&["stop", "w@x"], 0);
    // Listed by its template now: a unit as any other, kept when inactive.
    assert_eq!(svcd.status("w@x")["state"], "inactive");
}
