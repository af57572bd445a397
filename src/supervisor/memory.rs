//! Memory events: samples checked against the unit's limits, and restarts svcd decides on
//! (a limit, the host's swap policy).

use super::{Reason, ReasonKind, State, Supervisor, UnitId};
use crate::unit::duration::format_size;
use std::time::Instant;

/// Samples over a limit in a row that trigger a restart: one sample may catch a short peak
/// (a fork, a burst of requests); two in a row is a trend.
pub const SAMPLES_OVER_LIMIT: u32 = 2;

impl Supervisor {
    /// A sample of the unit's processes: `rss` and `swap` in bytes, summed over its process
    /// group. Over `max` or `swap_max` on [`SAMPLES_OVER_LIMIT`] samples in a row → restart,
    /// with the reason (`memory limit: rss 212M > 200M`) in its status and last exit.
    ///
    /// Samples only count while the unit has a process (starting or running); any other state,
    /// and a sample under the limits, start the count again.
    pub fn handle_memory_sample(&mut self, now: Instant, id: UnitId, rss: u64, swap: u64) {
        let Some(unit) = self.units.get_mut(id) else {
            debug_assert!(false, "unknown unit {id}");
            return;
        };
        let live = matches!(unit.state, State::Starting | State::Running) && unit.pid.is_some();
        let over = match (unit.config.memory.max, unit.config.memory.swap_max) {
            (Some(max), _) if rss > max => Some(("rss", rss, max)),
            (_, Some(max)) if swap > max => Some(("swap", swap, max)),
            _ => None,
        };
        let Some((what, used, max)) = over.filter(|_| live) else {
            unit.over_limit = 0;
            return;
        };
        if unit.over_limit == 0 {
            unit.over_since = Some(now);
        }
        unit.over_limit = unit.over_limit.saturating_add(1);
        let limits = unit.config.memory;
        // `memory.on_limit`'s grace: the unit, told at 90%, may come back under meanwhile.
        let in_grace = unit
            .over_since
            .is_some_and(|since| now.saturating_duration_since(since) < limits.grace);
        if unit.over_limit >= SAMPLES_OVER_LIMIT && !in_grace && !limits.no_restart {
            unit.over_limit = 0;
            let reason = format!(
                "memory limit: {what} {} > {}",
                format_size(used),
                format_size(max)
            );
            self.restart_for(now, id, Reason::new(ReasonKind::MemoryLimit, reason));
        }
    }

    /// svcd itself restarts the unit for `reason` (a memory limit, host memory pressure): as for
    /// a failed health check, the units that require it stop, it gets its stop signal, and once
    /// it exited the restart policy decides as after a crash (`never` → failed; else a restart
    /// after the backoff, within the start limit; `restarts` counts it). The last exit carries
    /// the reason. Nothing happens unless the unit has a process that is not already being
    /// stopped.
    pub fn handle_restart_for(&mut self, now: Instant, id: UnitId, reason: &str) {
        self.restart_for(now, id, Reason::new(ReasonKind::MemoryPressure, reason));
    }

    /// [`Supervisor::handle_restart_for`], for any reason.
    fn restart_for(&mut self, now: Instant, id: UnitId, reason: Reason) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if !matches!(unit.state, State::Starting | State::Running)
                || unit.pid.is_none()
                || unit.pending_stop.is_some()
            {
                return;
            }
            if sup.overlap_restart(now, id, &reason) {
                return;
            }
            sup.fail_stop(now, id, reason);
        });
    }
}
