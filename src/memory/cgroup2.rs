//! The cgroup v2 side of [`super::cgroup`]: finding svcd's cgroup on a cgroup2 mount, making
//! room for the units' cgroups under the "no internal processes" rule, and the v2 files
//! (`memory.events`, `memory.stat`, `memory.current`, `cgroup.kill`, `memory.reclaim`).
//!
//! A cgroup v2 may give its children a controller (`cgroup.subtree_control`) only while it
//! holds no process itself (the root cgroup excepted). svcd's own cgroup holds svcd (and its fd
//! holder), so before enabling `+memory` there svcd moves every process of it into a leaf of its
//! own, [`LEAF`]; the units' cgroups go beside it, in `svc.<hash>/<unit>` as on v1. After an
//! exec (`svc upgrade`) svcd finds itself in that leaf already and takes its parent as its
//! cgroup again. What svcd needs: to be root in the root cgroup (a VM or machine it is the init
//! of), or a delegated subtree (systemd's `Delegate=yes`: the cgroup and its files are the
//! service's to write, and its parent gives it the memory controller).

use super::cgroup::write;
use std::fs;
use std::path::{Path, PathBuf};

/// The leaf svcd moves itself into, in its own cgroup.
pub const LEAF: &str = "svcd";

/// svcd's cgroup v2 as a directory: its path on the `0::` line of `/proc/self/cgroup`, under the
/// cgroup2 mount of `/proc/self/mountinfo`; the parent where it is svcd's own [`LEAF`].
pub fn own_cgroup(cgroups: &str, mountinfo: &str) -> Result<PathBuf, String> {
    let path = cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("no cgroup v2 line (0::) in /proc/self/cgroup")?;
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        if after.split(' ').next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = before.split(' ').collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let Some(rest) = path.strip_prefix(root.trim_end_matches('/')) else {
            continue;
        };
        let mut dir = PathBuf::from(super::cgroup::unescape(mount));
        dir.extend(rest.split('/').filter(|c| !c.is_empty()));
        if dir.file_name().is_some_and(|name| name == LEAF) {
            dir.pop();
        }
        return Ok(dir);
    }
    Err(format!(
        "the cgroup2 mount for {path} is not in /proc/self/mountinfo"
    ))
}

/// Makes `own` (svcd's cgroup) give the memory controller to its children: svcd's processes
/// moved into [`LEAF`] first where `own` is not the root cgroup, then `+memory` in its
/// `cgroup.subtree_control`. Says why not where the controller is not there to give.
pub fn enable_memory(own: &Path) -> Result<(), String> {
    let controllers = fs::read_to_string(own.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read {}/cgroup.controllers: {e}", own.display()))?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Err(format!(
            "cgroup v2: {} has no memory controller (its parent does not delegate it)",
            own.display()
        ));
    }
    if subtree_has_memory(own) {
        return Ok(());
    }
    // The root cgroup has no cgroup.type and may hold processes.
    if own.join("cgroup.type").exists() {
        let leaf = own.join(LEAF);
        make_dir(&leaf)?;
        let procs = fs::read_to_string(own.join("cgroup.procs"))
            .map_err(|e| format!("cannot read {}/cgroup.procs: {e}", own.display()))?;
        // Only svcd's own processes are moved: a cgroup that holds others (a login session's
        // scope, a service's cgroup that was not delegated) is someone else's to arrange.
        let me = std::process::id();
        if let Some(other) = procs
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .find(|&pid| !descends_from(pid, me))
        {
            let comm = crate::proc::comm(other).unwrap_or_default();
            return Err(format!(
                "cgroup v2: {} also holds process {other} ({comm}), which is not svcd's; svcd moves \
                 only its own processes: give it a cgroup of its own (systemd: Delegate=yes)",
                own.display()
            ));
        }
        for pid in procs.split_whitespace() {
            // A process that exited meanwhile is not moved (ESRCH).
            let _ = write(&leaf.join("cgroup.procs"), pid);
        }
    }
    write(&own.join("cgroup.subtree_control"), "+memory")
}

