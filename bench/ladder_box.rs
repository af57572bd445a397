//! The memory cgroup of a ladder run ("the box"), shared by `bench/ladder.rs` and the short
//! version in the tests (`#[path]`): made under a unique name, removed when dropped, its
//! processes killed first and the cgroups svcd made below it with it, also on failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct BoxCgroup {
    pub dir: PathBuf,
}

impl BoxCgroup {
    /// A cgroup v1 memory cgroup of `limit` bytes named after `what` and this process.
    pub fn create(what: &str, limit: u64) -> Result<BoxCgroup, String> {
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() {
            return Err("no cgroup v1 memory controller at /sys/fs/cgroup/memory".into());
        }
        let dir = root.join(format!("svc-{what}-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let made = BoxCgroup { dir };
        std::fs::write(made.dir.join("memory.limit_in_bytes"), limit.to_string())
            .map_err(|e| format!("cannot limit the box: {e}"))?;
        Ok(made)
    }

    /// The kernel's OOM kills in the box (`oom_kill` of its `memory.oom_control`).
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for BoxCgroup {
    fn drop(&mut self) {
        // Bounded: the processes die at once, their cgroups go as soon as they are empty.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut dirs = vec![self.dir.clone()];
            let mut i = 0;
            while i < dirs.len() {
                if let Ok(entries) = std::fs::read_dir(&dirs[i]) {
                    dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
                i += 1;
            }
            for dir in dirs.iter().rev() {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill takes no pointers.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                let _ = std::fs::remove_dir(dir);
            }
            if !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}
