//! The budgets of DESIGN.md, measured on the real binaries: `cargo bench --bench svc`.
//!
//! Prints one line per figure. `SVC_BENCH_IDLE_SECS` sets the idle window (default 10 s; the
//! budget speaks of 60 s); `SVC_BENCH_ONLY` (`idle,respawn,status,list,reload`) runs only
//! those parts; `SVC_BENCH_CGROUPS=off` runs the respawn part's units without cgroups (the
//! spawn of a unit with nothing to do before exec). The bench binary doubles as the crashing
//! unit of the respawn test (role chosen by `SVC_BENCH_ROLE`), so the time it measures is exit
//! → the next `main()`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "daemon.rs"]
mod daemon;
#[path = "proc.rs"]
mod proc;

use daemon::{SVC, SVCD};

fn main() {
    if std::env::var("SVC_BENCH_ROLE").as_deref() == Ok("crash") {
        crash_unit();
    }
    let idle_secs: u64 = std::env::var("SVC_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `SVC_BENCH_ONLY=respawn,list`: only those parts (to compare two builds under the same
    // load, run alternately); all by default.
    let only = std::env::var("SVC_BENCH_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only.split(',').any(|p| p == name);
    println!("svc bench: svcd {SVCD}");
    if part("idle") {
        idle(idle_secs);
    }
    if part("respawn") {
        respawn(0, 2, 500);
        respawn(1000, 2, 500);
        // Each run 100 ms: what the kernel does once and then keeps warm for a crash loop
        // (moving a task into a cgroup waits for an RCU grace period when none passed
        // lately) is paid by every respawn.
        respawn(0, 100, 50);
    }
    if part("status") {
        status_latency();
    }
    if part("list") {
        thousand_units();
    }
    if part("reload") {
        reload_growth();
    }
}

/// The crashing unit: note the monotonic time at start and just before exiting 1.
fn crash_unit() -> ! {
    let start = monotonic_ns();
    let path = std::env::var("SVC_BENCH_OUT").unwrap_or_default();
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = writeln!(file, "start {start}");
        // A run longer than the unit's reset_after (1ms): each crash is a first crash, which
        // svcd restarts at once (later ones of a crash loop wait a throttle floor).
        let run_ms = std::env::var("SVC_BENCH_RUN_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(2);
        std::thread::sleep(Duration::from_millis(run_ms));
        let _ = writeln!(file, "exit {}", monotonic_ns());
    }
    std::process::exit(1);
}

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

struct Daemon {
    child: Child,
    bench: daemon::BenchDir,
}

impl Daemon {
    fn start(units: &[(String, String)]) -> Daemon {
        Daemon::start_with_config(units, "")
    }

    /// [`Daemon::start`] with `config` as svcd.toml.
    fn start_with_config(units: &[(String, String)], config: &str) -> Daemon {
        let bench = daemon::BenchDir::new("svc");
        bench.config(config);
        for (name, text) in units {
            bench.unit(name, text);
        }
        let child = bench.spawn_svcd_with(Stdio::inherit());
        let daemon = Daemon { child, bench };
        daemon.bench.wait_socket(Duration::from_secs(30));
        daemon
    }

    fn svc(&self, args: &[&str]) -> std::process::Output {
        self.bench.svc(args)
    }

    fn units_dir(&self) -> PathBuf {
        self.bench.path().join("units")
    }

    fn proc_status(&self, field: &str) -> u64 {
        proc::status_field(self.child.id(), field)
    }

    fn cpu_seconds(&self) -> f64 {
        proc::cpu_seconds(self.child.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn sleeper(name: &str) -> (String, String) {
    (
        name.to_string(),
        "exec = [\"sleep\", \"100000\"]\n".to_string(),
    )
}

/// Idle RSS with two units, and what svcd does over an idle window.
fn idle(secs: u64) {
    let daemon = Daemon::start(&[sleeper("chat"), sleeper("proxy")]);
    let ok = daemon.svc(&[
        "wait",
        "chat",
        "proxy",
        "--for",
        "running",
        "--timeout",
        "10s",
    ]);
    assert!(ok.status.success(), "units did not start");
    // Settle: let start-up allocations and the first requests pass.
    std::thread::sleep(Duration::from_millis(500));
    let working = daemon.proc_status("VmRSS");
    // A second after its last work svcd lets go of the code pages it mapped (one wake-up):
    // idle is from then on.
    std::thread::sleep(Duration::from_millis(1500));
    let switches = |d: &Daemon| {
        d.proc_status("voluntary_ctxt_switches") + d.proc_status("nonvoluntary_ctxt_switches")
    };
    let (switches_before, cpu_before) = (switches(&daemon), daemon.cpu_seconds());
    std::thread::sleep(Duration::from_secs(secs));
    let wakeups = switches(&daemon) - switches_before;
    let cpu = (daemon.cpu_seconds() - cpu_before) / secs as f64 * 100.0;
    let rss = daemon.proc_status("VmRSS");
    let rollup = proc::rollup(daemon.child.id());
    let linkage = proc::linkage(daemon.child.id());
    println!(
        "idle RSS, two units:            {:.2} MiB (budget 3 MiB; {:.2} MiB half a second after its last request)",
        rss as f64 / 1024.0,
        working as f64 / 1024.0
    );
    println!(
        "idle PSS, two units:            {:.2} MiB ({linkage} build; {:.2} MiB of it private to svcd)",
        rollup.pss as f64 / 1024.0,
        (rollup.private_clean + rollup.private_dirty) as f64 / 1024.0,
    );
    println!("idle wake-ups over {secs}s:         {wakeups} context switches");
    println!("idle CPU over {secs}s:              {cpu:.3} % of one core (budget 0.1 %)");
}

/// svcd.toml of the respawn part: `SVC_BENCH_CGROUPS=off` runs the units without cgroups, so
/// that as root they take the spawn a unit with nothing to do before exec takes (as all do
/// under a svcd that is not root).
fn respawn_config() -> String {
    match std::env::var("SVC_BENCH_CGROUPS").as_deref() {
        Ok("off") => "[memory]\ncgroups = \"off\"\n".to_string(),
        _ => String::new(),
    }
}

/// Crash → respawn with delay 0: from the exit of one run to the start of the next, beside
/// `idle` sleeping units (DESIGN: per-event work must not grow with the number of units),
/// each run `run_ms` long, until `restarts` restarts (or 30 s).
fn respawn(idle: usize, run_ms: u64, restarts: usize) {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join("times");
    let exe = std::env::current_exe().expect("bench exe");
    let unit = format!(
        "exec = [{exe:?}]\nenv = {{ SVC_BENCH_ROLE = \"crash\", SVC_BENCH_OUT = {out:?}, SVC_BENCH_RUN_MS = \"{run_ms}\" }}\n[restart]\npolicy = \"always\"\ndelay = \"0s\"\nreset_after = \"1ms\"\n",
    );
    let mut units: Vec<(String, String)> =
        (0..idle).map(|i| sleeper(&format!("idle{i:04}"))).collect();
    units.push(("crash".to_string(), unit));
    let daemon = Daemon::start_with_config(&units, &respawn_config());
    if idle > 0 {
        // The idle units all run first, so that their start-up is not measured.
        let mut args = vec!["wait".to_string()];
        args.extend(units[..idle].iter().map(|(n, _)| n.clone()));
        args.extend(["--for", "running", "--timeout", "60s"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(
            daemon.svc(&args).status.success(),
            "idle units did not start"
        );
        let _ = std::fs::remove_file(&out);
    }
    let start = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= 2 * restarts + 2 || start.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(daemon);
    let mut gaps = Vec::new();
    let mut last_exit = None;
    for line in lines.lines() {
        match line.split_once(' ') {
            Some(("exit", t)) => last_exit = t.parse::<u64>().ok(),
            Some(("start", t)) => {
                if let (Some(exit), Ok(t)) = (last_exit.take(), t.parse::<u64>()) {
                    gaps.push(Duration::from_nanos(t.saturating_sub(exit)));
                }
            }
            _ => {}
        }
    }
    let (p50, p99) = percentiles(&mut gaps);
    println!(
        "crash → respawn, delay 0, {idle:>4} idle units, runs of {run_ms} ms{}: median {p50:.2?}, p99 {p99:.2?} over {} restarts (budget 5 ms)",
        if respawn_config().is_empty() {
            ""
        } else {
            " (no cgroups)"
        },
        gaps.len()
    );
}

/// The whole `svc status chat` command, process start to exit.
fn status_latency() {
    let daemon = Daemon::start(&[sleeper("chat"), sleeper("proxy")]);
    let ok = daemon.svc(&["wait", "chat", "--for", "running", "--timeout", "10s"]);
    assert!(ok.status.success());
    let mut times = Vec::new();
    // The page faults of the runs (of the children waited for, svcd not yet among them): most
    // of the command's cost is the kernel's, and a rise says src/bin/svc.ld is stale.
    let faults = || {
        use nix::sys::resource::{UsageWho, getrusage};
        getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |usage| usage.minor_page_faults())
    };
    let faults_before = faults();
    for _ in 0..300 {
        let start = Instant::now();
        let out = Command::new(SVC)
            .arg("--socket")
            .arg(daemon.bench.socket())
            .args(["status", "chat"])
            .stdout(Stdio::null())
            .status()
            .expect("svc");
        times.push(start.elapsed());
        assert!(out.success());
    }
    let per_run = faults().saturating_sub(faults_before) / 300;
    let (p50, p99) = percentiles(&mut times);
    println!(
        "`svc status chat`, whole command: median {p50:.2?}, p99 {p99:.2?} over 300 runs (budget 5 ms); {per_run} page faults a run"
    );
    // svcd lets go of its code a second after its last work: the next answer maps again what
    // it runs, a fault per 64 KiB window (a rise says src/bin/svcd.ld is stale).
    let svcd_pid = daemon.child.id();
    let mut svcd_faults = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1300));
        let before = proc::minor_faults(svcd_pid);
        let out = daemon.svc(&["status", "chat"]);
        assert!(out.status.success());
        svcd_faults.push(proc::minor_faults(svcd_pid).saturating_sub(before));
    }
    svcd_faults.sort_unstable();
    let rollup = proc::rollup(svcd_pid);
    println!(
        "svcd's answer after an idle second: {} page faults (median of 5), PSS then {:.2} MiB",
        svcd_faults[2],
        rollup.pss as f64 / 1024.0
    );
}

/// 1,000 units from svcd's start to all running, and svcd's RSS then.
fn thousand_units() {
    let units: Vec<(String, String)> = (0..1000).map(|i| sleeper(&format!("u{i:04}"))).collect();
    let names: Vec<String> = units.iter().map(|(n, _)| n.clone()).collect();
    let start = Instant::now();
    let daemon = Daemon::start(&units);
    let mut args = vec!["wait"];
    args.extend(names.iter().map(String::as_str));
    args.extend(["--for", "running", "--timeout", "60s"]);
    let ok = daemon.svc(&args);
    let elapsed = start.elapsed();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let rss = daemon.proc_status("VmRSS");
    let hwm = daemon.proc_status("VmHWM");
    // The first `list` samples every unit's memory; the next ones, within the sampling
    // interval, answer from that sample.
    let cpu_before = daemon.cpu_seconds();
    let status_start = Instant::now();
    let list = daemon.svc(&["list", "--json"]);
    let first_time = status_start.elapsed();
    let first_cpu = (daemon.cpu_seconds() - cpu_before) * 1000.0;
    assert!(list.status.success());
    let mut times = Vec::new();
    let cpu_before = daemon.cpu_seconds();
    for _ in 0..50 {
        let start = Instant::now();
        assert!(daemon.svc(&["list", "--json"]).status.success());
        times.push(start.elapsed());
    }
    let cpu_each = (daemon.cpu_seconds() - cpu_before) * 1000.0 / 50.0;
    let (list_p50, list_p99) = percentiles(&mut times);
    // `svc metrics`, the whole command, after the `list`s above sampled the units.
    let mut metrics = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        assert!(daemon.svc(&["metrics"]).status.success());
        metrics.push(start.elapsed());
    }
    let (metrics_p50, metrics_p99) = percentiles(&mut metrics);
    println!("1,000 units, start to all running: {elapsed:.2?} (budget 2 s)");
    println!(
        "1,000 units, svcd RSS:          {:.2} MiB, peak {:.2} MiB (budget 16 MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "1,000 units, `svc list --json`: first {first_time:.2?} (svcd CPU {first_cpu:.1} ms), then median {list_p50:.2?}, p99 {list_p99:.2?} (svcd CPU {cpu_each:.1} ms each; budget 10 ms)"
    );
    println!(
        "1,000 units, `svc metrics`:     median {metrics_p50:.2?}, p99 {metrics_p99:.2?} (goal 10 ms)"
    );
}

/// svcd's RSS over 3,000 reloads that each add, then remove, a running unit: removed units'
/// slots must be freed and reused.
fn reload_growth() {
    let daemon = Daemon::start(&[sleeper("chat"), sleeper("proxy")]);
    let file = daemon.units_dir().join("gone.toml");
    let cycle = || {
        std::fs::write(&file, "exec = [\"sleep\", \"100000\"]\n").expect("unit");
        assert!(daemon.svc(&["reload"]).status.success());
        std::fs::remove_file(&file).expect("remove unit");
        assert!(daemon.svc(&["reload"]).status.success());
    };
    // The first cycles warm up the allocator and the log registry's entry for the name.
    for _ in 0..50 {
        cycle();
    }
    let before = daemon.proc_status("VmRSS");
    for _ in 0..3000 {
        cycle();
    }
    let after = daemon.proc_status("VmRSS");
    println!(
        "3,000 reloads adding and removing a unit: svcd RSS {:.2} → {:.2} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

fn percentiles(values: &mut [Duration]) -> (Duration, Duration) {
    if values.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
