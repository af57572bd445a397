//! Log capture benchmark: a unit prints 300 MiB as fast as it can (`yes` lines of 100 bytes);
//! how fast does it reach its log file, and how much memory does svcd need meanwhile?
//!
//! `cargo bench --bench logs`. Figures: throughput into the log files (target ≥ 100 MB/s) and
//! svcd's peak RSS, VmHWM (target ≤ 32 MiB). svcd's stdout is /dev/null here, as under a
//! service manager that does not read it; `name | line` forwarding is then skipped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
const SVC: &str = env!("CARGO_BIN_EXE_svc");
const BYTES: u64 = 300 * 1024 * 1024;

#[path = "proc.rs"]
mod proc;

fn main() {
    let root = tempfile::Builder::new()
        .prefix("svc-bench-logs-")
        .tempdir()
        .expect("temp dir");
    let dir = root.path();
    std::fs::create_dir(dir.join("units")).expect("units dir");
    let line = "x".repeat(99);
    std::fs::write(
        dir.join("units/flood.toml"),
        format!(
            "shell = true\nexec = \"yes {line} | head -c {BYTES}\"\n\
             [restart]\npolicy = \"never\"\n[log]\nmax_size = \"100M\"\nkeep = 3\n"
        ),
    )
    .expect("unit file");
    std::fs::write(dir.join("svcd.toml"), "").expect("config");
    let socket = dir.join("state/svcd.sock");
    let started = Instant::now();
    let mut svcd = Command::new(SVCD)
        .arg("--units")
        .arg(dir.join("units"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(dir.join("svcd.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("SVCD_LOG", "warn")
        .spawn()
        .expect("spawn svcd");
    let pid = svcd.id();
    // Wait for the unit to have run and exited; its exit is published only once its pipes are
    // drained, so every byte is in the log files by then.
    let deadline = Instant::now() + Duration::from_secs(120);
    let elapsed = loop {
        assert!(Instant::now() < deadline, "the flood did not end in 120 s");
        if let Some(status) = unit_state(&socket)
            && status["starts"].as_u64() >= Some(1)
            && status["pid"].is_null()
        {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let written = log_bytes(&dir.join("state/logs"));
    let hwm = proc::status_field(pid, "VmHWM");
    let _ = Command::new(SVC)
        .arg("--socket")
        .arg(&socket)
        .arg("shutdown")
        .output();
    let _ = svcd.wait();
    let mb = written as f64 / 1e6;
    let secs = elapsed.as_secs_f64();
    println!(
        "logs: {} MiB of output captured in {secs:.2} s: {:.0} MB/s into the log files (target >= 100 MB/s)",
        BYTES >> 20,
        BYTES as f64 / 1e6 / secs
    );
    println!("logs: {mb:.0} MB written with stamps");
    println!(
        "logs: svcd peak RSS (VmHWM) during the flood: {:.1} MiB (target <= 32 MiB)",
        hwm as f64 / 1024.0
    );
}

fn unit_state(socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(SVC)
        .arg("--socket")
        .arg(socket)
        .args(["status", "flood", "--json"])
        .output()
        .ok()?;
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(units[0].clone())
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
