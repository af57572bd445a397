//! Re-adoption after `kill -9` of svcd: `cargo bench --bench adopt`.
//!
//! 1,000 units (`sleep`) run under a svcd, which is killed with SIGKILL; a new svcd is started
//! on the same directories, and so on for `SVC_BENCH_ROUNDS` rounds (3). Figures per round:
//! from the new svcd's spawn until its socket is bound (a connection is accepted by the
//! kernel, not yet answered), and until `svc list` answers with every unit adopted with its
//! old pid (the units loaded, the state file read, each process checked and watched, the
//! changes published: the goal's "all adopted"); svcd's own figures: the adoption step, and
//! from its exec (the kernel's start time, in 10 ms ticks) until it answers, and where units
//! run in memory cgroups, how long taking those back took (after svcd answers, in batches). The
//! budget (DESIGN.md) is < 100 ms, 0 restarts. `SVC_BENCH_UNITS` changes the count;
//! `SVC_BENCH_SVCD` names another svcd binary to measure (a build of another commit).

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

    let rounds: usize = std::env::var("SVC_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);

    let mut svcd = start(dir.path(), "warn");
    wait_answer(&socket, Duration::from_secs(60));
    let before = wait_all(&socket, count, |u| u["state"] == "running");
    let mut alls = Vec::new();
    for round in 1..=rounds {
        let _ = svcd.kill();
        let _ = svcd.wait();
        let spawned = Instant::now();
        svcd = start(dir.path(), "info");
        wait_answer(&socket, Duration::from_secs(60));
        let bound = spawned.elapsed();
        // svcd queues this request while it adopts: its answer comes once svcd answers.
        let after = wait_all(&socket, count, |u| u["adopted"] == true);
        let all = spawned.elapsed();
        alls.push(all);
        let same = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.0 == b.0)
            .count();
        let restarts: u64 = after.iter().map(|u| u.1).sum();
        println!(
            "round {round}: re-adoption of {count} units after kill -9: spawn of svcd → its \
             socket bound {bound:.2?}, → `svc list` answered with all adopted {all:.2?}; \
             {same}/{count} same pids, {restarts} restarts (budget 100 ms)"
        );
        let err = cgroups_back(&dir.path().join("svcd.err"));
        for said in [
            "took back the units",
            "every unit adopted",
            "took back the memory cgroups",
        ] {
            if let Some(line) = err.lines().find(|l| l.contains(said)) {
                let text = line.split_once("adopt: ").map_or(line, |(_, text)| text);
                println!("  svcd: {}", text.trim());
            }
        }
    }
    alls.sort();
    if let Some(median) = alls.get(alls.len() / 2) {
        println!("median of {rounds}: spawn → all adopted in `svc list` {median:.2?}");
    }
    // Stop everything: the last svcd stops every unit, adopted or not.
    let _ = Command::new("kill").arg(svcd.id().to_string()).status();
    let _ = svcd.wait();
}

/// svcd's log `err` once it says that the adopted units' memory cgroups are back (or, where
/// units run without cgroups, at once).
fn cgroups_back(err: &Path) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(err).unwrap_or_default();
        let done = !text.contains("runs in a memory cgroup")
            || text.contains("took back the memory cgroups");
        if done || start.elapsed() > Duration::from_secs(10) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start(dir: &Path, log: &str) -> Child {
    let err = std::fs::File::create(dir.join("svcd.err")).expect("stderr");
    let svcd = std::env::var_os("SVC_BENCH_SVCD").unwrap_or_else(|| SVCD.into());
    Command::new(svcd)
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
