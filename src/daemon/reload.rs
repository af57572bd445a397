//! `svc reload` and SIGHUP: re-read the units directories and apply the difference.
//!
//! New units start (when enabled), removed ones stop, changed ones take their new settings and
//! restart if they were running; the rest are left alone. A single invalid file refuses the whole
//! reload, so a typo never takes down what runs.

use super::{Daemon, Entry};
use crate::control::{ErrorKind, Response};
use crate::supervisor::{Reason, ReasonKind, State, UnitId};
use crate::unit;
use std::time::Instant;

/// A reload's words, as a reason of kind `reload`.
fn reload(words: &str) -> Reason {
    Reason::new(ReasonKind::Reload, words)
}

impl Daemon {
    /// Applies the units directories as they are now; `Ok` says what changed, `Err` why nothing
    /// did.
    pub(super) fn reload(&mut self) -> Result<String, String> {
        let loaded = unit::load_dirs(&self.units_dirs).map_err(|e| e.to_string())?;
        if !loaded.broken.is_empty() {
            let errors: Vec<String> = loaded.broken.iter().map(ToString::to_string).collect();
            return Err(format!(
                "nothing changed: {} invalid unit file(s):\n{}",
                loaded.broken.len(),
                errors.join("\n")
            ));
        }
        if let Err(why) = crate::process::ensure_fd_limit(self.units.len() + loaded.units.len()) {
            tracing::warn!("{why}");
        }
        let now = Instant::now();
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let mut entries = Vec::with_capacity(loaded.units.len());
        // Started once every unit is known, with its dependencies and checks in place.
        let (mut to_start, mut to_restart) = (Vec::new(), Vec::new());
        let mut old: Vec<(String, Entry)> = std::mem::take(&mut self.entries);
        for mut new in loaded.units {
            super::checks::add_notify_env(&mut new, &self.notify_path);
            let previous = old
                .iter()
                .position(|(name, _)| *name == new.name)
                .map(|i| old.swap_remove(i).1);
            let id = match previous {
                Some(Entry::Unit(id)) => {
                    if self.units[id] != new {
                        changed += 1;
                        self.supervisor.update_unit(id, super::unit_config(&new));
                        self.units[id] = new;
                        let state = self.supervisor.status(id).state;
                        if matches!(state, State::Running | State::Starting) {
                            to_restart.push(id);
                        }
                    }
                    id
                }
                // New, or a file that was invalid and is now fixed.
                Some(Entry::Broken(_)) | None => {
                    added += 1;
                    let id = self.supervisor.add_unit(now, super::unit_config(&new));
                    if new.enabled {
                        to_start.push(id);
                    }
                    // A removed unit's vacant slot, or a new one.
                    match self.units.get_mut(id) {
                        Some(slot) => *slot = new,
                        None => self.units.push(new),
                    }
                    id
                }
            };
            entries.push((self.units[id].name.clone(), Entry::Unit(id)));
        }
        // What is left of the old entries is gone from the directories.
        for (_, entry) in old {
            removed += 1;
            if let Entry::Unit(id) = entry {
                // Its id stays in the supervisor until it has stopped; it is just no longer
                // listed. Then its slot is freed ([`Daemon::free_removed`]).
                self.supervisor.handle_stop(
                    now,
                    id,
                    reload("stopped by reload: unit file removed"),
                );
                self.removed.push(id);
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries = entries;
        // Dependencies name units, whose ids may be new.
        self.configure_checks();
        for id in to_start {
            self.supervisor
                .handle_start(now, id, reload("started by reload: new unit"));
        }
        let restarted = to_restart.len();
        for id in to_restart {
            self.supervisor.handle_restart(
                now,
                id,
                reload("restarted by reload: unit file changed"),
            );
        }
        Ok(format!(
            "reloaded: {added} added, {removed} removed, {changed} changed ({restarted} restarted)"
        ))
    }
}

impl Daemon {
    /// Frees the slots of units removed by a reload that are down now: the supervisor's record,
    /// the unit's settings, check state and waiters, so that reloads that remove and add units
    /// do not grow svcd. The ids go back to the supervisor for reuse.
    pub(super) fn free_removed(&mut self) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.removed.len() {
            let id = self.removed[index];
            let has_process = self.pids.values().any(|&unit| unit == id);
            if has_process || !self.supervisor.remove_unit(now, id) {
                index += 1;
                continue;
            }
            self.removed.swap_remove(index);
            // The slot is inactive now: its check task, if any, goes.
            self.sync_checks(id);
            let unit = &mut self.units[id];
            let name = std::mem::take(&mut unit.name);
            vacate(unit);
            self.fail_waiters_on(id, &name);
        }
    }

    /// Answers the waiters still waiting on `id` (a removed unit): its slot is about to be
    /// someone else's.
    fn fail_waiters_on(&mut self, id: UnitId, name: &str) {
        let mut index = 0;
        while index < self.waiters.len() {
            if !self.waiters[index]
                .units
                .iter()
                .any(|(unit, _, _)| *unit == id)
            {
                index += 1;
                continue;
            }
            let waiter = self.waiters.swap_remove(index);
            let why = format!("{name}: removed by reload");
            let _ = waiter
                .reply
                .send(Response::error(ErrorKind::Failed, why, vec![]));
        }
    }
}

/// Drops what a vacant slot's settings hold on the heap; the slot's next unit replaces them.
fn vacate(unit: &mut unit::Unit) {
    unit.path = Default::default();
    unit.description = None;
    unit.argv = Vec::new();
    unit.workdir = None;
    unit.env = Default::default();
    unit.env_file = None;
    unit.user = None;
    unit.group = None;
    unit.requires = Vec::new();
    unit.after = Vec::new();
    unit.enabled = false;
    unit.fatal = false;
}
