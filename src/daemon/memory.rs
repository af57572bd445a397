//! The daemon's side of the memory watch: when to sample, taking the samples, feeding them to
//! the supervisor (per-unit limits) and to the host policy.
//!
//! The sampling timer only exists while it has something to do: a running unit with a limit,
//! or host thresholds in `svcd.toml` and some unit running. An idle svcd without limits never
//! wakes for memory.

use super::Daemon;
use super::report::Clocks;
use crate::control::HostInfo;
use crate::memory::{Candidate, GroupSampler, HostMemory, HostPolicy, MemorySettings};
use crate::supervisor::State;
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
}

impl MemoryWatch {
    pub fn new(settings: MemorySettings) -> MemoryWatch {
        MemoryWatch {
            policy: HostPolicy::new(settings.clone()),
            settings,
            sampler: GroupSampler::default(),
            next_sample: None,
            last_event: None,
        }
    }
}

impl Default for MemoryWatch {
    fn default() -> Self {
        MemoryWatch::new(MemorySettings::default())
    }
}

impl Daemon {
    /// When the next memory sample is due; `None` while nothing needs one.
    pub(super) fn memory_deadline(&mut self, now: Instant) -> Option<Instant> {
        let watches_host = self.memory.settings.watches_host();
        let needed = (0..self.units.len()).any(|id| {
            self.supervisor.status(id).pid.is_some()
                && (watches_host || self.units[id].memory.has_limit())
        });
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
        }
    }
}
