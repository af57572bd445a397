//! Unit files as svcd and `svc check` see them: broken ones are reported and never stop the rest.

use crate::util::*;

#[test]
fn a_broken_unit_beside_good_ones() {
    let svcd = Dir::new()
        .with("good", "exec = [\"sleep\", \"1000\"]\n")
        .with("bad", "exec = [\"sleep\", \"1000\"]\nwokdir = \"/tmp\"\n")
        .start();
    svcd.wait_for("good", "running");
    let out = svcd.svc(&["status", "bad"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.toml:2:1"), "{text}");
    assert!(
        text.contains("wokdir") && text.contains("workdir"),
        "{text}"
    );
    let status = svcd.status("bad");
    assert_eq!(status["state"], "failed", "{status}");
    let list = svcd.svc_ok(&["list"], 0);
    assert!(list.contains("bad") && list.contains("good"), "{list}");
    let out = svcd.svc(&["start", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(svcd.status("good")["state"], "running");
}

#[test]
fn check_validates_offline() {
    let dir = Dir::new();
    dir.unit(
        "good",
        "exec = [\"sleep\", \"1000\"]\n[restart]\ndelay = \"1s500ms\"\n",
    );
    let out = svc_check(&dir.units());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    dir.unit("bad", "exec = [\"x\"]\n[restart]\ndelay = \"soon\"\n");
    let out = svc_check(&dir.units());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3:9"), "{stderr}");
    assert!(stderr.contains("restart.delay"), "{stderr}");

    let out = svc_check(&dir.units().join("good.toml"));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_typo_in_a_table_is_refused_with_a_suggestion() {
    let dir = Dir::new();
    dir.unit(
        "web",
        "exec = [\"x\"]\nfatal = true\n[ready]\ntpc = \"127.0.0.1:80\"\n",
    );
    let out = svc_check(&dir.units());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.toml:4:1") && stderr.contains("did you mean `ready.tcp`?"),
        "{stderr}"
    );
}
