//! svcd as a container's init: its exit status is its fatal unit's.

use crate::util::*;
use std::process::{Command, Stdio};

/// Runs svcd on `dir` (plus `extra` arguments) until it exits by itself; its exit code and
/// stderr.
pub fn run_to_end(dir: &Dir, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(SVCD)
        .args(dir.svcd_args())
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn svcd");
    let status = wait_until("svcd to exit", DEADLINE, || child.try_wait().ok().flatten());
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.code(), stderr)
}

/// Was: a failed fatal unit always made svcd exit 3, hiding the app's own code.
#[test]
fn a_fatal_units_exit_code_is_svcds() {
    let dir = Dir::new();
    dir.unit(
        "main",
        "exec = [\"sh\", \"-c\", \"exit 7\"]\nfatal = true\n[restart]\npolicy = \"never\"\n",
    );
    let (code, stderr) = run_to_end(&dir, &[]);
    assert_eq!(code, Some(7), "{stderr}");
}

/// Was: a fatal unit that exited 0 for good (policy on-failure) left svcd running with nothing
/// to run; now svcd stops the others and exits 0.
#[test]
fn a_fatal_unit_that_exits_0_ends_svcd_after_the_others() {
    let dir = Dir::new();
    let stopped = dir.path().join("stopped");
    let up = dir.path().join("up");
    dir.unit(
        "side",
        &format!(
            "exec = [\"sh\", \"-c\", \"trap 'echo stopped >> {}; exit 0' TERM; touch {}; sleep 1000 & wait\"]\n",
            stopped.display(),
            up.display()
        ),
    );
    // Ends once the other unit has set its trap, so that its stop is a real one.
    dir.unit(
        "main",
        &format!(
            "exec = [\"sh\", \"-c\", \"until [ -e {} ]; do sleep 0.02; done\"]\nfatal = true\n",
            up.display()
        ),
    );
    let (code, stderr) = run_to_end(&dir, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&stopped).unwrap_or_default();
    assert_eq!(text.trim(), "stopped", "{stderr}");
}
