//! The memory watch: per-unit RSS and swap, the host's memory and pressure, the swap policy.
//!
//! - [`cgroup`]: a memory cgroup per unit, where svcd may make them.
//! - [`cgroup2`]: the cgroup v2 side of it: svcd's leaf, `memory.events`, `cgroup.kill`.
//! - [`group`]: RSS and swap of whole process groups, from /proc.
//! - [`host`]: /proc/meminfo and /proc/pressure/memory.
//! - [`hostladder`]: the host policy's steps for a unit (`memory.on_pressure`): its record,
//!   and the `reclaim` of a unit without a cgroup.
//! - [`ladder`]: the steps before a restart for a limit: telling the unit (`memory.on_limit`).
//! - [`policy`]: the host swap policy, pure: levels, the ladder's steps (`memory.on_pressure`),
//!   victim choice, cooldown.
//! - [`reclaim`]: a unit's cold pages pushed to swap (`memory.on_limit`'s `reclaim`).
//! - [`psi`]: a PSI trigger on /proc/pressure/memory, where the kernel allows one.
//! - [`settings`]: the `[memory]` table of `svcd.toml`.
//!
//! The per-unit limits are judged by the supervisor core
//! ([`crate::supervisor::Supervisor::handle_memory_sample`]); the daemon takes the samples.

pub mod cgroup;
pub mod cgroup2;
pub mod group;
pub mod host;
pub mod hostladder;
pub mod ladder;
pub mod policy;
pub mod psi;
pub mod reclaim;
pub mod settings;

pub use group::{GroupMemory, GroupSampler, group_memory, ticks_to_seconds};
pub use host::HostMemory;
pub use policy::{Candidate, HostPolicy, Level, OnPressure, Verdict};
pub use settings::{MemorySettings, Threshold};
