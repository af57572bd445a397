//! Regressions of unit files: parsing, validation and `svc check`.

#[allow(unused_imports)]
use crate::util::*;
use std::process::{Command, Stdio};

/// How often `needle` occurs in `text`.
fn occurrences(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn svcd_without_its_units_directory_says_what_to_create_once() {
    let dir = Dir::new();
    let missing = dir.path().join("no-such-units");
    let out = Command::new(SVCD)
        .arg("--units")
        .arg(&missing)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("run svcd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let expected = format!(
        "no units directory {}: create it with unit files (man svc.unit) or pass --units DIR",
        missing.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(occurrences(&stderr, "units directory"), 1, "{stderr}");
}

#[test]
fn reload_without_the_units_directory_says_so_once() {
    let svcd = Dir::new().with("a", "exec = [\"sleep\", \"60\"]\n").start();
    svcd.wait_for("a", "running");
    std::fs::remove_file(svcd.dir.units().join("a.toml")).expect("remove unit");
    std::fs::remove_dir(svcd.dir.units()).expect("remove units dir");
    let out = svcd.svc(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no units directory"), "{stderr}");
    assert_eq!(occurrences(&stderr, "units directory"), 1, "{stderr}");
    // Nothing changed: the unit still runs.
    assert_eq!(svcd.status("a")["state"], "running");
}

/// `svc check PATH`'s exit code and stderr.
fn check(path: &std::path::Path) -> (Option<i32>, String) {
    let out = svc_check(path);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_warns_of_a_missing_workdir_or_program_and_still_passes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    let missing = dir.path().join("no-such-dir");
    let not_executable = dir.path().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n").expect("write script");
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    dir.unit(
        "nodir",
        &format!("exec = [\"sh\", \"-c\", \"true\"]\nworkdir = {missing:?}\n"),
    );
    dir.unit(
        "noprog",
        "exec = [\"svc-test-no-such-program\", \"--flag\"]\n",
    );
    dir.unit("noexec", &format!("exec = [{not_executable:?}]\n"));
    dir.unit(
        "fine",
        "exec = [\"sh\", \"-c\", \"true\"]\nworkdir = \"/\"\n",
    );
    let units = dir.units();
    let (code, stderr) = check(&units);
    assert_eq!(code, Some(0), "{stderr}");
    let file = |name: &str| units.join(format!("{name}.toml")).display().to_string();
    let expected = [
        format!(
            "{}: warning: key `workdir`: {} does not exist",
            file("nodir"),
            missing.display()
        ),
        format!(
            "{}: warning: key `exec`: `svc-test-no-such-program` is not found on PATH",
            file("noprog")
        ),
        format!(
            "{}: warning: key `exec`: the program {} is not executable",
            file("noexec"),
            not_executable.display()
        ),
    ];
    for line in &expected {
        assert!(stderr.contains(line.as_str()), "{line:?} not in:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
}
