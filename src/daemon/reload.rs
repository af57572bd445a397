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
        let loaded = unit::load_dirs(&self.units_dirs)
            .map_err(|e| format!("cannot read the units directory: {e}"))?;
        if !loaded.broken.is_empty() {
            let errors: Vec<String> = loaded.broken.iter().map(ToString::to_string).collect();
            return Err(format!(
                "nothing changed: {} invalid unit file(s):\n{}",
                loaded.broken.len(),
                errors.join("\n")
            ));
        }
        let now = Instant::now();
        let (mut added, mut changed, mut restarted, mut removed) = (0, 0, 0, 0);
        let mut entries = Vec::with_capacity(loaded.units.len());
        let mut old: Vec<(String, Entry)> = std::mem::take(&mut self.entries);
        for new in loaded.units {
            let previous = old
                .iter()
                .position(|(name, _)| *name == new.name)
                .map(|i| old.swap_remove(i).1);
            let id = match previous {
                Some(Entry::Unit(id)) => {
                    if self.units[id] != new {
                        changed += 1;
                        self.supervisor
                            .set_config(id, new.restart.clone(), new.stop.clone());
                        self.units[id] = new;
                        let state = self.supervisor.status(id).state;
                        if matches!(state, State::Running | State::Starting) {
                            restarted += 1;
                            self.supervisor.handle_restart(
                                now,
                                id,
                                "restarted by reload: unit file changed",
                            );
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
                    let enabled = new.enabled;
                    self.units.push(new);
                    if enabled {
                        self.supervisor
                            .handle_start(now, id, "started by reload: new unit");
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
                // Its id stays in the supervisor until it has stopped; it is just no longer listed.
                self.supervisor
                    .handle_stop(now, id, "stopped by reload: unit file removed");
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries = entries;
        Ok(format!(
            "reloaded: {added} added, {removed} removed, {changed} changed ({restarted} restarted)"
        ))
    }
}
