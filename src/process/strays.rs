//! A unit's processes that left its process group, found through `/proc`.
//!
//! A unit runs in its own process group, and most of its processes stay there; but a classic
//! daemon double-forks and calls `setsid`, and a helper may move to a group of its own. `killpg`
//! misses those. svcd is a child subreaper (or PID 1), so once such a process's parent exits it
//! becomes svcd's child, whatever its group or session; and every unit is spawned with
//! `SVC_UNIT=<name>` in its environment ([`UNIT_ENV`]), which its processes inherit and which
//! `/proc/PID/environ` keeps (it shows the environment the process was started with, even if
//! it changed its own variables since).
//!
//! So when the daemon signals a unit's group, it also signals, here, the unit's *strays*:
//!
//! - every descendant of the unit's main process that is not in the unit's group (while the
//!   main process lives: those are still below it), and the main process itself if it left
//!   its group;
//! - every child of svcd that is no unit's main process and whose environment names the unit
//!   (the orphans), with all their descendants that are not in the unit's group.
//!
//! Processes in the unit's group are left out: `killpg` already reached them, and some programs
//! treat a second signal as "hurry up". A process that cleared its environment *and* left the
//! unit's tree cannot be told apart from anyone else's: it is reaped when it exits, but not
//! ended with its unit. This is best effort, as any `/proc` walk is: a process forked while the
//! walk runs can escape it.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{HashSet, VecDeque};

/// The variable that names a process's unit.
pub const UNIT_ENV: &str = "SVC_UNIT";

/// Upper bound of processes one walk visits: a fork bomb must not make svcd walk forever.
const MAX_WALK: usize = 100_000;

/// The strays of unit `name` whose group is `pgid` (see the module doc), to signal after the
/// group.
///
/// Walked *before* the group is signalled: once the main process dies of that signal, a child
/// it had put in a session of its own (and whose environment it cleared) is no longer below
/// it, and nothing else tells it apart. The walk includes the main process itself when it
/// left its group (`setpgid` elsewhere): `killpg` then misses it, and the unit could never be
/// stopped.
///
/// `main_alive`: the group's leader (`pgid`) is the unit's main process and not yet reaped, so
/// its pid is still its own and its descendants can be walked. `mains`: the main pids of every
/// unit, which are never strays (the unit's own main pid aside).
pub fn find_strays(name: &str, pgid: u32, main_alive: bool, mains: &HashSet<u32>) -> Vec<u32> {
    let mut roots = Vec::new();
    if main_alive {
        roots.push(pgid);
    }
    roots.extend(
        own_children()
            .into_iter()
            .filter(|pid| !mains.contains(pid) && belongs_to(*pid, name)),
    );
    descendants(roots)
        .into_iter()
        .filter(|&pid| process_group(pid).is_some_and(|group| group != pgid))
        .collect()
}

/// Sends `signal` to each of `pids`; returns how many were signalled (gone ones are not).
pub fn signal_pids(pids: &[u32], signal: i32) -> usize {
    let Ok(signal) = Signal::try_from(signal) else {
        return 0;
    };
    let mut sent = 0;
    for &pid in pids {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) => sent += 1,
            Err(Errno::ESRCH) => {}
            Err(e) => tracing::debug!(pid, "cannot signal a stray: {e}"),
        }
    }
    sent
}

/// The children of `pid`, from `/proc/PID/task/*/children`; where the kernel lacks that file, by
/// a scan of every process's parent.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return children_by_scan(pid),
            Err(_) => {}
        }
    }
    found
}

/// svcd's own children. Only its main thread's list is read: svcd forks from that thread, and
/// the kernel hands orphans to a subreaper's first living thread, which is that one.
fn own_children() -> Vec<u32> {
    let me = std::process::id();
    match std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
        Ok(text) => text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .collect(),
        Err(_) => children(me),
    }
}

fn children_by_scan(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|(ppid, _)| ppid == parent))
        .collect()
}

/// `roots` and everything below them, each once, parents before children.
fn descendants(roots: Vec<u32>) -> Vec<u32> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut order = Vec::new();
    let mut queue: VecDeque<u32> = roots.into();
    while let Some(pid) = queue.pop_front() {
        if order.len() >= MAX_WALK || !seen.insert(pid) {
            continue;
        }
        order.push(pid);
        queue.extend(children(pid));
    }
    order
}

/// Whether the environment `pid` was started with says `SVC_UNIT=name`.
fn belongs_to(pid: u32, name: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{UNIT_ENV}={name}");
    environ
        .split(|&b| b == 0)
        .any(|var| var == wanted.as_bytes())
}

fn process_group(pid: u32) -> Option<u32> {
    stat_fields(pid).map(|(_, pgid)| pgid)
}

/// (parent pid, process group) from `/proc/PID/stat`.
pub fn stat_fields(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn reads_own_stat_and_children() {
        let me = std::process::id();
        let (ppid, pgid) = stat_fields(me).expect("own stat");
        assert_eq!(ppid, nix::unistd::getppid().as_raw() as u32);
        assert_eq!(pgid, nix::unistd::getpgrp().as_raw() as u32);
        let mut child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        assert!(children(me).contains(&child.id()));
        assert!(children_by_scan(me).contains(&child.id()));
        assert!(descendants(vec![me]).contains(&child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn environment_names_the_unit() {
        let mut child = Command::new("sleep")
            .arg("100")
            .env(UNIT_ENV, "web")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        // The parent learns that exec succeeded a moment before the kernel records where the
        // new environment lies; until then /proc/PID/environ reads empty.
        let start = std::time::Instant::now();
        while std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.is_empty())
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::yield_now();
        }
        assert!(belongs_to(pid, "web"));
        assert!(!belongs_to(pid, "we"));
        assert!(!belongs_to(pid, "web2"));
        let _ = child.kill();
        let _ = child.wait();
    }
}
