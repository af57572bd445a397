//! The daemon's side of the memory watch: when to sample, taking the samples, feeding them to
//! the supervisor (per-unit limits) and to the host policy.
//!
//! The sampling timer only exists while it has something to do: a running unit with a limit,
//! or host thresholds in `svcd.toml` and some unit running. An idle svcd without limits never
//! wakes for memory.
//!
//! `status` and `list` answer from the last sample of each unit while it is fresh (younger than
//! one sampling interval), and sample on demand only the units asked for that have none: a
//! `list` of 1,000 units costs one walk of their processes per interval at most, however often
//! it is asked, and a `status` of one unit never walks the others'.

use super::Daemon;
use super::report::Clocks;
use crate::control::HostInfo;
use crate::memory::{Candidate, GroupMemory, GroupSampler, HostMemory, HostPolicy, MemorySettings};
use crate::supervisor::State;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug)]
pub struct MemoryWatch {
    pub settings: MemorySettings,
    policy: HostPolicy,
    /// Buffers kept between samples.
    sampler: GroupSampler,
    /// When the next sample is due, while sampling is needed.
    next_sample: Option<Instant>,
    /// The host policy's last warning, for `status`: (when, what).
    last_event: Option<(Instant, String)>,
    /// The last memory of each sampled group (by its leader, the unit's main pid), and when it
    /// was taken: what `status` and `list` show while it is fresh.
    last: HashMap<u32, (Instant, GroupMemory)>,
    /// Size of `last` after its last pruning: it is pruned again once it has doubled, so that
    /// pruning costs O(1) per entry added, and groups that are gone do not pile up.
    pruned_at: usize,
}

impl MemoryWatch {
    pub fn new(settings: MemorySettings) -> MemoryWatch {
        MemoryWatch {
            policy: HostPolicy::new(settings.clone()),
            settings,
            sampler: GroupSampler::default(),
            next_sample: None,
            last_event: None,
            last: HashMap::new(),
            pruned_at: 0,
        }
    }

    /// Whether a sample taken at `at` may still answer at `now`.
    fn is_fresh(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < self.settings.interval
    }

    /// Keeps `found`, the sample of `pgids` taken at `now` (a group absent from it has no
    /// process left: 0 bytes).
    fn remember(&mut self, now: Instant, pgids: &[u32], found: &HashMap<u32, GroupMemory>) {
        for pgid in pgids {
            let memory = found.get(pgid).copied().unwrap_or_default();
            self.last.insert(*pgid, (now, memory));
        }
        if self.last.len() > 2 * self.pruned_at.max(16) {
            let interval = self.settings.interval;
            self.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < interval);
            self.pruned_at = self.last.len();
        }
    }

    /// The memory of groups `pgids`: from their last sample where it is fresh, else sampled now
    /// (only those).
    pub fn memory_of(&mut self, now: Instant, pgids: &[u32]) -> HashMap<u32, GroupMemory> {
        let missing: Vec<u32> = pgids
            .iter()
            .copied()
            .filter(|pgid| {
                self.last
                    .get(pgid)
                    .is_none_or(|(at, _)| !self.is_fresh(*at, now))
            })
            .collect();
        if !missing.is_empty() {
            let found = self.sampler.sample(&missing);
            self.remember(now, &missing, &found);
        }
        pgids
            .iter()
            .filter_map(|pgid| Some((*pgid, self.last.get(pgid)?.1)))
            .collect()
    }
}

impl Default for MemoryWatch {
    fn default() -> Self {
        MemoryWatch::new(MemorySettings::default())
    }
}

impl Daemon {
    /// When the next memory sample is due; `None` while nothing needs one.
    ///
    /// Asked on every turn of the event loop: it looks only at the running units (the pid
    /// table), and at none of them when the host is watched.
    pub(super) fn memory_deadline(&mut self, now: Instant) -> Option<Instant> {
        let needed = if self.memory.settings.watches_host() {
            !self.pids.is_empty()
        } else {
            self.pids
                .values()
                .any(|&id| self.units.get(id).is_some_and(|u| u.memory.has_limit()))
        };
        if !needed {
            self.memory.next_sample = None;
            return None;
        }
        let interval = self.memory.settings.interval;
        Some(
            *self
                .memory
                .next_sample
                .get_or_insert_with(|| now + interval),
        )
    }

