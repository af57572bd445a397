//! `svc reload` and SIGHUP: re-read the units directories and apply the difference.
//!
//! New units start (when enabled), removed ones stop, changed ones take their new settings:
//! a running one restarts when the change reaches its process ([`reaches_the_process`]), else
//! keeps running with the new settings; the rest are left alone. A single invalid file refuses the whole
//! reload, so a typo never takes down what runs.

use super::{Daemon, Entry};
use crate::control::{ErrorKind, ReloadChanges, Response};
use crate::supervisor::{Reason, ReasonKind, State, UnitId};
use crate::unit;
use std::time::Instant;

/// A reload's words, as a reason of kind `reload`.
fn reload(words: &str) -> Reason {
    Reason::new(ReasonKind::Reload, words)
}

impl Daemon {
    /// Applies the units directories as they are now; `Ok` says what changed (a line, and unit
    /// by unit), `Err` why nothing did.
    pub(super) fn reload(&mut self) -> Result<(String, ReloadChanges), String> {
        let mut loaded = self.load_units().map_err(|e| e.to_string())?;
        self.add_on_demand(&mut loaded);
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
        let mut changes = ReloadChanges::default();
        let mut entries = Vec::with_capacity(loaded.units.len());
        // Started once every unit is known, with its dependencies and checks in place.
        let (mut to_start, mut to_restart, mut updated) = (Vec::new(), Vec::new(), Vec::new());
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
                        self.supervisor.update_unit(id, super::unit_config(&new));
                        let state = self.supervisor.status(id).state;
                        let runs = matches!(state, State::Running | State::Starting);
                        if runs && reaches_the_process(&self.units[id], &new) {
                            to_restart.push(id);
                            changes.restarted.push(new.name.clone());
                        } else {
                            updated.push(id);
                            changes.updated.push(new.name.clone());
                        }
                        self.units[id] = new;
                    }
                    id
                }
                // New, or a file that was invalid and is now fixed.
                Some(Entry::Broken(_)) | None => {
                    let id = self.supervisor.add_unit(now, super::unit_config(&new));
                    // A scheduled unit runs when due, not when added.
                    if new.enabled && new.schedule.is_none() {
                        to_start.push(id);
                        changes.started.push(new.name.clone());
                    } else {
                        changes.added.push(new.name.clone());
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
        for (name, entry) in old {
            changes.stopped.push(name);
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
        // Updated in place: the log takes its new rotation now, a check task its new settings.
        for id in updated {
            // A log not open yet gets its settings when the unit is spawned.
            if let Some(log) = self.logs.find(&self.units[id].name) {
                self.set_log_settings(id, &log);
            }
            self.checks.restart_task(id);
            self.sync_checks(id);
        }
        for id in to_start {
            self.supervisor
                .handle_start(now, id, reload("started by reload: new unit"));
        }
        for id in to_restart {
            self.supervisor.handle_restart(
                now,
                id,
                reload("restarted by reload: unit file changed"),
            );
        }
        self.arm_schedules(now);
        for list in [
            &mut changes.started,
            &mut changes.added,
            &mut changes.stopped,
            &mut changes.restarted,
            &mut changes.updated,
        ] {
            list.sort();
        }
        let added = changes.started.len() + changes.added.len();
        let changed = changes.restarted.len() + changes.updated.len();
        let summary = format!(
            "reloaded: {added} added, {} removed, {changed} changed ({} restarted)",
            changes.stopped.len(),
            changes.restarted.len()
        );
        Ok((summary, changes))
    }

    /// Gives unit `id`'s log the rotation its settings (or svcd's defaults) say.
    pub(super) fn set_log_settings(&self, id: UnitId, log: &crate::logs::SharedLog) {
        let unit = &self.units[id];
        let defaults = self.logs.defaults();
        crate::logs::lock(log).set_settings(crate::logs::Settings {
            max_size: unit.log.max_size.unwrap_or(defaults.max_size),
            keep: unit.log.keep.unwrap_or(defaults.keep),
        });
    }
}

/// Whether the change from `old` to `new` reaches the running process, which then restarts to
/// get it: its command, environment (`env`, `env_file`'s content, what sd_notify adds), working
/// directory, user, group, umask, `memory.oom_score_adj`, and any setting not named below. The
/// keys only svcd reads are taken in place: `description`, `enabled`, `requires`, `after`,
/// `wants`, `fatal`, `notify_access`, `[restart]`, `[stop]`, `[ready]`, `[health]`,
/// `memory.max`, `memory.swap_max`, `memory.on_pressure`, `[log]`, `[reload]`, `[schedule]`. (svc.unit(5)
/// lists the same; keep them in step.)
fn reaches_the_process(old: &unit::Unit, new: &unit::Unit) -> bool {
    let mut svcd_only = new.clone();
    svcd_only.path.clone_from(&old.path);
    svcd_only.description.clone_from(&old.description);
    // Its content is in `env`; the path alone changes nothing the process sees.
    svcd_only.env_file.clone_from(&old.env_file);
    svcd_only.enabled = old.enabled;
    svcd_only.requires.clone_from(&old.requires);
    svcd_only.after.clone_from(&old.after);
    svcd_only.wants.clone_from(&old.wants);
    svcd_only.fatal = old.fatal;
    svcd_only.schedule.clone_from(&old.schedule);
    svcd_only.notify_access = old.notify_access;
    svcd_only.restart.clone_from(&old.restart);
    svcd_only.stop.clone_from(&old.stop);
    // `ready.notify` and `health.watchdog` reach the process through `env` (NOTIFY_SOCKET,
    // WATCHDOG_USEC), compared above.
    svcd_only.ready.clone_from(&old.ready);
    svcd_only.health.clone_from(&old.health);
    svcd_only.memory = unit::MemoryConfig {
        oom_score_adj: new.memory.oom_score_adj,
        ..old.memory.clone()
    };
    svcd_only.log = old.log;
    svcd_only.reload.clone_from(&old.reload);
    svcd_only != *old
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
            self.unit_reloads.forget(id);
            let unit = &mut self.units[id];
            let name = std::mem::take(&mut unit.name);
            vacate(unit);
            self.memory.forget_unit(id, &name);
            self.fail_waiters_on(id, &name);
            // A unit added later under this name starts its events from `inactive`.
            self.events.forget(&name);
            // Its sockets close, its Unix socket files go.
            self.sockets.release(&name);
            self.sync_held_sockets(&name);
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
    unit.user_if_root = None;
    unit.group = None;
    unit.requires = Vec::new();
    unit.after = Vec::new();
    unit.enabled = false;
    unit.fatal = false;
    unit.hooks = Default::default();
    unit.dirs = Default::default();
}

#[cfg(test)]
mod tests {
    use super::reaches_the_process;
    use std::path::Path;

    fn unit(text: &str) -> crate::unit::Unit {
        match crate::unit::validate::validate(Path::new("/units/app.toml"), text) {
            Ok(unit) => unit,
            Err(errors) => panic!("{errors}"),
        }
    }

    #[test]
    fn only_changes_the_process_sees_restart_it() {
        let base = "exec = [\"app\"]\nenv = { A = \"1\" }\n";
        let old = unit(base);
        for svcd_only in [
            "description = \"new\"\n",
            "enabled = false\n",
            "fatal = true\n",
            "wants = [\"db\"]\n",
            "restart.delay = \"5s\"\n",
            "stop.signal = \"SIGQUIT\"\n",
            "ready.tcp = \"127.0.0.1:1\"\n",
            "health.http = \"http://127.0.0.1:1/\"\n",
            "memory.max = \"1G\"\n",
            "log.keep = 2\n",
            "reload.signal = \"SIGHUP\"\n",
        ] {
            let new = unit(&format!("{base}{svcd_only}"));
            assert!(!reaches_the_process(&old, &new), "{svcd_only}");
        }
        for process in [
            "exec = [\"app\", \"-v\"]\nenv = { A = \"1\" }\n",
            "exec = [\"app\"]\nenv = { A = \"2\" }\n",
            "exec = [\"app\"]\nenv = { A = \"1\" }\nworkdir = \"/srv\"\n",
            "exec = [\"app\"]\nenv = { A = \"1\" }\numask = \"077\"\n",
            "exec = [\"app\"]\nenv = { A = \"1\" }\nuser = \"nobody\"\n",
            "exec = [\"app\"]\nenv = { A = \"1\" }\nmemory.oom_score_adj = 500\n",
        ] {
            assert!(reaches_the_process(&old, &unit(process)), "{process}");
        }
    }
}
