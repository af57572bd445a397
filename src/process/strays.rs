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
//! The first walk, from the main process, is done *before* the group is signalled (see
//! [`strays_below`]) and costs as much as the unit's own processes. The second lists svcd's
//! children, one per unit and more, which costs as much as all the units: the daemon does it
//! once for every unit it signalled since the last time ([`svcd_orphans`], then [`orphans_of`]
//! for each), after the turn's spawns and at most once per 100 ms, so that a crash-looping
//! unit's restart never waits for it nor pays it per crash. An orphan is svcd's child whether its unit's group was signalled
//! before or not, so nothing is missed by the wait. The units' main processes among svcd's
//! children are told apart by the daemon's pid table without opening anything, and only the
//! others (the orphans, of whichever unit) have their environment read. Orphans are looked for
//! even while the main process lives: a double-forked daemon is adopted by svcd at once, and
//! must get the unit's stop signal, not only SIGKILL once the main process is gone.

//! Processes in the unit's group are left out: `killpg` already reached them, and some programs
//! treat a second signal as "hurry up". A process that cleared its environment *and* left the
//! unit's tree cannot be told apart from anyone else's: it is reaped when it exits, but not
//! ended with its unit. This is best effort, as any `/proc` walk is: a process forked while the
//! walk runs can escape it.

use crate::proc;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{HashSet, VecDeque};

/// The variable that names a process's unit.
pub const UNIT_ENV: &str = "SVC_UNIT";

/// Upper bound of processes one walk visits: a fork bomb must not make svcd walk forever.
const MAX_WALK: usize = 100_000;

/// The descendants of the unit's main process `pgid` (still alive, its group's leader) that are
/// not in its group, with the main process itself if it left its group.
///
/// Walked *before* the group is signalled: once the main process dies of that signal, a child
/// it had put in a session of its own (and whose environment it cleared) is no longer below
/// it, and nothing else tells it apart. The main process itself is included when it left its
/// group (`setpgid` elsewhere): `killpg` then misses it, and the unit could never be stopped.
pub fn strays_below(pgid: u32) -> Vec<u32> {
    outside_group(descendants(vec![pgid]), pgid)
}

/// svcd's children that are no unit's main process (`is_main`), each with the unit its
/// environment names (`SVC_UNIT`), if any.
pub fn svcd_orphans(is_main: impl Fn(u32) -> bool) -> Vec<(u32, Option<Vec<u8>>)> {
    own_children()
        .into_iter()
        .filter(|&pid| !is_main(pid))
        .map(|pid| (pid, unit_of(pid)))
        .collect()
}

/// Of `orphans` (from [`svcd_orphans`]), those of unit `name` with their descendants, less the
/// processes in the unit's group `pgid` (`killpg` reached those).
pub fn orphans_of(orphans: &[(u32, Option<Vec<u8>>)], name: &str, pgid: u32) -> Vec<u32> {
    let roots = orphans
        .iter()
        .filter(|(_, unit)| unit.as_deref() == Some(name.as_bytes()))
        .map(|(pid, _)| *pid)
        .collect();
    outside_group(descendants(roots), pgid)
}

fn outside_group(pids: Vec<u32>, pgid: u32) -> Vec<u32> {
    pids.into_iter()
        .filter(|&pid| proc::stat(pid).is_some_and(|stat| stat.pgrp != pgid))
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

/// svcd's own children. Only its main thread's list is read: svcd forks from that thread, and
/// the kernel hands orphans to a subreaper's first living thread, which is that one.
fn own_children() -> Vec<u32> {
    let me = std::process::id();
    proc::task_children(me, me).unwrap_or_else(|| proc::children(me))
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
        queue.extend(proc::children(pid));
    }
    order
}

/// The unit named by the environment `pid` was started with (`SVC_UNIT`).
fn unit_of(pid: u32) -> Option<Vec<u8>> {
    proc::environ_var(pid, UNIT_ENV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn descendants_include_children() {
        let me = std::process::id();
        let mut child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
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
        while proc::environ_is_empty(pid) && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::yield_now();
        }
        assert_eq!(unit_of(pid).as_deref(), Some(&b"web"[..]));
        let _ = child.kill();
        let _ = child.wait();
    }
}
