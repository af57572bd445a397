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
///
/// Each group's leader is the unit's main pid, and its members are nearly always its
/// descendants: walk the trees from the leaders (/proc/PID/task/TID/children), which costs as
/// much as the units' own processes, not as the whole machine's. Without that file (a kernel
/// built without it), scan all of /proc.
pub fn group_memory(pgids: &[u32]) -> HashMap<u32, GroupMemory> {
    let mut totals: HashMap<u32, GroupMemory> = HashMap::new();
    if pgids.is_empty() {
        return totals;
    }
    let own = std::process::id();
    if std::path::Path::new(&format!("/proc/{own}/task/{own}/children")).exists() {
        for &leader in pgids {
            let mut stack = vec![leader];
            while let Some(pid) = stack.pop() {
                add_process(pid, pgids, &mut totals);
                stack.extend(children_of(pid));
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
            add_process(pid, pgids, &mut totals);
        }
    }
    totals
}

/// Adds `pid`'s memory to its group's total when its group is one of `pgids`.
fn add_process(pid: u32, pgids: &[u32], totals: &mut HashMap<u32, GroupMemory>) -> Option<()> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let pgrp = pgrp_of(&stat)?;
    if !pgids.contains(&pgrp) {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let total = totals.entry(pgrp).or_default();
    total.rss += kib_field(&status, "VmRSS:") * 1024;
    total.swap += kib_field(&status, "VmSwap:") * 1024;
    Some(())
}

/// The children of every thread of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    children
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
    use std::os::unix::process::CommandExt;

    #[test]
    fn pgrp_survives_odd_command_names() {
        let stat = "42 (a) b (c) S 1 4242 4242 0 -1";
        assert_eq!(pgrp_of(stat), Some(4242));
    }

    #[test]
    fn a_group_and_its_children_have_memory() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let found = wait_for_members(pgid);
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        assert!(found.rss > 0, "{found:?}");
    }

    /// Memory of the group once its three processes exist (sh and two sleeps).
    fn wait_for_members(pgid: u32) -> GroupMemory {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut stack = vec![pgid];
            let mut count = 0;
            while let Some(pid) = stack.pop() {
                count += 1;
                stack.extend(children_of(pid));
            }
            if count >= 3 || std::time::Instant::now() > deadline {
                return group_memory(&[pgid])
                    .get(&pgid)
                    .copied()
                    .unwrap_or_default();
            }
            std::thread::yield_now();
        }
    }
}
