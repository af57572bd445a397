//! What the core must know of a unit's settings, handed over whole.
//!
//! The daemon builds a [`UnitConfig`] from a validated [`Unit`] in one place
//! ([`UnitConfig::from_unit`]) and gives it to [`super::Supervisor::add_unit`] or
//! [`super::Supervisor::update_unit`]: there is no order of setters to get wrong, and nothing
//! of a unit's settings can be forgotten on reload.

use super::UnitId;
use super::record::MemoryLimits;
use crate::unit::{RestartConfig, StopConfig, Unit, UnitType};
use std::time::Duration;

/// One unit's settings, as the core uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitConfig {
    /// For messages and lookup by the daemon; the core itself only uses ids.
    pub name: String,
    pub restart: RestartConfig,
    pub stop: StopConfig,
    pub checks: Checks,
    /// `memory.max` and `memory.swap_max`, in bytes.
    pub memory: MemoryLimits,
    /// Units that must be running (and ready) before this one is spawned.
    pub requires: Vec<UnitId>,
    /// Units whose start this one waits for (ordering only).
    pub after: Vec<UnitId>,
    /// Units whose start this one waits for, pulled in by its start, never taking it down.
    pub wants: Vec<UnitId>,
    /// `type`: when the start is complete (`notify` is `simple` with `checks.ready`).
    pub kind: UnitType,
    /// A oneshot that exited 0 stays `exited`.
    pub remain: bool,
    /// `exec_start_pre`, `exec_start_post`, `exec_stop`.
    pub hooks: super::Hooks,
    /// `[schedule]`: the unit runs when due (see [`super::Supervisor::handle_wall_clock`]).
    pub schedule: Option<crate::schedule::ScheduleConfig>,
    /// `restart.overlap`: planned restarts start the new run before stopping the old.
    pub overlap: bool,
}

/// What the core must know of a unit's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// The unit has a readiness check: `starting` lasts until it passes.
    pub ready: bool,
    /// Not ready after this long → a failed start.
    pub ready_timeout: Duration,
    /// sd_notify watchdog period, if any.
    pub watchdog: Option<Duration>,
    /// Time between health checks while running, for a unit that has one
    /// (`health.interval`).
    pub health_interval: Option<Duration>,
    /// Failed health checks in a row that fail the unit (`health.failures`).
    pub health_failures: u32,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            ready: false,
            ready_timeout: Duration::from_secs(30),
            watchdog: None,
            health_interval: None,
            health_failures: crate::unit::probe::DEFAULT_HEALTH_FAILURES,
        }
    }
}

impl UnitConfig {
    /// A unit named `name` with default settings and no dependencies.
    pub fn named(name: &str) -> UnitConfig {
        UnitConfig {
            name: name.to_string(),
            restart: RestartConfig::default(),
            stop: StopConfig::default(),
            checks: Checks::default(),
            memory: MemoryLimits::default(),
            requires: Vec::new(),
            after: Vec::new(),
            wants: Vec::new(),
            kind: UnitType::Simple,
            remain: false,
            hooks: super::Hooks::default(),
            schedule: None,
            overlap: false,
        }
    }

    /// The core's view of `unit`. `resolve` gives the id of a unit it names in `requires`,
    /// `after` or `wants`; names it does not know (not added yet) are left out, so a caller
    /// adding several units updates them once all have ids.
    pub fn from_unit(unit: &Unit, resolve: impl Fn(&str) -> Option<UnitId>) -> UnitConfig {
        let ids = |names: &[String]| names.iter().filter_map(|n| resolve(n)).collect();
        UnitConfig {
            name: unit.name.clone(),
            restart: unit.restart.clone(),
            stop: unit.stop.clone(),
            checks: Checks {
                ready: unit.ready.is_checked(),
                ready_timeout: unit.ready.timeout,
                watchdog: unit.health.watchdog,
                health_interval: unit.health.probe.as_ref().map(|_| unit.health.interval),
                health_failures: unit.health.failures,
            },
            memory: MemoryLimits {
                max: unit.memory.max,
                swap_max: unit.memory.swap_max,
                grace: unit.memory.grace,
                no_restart: !unit.memory.on_limit.restart,
            },
            requires: ids(&unit.requires),
            after: ids(&unit.after),
            wants: ids(&unit.wants),
            kind: unit.kind.kind,
            remain: unit.kind.remain,
            hooks: super::Hooks::from_unit(&unit.hooks),
            // `enabled = false` turns the schedule off: the unit runs by hand only.
            schedule: unit.schedule.clone().filter(|_| unit.enabled),
            overlap: unit.sockets.overlap,
        }
    }
}
