//! Turning the daemon's view of a unit into the protocol's [`UnitInfo`].

use crate::control::{ExitInfo, LadderInfo, MemoryInfo, RunInfo, ScheduleInfo, UnitInfo};
use crate::memory::ladder;
use crate::process::GroupMemory;
use crate::supervisor::{ExitStatus, ReasonKind, State, UnitStatus};
use crate::time::{rfc3339, wall_clock};
use crate::unit::{Unit, UnitErrors};
use std::time::{Instant, SystemTime};

/// Both clocks read once, so every time in one answer agrees with the others.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub now: Instant,
    pub wall: SystemTime,
}

impl Clocks {
    pub fn read() -> Clocks {
        Clocks {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    pub fn format(&self, at: Instant) -> String {
        rfc3339(wall_clock(at, self.now, self.wall))
    }
}

/// What the memory ladder did in a run, as status shows it.
pub fn ladder_info(steps: &ladder::Steps, clocks: Clocks) -> LadderInfo {
    let (freed, millis, skipped) = match steps.last_reclaim.as_ref().map(|(_, done)| done) {
        Some(ladder::Reclaimed::Freed { bytes, millis }) => (Some(*bytes), Some(*millis), None),
        Some(ladder::Reclaimed::Skipped(why)) => (None, None, Some(why.clone())),
        None => (None, None, None),
    };
    LadderInfo {
        told: steps.told,
        last_told: steps.last_told.map(|(at, _)| clocks.format(at)),
        last_told_bytes: steps.last_told.map(|(_, bytes)| bytes),
        pressure_told: steps.pressure_told,
        last_pressure_told: steps.last_pressure_told.map(|(at, _)| clocks.format(at)),
        last_pressure_told_bytes: steps.last_pressure_told.map(|(_, bytes)| bytes),
        reclaims: steps.reclaims,
        last_reclaim: steps
            .last_reclaim
            .as_ref()
            .map(|(at, _)| clocks.format(*at)),
        last_reclaim_freed: freed,
        last_reclaim_ms: millis,
        last_reclaim_skipped: skipped,
        cause: None,
    }
}

/// What the host policy's steps did in a run, as status shows it.
pub fn host_ladder_info(
    steps: &crate::memory::hostladder::HostSteps,
    clocks: Clocks,
) -> LadderInfo {
    LadderInfo {
        cause: Some(steps.cause.clone()),
        ..ladder_info(&steps.steps, clocks)
    }
}

/// A supervised unit.
pub fn unit_info(
    unit: &Unit,
    status: &UnitStatus,
    memory: GroupMemory,
    clocks: Clocks,
) -> UnitInfo {
    UnitInfo {
        name: unit.name.clone(),
        state: status.state.to_string(),
        ready: status.ready,
        pid: status.pid,
        since: clocks.format(status.since),
        since_secs: clocks
            .now
            .saturating_duration_since(status.since)
            .as_secs_f64(),
        restarts: status.restarts,
        last_exit: status.last_exit.as_ref().map(|exit| ExitInfo {
            code: code_of(exit.status),
            signal: signal_of(exit.status),
            at: clocks.format(exit.at),
            reason: exit.reason.clone(),
            kind: exit.kind.to_string(),
        }),
        memory: MemoryInfo {
            rss: memory.rss,
            swap: memory.swap,
            mode: Default::default(),
            age_ms: None,
            ladder: None,
            host_ladder: None,
        },
        cpu: crate::memory::ticks_to_seconds(memory.cpu_ticks),
        description: unit.description.clone(),
        reason: status.reason.clone(),
        reason_kind: status.reason_kind.to_string(),
        enabled: unit.enabled,
        command: unit.argv.clone(),
        next_start: status.next_start.map(|at| clocks.format(at)),
        starts: status.starts,
        errors: Vec::new(),
        logs: Vec::new(),
        log_error: None,
        paused: status.paused.is_some(),
        paused_by: status.paused.map(crate::signal::name),
        last_reload: None,
        status_text: None,
        schedule: schedule_info(unit, status, clocks),
        old_pid: status.old_pid,
        adopted: false,
    }
}

/// The exit code of an exit, if it was one.
fn code_of(status: Option<ExitStatus>) -> Option<i32> {
    match status {
        Some(ExitStatus::Code(code)) => Some(code),
        _ => None,
    }
}

/// The signal's name of a death by signal.
fn signal_of(status: Option<ExitStatus>) -> Option<String> {
    match status {
        Some(ExitStatus::Signal(sig)) => Some(crate::signal::name(sig)),
        _ => None,
    }
}

/// `schedule` of a scheduled unit.
fn schedule_info(unit: &Unit, status: &UnitStatus, clocks: Clocks) -> Option<ScheduleInfo> {
    let (config, runs) = (unit.schedule.as_ref()?, status.schedule.as_ref()?);
    // `status.schedule` is `None` for a disabled unit, whose schedule is off.
    Some(ScheduleInfo {
        calendar: config
            .calendars
            .iter()
            .map(|(cal, _)| cal.source.clone())
            .collect(),
        every: config.every.map(crate::unit::duration::format_duration),
        next_run: runs.next_run.map(|at| clocks.format(at)),
        next_run_secs: runs
            .next_run
            .map(|at| at.saturating_duration_since(clocks.now).as_secs_f64()),
        last_run: runs.last_run.map(|run| RunInfo {
            start: clocks.format(run.started),
            duration_secs: run.duration.as_secs_f64(),
            code: code_of(run.status),
            signal: signal_of(run.status),
        }),
        runs: runs.runs,
        skipped: runs.skipped,
        queued: runs.queued,
        overlap: config.overlap.as_str().to_string(),
    })
}

/// A unit whose file is broken: `failed`, with its errors.
pub fn broken_info(broken: &UnitErrors, since: Instant, clocks: Clocks) -> UnitInfo {
    UnitInfo {
        name: broken.name.clone(),
        state: State::Failed.to_string(),
        ready: false,
        pid: None,
        since: clocks.format(since),
        since_secs: clocks.now.saturating_duration_since(since).as_secs_f64(),
        restarts: 0,
        last_exit: None,
        memory: MemoryInfo::default(),
        cpu: 0.0,
        description: None,
        reason: format!("unit file {} is invalid", broken.path.display()),
        reason_kind: ReasonKind::InvalidUnitFile.to_string(),
        enabled: false,
        command: Vec::new(),
        next_start: None,
        starts: 0,
        errors: broken.errors.iter().map(ToString::to_string).collect(),
        logs: Vec::new(),
        log_error: None,
        paused: false,
        paused_by: None,
        last_reload: None,
        status_text: None,
        schedule: None,
        old_pid: None,
        adopted: false,
    }
}
