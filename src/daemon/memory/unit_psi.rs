//! cgroup v2: a PSI trigger on a unit's own `memory.pressure`, for each run that is told of its
//! memory (it has a pressure FIFO: `notify` in `memory.on_limit` or in `memory.on_pressure`).
//! Under systemd on cgroup v2, `MEMORY_PRESSURE_WATCH` is the cgroup's own `memory.pressure`,
//! and the app hears when its own tasks stall on memory; svcd's FIFO carries the same news: when
//! the trigger fires, a byte goes into it (at most once per trigger window), the telling is in
//! the unit's ladder steps with its own cause ([`ladder::PRESSURE_CAUSE`]), and svcd's log says
//! so.
//!
//! The trigger is watched on svcd's loop (no thread per unit); the kernel polls the cgroup's
//! stalls only while it has some, so a unit that does not stall costs svcd no wake-up. Arming
//! and disarming are system calls that may wait (the kernel starts its polling thread for the
//! cgroup; it waits for an RCU grace period as the file is closed): both run on the blocking
//! pool. A kernel that refuses the trigger (no PSI, an old kernel, EPERM) changes nothing: svcd
//! says so once, at debug level.

use super::MemoryWatch;
use crate::memory::{cgroup, ladder, psi};
use crate::supervisor::UnitId;
use crate::unit::Unit;
use crate::unit::duration::format_size;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::oneshot;

/// The trigger of a unit's run, and what it told.
#[derive(Debug)]
pub(super) struct Stall {
    /// Dropped to disarm the trigger (the run ended): its task then closes it, off the loop.
    stop: Option<oneshot::Sender<()>>,
    /// The tellings of this run (only the `pressure_told` fields are used), kept for status
    /// after the run until the next one.
    steps: ladder::SharedSteps,
}

/// Whether a refused trigger was said already: once per svcd is enough (a kernel without PSI
/// refuses every unit's, at every spawn).
static REFUSAL_SAID: AtomicBool = AtomicBool::new(false);

impl MemoryWatch {
    /// Unit `id`'s run in cgroup `cg` begins (spawned or taken back after an adoption): the
    /// last run's trigger disarmed and its record let go, and a trigger armed on `cg`'s
    /// `memory.pressure` where `cg` is a cgroup v2 and the run has a pressure FIFO.
    pub(super) fn watch_stalls(&mut self, id: UnitId, unit: &Unit, cg: &cgroup::UnitCgroup) {
        self.stalls.remove(&id);
        if !cg.is_v2() {
            return;
        }
        let Some(fifo) = self.fifos.get(&id).cloned() else {
            return;
        };
        let steps = ladder::SharedSteps::default();
        let (stop, stopped) = oneshot::channel();
        let (name, cg, told) = (unit.name.clone(), cg.clone(), steps.clone());
        tokio::spawn(watch(name, cg, fifo, told, stopped));
        self.stalls.insert(
            id,
            Stall {
                stop: Some(stop),
                steps,
            },
        );
    }

    /// Unit `id`'s run ended (its exit, its stop): its trigger disarmed; what it told stays in
    /// its status until the next run.
    pub fn end_stalls(&mut self, id: UnitId) {
        if let Some(stall) = self.stalls.get_mut(&id) {
            stall.stop = None;
        }
    }

    /// Adds to `steps` what unit `id`'s trigger told in its run.
    pub(super) fn add_stall_steps(&self, id: UnitId, steps: &mut ladder::Steps) {
        if let Some(stall) = self.stalls.get(&id) {
            let told = ladder::lock(&stall.steps);
            steps.pressure_told = told.pressure_told;
            steps.last_pressure_told = told.last_pressure_told;
        }
    }
}

/// Arms the trigger on unit `unit`'s cgroup `cg` and tells the unit through `fifo` each time it
/// fires (at most once per window), recording it in `steps`, until `stopped` (its sender
/// dropped) or the cgroup is gone.
async fn watch(
    unit: String,
    cg: cgroup::UnitCgroup,
    fifo: Arc<ladder::PressureFifo>,
    steps: ladder::SharedSteps,
    mut stopped: oneshot::Receiver<()>,
) {
    let path = cg.dir().join("memory.pressure");
    let text = psi::trigger_text(psi::UNIT_STALL, psi::UNIT_WINDOW);
    let opening = path.clone();
    let opened =
        tokio::task::spawn_blocking(move || psi::open_trigger(&opening, text.as_bytes())).await;
    let file = match opened {
        Ok(Ok(file)) => file,
        Ok(Err(e)) => return refused(&unit, &path, &e.to_string()),
        Err(e) => return refused(&unit, &path, &e.to_string()),
    };
    // The run may have ended while the trigger was armed.
    if !matches!(stopped.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
        return close(file);
    }
    let trigger = match psi::PsiTrigger::register(file) {
        Ok(trigger) => trigger,
        Err(e) => return refused(&unit, &path, &e.to_string()),
    };
    tracing::debug!(unit = %unit, "PSI trigger armed on {}", path.display());
    let mut rule = psi::OncePerWindow::new(psi::UNIT_WINDOW);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            fired = trigger.fired() => {
                if fired.is_err() {
                    break;
                }
                // The cgroup removed: its file reads no more, and its trigger is gone.
                if !readable(trigger.file()) {
                    break;
                }
                if rule.handle_fired(Instant::now()) {
                    tell(&unit, &cg, &fifo, &steps);
                }
            }
        }
    }
    close(trigger.into_file());
}

/// Tells unit `unit` (cgroup `cg`) through `fifo` of the pressure in its cgroup, recorded in
/// `steps` first (a unit that reacts finds it in its status) and said in svcd's log.
fn tell(
    unit: &str,
    cg: &cgroup::UnitCgroup,
    fifo: &ladder::PressureFifo,
    steps: &ladder::SharedSteps,
) {
    let usage = cg.usage().unwrap_or(0);
    let mut record = ladder::lock(steps);
    record.pressure_told += 1;
    record.last_pressure_told = Some((Instant::now(), usage));
    drop(record);
    fifo.tell();
    tracing::warn!(
        unit = %unit,
        "{} (its tasks stalled on memory {:?} within {:?}), using {}: unit told through {}",
        ladder::PRESSURE_CAUSE,
        psi::UNIT_STALL,
        psi::UNIT_WINDOW,
        format_size(usage),
        ladder::WATCH_ENV,
    );
}

/// Whether the pressure file still reads (not where its cgroup is gone).
fn readable(file: &File) -> bool {
    let mut buf = [0u8; 128];
    std::os::unix::fs::FileExt::read_at(file, &mut buf, 0).is_ok()
}

/// Closes a trigger's file on the blocking pool: the kernel waits for an RCU grace period as
/// it destroys the trigger, which svcd's loop must not.
fn close(file: File) {
    tokio::task::spawn_blocking(move || drop(file));
}

/// The kernel refused unit `unit`'s trigger at `path` (`why`): said once per svcd, at debug
/// level; the unit is told of its memory as it is without one.
fn refused(unit: &str, path: &Path, why: &str) {
    // A cgroup gone already (a run that ended at once) says nothing of the kernel.
    if path.parent().is_some_and(|dir| !dir.exists()) {
        return;
    }
    if !REFUSAL_SAID.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            unit = %unit,
            "no PSI trigger on {} ({why}): units are not told of the stalls in their cgroups \
             (said once)",
            path.display()
        );
    }
}