/// Whether `pid` is `ancestor` or one of its descendants (by the parent pids in /proc). A process
/// that is gone meanwhile counts as one: it holds nothing any more.
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut at = pid;
    // A chain of parents is short; the bound guards against a loop of pids reused meanwhile.
    for _ in 0..64 {
        if at == ancestor {
            return true;
        }
        match crate::proc::stat(at) {
            Some(stat) if stat.ppid > 0 && stat.ppid != at => at = stat.ppid,
            Some(_) => return false,
            None => return at == pid,
        }
    }
    false
}

/// Gives the memory controller to the children of `dir` (the units' directory).
pub fn delegate_memory(dir: &Path) -> Result<(), String> {
    if subtree_has_memory(dir) {
        return Ok(());
    }
    write(&dir.join("cgroup.subtree_control"), "+memory")
}

fn subtree_has_memory(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .is_ok_and(|text| text.split_whitespace().any(|c| c == "memory"))
}

/// The counters of `memory.events`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// Times the use went over `memory.high` (throttled, reclaimed).
    pub high: u64,
    /// Times it reached `memory.max`.
    pub max: u64,
    /// Times the OOM killer was invoked, and the processes it killed.
    pub oom: u64,
    pub oom_kill: u64,
}

impl Events {
    pub fn parse(text: &str) -> Events {
        let mut events = Events::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse() else {
                continue;
            };
            match key {
                "high" => events.high = value,
                "max" => events.max = value,
                "oom" => events.oom = value,
                "oom_kill" => events.oom_kill = value,
                _ => {}
            }
        }
        events
    }

    pub fn read(dir: &Path) -> Option<Events> {
        fs::read_to_string(dir.join("memory.events"))
            .ok()
            .map(|text| Events::parse(&text))
    }

    /// Whether `self`, read after `before`, says the use crossed a limit meanwhile.
    pub fn crossed_since(&self, before: &Events) -> bool {
        self.high > before.high || self.max > before.max
    }
}

