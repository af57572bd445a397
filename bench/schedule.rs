//! Scheduled units: how close to its due time does a run start, and does svcd wake up at all
//! between runs?
//!
//! `cargo bench --bench schedule`. svcd runs 100 scheduled units that are not due for hours
//! (`yearly`); over 10 s its context switches (voluntary and not, from /proc/PID/status) count
//! its wake-ups: the goal is 0. Then a reload adds `tick`, due every 2 s (`*:*:0/2`); each run's
//! start, as svcd's log of the unit stamps it (milliseconds), is compared with its due second:
//! the goal is within 10 ms. svcd's wake-ups per run are counted too.

use std::time::{Duration, Instant};

const RUNS: usize = 20;

#[path = "daemon.rs"]
mod daemon;
#[path = "proc.rs"]
mod proc;

fn switches(pid: u32) -> u64 {
    proc::status_field(pid, "voluntary_ctxt_switches")
        + proc::status_field(pid, "nonvoluntary_ctxt_switches")
}

/// Milliseconds of the day of a log line's stamp (`2026-11-26T06:44:15.046Z ...`).
fn stamp_ms(line: &str) -> Option<i64> {
    let time = line.split_whitespace().next()?.split('T').nth(1)?;
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some((h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64)
}

fn main() {
    let bench = daemon::BenchDir::new("schedule");
    for i in 0..100 {
        bench.unit(
            &format!("idle{i}"),
            "exec = [\"true\"]\n[schedule]\ncalendar = \"yearly\"\ntimezone = \"UTC\"\n",
        );
    }
    let mut svcd = bench.spawn_svcd();
    let pid = svcd.id();
    bench.wait_answer(Duration::from_secs(30));

    // Idle: nothing due for hours.
    let before = switches(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle = switches(pid) - before;
    println!("schedule: svcd wake-ups in 10 s with 100 scheduled units, none due: {idle} (goal 0)");

    bench.unit(
        "tick",
        "exec = [\"true\"]\n[schedule]\ncalendar = \"*:*:0/2\"\ntimezone = \"UTC\"\n",
    );
    assert!(bench.svc(&["reload"]).status.success(), "reload");
    let before = switches(pid);
    let log = bench.state().join("logs/tick.log");
    let deadline = Instant::now() + Duration::from_secs(2 * RUNS as u64 + 30);
    let starts: Vec<i64> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let starts: Vec<i64> = text
            .lines()
            .filter(|l| l.contains("started by schedule"))
            .filter_map(stamp_ms)
            .collect();
        if starts.len() >= RUNS {
            break starts;
        }
        assert!(Instant::now() < deadline, "only {} runs", starts.len());
        std::thread::sleep(Duration::from_millis(200));
    };
    let per_run = (switches(pid) - before) as f64 / RUNS as f64;
    // Each start's distance from its due (even) second; a start before it would be negative.
    let mut late: Vec<i64> = starts
        .iter()
        .map(|ms| {
            let off = ms.rem_euclid(2000);
            if off > 1000 { off - 2000 } else { off }
        })
        .collect();
    late.sort_unstable();
    let median = late[late.len() / 2];
    let p90 = late[late.len() * 9 / 10];
    let max = late[late.len() - 1];
    let min = late[0];
    let within = late.iter().filter(|&&ms| (0..=10).contains(&ms)).count();
    println!(
        "schedule: {RUNS} runs of *:*:0/2 started {min}..{max} ms after their due second, \
         median {median} ms, p90 {p90} ms, {within} of {RUNS} within 10 ms \
         (log stamps have ms resolution): {late:?}"
    );
    println!("schedule: svcd wake-ups per run (timer, spawn, exit, output, log): {per_run:.1}");
    println!(
        "schedule: svcd RSS with 101 scheduled units: {} KiB",
        proc::status_field(pid, "VmRSS")
    );
    bench.shutdown(&mut svcd);
}
