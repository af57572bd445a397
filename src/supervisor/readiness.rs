//! Readiness, health and the sd_notify watchdog in the core.
//!
//! The daemon runs the checks; the core only hears their verdicts (`handle_ready`,
//! `handle_unhealthy`, `handle_watchdog`) and owns the deadlines: in `starting` with a process,
//! the unit's ready timeout ([`super::timers::Timer::Ready`]); in `running`, its watchdog.

use super::timers::Timer;
use super::{Reason, ReasonKind, State, Supervisor, UnitId};
use crate::unit::RestartPolicy;
use std::time::Instant;

impl Supervisor {
    /// The unit's readiness check passed (or it sent `READY=1`). A late or repeated verdict for
    /// a unit that is not starting is ignored, except that it ends a reload.
    pub fn handle_ready(&mut self, now: Instant, id: UnitId) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            match unit.state {
                State::Starting
                    if unit.pid.is_some() && unit.pending_stop.is_none() && unit.counts_ready() =>
                {
                    let reason = std::mem::take(&mut unit.reason);
                    sup.become_ready(now, id, reason);
                }
                State::Running => unit.reloading = false,
                _ => {}
            }
        });
        self.overlap_progress(now, id);
        self.settle(now);
    }

    /// sd_notify `RELOADING=1`: running, but not ready until the next `READY=1`.
    pub fn handle_reloading(&mut self, _now: Instant, id: UnitId) {
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if unit.state == State::Running {
                unit.reloading = true;
            }
        });
    }

    /// sd_notify `STATUS=text`: the unit's own words about itself, kept for its current run
    /// (shown by `status`; not a change waiters wake for). Ignored while it has no process.
    pub fn handle_status_text(&mut self, _now: Instant, id: UnitId, text: &str) {
        if let Some(unit) = self.units.get_mut(id)
            && unit.pid.is_some()
        {
            unit.status_text = Some(text.to_string());
        }
    }

    /// The unit's last sd_notify `STATUS=` of its current run.
    pub fn status_text(&self, id: UnitId) -> Option<&str> {
        self.units.get(id)?.status_text.as_deref()
    }

    /// sd_notify `WATCHDOG=1`: the unit is alive; its watchdog deadline moves on.
    pub fn handle_watchdog(&mut self, now: Instant, id: UnitId) {
        let Some(unit) = self.units.get_mut(id) else {
            return;
        };
        if unit.state == State::Running
            && let Some(period) = unit.config.checks.watchdog
        {
            unit.timers.set(Timer::Watchdog, now.checked_add(period));
            self.sync(id);
        }
    }

    /// The health check failed as many times in a row as allowed: stop the unit, and let the
    /// restart policy bring it back. Ignored unless the unit is running.
    pub fn handle_unhealthy(&mut self, now: Instant, id: UnitId, reason: &str) {
        self.publishing(id, |sup| {
            if sup.units[id].state == State::Running && sup.units[id].pid.is_some() {
                let reason = Reason::new(ReasonKind::HealthCheck, reason);
                if !sup.overlap_restart(now, id, &reason) {
                    sup.fail_stop(now, id, reason);
                }
            }
        });
        self.settle(now);
    }

    /// The verdict of one health check of the unit's current run (asked for by
    /// [`super::Action::CheckHealth`]): `Err(why)` if it failed. The next check is due one
    /// `health_interval` later.
    /// `checks.health_failures` failures in a row fail the unit ([`Supervisor::handle_unhealthy`]
    /// with the last one's words); a pass starts the count again. Ignored unless the unit is
    /// running.
    pub fn handle_health_check(&mut self, now: Instant, id: UnitId, verdict: Result<(), &str>) {
        let Some(unit) = self.units.get_mut(id) else {
            return;
        };
        if unit.state != State::Running || unit.pid.is_none() {
            return;
        }
        let next = unit.config.checks.health_interval;
        unit.timers
            .set(Timer::Health, next.and_then(|at| now.checked_add(at)));
        match verdict {
            Ok(()) => unit.health_failed = 0,
            Err(why) => {
                unit.health_failed = unit.health_failed.saturating_add(1);
                if unit.health_failed >= unit.config.checks.health_failures {
                    self.handle_unhealthy(now, id, &format!("health check failed: {why}"));
                }
            }
        }
        self.sync(id);
    }

    /// `starting` → `running` (ready); arms the watchdog.
    pub(super) fn become_ready(&mut self, now: Instant, id: UnitId, reason: Reason) {
        if self.start_post_hooks(now, id, &reason) {
            return;
        }
        let unit = &mut self.units[id];
        unit.was_ready = true;
        unit.reloading = false;
        unit.timers.clear();
        let watchdog = unit
            .config
            .checks
            .watchdog
            .and_then(|period| now.checked_add(period));
        unit.timers.set(Timer::Watchdog, watchdog);
        let health = unit.config.checks.health_interval;
        unit.timers
            .set(Timer::Health, health.and_then(|at| now.checked_add(at)));
        unit.set_state(now, State::Running, reason);
    }

    /// svcd stops the unit because it failed (`reason`): dependents go down too, and after the
    /// exit the policy decides ([`Supervisor::after_failure`]). No waiting for dependents: the
    /// unit is of no use to them any more.
    pub(super) fn fail_stop(&mut self, now: Instant, id: UnitId, reason: Reason) {
        self.stop_dependents(now, id, &reason.text);
        self.begin_stop(now, id, reason.clone());
        if let Some(stop) = &mut self.units[id].stop {
            stop.failure = Some(reason);
        }
    }

    /// The process of a unit stopped by [`Supervisor::fail_stop`] is gone: a failure for the
    /// policy, as a crash is (`never` → failed, else a restart after the backoff).
    pub(super) fn after_failure(&mut self, now: Instant, id: UnitId, failure: Reason) {
        let unit = &mut self.units[id];
        unit.clear_intents();
        unit.timers.clear();
        if unit.config.restart.policy == RestartPolicy::Never {
            let reason = failure.reworded(format!("{failure}; restart policy is never"));
            unit.set_state(now, State::Failed, reason);
        } else {
            self.schedule_restart(now, id, false);
        }
    }
}
