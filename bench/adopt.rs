//! Re-adoption after `kill -9` of svcd: `cargo bench --bench adopt`.
//!
//! 1,000 units (`sleep`) run under a svcd, which is killed with SIGKILL; a new svcd is started
//! on the same directories. Figures: from the new svcd's spawn until its socket answers and
//! `svc list` shows every unit adopted with its old pid (the units loaded, the state file
//! read, each process checked and watched), and svcd's own figure for the adoption step. The
//! budget (DESIGN.md) is < 100 ms, 0 restarts. `SVC_BENCH_UNITS` changes the count.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
const SVC: &str = env!("CARGO_BIN_EXE_svc");

fn main() {
    let count: usize = std::env::var("SVC_BENCH_UNITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let units = dir.path().join("units");
    std::fs::create_dir(&units).expect("units");
    for i in 0..count {
        let text = "exec = [\"sleep\", \"100000\"]\n";
        std::fs::write(units.join(format!("s{i:04}.toml")), text).expect("unit");
    }
    std::fs::write(dir.path().join("svcd.toml"), "").expect("config");
    let socket = dir.path().join("svcd.sock");

    let mut first = start(dir.path(), "warn");
    wait_answer(&socket, Duration::from_secs(60));
    let before = wait_all(&socket, count, |u| u["state"] == "running");
    let _ = first.kill();
    let _ = first.wait();

    let spawned = Instant::now();
    let mut second = start(dir.path(), "info");
    wait_answer(&socket, Duration::from_secs(60));
    let answered = spawned.elapsed();
    let after = wait_all(&socket, count, |u| u["adopted"] == true);
    let all = spawned.elapsed();
    let same = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.0 == b.0)
        .count();
    let restarts: u64 = after.iter().map(|u| u.1).sum();
    println!(
        "re-adoption of {count} units after kill -9: socket answers {answered:.2?} after spawn, \
         list shows all adopted {all:.2?} after spawn; {same}/{count} same pids, {restarts} restarts \
         (budget 100 ms)"
    );
    let err = std::fs::read_to_string(dir.path().join("svcd.err")).unwrap_or_default();
    if let Some(line) = err.lines().find(|l| l.contains("took back")) {
        println!("svcd: {}", line.trim());
    }
    // Stop everything: the second svcd stops every unit, adopted or not.
    let _ = Command::new("kill").arg(second.id().to_string()).status();
    let _ = second.wait();
}

fn start(dir: &Path, log: &str) -> Child {
    let err = std::fs::File::create(dir.join("svcd.err")).expect("stderr");
    Command::new(SVCD)
        .arg("--units")
        .arg(dir.join("units"))
        .arg("--state-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("svcd.toml"))
        .env("SVCD_LOG", log)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("svcd")
}

fn wait_answer(socket: &Path, timeout: Duration) {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(start.elapsed() < timeout, "svcd did not come up");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Polls `svc list --json` until `count` units satisfy `ok`; (pid, restarts) per unit.
fn wait_all(
    socket: &Path,
    count: usize,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Vec<(u64, u64)> {
    let start = Instant::now();
    loop {
        let out = Command::new(SVC)
            .arg("--socket")
            .arg(socket)
            .args(["list", "--json"])
            .output()
            .expect("svc");
        let units: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if units.len() == count && units.iter().all(&ok) {
            return units
                .iter()
                .map(|u| {
                    (
                        u["pid"].as_u64().unwrap_or(0),
                        u["restarts"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "units did not get there"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
