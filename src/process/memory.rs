//! RSS and swap of whole process groups, read from /proc when status asks for them.
//!
//! The memory-watch issue samples periodically; until then status reads the figures on demand.

use std::collections::HashMap;

/// Memory of the processes of one group, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupMemory {
    pub rss: u64,
    pub swap: u64,
}

/// Sums VmRSS and VmSwap of every process whose process group is one of `pgids`.
pub fn group_memory(pgids: &[u32]) -> HashMap<u32, GroupMemory> {
    let mut totals: HashMap<u32, GroupMemory> = HashMap::new();
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
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(pgrp) = pgrp_of(&stat) else { continue };
        if !pgids.contains(&pgrp) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let total = totals.entry(pgrp).or_default();
        total.rss += kib_field(&status, "VmRSS:") * 1024;
        total.swap += kib_field(&status, "VmSwap:") * 1024;
    }
    totals
}

/// The 5th field of /proc/PID/stat; the command name (2nd) may hold spaces and parentheses, so
/// count from the last `)`.
fn pgrp_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn kib_field(status: &str, field: &str) -> u64 {
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
        let found = group_memory(&[pgid]);
        assert!(found.get(&pgid).is_some_and(|m| m.rss > 0), "{found:?}");
    }
}
