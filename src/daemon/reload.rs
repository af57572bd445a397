//! `svc reload` and SIGHUP: re-read the units directories and apply the difference.
//!
//! New units start (when enabled), removed ones stop, changed ones take their new settings and
//! restart if they were running; the rest are left alone. A single invalid file refuses the whole
//! reload, so a typo never takes down what runs.

use super::{Daemon, Entry};
use crate::supervisor::State;
use crate::unit;
use std::time::Instant;

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
                        let restart = new.restart.clone();
                        self.supervisor.set_config(id, restart, new.stop.clone());
                        self.supervisor
                            .set_memory_limits(id, super::memory_limits(&new));
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
                    let id = self.supervisor.add_unit(
                        now,
                        &new.name,
                        new.restart.clone(),
                        new.stop.clone(),
                    );
                    self.supervisor
                        .set_memory_limits(id, super::memory_limits(&new));
                    if new.enabled {
                        to_start.push(id);
                    }
                    self.units.push(new);
                    id
                }
            };
            entries.push((self.units[id].name.clone(), Entry::Unit(id)));
        }
        // What is left of the old entries is gone from the directories.
        for (_, entry) in old {
            removed += 1;
            if let Entry::Unit(id) = entry {
                // Its id stays in the supervisor until it has stopped; it is just no longer listed.
                self.supervisor
                    .handle_stop(now, id, "stopped by reload: unit file removed");
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries = entries;
        // Dependencies name units, whose ids may be new.
        self.configure_checks();
        for id in to_start {
            self.supervisor
                .handle_start(now, id, "started by reload: new unit");
        }
        let restarted = to_restart.len();
        for id in to_restart {
            self.supervisor
                .handle_restart(now, id, "restarted by reload: unit file changed");
        }
        Ok(format!(
            "reloaded: {added} added, {removed} removed, {changed} changed ({restarted} restarted)"
        ))
    }
}
