//! A real container: an image FROM scratch with svcd, svc and busybox
//! (`contrib/docker/build-scratch.sh`), run under podman. Skipped, with a note, where podman
//! cannot run.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// podman's default grace for `podman stop` before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The podman command line that works on these machines: runc, cgroupfs, no network needed.
fn podman() -> Command {
    let mut command = Command::new("podman");
    command
        .args([
            "--runtime",
            "/usr/sbin/runc",
            "--cgroup-manager",
            "cgroupfs",
        ])
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run podman")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What the test made: containers and the image, removed at the end, also on failure.
struct Cleanup {
    /// Unique to this run: the temp dir's name.
    tag: String,
    image: String,
    containers: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman().args(["rm", "-f", "-t", "0", name]).output();
        }
        let _ = podman().args(["rmi", "-f", &self.image]).output();
    }
}

/// `podman run -d` of `image` with `extra` options and `args`; the container's name.
fn start(cleanup: &mut Cleanup, name: &str, extra: &[&str], args: &[&str]) -> String {
    let name = format!("{}-{name}", cleanup.tag);
    cleanup.containers.push(name.clone());
    let out = run(podman()
        .args(["run", "-d", "--name", &name, "--network", "none"])
        .args([
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=4096:4096",
        ])
        .args(extra)
        .arg(&cleanup.image)
        .args(args));
    assert!(out.status.success(), "podman run: {}", text(&out));
    name
}

fn logs(name: &str) -> String {
    text(&run(podman().args(["logs", name])))
}

fn exit_code(name: &str) -> Option<i32> {
    let out = run(podman().args(["inspect", "--format", "{{.State.ExitCode}}", name]));
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Static svcd and svc, built once in a target dir of their own (kept between runs).
fn static_binaries() -> PathBuf {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("container-build");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--target", &triple])
        .args(["--bin", "svcd", "--bin", "svc"])
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("cargo build");
    assert!(out.status.success(), "static build: {}", text(&out));
    target.join(triple).join("release")
}

#[test]
fn a_scratch_image_runs_under_podman() {
    let probe = podman()
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "note: skipped: podman cannot run here (apt-get install podman runc busybox-static)"
        );
        return;
    }
    let busybox = Path::new("/bin/busybox");
    let dir = Dir::new();
    dir.unit(
        "web",
        // A workdir: the release static build once crashed spawning such a unit (a weak
        // glibc symbol left unresolved); the debug build the other tests run did not.
        "exec = [\"sh\", \"-c\", \"echo hello from web; exec sleep 1000\"]\nworkdir = \"/tmp\"\n",
    );
    let context = dir.path().join("context");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/docker/build-scratch.sh");
    let out = run(Command::new(&script)
        .arg(&context)
        .arg(static_binaries())
        .env("BUSYBOX", busybox)
        .env("UNITS", dir.units()));
    assert!(out.status.success(), "build-scratch.sh: {}", text(&out));

    let tag = dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut cleanup = Cleanup {
        image: format!("localhost/{tag}"),
        tag,
        containers: Vec::new(),
    };
    let out = run(podman()
        .args(["build", "-q", "-t", &cleanup.image])
        .arg(&context));
    assert!(out.status.success(), "podman build: {}", text(&out));
    let size = run(podman().args(["image", "inspect", "--format", "{{.Size}}", &cleanup.image]));
    let bytes: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    println!(
        "FROM-scratch image (svcd, svc, busybox): {:.1} MB",
        bytes as f64 / 1e6
    );
    assert!(bytes > 0, "image size: {}", text(&size));

    // As root: logs, exec, stop within the grace.
    let name = start(&mut cleanup, "root", &[], &[]);
    wait_until("web's line in podman logs", DEADLINE, || {
        logs(&name).contains("web | hello from web").then_some(())
    });
    let status = run(podman().args(["exec", &name, "svc", "status", "web"]));
    assert!(status.status.success(), "svc status: {}", text(&status));
    assert!(text(&status).contains("running"), "{}", text(&status));
    let begun = Instant::now();
    let stop = run(podman().args(["stop", &name]));
    let took = begun.elapsed();
    assert!(stop.status.success(), "podman stop: {}", text(&stop));
    println!("podman stop: {took:.2?} (grace {STOP_GRACE:?})");
    assert!(took < STOP_GRACE, "podman stop took {took:?}");
    assert_eq!(exit_code(&name), Some(0), "{}", logs(&name));

    // Read-only root, a tmpfs at /run, not root: the state directory is /run/svc-1000.
    let name = start(
        &mut cleanup,
        "ro",
        &["--read-only", "--tmpfs", "/run", "--user", "1000:1000"],
        &[],
    );
    wait_until("web's line, read-only and non-root", DEADLINE, || {
        logs(&name).contains("web | hello from web").then_some(())
    });
    let status = run(podman().args(["exec", "--user", "1000:1000", &name, "svc", "status", "web"]));
    assert!(
        status.status.success(),
        "svc status: {}\n{}",
        text(&status),
        logs(&name)
    );
    let stop = run(podman().args(["stop", &name]));
    assert!(stop.status.success(), "podman stop: {}", text(&stop));
    assert_eq!(exit_code(&name), Some(0), "{}", logs(&name));

    // The app's exit code is the container's (a unit beside it stops first).
    let name = start(
        &mut cleanup,
        "app",
        &[],
        &["--", "sh", "-c", "echo bye; exit 7"],
    );
    let code = wait_until("the app's container to end", DEADLINE, || {
        let out = run(podman().args(["wait", &name]));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i32>()
            .ok()
    });
    assert_eq!(code, 7, "{}", logs(&name));
    assert!(logs(&name).contains("app | bye"), "{}", logs(&name));
}
