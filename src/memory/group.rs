//! RSS and swap of whole process groups, summed from /proc.
//!
//! A unit's processes are its process group (svcd spawns each unit as a group leader). Its
//! members are nearly always the leader's descendants, so a sample walks the trees from the
//! leaders (`/proc/PID/task/TID/children`): it costs as much as the units' own processes, not
//! as the whole host's. Only where the kernel lacks that file does it pass over all of /proc.
//! `stat` gives each process's group, and only members get their `status` (VmRSS, VmSwap)
//! read. The buffers are kept between samples, so a sample allocates next to nothing.

use crate::proc;
use std::collections::HashMap;

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
    reader: proc::Reader,
}

impl GroupSampler {
    /// Sums VmRSS and VmSwap of every process whose process group is one of `pgids`; groups
    /// with no process left are absent from the answer.
    pub fn sample(&mut self, pgids: &[u32]) -> HashMap<u32, GroupMemory> {
        let mut totals: HashMap<u32, GroupMemory> = HashMap::with_capacity(pgids.len());
        if pgids.is_empty() {
            return totals;
        }
        if proc::has_children_files() {
            let mut stack = Vec::new();
            for &leader in pgids {
                stack.push(leader);
                while let Some(pid) = stack.pop() {
                    self.add(pid, pgids, &mut totals);
                    self.reader.children_into(pid, &mut stack);
                }
            }
            return totals;
        }
        for pid in proc::pids() {
            self.add(pid, pgids, &mut totals);
        }
        totals
    }

    /// Adds `pid`'s memory to its group's total when its group is one of `pgids`.
    fn add(&mut self, pid: u32, pgids: &[u32], totals: &mut HashMap<u32, GroupMemory>) {
        if !self.reader.read(pid, "stat") {
            return;
        }
        let Some(pgrp) = proc::parse_pgrp(&self.reader.text) else {
            return;
        };
        if !pgids.contains(&pgrp) {
            return;
        }
        let cpu_ticks = proc::cpu_ticks(&self.reader.text);
        if !self.reader.read(pid, "status") {
            return;
        }
        let total = totals.entry(pgrp).or_default();
        total.cpu_ticks += cpu_ticks;
        total.rss += proc::kib(&self.reader.text, "VmRSS") * 1024;
        total.swap += proc::kib(&self.reader.text, "VmSwap") * 1024;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
                sampler.reader.children_into(pid, &mut stack);
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
