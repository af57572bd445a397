//! RSS and swap of whole process groups, summed from /proc.
//!
//! A unit's processes are its process group (svcd spawns each unit as a group leader). Its
//! members are nearly always the leader's descendants, so a sample walks the trees from the
//! leaders (`/proc/PID/task/TID/children`): it costs as much as the units' own processes, not
//! as the whole host's. Only where the kernel lacks that file does it pass over all of /proc.
//! `stat` gives each process's group, and only members get their `status` (VmRSS, VmSwap)
//! read. The buffers are kept between samples, so a sample allocates next to nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;

/// Memory of the processes of one group, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupMemory {
    pub rss: u64,
    pub swap: u64,
    /// CPU time of the group's live processes and of the children they reaped (utime, stime,
    /// cutime, cstime of /proc/PID/stat), in clock ticks.
    pub cpu_ticks: u64,
}

/// Sums VmRSS and VmSwap of every process whose process group is one of `pgids`.
pub fn group_memory(pgids: &[u32]) -> HashMap<u32, GroupMemory> {
    GroupSampler::default().sample(pgids)
}

/// Reusable buffers for [`group_memory`]; the daemon keeps one for its periodic samples.
#[derive(Debug, Default)]
pub struct GroupSampler {
    path: String,
    text: String,
}

impl GroupSampler {
    /// Sums VmRSS and VmSwap of every process whose process group is one of `pgids`; groups
    /// with no process left are absent from the answer.
    pub fn sample(&mut self, pgids: &[u32]) -> HashMap<u32, GroupMemory> {
        let mut totals: HashMap<u32, GroupMemory> = HashMap::with_capacity(pgids.len());
        if pgids.is_empty() {
            return totals;
        }
        let own = std::process::id();
        if std::path::Path::new(&format!("/proc/{own}/task/{own}/children")).exists() {
            let mut stack = Vec::new();
            for &leader in pgids {
                stack.push(leader);
                while let Some(pid) = stack.pop() {
                    self.add(pid, pgids, &mut totals);
                    self.push_children(pid, &mut stack);
                }
            }
            return totals;
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return totals;
        };
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                self.add(pid, pgids, &mut totals);
            }
        }
        totals
    }

    /// Adds `pid`'s memory to its group's total when its group is one of `pgids`.
    fn add(&mut self, pid: u32, pgids: &[u32], totals: &mut HashMap<u32, GroupMemory>) {
        if !self.read(pid, "stat") {
            return;
        }
        let Some(pgrp) = pgrp_of(&self.text) else {
            return;
        };
        if !pgids.contains(&pgrp) {
            return;
        }
        let cpu_ticks = cpu_ticks_of(&self.text);
        if !self.read(pid, "status") {
            return;
        }
        let total = totals.entry(pgrp).or_default();
        total.cpu_ticks += cpu_ticks;
        total.rss += kib_field(&self.text, "VmRSS:") * 1024;
        total.swap += kib_field(&self.text, "VmSwap:") * 1024;
    }

    /// Pushes the children of every thread of `pid`.
    fn push_children(&mut self, pid: u32, stack: &mut Vec<u32>) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for task in tasks.flatten() {
            self.text.clear();
            let read = std::fs::File::open(task.path().join("children"))
                .and_then(|mut f| f.read_to_string(&mut self.text));
            if read.is_ok() {
                stack.extend(
                    self.text
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }

    /// Reads /proc/PID/FILE into `self.text`; false if the process is gone.
    fn read(&mut self, pid: u32, file: &str) -> bool {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/{file}");
        self.text.clear();
        std::fs::File::open(&self.path)
            .and_then(|mut f| f.read_to_string(&mut self.text))
            .is_ok()
    }
}

/// The 5th field of /proc/PID/stat; the command name (2nd) may hold spaces and parentheses, so
/// count from the last `)`.
fn pgrp_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// utime + stime + cutime + cstime (fields 14 to 17 of /proc/PID/stat), in clock ticks.
fn cpu_ticks_of(stat: &str) -> u64 {
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    // After the command name, field 3 (the state) comes first: fields 14..=17 are 11..=14.
    stat[close + 1..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum()
}

/// Seconds of `ticks` clock ticks (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_to_seconds(ticks: u64) -> f64 {
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    ticks as f64 / per_second as f64
}

/// A `kB` field of /proc/PID/status or /proc/meminfo, in KiB; 0 when absent (kernel threads
/// have no VmRSS, kernels without swap support no VmSwap).
pub(super) fn kib_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_user_system_and_reaped_children_time() {
        let stat = "42 (a) b (c) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 1 0";
        assert_eq!(cpu_ticks_of(stat), 310);
        assert_eq!(cpu_ticks_of("garbage"), 0);
    }

    #[test]
    fn pgrp_survives_odd_command_names() {
        let stat = "42 (a) b (c) S 1 4242 4242 0 -1";
        assert_eq!(pgrp_of(stat), Some(4242));
    }

    #[test]
    fn a_group_and_its_children_have_memory() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        // Wait (bounded) until sh has forked both sleeps.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut sampler = GroupSampler::default();
        let mut members = 0;
        while members < 3 && std::time::Instant::now() < deadline {
            let mut stack = vec![pgid];
            members = 0;
            while let Some(pid) = stack.pop() {
                members += 1;
                sampler.push_children(pid, &mut stack);
            }
            std::thread::yield_now();
        }
        let found = sampler.sample(&[pgid, u32::MAX]);
        let again = sampler.sample(&[pgid]);
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        assert_eq!(members, 3, "sh and its two sleeps");
        let rss = found.get(&pgid).map(|m| m.rss).unwrap_or(0);
        assert!(rss > 0, "{found:?}");
        assert!(!found.contains_key(&u32::MAX));
        assert!(again.get(&pgid).is_some_and(|m| m.rss > 0));
    }
}
