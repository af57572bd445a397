//! Log capture benchmark: a unit prints 300 MiB as fast as it can (`yes` lines of 100 bytes);
//! how fast does it reach its log file, and how much memory does svcd need meanwhile?
//!
//! `cargo bench --bench logs`. Figures: throughput into the log files (target ≥ 100 MB/s) and
//! svcd's peak RSS, VmHWM (target ≤ 32 MiB). svcd's stdout is /dev/null here, as under a
//! service manager that does not read it; `name | line` forwarding is then skipped.

use std::path::Path;
use std::time::{Duration, Instant};

const BYTES: u64 = 300 * 1024 * 1024;

#[path = "daemon.rs"]
mod daemon;
#[path = "proc.rs"]
mod proc;

fn main() {
    let bench = daemon::BenchDir::new("logs");
    let line = "x".repeat(99);
    bench.unit(
        "flood",
        &format!(
            "shell = true\nexec = \"yes {line} | head -c {BYTES}\"\n\
             [restart]\npolicy = \"never\"\n[log]\nmax_size = \"100M\"\nkeep = 3\n"
        ),
    );
    let started = Instant::now();
    let mut svcd = bench.spawn_svcd();
    let pid = svcd.id();
    // Wait for the unit to have run and exited; its exit is published only once its pipes are
    // drained, so every byte is in the log files by then.
    let deadline = Instant::now() + Duration::from_secs(120);
    let elapsed = loop {
        assert!(Instant::now() < deadline, "the flood did not end in 120 s");
        if let Some(status) = bench.status("flood")
            && status["starts"].as_u64() >= Some(1)
            && status["pid"].is_null()
        {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let written = log_bytes(&bench.state().join("logs"));
    let hwm = proc::status_field(pid, "VmHWM");
    bench.shutdown(&mut svcd);
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
