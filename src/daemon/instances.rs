//! Instances of a template made on demand: `svc start worker@c` of an instance the template
//! `worker@.toml` does not list in `instances`.
//!
//! As systemd loads such a unit when it is asked for and unloads it once it is inactive, the
//! instance is listed while it is starting, running, stopping, waiting in `backoff` or
//! `failed`, and forgotten once it is `inactive` (stopped, or ended for good with exit 0): its
//! slot is freed as a unit removed by a reload is. A reload keeps it, read again from its
//! template (gone with the template).

use super::{Daemon, Entry};
use crate::control::{ErrorKind, Response};
use crate::supervisor::State;
use crate::unit::{self, Unit};
use std::path::PathBuf;
use std::time::Instant;

/// `worker@c` → (`worker@`, `c`): the template's name and the instance, if `name` is one.
fn split_instance(name: &str) -> Option<(String, &str)> {
    let (base, instance) = name.split_once('@')?;
    let ok = !base.is_empty() && unit::template::check_instance(instance).is_ok();
    ok.then(|| (format!("{base}@"), instance))
}

impl Daemon {
    /// The file of template `template` (`worker@`): the first units directory that has it.
    fn template_file(&self, template: &str) -> Option<PathBuf> {
        self.units_dirs
            .iter()
            .map(|dir| dir.join(format!("{template}.toml")))
            .find(|path| path.is_file())
    }

    /// The unit `name` (`worker@c`) made from its template's file, if it has one: `None` when
    /// `name` is no instance of a template there.
    fn instance_of(&self, name: &str) -> Option<Result<Unit, String>> {
        let (template, instance) = split_instance(name)?;
        let path = self.template_file(&template)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
        };
        let made = unit::validate::validate_instance(&path, &text, Some(instance));
        Some(
            made.map(|mut unit| {
                unit.instances.clear();
                super::checks::add_notify_env(&mut unit, &self.notify_path);
                unit
            })
            .map_err(|errors| format!("{name}: invalid unit file:\n{errors}")),
        )
    }

    /// For `start` and `restart`: makes the unknown names that are instances of a template in
    /// the units directories. `Err`: the answer, when an instance is invalid.
    pub(super) fn instantiate(&mut self, names: &[String]) -> Result<(), Response> {
        let mut made = false;
        for name in names {
            if self.entries.binary_search_by(|(n, _)| n.cmp(name)).is_ok() {
                continue;
            }
            let unit = match self.instance_of(name) {
                None => continue,
                Some(Ok(unit)) => unit,
                Some(Err(why)) => return Err(Response::error(ErrorKind::Failed, why, vec![])),
            };
            let id = self
                .supervisor
                .add_unit(Instant::now(), super::unit_config(&unit));
            match self.units.get_mut(id) {
                Some(slot) => *slot = unit,
                None => self.units.push(unit),
            }
            let at = self
                .entries
                .binary_search_by(|(n, _)| n.cmp(name))
                .unwrap_or_else(|at| at);
            self.entries.insert(at, (name.clone(), Entry::Unit(id)));
            self.on_demand.insert(name.clone());
            tracing::info!(unit = %name, "instance made from its template on demand");
            made = true;
        }
        if made {
            self.configure_checks();
        }
        Ok(())
    }

    /// For a reload: the instances made on demand, read again from their templates, beside
    /// the units of the directories (an instance whose template is gone or broken is left out,
    /// and so stopped as a removed unit). One the template lists now is no longer on demand.
    pub(super) fn add_on_demand(&mut self, loaded: &mut unit::Loaded) {
        let listed = |name: &String| loaded.units.iter().any(|u| &u.name == name);
        let now_listed: Vec<String> = self
            .on_demand
            .iter()
            .filter(|n| listed(n))
            .cloned()
            .collect();
        for name in now_listed {
            self.on_demand.remove(&name);
        }
        for name in &self.on_demand {
            if let Some(Ok(unit)) = self.instance_of(name) {
                loaded.units.push(unit);
            }
        }
    }

    /// Forgets the instances made on demand that are `inactive` now (or no longer listed),
    /// once no waiter waits on them.
    pub(super) fn drop_idle_instances(&mut self) {
        if self.on_demand.is_empty() {
            return;
        }
        let names: Vec<String> = self.on_demand.iter().cloned().collect();
        for name in names {
            let Ok(index) = self.entries.binary_search_by(|(n, _)| n.cmp(&name)) else {
                self.on_demand.remove(&name);
                continue;
            };
            let Entry::Unit(id) = self.entries[index].1 else {
                continue;
            };
            // A `svc stop` of it and of slower units answers once they are all down: it is
            // listed until then.
            let waited_on = self
                .waiters
                .iter()
                .any(|w| w.units.iter().any(|(unit, _, _)| *unit == id));
            if self.supervisor.status(id).state == State::Inactive && !waited_on {
                self.entries.remove(index);
                self.on_demand.remove(&name);
                self.removed.push(id);
                tracing::info!(unit = %name, "instance made on demand forgotten: inactive");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_instance;

    #[test]
    fn only_template_instances_split() {
        assert_eq!(
            split_instance("worker@c"),
            Some(("worker@".to_string(), "c"))
        );
        assert_eq!(split_instance("worker@"), None);
        assert_eq!(split_instance("@c"), None);
        assert_eq!(split_instance("worker"), None);
        assert_eq!(split_instance("worker@a/b"), None);
    }
}
