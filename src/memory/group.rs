//! RSS and swap of whole process groups, summed from /proc.
//!
//! A unit's processes are its process group (svcd spawns each unit as a group leader), so one
//! pass over /proc finds them all, children and grandchildren included: `stat` gives each
//! process's group, and only members get their `status` (VmRSS, VmSwap) read. The buffers are
//! kept between samples, so a sample allocates next to nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;

/// Memory of the processes of one group, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupMemory {
    pub rss: u64,
    pub swap: u64,
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
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return totals;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if !self.read(pid, "stat") {
                continue;
            }
            let Some(pgrp) = pgrp_of(&self.text) else {
                continue;
            };
            if !pgids.contains(&pgrp) || !self.read(pid, "status") {
                continue;
            }
            let total = totals.entry(pgrp).or_default();
            total.rss += kib_field(&self.text, "VmRSS:") * 1024;
            total.swap += kib_field(&self.text, "VmSwap:") * 1024;
        }
        totals
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
    fn pgrp_survives_odd_command_names() {
        let stat = "42 (a) b (c) S 1 4242 4242 0 -1";
        assert_eq!(pgrp_of(stat), Some(4242));
    }

    #[test]
    fn own_group_has_memory() {
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        let mut sampler = GroupSampler::default();
        for _ in 0..2 {
            let found = sampler.sample(&[pgid, u32::MAX]);
            assert!(found.get(&pgid).is_some_and(|m| m.rss > 0), "{found:?}");
            assert!(!found.contains_key(&u32::MAX));
        }
    }
}
