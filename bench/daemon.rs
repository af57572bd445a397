//! svcd started for a benchmark, shared by the bench targets (`#[path = "daemon.rs"] mod
//! daemon;`): a temporary directory with `units/`, `svcd.toml` and a state directory, the
//! release svcd on it, quiet, and `svc` against its socket.

// Each bench target compiles this file on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
pub const SVC: &str = env!("CARGO_BIN_EXE_svc");

/// A bench's directory: `units/`, `svcd.toml` (empty unless [`BenchDir::config`]), `state/`.
pub struct BenchDir {
    root: tempfile::TempDir,
}

impl BenchDir {
    /// A new directory named after `bench` under the temporary directory (`TMPDIR`).
    pub fn new(bench: &str) -> BenchDir {
        let root = tempfile::Builder::new()
            .prefix(&format!("svc-bench-{bench}-"))
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(root.path().join("units")).expect("units dir");
        std::fs::write(root.path().join("svcd.toml"), "").expect("config");
        BenchDir { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Writes unit `name`'s file.
    pub fn unit(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(format!("units/{name}.toml")), text).expect("unit file");
    }

    /// Writes svcd.toml.
    pub fn config(&self, text: &str) {
        std::fs::write(self.path().join("svcd.toml"), text).expect("config");
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.state().join("svcd.sock")
    }

    /// svcd on this directory, its output thrown away, its own log at `warn`.
    pub fn spawn_svcd(&self) -> Child {
        self.spawn_svcd_with(Stdio::null())
    }

    /// [`BenchDir::spawn_svcd`] with its stderr (its log) going to `stderr`.
    pub fn spawn_svcd_with(&self, stderr: Stdio) -> Child {
        Command::new(SVCD)
            .arg("--units")
            .arg(self.path().join("units"))
            .arg("--state-dir")
            .arg(self.state())
            .arg("--config")
            .arg(self.path().join("svcd.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .env("SVCD_LOG", "warn")
            .spawn()
            .expect("spawn svcd")
    }

    /// `svc --socket SOCKET ARGS...`.
    pub fn svc(&self, args: &[&str]) -> Output {
        Command::new(SVC)
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("svc")
    }

    /// Waits (up to `timeout`) until svcd answers `svc list`.
    pub fn wait_answer(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.svc(&["list"]).status.success() {
            assert!(Instant::now() < deadline, "svcd did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to `timeout`, 1 ms at a time) until svcd's socket takes a connection: a start
    /// timed to the millisecond.
    pub fn wait_socket(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "svcd did not come up");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `svc status NAME --json`, the unit's object, if svcd answered.
    pub fn status(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.svc(&["status", name, "--json"]);
        let units: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(units[0].clone())
    }

    /// Asks svcd to stop every unit and exit, and waits for it.
    pub fn shutdown(&self, svcd: &mut Child) {
        let _ = self.svc(&["shutdown"]);
        let _ = svcd.wait();
    }
}
