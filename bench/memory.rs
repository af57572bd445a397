//! The cost of one memory sample with 100 units: `cargo bench --bench memory`.
//!
//! Runs the real svcd with 100 `sleep` units, each with a `memory.max` (so every one is
//! sampled), `memory.interval = "100ms"`, and reads svcd's CPU time (utime + stime from
//! /proc/PID/stat) over a measured span; the same 100 units without limits (no sampling at all)
//! give the baseline. Then times the sampler itself, in-process, on the same 100 groups.

use std::process::Child;
use std::time::{Duration, Instant};

const UNITS: usize = 100;
const SPAN: Duration = Duration::from_secs(5);
const INTERVAL_MS: u64 = 100;

#[path = "daemon.rs"]
mod daemon;
#[path = "proc.rs"]
mod proc;

fn main() {
    let idle = run(false);
    let sampling = run(true);
    let samples = SPAN.as_millis() as f64 / INTERVAL_MS as f64;
    let per_sample = (sampling.cpu - idle.cpu).max(0.0) / samples;
    println!(
        "memory: {UNITS} units, interval {INTERVAL_MS}ms, span {}s",
        SPAN.as_secs()
    );
    println!(
        "memory: svcd CPU without limits {:.1} ms, with limits {:.1} ms → {:.2} ms per sample \
         ({:.2}% of one core at the default 1s interval)",
        idle.cpu * 1e3,
        sampling.cpu * 1e3,
        per_sample * 1e3,
        per_sample * 100.0
    );
    println!(
        "memory: in-process sampler on the {UNITS} groups: median {:.0} µs, max {:.0} µs",
        sampling.direct_median * 1e6,
        sampling.direct_max * 1e6
    );
    println!(
        "memory: svcd RSS with limits {} KiB, PSS {} KiB",
        sampling.rss_kib, sampling.pss_kib
    );
}

struct Figures {
    /// svcd's CPU seconds over SPAN.
    cpu: f64,
    direct_median: f64,
    direct_max: f64,
    rss_kib: u64,
    pss_kib: u64,
}

fn run(limits: bool) -> Figures {
    let bench = daemon::BenchDir::new("memory");
    let memory = if limits {
        "[memory]\nmax = \"1G\"\n"
    } else {
        ""
    };
    for i in 0..UNITS {
        bench.unit(
            &format!("u{i:03}"),
            &format!("exec = [\"sleep\", \"3600\"]\n{memory}"),
        );
    }
    bench.config(&format!("[memory]\ninterval = \"{INTERVAL_MS}ms\"\n"));
    let mut svcd = bench.spawn_svcd();
    let pids = wait_running(&bench, &mut svcd);
    let before = proc::cpu_seconds(svcd.id());
    std::thread::sleep(SPAN);
    let cpu = proc::cpu_seconds(svcd.id()) - before;
    let rss_kib = proc::status_field(svcd.id(), "VmRSS");
    let pss_kib = proc::rollup(svcd.id()).pss;
    let mut sampler = svc::memory::GroupSampler::default();
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let found = sampler.sample(&pids);
            assert_eq!(found.len(), pids.len(), "every group sampled");
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    bench.shutdown(&mut svcd);
    Figures {
        cpu,
        direct_median: times[times.len() / 2],
        direct_max: times[times.len() - 1],
        rss_kib,
        pss_kib,
    }
}

/// Waits until all units run; their pids.
fn wait_running(bench: &daemon::BenchDir, svcd: &mut Child) -> Vec<u32> {
    let start = Instant::now();
    loop {
        assert!(svcd.try_wait().expect("svcd").is_none(), "svcd exited");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "units did not start"
        );
        let out = bench.svc(&["status", "--json"]);
        if let Ok(serde_json::Value::Array(units)) = serde_json::from_slice(&out.stdout) {
            let pids: Vec<u32> = units
                .iter()
                .filter(|u| u["state"] == "running")
                .filter_map(|u| u["pid"].as_u64().map(|p| p as u32))
                .collect();
            if pids.len() == UNITS {
                return pids;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
