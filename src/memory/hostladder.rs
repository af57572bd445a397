//! The host ladder's steps for one unit (`memory.on_pressure`), as the host policy
//! ([`super::policy`]) decides them: what each did in the unit's run, and the `reclaim` of a
//! unit that runs without a memory cgroup (its process group's processes paged out one by one;
//! a unit with a cgroup is paged out as `memory.on_limit`'s `reclaim` does it).
//!
//! The cause of every step is the host's memory pressure, never the unit's own limit: its
//! record is apart from the per-unit ladder's, and its log lines say so.

use super::ladder::{Reclaimed, Steps};
use crate::unit::duration::format_size;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The words that name the cause of every host step in svcd's log and the unit's status.
pub const CAUSE: &str = "host memory pressure";

/// What the host ladder did in a unit's current run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSteps {
    /// When and how often it was told and reclaimed (the memory in `last_told` is the unit's
    /// use at the time).
    pub steps: Steps,
    /// The host's level and what reached it at the last step, e.g. "host memory warn: swap
    /// 300M of 1G used (≥ 256M)".
    pub cause: String,
}

/// [`HostSteps`] as svcd and the reclaims on the blocking pool share them.
pub type SharedHostSteps = Arc<Mutex<HostSteps>>;

/// Locks `steps`, also after a panic elsewhere (the record stays usable).
pub fn lock(steps: &SharedHostSteps) -> MutexGuard<'_, HostSteps> {
    steps.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records in `steps` that the unit was told at `at`, using `bytes`, for `cause`.
pub fn record_told(steps: &SharedHostSteps, at: Instant, bytes: u64, cause: &str) {
    let mut record = lock(steps);
    record.steps.told += 1;
    record.steps.last_told = Some((at, bytes));
    cause.clone_into(&mut record.cause);
}

/// Records in `steps` a reclaim begun at `at` for `cause`, and what it did.
pub fn record_reclaim(steps: &SharedHostSteps, at: Instant, done: Reclaimed, cause: &str) {
    let mut record = lock(steps);
    record.steps.reclaims += 1;
    record.steps.last_reclaim = Some((at, done));
    cause.clone_into(&mut record.cause);
}

/// `reclaim` of unit `unit` without a cgroup: the processes of its process group `pgid` paged
/// out to swap, where the host's free swap holds what they use; what it freed (their RSS before
/// and after), or why it did nothing. Said in svcd's log, for `cause` (the host's step).
/// Blocking: run it off the event loop.
pub fn page_out_group(unit: &str, pgid: u32, cause: &str) -> Reclaimed {
    let rss = || {
        super::group_memory(&[pgid])
            .get(&pgid)
            .map_or(0, |memory| memory.rss)
    };
    let before = rss();
    let free = super::reclaim::swap_free();
    if free < before {
        let why = format!(
            "{} of swap free, the unit holds {}",
            format_size(free),
            format_size(before)
        );
        tracing::info!(unit = %unit, "no reclaim for {cause}: {why}");
        return Reclaimed::Skipped(why);
    }
    let began = Instant::now();
    let members: Vec<u32> = crate::proc::pids()
        .filter(|&pid| crate::proc::stat(pid).is_some_and(|stat| stat.pgrp == pgid))
        .collect();
    let mut advised = 0;
    for pid in members {
        match super::reclaim::page_out(pid) {
            Ok(bytes) => advised += bytes,
            Err(why) => tracing::debug!(unit = %unit, "reclaim: {why}"),
        }
    }
    let after = rss();
    let freed = before.saturating_sub(after);
    let millis = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::warn!(
        unit = %unit,
        "reclaimed {} to swap for {cause} in {millis}ms (rss {} -> {}, {} asked)",
        format_size(freed),
        format_size(before),
        format_size(after),
        format_size(advised),
    );
    Reclaimed::Freed {
        bytes: freed,
        millis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_record_keeps_each_step_and_its_cause() {
        let steps = SharedHostSteps::default();
        let at = Instant::now();
        record_told(
            &steps,
            at,
            10,
            "host memory warn: swap 1M of 2M used (≥ 1M)",
        );
        record_told(
            &steps,
            at,
            20,
            "host memory critical: swap 2M of 2M used (≥ 2M)",
        );
        record_reclaim(&steps, at, Reclaimed::Skipped("no swap".to_string()), "x");
        let record = lock(&steps).clone();
        assert_eq!(record.steps.told, 2);
        assert_eq!(record.steps.last_told, Some((at, 20)));
        assert_eq!(record.steps.reclaims, 1);
        assert_eq!(record.cause, "x");
    }

    /// A process group whose memory swap cannot hold is left alone, and says why; with room,
    /// its processes are asked to page out.
    #[test]
    fn a_group_is_paged_out_only_where_swap_has_room() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let done = page_out_group("sleeper", child.id(), CAUSE);
        let _ = child.kill();
        let _ = child.wait();
        match done {
            Reclaimed::Skipped(why) => {
                assert!(super::super::reclaim::swap_free() < 64 << 20, "{why}");
                assert!(why.contains("of swap free"), "{why}");
            }
            Reclaimed::Freed { .. } => {}
        }
    }
}
