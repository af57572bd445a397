//! The memory watch on real processes: limits restart, oom_score_adj is applied, the host line
//! is shown, and (where the machine allows a cgroup and a swap file) swap_max acts on real swap.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Grows by 2 MiB every 20 ms, touching every page, up to `limit_mib`, then waits.
fn grower(limit_mib: u32) -> String {
    format!(
        "import time\nchunks = []\nfor _ in range({}):\n    chunks.append(bytearray(2 << 20))\n    time.sleep(0.02)\ntime.sleep(3600)\n",
        limit_mib / 2
    )
}

fn fast_sampling(dir: &Dir) {
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"100ms\"\n",
    )
    .expect("config");
}

#[test]
fn a_unit_over_memory_max_is_restarted_with_the_reason() {
    let dir = Dir::new();
    fast_sampling(&dir);
    let exec = serde_json::to_string(&["python3", "-c", &grower(200)]).expect("json");
    dir.unit(
        "leak",
        &format!("exec = {exec}\n[restart]\ndelay = \"0s\"\n[memory]\nmax = \"30M\"\n"),
    );
    let svcd = dir.start();
    let status = svcd.wait_status("leak", "a memory restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let reason = status["last_exit"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(reason.starts_with("memory limit: rss "), "{status}");
    assert!(reason.contains(" > 30M; killed by SIGTERM"), "{status}");
    // The restarted run is watched too: it grows and is restarted again.
    svcd.wait_status("leak", "a second memory restart", |s| {
        s["restarts"].as_u64() >= Some(2)
    });
}

#[test]
fn a_unit_under_its_limit_keeps_running_and_shows_its_memory() {
    let dir = Dir::new();
    fast_sampling(&dir);
    let exec = serde_json::to_string(&["python3", "-c", &grower(10)]).expect("json");
    dir.unit(
        "small",
        &format!("exec = {exec}\n[memory]\nmax = \"200M\"\noom_score_adj = 321\n"),
    );
    let leak = serde_json::to_string(&["python3", "-c", &grower(200)]).expect("json");
    dir.unit("leak", &format!("exec = {leak}\n[memory]\nmax = \"30M\"\n"));
    let svcd = dir.start();
    let status = svcd.wait_status("small", "10M of RSS", |s| {
        s["memory"]["rss"].as_u64() >= Some(10 << 20)
    });
    let pid = status["pid"].as_u64().expect("a pid");
    let adj = svc::proc::oom_score_adj(u32::try_from(pid).expect("a pid"));
    assert_eq!(adj, Some(321));
    // The leaking unit beside it proves samples were taken (on the same timer) since; the
    // small one still runs its first run.
    svcd.wait_status("leak", "a memory restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let status = svcd.status("small");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["pid"].as_u64(), Some(pid), "{status}");

    let human = svcd.svc_ok(&["status"], 0);
    assert!(human.contains("\nHost: memory "), "{human}");
    assert!(human.contains(" used, swap "), "{human}");
    let json = svcd.svc_ok(&["status", "--json"], 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(value.is_array(), "the JSON stays an array of units: {json}");
}

/// A memory-limited cgroup, removed (its processes killed first) when dropped.
struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// A v2 or v1 memory cgroup limited to `limit` bytes of RAM, or why not.
    fn create(limit: u64) -> Result<Cgroup, String> {
        let name = format!("svc-test-swap-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup");
        let controllers =
            std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
        let (path, limit_file) = if controllers.split_whitespace().any(|c| c == "memory") {
            // May fail where the root already holds processes; the child's files tell.
            let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+memory");
            (v2.join(name), "memory.max")
        } else if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            (
                Path::new("/sys/fs/cgroup/memory").join(name),
                "memory.limit_in_bytes",
            )
        } else {
            return Err("no cgroup memory controller (v1 or v2)".to_string());
        };
        std::fs::create_dir(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let cgroup = Cgroup { path };
        std::fs::write(cgroup.path.join(limit_file), limit.to_string())
            .map_err(|e| format!("cannot set {limit_file}: {e}"))?;
        Ok(cgroup)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = wait_until_result(|| {
            let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
            for pid in procs
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                kill(pid, 9);
            }
            std::fs::remove_dir(&self.path).ok()
        });
    }
}

/// Retries `f` for a few seconds (cleanup: never panics).
fn wait_until_result(mut f: impl FnMut() -> Option<()>) -> Option<()> {
    let start = std::time::Instant::now();
    while start.elapsed() < DEADLINE / 4 {
        if f().is_some() {
            return Some(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// A swap file switched on; off and removed when dropped.
struct SwapFile {
    path: PathBuf,
    on: bool,
}

impl SwapFile {
    fn on(dir: &Path) -> Result<SwapFile, String> {
        let path = dir.join("swapfile");
        let mut swap = SwapFile { path, on: false };
        let run = |program: &str, args: &[&str]| -> Result<(), String> {
            let out = Command::new(program)
                .args(args)
                .output()
                .map_err(|e| format!("{program}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{program}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let file = swap.path.to_string_lossy().into_owned();
        if run("fallocate", &["-l", "64M", &file]).is_err() {
            let of = format!("of={file}");
            run("dd", &["if=/dev/zero", &of, "bs=1M", "count=64"])?;
        }
        run("chmod", &["600", &file])?;
        run("mkswap", &[&file])?;
        run("swapon", &[&file])?;
        swap.on = true;
        Ok(swap)
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        // swapoff must bring the swapped pages back; retried while the processes that own them
        // are still on their way out. A swap file left on would outlive the test.
        if self.on {
            let off = wait_until_result(|| {
                let status = Command::new("swapoff").arg(&self.path).status().ok()?;
                status.success().then_some(())
            });
            if off.is_none() {
                eprintln!("warning: could not switch {} off", self.path.display());
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn swap_max_acts_on_a_unit_that_really_swaps() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("note: swap_max test skipped: needs root for a cgroup and swapon");
        return;
    }
    // On disk, not tmpfs: the kernel does not swap to tmpfs.
    let swap_dir = tempfile::Builder::new()
        .prefix("svc-swap-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    // Declared before the cgroup so that it is dropped after it: the cgroup's processes are
    // killed (their swap freed) before the swap file is switched off.
    let _swap = match SwapFile::on(swap_dir.path()) {
        Ok(swap) => swap,
        Err(why) => {
            println!("note: swap_max test skipped: cannot switch a swap file on: {why}");
            return;
        }
    };
    let cgroup = match Cgroup::create(40 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            println!("note: swap_max test skipped: {why}");
            return;
        }
    };
    let dir = Dir::new();
    fast_sampling(&dir);
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec python3 -c \"$0\"",
        cgroup.path.display()
    );
    let exec = serde_json::to_string(&["sh", "-c", &script, &grower(100)]).expect("json");
    dir.unit(
        "swapper",
        &format!("exec = {exec}\n[memory]\nmax = \"1G\"\nswap_max = \"16M\"\n"),
    );
    let svcd = dir.start();
    let status = svcd.wait_status("swapper", "a swap restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let reason = status["last_exit"]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("memory limit: swap "), "{status}");
    assert!(reason.contains(" > 16M"), "{status}");
    drop(svcd);
}
