//! The supervision core: one state machine per unit, with no I/O and no clock.
//!
//! Inputs are `handle_*(now, …)`; outputs are [`Supervisor::poll_action`]; the next deadline is
//! [`Supervisor::poll_timeout`]. The daemon performs the actions (spawn, signal) and feeds back
//! what happened (spawned, spawn failed, exited); tests drive it with a fake clock.

mod backoff;
mod state;
#[cfg(test)]
mod tests;

pub use state::{Action, Exit, ExitStatus, State, UnitId, UnitStatus};

use crate::unit::{RestartConfig, StopConfig};
use std::time::Instant;

/// All units' state machines.
#[derive(Debug, Default)]
pub struct Supervisor {
    // filled in by the implementation
}

impl Supervisor {
    pub fn new() -> Self {
        todo!()
    }

    /// Adds a unit in state `inactive` (since `now`); returns its id (ids are dense, from 0).
    pub fn add_unit(
        &mut self,
        now: Instant,
        name: &str,
        restart: RestartConfig,
        stop: StopConfig,
    ) -> UnitId {
        let _ = (now, name, restart, stop);
        todo!()
    }

    /// Operator (or boot) asks for the unit to run.
    pub fn handle_start(&mut self, now: Instant, id: UnitId, reason: &str) {
        let _ = (now, id, reason);
        todo!()
    }

    /// Operator (or shutdown) asks for the unit to stop.
    pub fn handle_stop(&mut self, now: Instant, id: UnitId, reason: &str) {
        let _ = (now, id, reason);
        todo!()
    }

    /// Operator asks for stop-then-start.
    pub fn handle_restart(&mut self, now: Instant, id: UnitId, reason: &str) {
        let _ = (now, id, reason);
        todo!()
    }

    /// The daemon performed `Action::Spawn` and the process runs as `pid` (its own group leader).
    pub fn handle_spawned(&mut self, now: Instant, id: UnitId, pid: u32) {
        let _ = (now, id, pid);
        todo!()
    }

    /// The daemon could not spawn (exec failed, bad user, ...): counts as a failed start.
    pub fn handle_spawn_failed(&mut self, now: Instant, id: UnitId, error: &str) {
        let _ = (now, id, error);
        todo!()
    }

    /// The unit's main process was reaped.
    pub fn handle_exit(&mut self, now: Instant, id: UnitId, status: ExitStatus) {
        let _ = (now, id, status);
        todo!()
    }

    /// Time has reached `now`: fire every deadline that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The next action for the daemon to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }

    /// The earliest pending deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// What `svc status` shows of a unit.
    pub fn status(&self, id: UnitId) -> UnitStatus {
        let _ = id;
        todo!()
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
