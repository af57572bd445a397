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
