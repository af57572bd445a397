//! RSS and swap of whole process groups, summed from /proc.
//!
//! A unit's processes are its process group (svcd spawns each unit as a group leader). Its
//! members are nearly always the leader's descendants, so a sample walks the trees from the
//! leaders (`/proc/PID/task/TID/children`): it costs as much as the units' own processes, not
//! as the whole host's. Only where the kernel lacks that file does it pass over all of /proc.
//! `stat` gives each process's group, and only members get their `status` (VmRSS, VmSwap)
//! read, and only where their cgroup does not count their memory already. The buffers are kept
//! between samples, so a sample allocates next to nothing.

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
        self.sample_cpu_of(pgids, |_| false)
    }

    /// [`GroupSampler::sample`], but of the groups `cpu_only` picks (those whose memory their
    /// cgroup counts) only the CPU time: their processes' `status` is not read, and their
    /// `rss` and `swap` are 0.
    pub fn sample_cpu_of(
        &mut self,
        pgids: &[u32],
        cpu_only: impl Fn(u32) -> bool,
    ) -> HashMap<u32, GroupMemory> {
        let mut totals: HashMap<u32, GroupMemory> = HashMap::with_capacity(pgids.len());
        if pgids.is_empty() {
            return totals;
        }
        if proc::has_children_files() {
            let mut stack = Vec::new();
            for &leader in pgids {
                stack.push(leader);
                while let Some(pid) = stack.pop() {
                    let threads = self.add(pid, pgids, &cpu_only, &mut totals);
                    self.reader.children_of(pid, threads, &mut stack);
                }
            }
            return totals;
        }
        for pid in proc::pids() {
            self.add(pid, pgids, &cpu_only, &mut totals);
        }
        totals
    }

    /// Adds `pid`'s memory (its CPU time only, where `cpu_only` picks its group) to its
    /// group's total when its group is one of `pgids`. Its number of threads, from its `stat`.
    fn add(
        &mut self,
        pid: u32,
        pgids: &[u32],
        cpu_only: &impl Fn(u32) -> bool,
        totals: &mut HashMap<u32, GroupMemory>,
    ) -> Option<u64> {
        if !self.reader.read(pid, "stat") {
            return None;
        }
        let threads = proc::parse_threads(&self.reader.text);
        let Some(pgrp) = proc::parse_pgrp(&self.reader.text) else {
            return threads;
        };
        if !pgids.contains(&pgrp) {
            return threads;
        }
        let cpu_ticks = proc::cpu_ticks(&self.reader.text);
        if cpu_only(pgrp) {
            totals.entry(pgrp).or_default().cpu_ticks += cpu_ticks;
            return threads;
        }
        if !self.reader.read(pid, "status") {
            return threads;
        }
        let total = totals.entry(pgrp).or_default();
        total.cpu_ticks += cpu_ticks;
        total.rss += proc::kib(&self.reader.text, "VmRSS") * 1024;
        total.swap += proc::kib(&self.reader.text, "VmSwap") * 1024;
        threads
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

    /// `sh` starting two `sleep`s, the leader of a process group of its own.
    fn sh_and_two_sleeps() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100; wait"])
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// Kills `child`'s whole process group and reaps `child`.
    fn kill_group(mut child: std::process::Child) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
    }

    #[test]
    fn a_group_and_its_children_have_memory() {
        let child = sh_and_two_sleeps();
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
        kill_group(child);
        assert_eq!(members, 3, "sh and its two sleeps");
        let rss = found.get(&pgid).map(|m| m.rss).unwrap_or(0);
        assert!(rss > 0, "{found:?}");
        assert!(!found.contains_key(&u32::MAX));
        assert!(again.get(&pgid).is_some_and(|m| m.rss > 0));
    }

    /// A process with one thread has its children read from that thread's file alone, and
    /// they are those that listing its task directory finds.
    #[test]
    fn a_single_threaded_process_has_its_children_read_from_one_file() {
        let child = sh_and_two_sleeps();
        let pid = child.id();
        let mut reader = proc::Reader::default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut listed = Vec::new();
        while listed.len() < 2 && std::time::Instant::now() < deadline {
            listed.clear();
            reader.children_of(pid, None, &mut listed);
            std::thread::yield_now();
        }
        let threads = reader
            .read(pid, "stat")
            .then(|| proc::parse_threads(&reader.text))
            .flatten();
        let mut one_file = Vec::new();
        reader.children_of(pid, threads, &mut one_file);
        kill_group(child);
        assert_eq!(threads, Some(1));
        assert_eq!(listed.len(), 2, "the two sleeps");
        listed.sort();
        one_file.sort();
        assert_eq!(one_file, listed);
    }

    /// A group whose cgroup counts its memory: found, its CPU time read, its `status` not.
    #[test]
    fn a_group_counted_by_its_cgroup_is_found_without_its_memory() {
        let child = sh_and_two_sleeps();
        let pgid = child.id();
        let mut sampler = GroupSampler::default();
        let counted = sampler.sample_cpu_of(&[pgid], |group| group == pgid);
        let walked = sampler.sample_cpu_of(&[pgid], |_| false);
        kill_group(child);
        assert_eq!(counted.get(&pgid).map(|m| (m.rss, m.swap)), Some((0, 0)));
        assert!(walked.get(&pgid).is_some_and(|m| m.rss > 0), "{walked:?}");
    }
}
