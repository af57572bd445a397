//! The memory ladder on a 512 MB box: `cargo bench --bench ladder` (as root, on the cgroup v1
//! memory controller; elsewhere it says why it cannot run).
//!
//! Builds the VPS guide's situation inside a memory cgroup of 512 MiB made for the run (and
//! removed after it, its processes killed first, also when the bench fails): svcd, the chat
//! server (node) and nginx in front of it, and three units that leak, 50 MB/s, 5 MB/s and a
//! slow 1 MB/s, each with `memory.on_limit = ["notify", "restart"]`. For [`SPAN`] it asks nginx
//! for the chat page every 20 ms. No swap is switched on.
//!
//! Each leaker times the ladder on its own monotonic clock: from its RSS passing 90% of its
//! `memory.max` to the byte on its `MEMORY_PRESSURE_WATCH` FIFO (`notify`), and from its RSS
//! passing `memory.max` to svcd's SIGTERM (`restart`); it prints both to its log, which the
//! bench reads. Reported: p50/p99 of both, the kernel's OOM kills in the 512 MiB cgroup
//! (`oom_kill` of its `memory.oom_control`), p50/p99 latency of the requests through nginx,
//! svcd's RSS at the end.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
const SPAN: Duration = Duration::from_secs(30);
const BOX: u64 = 512 << 20;

#[path = "proc.rs"]
mod proc;

#[path = "ladder_box.rs"]
mod ladder_box;
use ladder_box::BoxCgroup;

/// Grows by `argv[1]` MiB every `argv[2]` seconds, each page touched; prints `notify <ms>` when
/// told after its cgroup's usage passed 90% of `argv[3]` MiB (svcd's threshold), and `restart
/// <ms>` at SIGTERM after its memory as svcd counts it (`total_rss` + `total_mapped_file`)
/// passed it. Both crossings are seen at the end of a step (the leak's granularity).
const LEAKER: &str = include_str!("ladder_leaker.py");

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

fn main() {
    let cgroup = match BoxCgroup::create("bench-ladder", BOX) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            println!("ladder: cannot run here: {why}");
            return;
        }
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let units = dir.path().join("units");
    std::fs::create_dir(&units).expect("units dir");
    let leaker = dir.path().join("leaker.py");
    std::fs::write(&leaker, LEAKER).expect("leaker");
    for name in ["chat", "proxy"] {
        let text = std::fs::read_to_string(repo.join(format!("units/{name}.toml")))
            .expect("shipped unit")
            .replace(
                "workdir = \"..\"",
                &format!("workdir = \"{}\"", repo.display()),
            )
            .replace(
                "NGINX_PREFIX = \"target/proxy\"",
                &format!("NGINX_PREFIX = \"{}\"", dir.path().join("nginx").display()),
            );
        std::fs::write(units.join(format!("{name}.toml")), text).expect("unit");
    }
    // (name, MiB per step, seconds per step, memory.max in MiB): 50 MB/s, 5 MB/s, 1 MB/s.
    let leaks = [
        ("leak50", 5, 0.1, 100),
        ("leak5", 1, 0.2, 40),
        ("slow", 1, 1.0, 24),
    ];
    for (name, step, every, max) in leaks {
        std::fs::write(
            units.join(format!("{name}.toml")),
            format!(
                "exec = [\"python3\", \"{}\", \"{step}\", \"{every}\", \"{max}\"]\n\
                 [restart]\npolicy = \"always\"\ndelay = \"100ms\"\nburst = 1000\n\
                 [memory]\nmax = \"{max}M\"\non_limit = [\"notify\", \"restart\"]\n",
                leaker.display()
            ),
        )
        .expect("unit");
    }
    let state = dir.path().join("state");
    let procs = cgroup.dir.join("cgroup.procs");
    let mut svcd = Command::new(SVCD);
    svcd.arg("--units")
        .arg(&units)
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only writes to a file (open, write, close: async-signal-safe enough
    // in the child of a single fork with no locks held by this bench's threads yet).
    unsafe {
        use std::os::unix::process::CommandExt;
        svcd.pre_exec(move || std::fs::write(&procs, "0"));
    }
    let mut svcd: Child = svcd.spawn().expect("svcd");
    let began = Instant::now();
    let mut latencies = Vec::new();
    let mut failed = 0u32;
    // Up to 15 s for node and nginx to come up: requests count from the first answer.
    let mut up = false;
    while began.elapsed() < SPAN + Duration::from_secs(15) {
        let sent = Instant::now();
        let answered = get("127.0.0.1:8080");
        let took = sent.elapsed().as_secs_f64() * 1e3;
        match (answered, up) {
            (true, _) => {
                up = true;
                latencies.push(took);
            }
            (false, true) => failed += 1,
            (false, false) => {}
        }
        if up && latencies.len() as u64 + u64::from(failed) >= SPAN.as_millis() as u64 / 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let svcd_rss = proc::status_field(svcd.id(), "VmRSS");
    let oom = cgroup.oom_kills();
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(svcd.id() as i32, libc::SIGTERM) };
    let _ = svcd.wait();
    let mut notify = Vec::new();
    let mut restart = Vec::new();
    for (name, ..) in leaks {
        let log =
            std::fs::read_to_string(state.join(format!("logs/{name}.log"))).unwrap_or_default();
        for line in log.lines() {
            for (word, into) in [("notify ", &mut notify), ("restart ", &mut restart)] {
                if let Some(ms) = line
                    .split_once(word)
                    .and_then(|(_, ms)| ms.trim().parse::<f64>().ok())
                {
                    into.push(ms);
                }
            }
        }
    }
    for list in [&mut notify, &mut restart, &mut latencies] {
        list.sort_by(f64::total_cmp);
    }
    println!(
        "ladder: 512 MiB box, {}s, chat + nginx + leaks of 50, 5 and 1 MB/s",
        SPAN.as_secs()
    );
    println!(
        "ladder: 90% of max -> unit told: n={} p50 {:.1} ms p99 {:.1} ms",
        notify.len(),
        percentile(&notify, 0.5),
        percentile(&notify, 0.99)
    );
    println!(
        "ladder: max crossed -> SIGTERM: n={} p50 {:.1} ms p99 {:.1} ms",
        restart.len(),
        percentile(&restart, 0.5),
        percentile(&restart, 0.99)
    );
    println!("ladder: kernel OOM kills in the box: {oom}");
    println!(
        "ladder: requests through nginx: {} answered, {failed} failed, p50 {:.1} ms p99 {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!("ladder: svcd RSS {svcd_rss} KiB");
}

/// One `GET /` to `addr`, answered with a status line within 2 s.
fn get(addr: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