    /// Samples every running unit (and the host, if watched) and acts on what it finds.
    pub(super) fn sample_memory(&mut self) {
        let now = Instant::now();
        self.memory.next_sample = Some(now + self.memory.settings.interval);
        let watches_host = self.memory.settings.watches_host();
        let running: Vec<(usize, u32)> = (0..self.units.len())
            .filter_map(|id| self.supervisor.status(id).pid.map(|pid| (id, pid)))
            .filter(|(id, _)| watches_host || self.units[*id].memory.has_limit())
            .collect();
        let pgids: Vec<u32> = running.iter().map(|(_, pid)| *pid).collect();
        let samples = self.memory.sampler.sample(&pgids);
        self.memory.remember(now, &pgids, &samples);
        let mut candidates = Vec::new();
        for &(id, pid) in &running {
            let sample = samples.get(&pid).copied().unwrap_or_default();
            if self.units[id].memory.has_limit() {
                self.supervisor
                    .handle_memory_sample(now, id, sample.rss, sample.swap);
            }
            if self.units[id].memory.restart_on_pressure
                && self.supervisor.status(id).state == State::Running
            {
                candidates.push(Candidate {
                    id,
                    rss: sample.rss,
                    swap: sample.swap,
                });
            }
        }
        if !watches_host {
            return;
        }
        let host = HostMemory::read();
        let verdict = self.memory.policy.handle_sample(now, &host, &candidates);
        if let Some(warning) = verdict.warning {
            tracing::warn!("{warning}");
            self.memory.last_event = Some((now, warning));
        }
        if let Some((id, reason)) = verdict.restart {
            tracing::warn!(unit = %self.units[id].name, "restarting: {reason}");
            self.supervisor.handle_restart_for(now, id, &reason);
        }
    }

    /// The host line of `status`.
    pub(super) fn host_info(&self, clocks: Clocks) -> HostInfo {
        let host = HostMemory::read();
        HostInfo {
            mem_total: host.mem_total,
            mem_used: host.mem_used(),
            swap_total: host.swap_total,
            swap_used: host.swap_used(),
            pressure_some_avg10: host.psi_some_avg10,
            pressure_full_avg10: host.psi_full_avg10,
            level: self.memory.policy.level().as_str().to_string(),
            last_event: self
                .memory
                .last_event
                .as_ref()
                .map(|(at, what)| format!("{}: {what}", clocks.format(*at))),
            svcd_rss: crate::proc::status(std::process::id())
                .map(|status| status.number("VmRSS") * 1024),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    /// A `status` or `list` within one sampling interval of the last sample answers from it,
    /// and walks no process (#11: a fresh /proc walk per request cost 23.5 ms of svcd's CPU per
    /// `list` of 1,000 units).
    #[test]
    fn requests_answer_from_a_fresh_sample_and_sample_only_what_is_missing() {
        let settings = MemorySettings {
            interval: Duration::from_secs(3600),
            ..MemorySettings::default()
        };
        let mut watch = MemoryWatch::new(settings);
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pgid = child.id();
        let now = Instant::now();
        let first = watch.memory_of(now, &[pgid]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(first.get(&pgid).is_some_and(|m| m.rss > 0), "{first:?}");
        // The process is gone, but the sample is fresh: the answer comes from it.
        let later = watch.memory_of(now + Duration::from_secs(1), &[pgid]);
        assert_eq!(later.get(&pgid), first.get(&pgid));
        // Once stale, the group is sampled again: it has no process left.
        let stale = watch.memory_of(now + Duration::from_secs(3600), &[pgid]);
        assert_eq!(stale.get(&pgid).map(|m| m.rss), Some(0));
    }

    /// Groups that are gone do not pile up in the last samples.
    #[test]
    fn stale_samples_are_pruned() {
        let mut watch = MemoryWatch::default();
        let now = Instant::now();
        let later = now + watch.settings.interval * 2;
        let gone: Vec<u32> = (1..=100).map(|i| u32::MAX - i).collect();
        watch.memory_of(now, &gone);
        assert_eq!(watch.last.len(), 100);
        let others: Vec<u32> = (101..=250).map(|i| u32::MAX - i).collect();
        watch.memory_of(later, &others);
        assert_eq!(watch.last.len(), 150, "only the fresh ones are left");
    }
}
