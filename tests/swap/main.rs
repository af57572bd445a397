//! swap_max on real swap: a unit in a memory-limited cgroup is pushed into a swap file, and svcd
//! restarts it for its swap.
//!
//! This test switches a swap file on for the *whole host* while it runs, so it is a test binary
//! of its own: cargo runs test binaries one after the other, so no other integration test runs
//! beside it (within the `it` binary, tests run in parallel, and their processes could be
//! swapped out to this file, which would change the memory figures and timings they check).
//! It needs root (a cgroup, `swapon`); elsewhere it says SKIPPED.

#[allow(dead_code)]
#[path = "../it/util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use util::*;

/// The tests of this binary switch swap on one at a time (each its own file), so that one's
/// unit is not pushed out by the other's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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
        if run("fallocate", &["-l", "128M", &file]).is_err() {
            let of = format!("of={file}");
            run("dd", &["if=/dev/zero", &of, "bs=1M", "count=128"])?;
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

/// This binary's turn at the host's swap: a swap file switched on, in a directory on disk
/// (the kernel does not swap to tmpfs), off again when dropped; `None` (after [`skip`])
/// without root or where swap cannot be switched on. (A tuple drops in order: the swap goes
/// off, its directory goes, then the other test may start.)
fn swap_on() -> Option<(
    SwapFile,
    tempfile::TempDir,
    std::sync::MutexGuard<'static, ()>,
)> {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if !nix::unistd::Uid::effective().is_root() {
        skip("needs root for a cgroup and swapon");
        return None;
    }
    let swap_dir = tempfile::Builder::new()
        .prefix("svc-swap-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    match SwapFile::on(swap_dir.path()) {
        Ok(swap) => Some((swap, swap_dir, one)),
        Err(why) => {
            skip(&format!("cannot switch a swap file on: {why}"));
            None
        }
    }
}

#[test]
fn swap_max_acts_on_a_unit_that_really_swaps() {
    // Declared before the cgroup so that it is dropped after it: the cgroup's processes are
    // killed (their swap freed) before the swap file is switched off.
    let Some(_swap) = swap_on() else {
        return;
    };
    let cgroup = match Cgroup::create(40 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            skip(&why.to_string());
            return;
        }
    };
    let dir = Dir::new();
    // Sampled, not in a cgroup of svcd's: the unit moves itself into the test's small cgroup
    // (to be made to swap), out of the one svcd would give it.
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"100ms\"\ncgroups = \"off\"\n",
    )
    .expect("config");
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

/// `memory.on_limit = ["reclaim"]` with swap that has room: as the unit passes 90% of its
/// limit, svcd pages it out, and its status says what that freed; the unit keeps running and
/// what was paged out shows as its swap.
#[test]
fn reclaim_pages_a_unit_out_to_real_swap_and_says_what_it_freed() {
    let Some(_swap) = swap_on() else {
        return;
    };
    let dir = Dir::new();
    // 48 MiB touched, 4 MiB at a time, then idle: with the interpreter, past 90% of 56M
    // (50.4M), below the kernel's limit (72M).
    let grow = "import time\nchunks = []\nfor _ in range(12):\n    chunks.append(b'c' * (4 << 20))\n    time.sleep(0.01)\ntime.sleep(3600)\n";
    let exec = serde_json::to_string(&["python3", "-c", grow]).expect("json");
    dir.unit(
        "cold",
        &format!("exec = {exec}\n[memory]\nmax = \"56M\"\non_limit = [\"reclaim\"]\n"),
    );
    let svcd = dir.start();
    svcd.wait_for("cold", "running");
    if svcd.status("cold")["memory"]["mode"] != "cgroup" {
        skip("svcd cannot make memory cgroups here");
        return;
    }
    let status = svcd.wait_status("cold", "a reclaim in its status", |s| {
        s["memory"]["ladder"]["reclaims"].as_u64() >= Some(1)
    });
    let ladder = &status["memory"]["ladder"];
    assert!(ladder["last_reclaim_skipped"].is_null(), "{status}");
    let freed = ladder["last_reclaim_freed"].as_u64().unwrap_or(0);
    assert!(freed >= 16 << 20, "freed {freed}: {status}");
    // The process's own count: on cgroup v1 the pages written out stay charged to the cgroup
    // (in the swap cache, clean, freed first when the cgroup needs room) until the kernel
    // drops them, so the cgroup's swap figure may not show them yet.
    let pid = status["pid"].as_u64().expect("pid") as u32;
    let swap_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmSwap:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(swap_kib >= 16 << 10, "VmSwap {swap_kib} kB: {status}");
    let after = svcd.status("cold");
    assert_eq!(after["state"], "running", "{after}");
    assert_eq!(after["restarts"], 0, "{after}");
    eprintln!(
        "reclaim: freed {} MiB in {} ms",
        freed >> 20,
        ladder["last_reclaim_ms"]
    );
    drop(svcd);
}