/// A field of `memory.stat` (v2 names: `anon`, `file_mapped`, ...); 0 where it is missing.
pub fn stat_field(stat: &str, name: &str) -> u64 {
    stat.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A single-number file (`memory.current`, `memory.swap.current`).
pub fn number(dir: &Path, file: &str) -> Option<u64> {
    crate::proc::read_whole(dir.join(file))?.trim().parse().ok()
}

/// Applies the limits of a unit with `memory.max` `max` and `memory.swap_max` `swap_max`:
/// `memory.max` is the kernel's hard limit ([`super::cgroup::hard_limit`]), `memory.high` the
/// unit's own (reclaim and throttling start where svcd restarts it), `memory.swap.max` a margin
/// above the unit's swap limit (where the kernel accounts swap).
pub fn set_limits(dir: &Path, max: Option<u64>, swap_max: Option<u64>) -> Result<(), String> {
    let value = |bytes: Option<u64>| bytes.map_or_else(|| "max".to_string(), |b| b.to_string());
    write(
        &dir.join("memory.max"),
        &value(max.map(super::cgroup::hard_limit)),
    )?;
    write(&dir.join("memory.high"), &value(max))?;
    let swap = dir.join("memory.swap.max");
    if swap.exists() {
        write(&swap, &value(swap_max.map(super::cgroup::hard_limit)))?;
    }
    Ok(())
}

/// SIGKILL to every process of the cgroup at once, by the kernel (`cgroup.kill`, Linux 5.14);
/// false where the kernel has no such file.
pub fn kill(dir: &Path) -> bool {
    write(&dir.join("cgroup.kill"), "1").is_ok()
}

/// Asks the kernel to reclaim `bytes` of the cgroup's memory (`memory.reclaim`, Linux 5.19);
/// `None` where it has no such file. The kernel may reclaim less (EAGAIN): not an error.
pub fn reclaim(dir: &Path, bytes: u64) -> Option<Result<(), String>> {
    let file = dir.join("memory.reclaim");
    if !file.exists() {
        return None;
    }
    match write(&file, &bytes.to_string()) {
        Err(why) if why.contains("temporarily unavailable") => Some(Ok(())),
        done => Some(done),
    }
}

fn make_dir(dir: &Path) -> Result<(), String> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

/// Calls `each` with the cgroup's `memory.events` every time the kernel says it changed
/// (`POLLPRI` on the file), until `each` returns false or the file fails: the cgroup is gone.
pub async fn each_event_change(dir: PathBuf, mut each: impl FnMut(Events) -> bool) {
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    let Ok(file) = fs::File::open(dir.join("memory.events")) else {
        return;
    };
    // SAFETY: `file` owns its descriptor, which stays open and the same for as long as the
    // AsyncFd owns `file` (it is never taken out again), as `register_with_interest` needs.
    let Ok(watched) = (unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY) }) else {
        return;
    };
    loop {
        let Ok(mut ready) = watched.ready(Interest::PRIORITY).await else {
            return;
        };
        ready.clear_ready();
        // Read again from the start (pread): the kernel's notice comes with the new counters.
        let mut buf = [0u8; 512];
        let n = match std::os::unix::fs::FileExt::read_at(watched.get_ref(), &mut buf, 0) {
            Ok(n) => n,
            Err(_) => return,
        };
        let events = Events::parse(&String::from_utf8_lossy(&buf[..n]));
        if !each(events) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// svcd moves only its own processes into its leaf: a shell beside it in a login session's
    /// cgroup is not one of them.
    #[test]
    fn only_svcds_own_processes_count_as_its_own() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("sleep");
        assert!(descends_from(me, me));
        assert!(descends_from(child.id(), me));
        let parent = std::os::unix::process::parent_id();
        assert!(!descends_from(parent, me));
        assert!(!descends_from(1, me) || me == 1);
        let _ = child.kill();
        let _ = child.wait();
    }

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn svcds_own_v2_cgroup_is_found_from_proc_and_its_leaf_is_not_its_own() {
        assert_eq!(
            own_cgroup("0::/system.slice/svcd.service\n", MOUNTINFO),
            Ok(PathBuf::from("/sys/fs/cgroup/system.slice/svcd.service"))
        );
        // After `svc upgrade`, the exec'd svcd is in the leaf the last one moved into.
        assert_eq!(
            own_cgroup("0::/system.slice/svcd.service/svcd\n", MOUNTINFO),
            Ok(PathBuf::from("/sys/fs/cgroup/system.slice/svcd.service"))
        );
        assert_eq!(
            own_cgroup("0::/\n", MOUNTINFO),
            Ok(PathBuf::from("/sys/fs/cgroup"))
        );
        // A container's cgroup namespace: the mount's root is its cgroup.
        let nested = MOUNTINFO.replace("0:30 / /sys/fs/cgroup", "0:30 /ctr /sys/fs/cgroup");
        assert_eq!(
            own_cgroup("0::/ctr/app\n", &nested),
            Ok(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert!(own_cgroup("4:memory:/a\n", MOUNTINFO).is_err());
        assert!(own_cgroup("0::/a\n", "").is_err_and(|e| e.contains("not in")));
    }

    #[test]
    fn memory_events_are_parsed_and_a_crossing_is_a_new_high_or_max() {
        let before = Events::parse("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
        assert_eq!(before, Events::default());
        let after = Events::parse("low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert_eq!(
            after,
            Events {
                high: 12,
                max: 3,
                oom: 1,
                oom_kill: 1
            }
        );
        assert!(after.crossed_since(&before));
        assert!(!after.crossed_since(&after));
    }

    #[test]
    fn v2_memory_stat_fields_are_read_by_name() {
        let stat = "anon 1048576\nfile 4096\nkernel 0\nfile_mapped 8192\nanon_thp 0\n";
        assert_eq!(stat_field(stat, "anon"), 1 << 20);
        assert_eq!(stat_field(stat, "file_mapped"), 8192);
        // `anon_thp` is not `anon`, nor a missing field anything but 0.
        assert_eq!(stat_field("anon_thp 5\n", "anon"), 0);
        assert_eq!(stat_field(stat, "shmem"), 0);
    }
}
