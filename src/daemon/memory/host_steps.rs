//! The host policy's steps for the units (`memory.on_pressure`): each unit's pressure FIFO for
//! its run, whichever key asked for it, and the steps of a verdict taken (told, reclaimed) and
//! recorded for status.

use super::{Daemon, MemoryWatch};
use crate::memory::{Candidate, Verdict, hostladder, ladder};
use crate::supervisor::UnitId;
use crate::unit::Unit;
use std::sync::Arc;
use std::time::Instant;

impl MemoryWatch {
    /// At each spawn of unit `id`: the host steps of its last run forgotten, and its pressure
    /// FIFO made anew where `memory.on_pressure` has `notify`, with or without a cgroup (where
    /// only `memory.on_limit` has it, the FIFO is made as its cgroup is watched).
    pub fn begin_run(&mut self, id: UnitId, unit: &Unit) {
        self.host_steps.remove(&id);
        self.fifos.remove(&id);
        if unit.memory.on_pressure.notify {
            self.fifo_for(id, unit, false);
        }
    }

    /// Unit `id`, adopted from a previous svcd: the FIFO its process was given for
    /// `memory.on_pressure`'s `notify`, opened again (`memory.on_limit`'s is, as its cgroup is
    /// taken back).
    pub fn adopt_fifo(&mut self, id: UnitId, unit: &Unit) {
        if unit.memory.on_pressure.notify {
            self.fifo_for(id, unit, true);
        }
    }

    /// Unit `id`'s pressure FIFO for this run: the one it has, else made now (`adopted`: the
    /// one a previous svcd made, opened again). `None`, with a warning, where that fails.
    pub(super) fn fifo_for(
        &mut self,
        id: UnitId,
        unit: &Unit,
        adopted: bool,
    ) -> Option<Arc<ladder::PressureFifo>> {
        if let Some(fifo) = self.fifos.get(&id) {
            return Some(fifo.clone());
        }
        let dir = ladder::fifo_dir(self.state_dir.as_ref()?);
        let made = if adopted {
            ladder::PressureFifo::reopen(&dir, &unit.name)
        } else {
            ladder::fifo_owner(unit.run_as(nix::unistd::Uid::effective().is_root()))
                .and_then(|owner| ladder::PressureFifo::create(&dir, &unit.name, owner))
        };
        match made {
            Ok(fifo) => {
                let fifo = Arc::new(fifo);
                self.fifos.insert(id, fifo.clone());
                Some(fifo)
            }
            Err(why) => {
                tracing::warn!(unit = %unit.name, "will not be told of its memory: {why}");
                None
            }
        }
    }

    /// What the host policy's steps did in unit `id`'s current run, if it took any.
    pub fn host_ladder_steps(&self, id: UnitId) -> Option<hostladder::HostSteps> {
        let steps = hostladder::lock(self.host_steps.get(&id)?).clone();
        (steps != hostladder::HostSteps::default()).then_some(steps)
    }
}

impl Daemon {
    /// The host policy's steps in `verdict`, after the sample taken at `now` (`candidates`: its
    /// units and their memory): each unit told through its FIFO at once, each reclaim on the
    /// blocking pool (paging a unit out takes milliseconds); each recorded for its status and
    /// said in svcd's log with the host's pressure as its cause.
    pub(super) fn take_host_steps(
        &mut self,
        now: Instant,
        verdict: &Verdict,
        candidates: &[Candidate],
    ) {
        let cause = &verdict.cause;
        let rss = |id| candidates.iter().find(|c| c.id == id).map_or(0, |c| c.rss);
        for &id in &verdict.tell {
            let name = &self.units[id].name;
            let Some(fifo) = self.memory.fifos.get(&id) else {
                // Its run began before `notify` was in its `memory.on_pressure` (a reload).
                tracing::info!(unit = %name, "not told of {}: its run has no pressure FIFO", hostladder::CAUSE);
                continue;
            };
            let steps = self.memory.host_steps.entry(id).or_default();
            hostladder::record_told(steps, Instant::now(), rss(id), cause);
            fifo.tell();
            tracing::warn!(
                unit = %name,
                "told through {} of {} ({:.2?} after the sample): {cause}",
                ladder::WATCH_ENV,
                hostladder::CAUSE,
                now.elapsed()
            );
        }
        let mut reclaims = Vec::new();
        for &id in &verdict.reclaim {
            let Some(pgid) = self.supervisor.status(id).pid else {
                continue;
            };
            let name = self.units[id].name.clone();
            let cg = self.memory.unit_cgroups.get(&id).map(|(cg, _)| cg.clone());
            let steps = self.memory.host_steps.entry(id).or_default().clone();
            tracing::info!(unit = %name, "paging it out to swap for {cause}");
            reclaims.push((name, cg, pgid, steps));
        }
        if reclaims.is_empty() {
            return;
        }
        let cause = cause.clone();
        // One blocking thread for them all, one unit after the other: a thread each would be
        // hundreds of stacks for svcd when the host is short of memory.
        tokio::task::spawn_blocking(move || {
            for (name, cg, pgid, steps) in reclaims {
                let began = Instant::now();
                let done = match cg {
                    Some(cg) => ladder::page_out_unit(&name, &cg, Some(&cause)),
                    None => Some(hostladder::page_out_group(&name, pgid, &cause)),
                };
                if let Some(done) = done {
                    hostladder::record_reclaim(&steps, began, done, &cause);
                }
            }
        });
    }
}
