//! Dependencies between units: `requires` (start after they are ready, stop before them, go
//! down and come back with them), `after` (ordering only) and `wants` (ordering, plus an
//! operator's start pulls the wanted units in; their stops, crashes and failures leave the
//! wanter running, as systemd's `Wants=` with `After=`).
//!
//! A start that cannot happen yet is *held*: the unit is `starting` with no process, and its
//! reason says what it waits for ("waiting for chat (failed)"). A stop of a unit that others
//! depend on first stops the units that require it; its own stop signal waits in `stopping`
//! until those (and units ordered after it that are stopping too) are down. Both are settled
//! after every event by [`Supervisor::settle`]. The graph has no cycles (the unit loader refuses
//! them); the core only makes sure a cycle could not loop it forever.

use super::record::Stop;
use super::{Reason, ReasonKind, State, Supervisor, UnitId};
use std::time::Instant;

impl Supervisor {
    /// Every unit once, each after the units it requires or starts after.
    pub fn start_order(&self) -> Vec<UnitId> {
        // 0: not seen, 1: in progress (a cycle stops here), 2: placed.
        let mut mark = vec![0u8; self.units.len()];
        let mut order = Vec::with_capacity(self.units.len());
        for root in 0..self.units.len() {
            let mut stack = vec![(root, 0usize)];
            while let Some(&mut (id, ref mut next)) = stack.last_mut() {
                if *next == 0 && mark[id] != 0 {
                    stack.pop();
                    continue;
                }
                mark[id] = 1;
                let unit = &self.units[id];
                let dep = (unit
                    .config
                    .requires
                    .iter()
                    .chain(&unit.config.after)
                    .chain(&unit.config.wants))
                .nth(*next)
                .copied();
                *next += 1;
                match dep {
                    Some(dep) if dep < mark.len() && mark[dep] == 0 => stack.push((dep, 0)),
                    Some(_) => {}
                    None => {
                        mark[id] = 2;
                        order.push(id);
                        stack.pop();
                    }
                }
            }
        }
        order
    }

    /// Starts `ids` (boot): in dependency order, so `after` sees what it is ordered after.
    pub fn handle_start_all(&mut self, now: Instant, ids: &[UnitId], reason: impl Into<Reason>) {
        let reason: Reason = reason.into();
        let mut wanted = vec![false; self.units.len()];
        for &id in ids {
            if let Some(slot) = wanted.get_mut(id) {
                *slot = true;
            }
        }
        for id in self.start_order() {
            if wanted[id] {
                self.handle_start(now, id, reason.clone());
            }
        }
    }

    /// Starts the `inactive` units that `id` requires or wants, directly or not, requirements
    /// first, so that an operator's start of a unit does not wait for ever on a requirement
    /// nobody starts (as systemd's `Requires=` and `Wants=` pull their units in). A `failed`
    /// one is left alone: it failed for a reason, and the dependent's status says it waits for
    /// it (a wanted one does not even hold the start back).
    pub fn handle_start_requirements(&mut self, now: Instant, id: UnitId) {
        let Some(unit) = self.units.get(id) else {
            return;
        };
        let reason = format!("started as a requirement of {}", unit.config.name);
        let reason = Reason::new(ReasonKind::Dependency, reason);
        // Depth first, requirements before what requires them; `seen` also ends a cycle.
        let mut seen = vec![false; self.units.len()];
        let mut order = Vec::new();
        let mut stack = vec![(id, 0usize)];
        seen[id] = true;
        while let Some(&mut (current, ref mut next)) = stack.last_mut() {
            let unit = &self.units[current];
            match unit
                .config
                .requires
                .iter()
                .chain(&unit.config.wants)
                .nth(*next)
                .copied()
            {
                Some(required) => {
                    *next += 1;
                    if !seen[required] {
                        seen[required] = true;
                        stack.push((required, 0));
                    }
                }
                None => {
                    stack.pop();
                    if current != id {
                        order.push(current);
                    }
                }
            }
        }
        for required in order {
            if self.units[required].state == State::Inactive {
                self.handle_start(now, required, reason.clone());
            }
        }
    }

    /// Stops every unit (shutdown): dependents first, each unit's signal held until what
    /// depends on it is down.
    pub fn handle_stop_all(&mut self, now: Instant, reason: impl Into<Reason>) {
        let reason: Reason = reason.into();
        for id in self.start_order().into_iter().rev() {
            self.handle_stop(now, id, reason.clone());
        }
    }

    /// What a start of `id` waits for, if anything: the reason to show, and whether a required
    /// unit is `failed` (then it waits until someone starts that one).
    pub(super) fn start_blockers(&self, id: UnitId) -> Option<(String, bool)> {
        let unit = &self.units[id];
        let mut waiting = Vec::new();
        let mut blocked = false;
        for &req in &unit.config.requires {
            let other = &self.units[req];
            if !other.satisfies_requires() {
                waiting.push(format!("{} ({})", other.config.name, other.state));
                blocked |= other.state == State::Failed;
            }
        }
        for &before in &unit.config.after {
            let other = &self.units[before];
            if other.state == State::Starting {
                waiting.push(format!("{} (starting)", other.config.name));
            }
        }
        // A wanted unit held by a failed requirement of its own may never start: not waited for.
        for &wanted in &unit.config.wants {
            let other = &self.units[wanted];
            if other.state == State::Starting && !other.is_blocked() {
                waiting.push(format!("{} (starting)", other.config.name));
            }
        }
        (!waiting.is_empty()).then(|| (format!("waiting for {}", waiting.join(", ")), blocked))
    }

    /// Stops a unit that has a process (`starting` or `running`): first the units that require
    /// it, then, once they are down, the unit itself (see [`Supervisor::settle`]).
    pub(super) fn request_stop(&mut self, now: Instant, id: UnitId, reason: Reason) {
        let unit = &mut self.units[id];
        // `stopping` first: a dependent that (wrongly) leads back here finds it stopping.
        unit.timers.clear();
        unit.stop = Some(Stop {
            signal_pending: true,
            ..Stop::new(reason.clone())
        });
        unit.set_state(now, State::Stopping, reason.clone());
        self.stop_dependents(now, id, &reason.text);
        if !self.is_stop_held(id) {
            self.begin_stop(now, id, reason);
        }
    }

    /// Unit `id` is going down (`why`): every unit that requires it and runs is stopped, to be
    /// started again once `id` is ready again (held until then).
    pub(super) fn stop_dependents(&mut self, now: Instant, id: UnitId, why: &str) {
        let name = self.units[id].config.name.clone();
        let reason = format!("required unit {name} is going down: {why}");
        let reason = Reason::new(ReasonKind::Dependency, reason);
        let back = format!("started again: required unit {name} is back");
        let back = Reason::new(ReasonKind::Dependency, back);
        for dep in self.dependents.of(id).to_vec() {
            if dep == id || !self.units[dep].config.requires.contains(&id) {
                continue;
            }
            self.publishing(dep, |sup| {
                let unit = &mut sup.units[dep];
                match unit.state {
                    State::Starting if unit.hold.is_some() => {}
                    State::Starting if unit.pid.is_none() => {
                        unit.pending_stop = Some(reason.clone());
                        unit.then_start = Some(back.clone());
                    }
                    State::Starting | State::Running => {
                        sup.request_stop(now, dep, reason.clone());
                        let unit = &mut sup.units[dep];
                        unit.then_start = Some(back.clone());
                    }
                    _ => {}
                }
            });
        }
    }

    /// Whether the stop signal of `id` must wait: a unit that requires it still has a process,
    /// or one ordered after it (`after`, `wants`) is stopping and not gone yet.
    fn is_stop_held(&self, id: UnitId) -> bool {
        self.dependents.of(id).iter().any(|&other| {
            let unit = &self.units[other];
            other != id
                && unit.pid.is_some()
                && (unit.config.requires.contains(&id)
                    || ((unit.config.after.contains(&id) || unit.config.wants.contains(&id))
                        && unit.state == State::Stopping))
        })
    }

    /// After every event: release held starts whose dependencies are there, refresh the reason
    /// of those still waiting, and send the stop signals that waited for dependents.
    ///
    /// Only the units held or with a signal pending are looked at ([`Supervisor::sync`] keeps
    /// their set), in id order as a scan of every unit would.
    pub(super) fn settle(&mut self, now: Instant) {
        debug_assert!(
            self.units.iter().enumerate().all(|(id, u)| {
                (u.hold.is_some() || u.is_signal_pending()) == self.unsettled.contains(&id)
            }),
            "a hold or pending stop signal changed outside `publishing` without `sync`"
        );
        if self.unsettled.is_empty() {
            return;
        }
        // Each pass releases or signals at least one unit, or ends; no unit does either twice.
        for _ in 0..=self.units.len() {
            let mut progressed = false;
            let mut from = 0;
            while let Some(&id) = self.unsettled.range(from..).next() {
                from = id + 1;
                let unit = &self.units[id];
                if unit.hold.is_some() && unit.state == State::Starting {
                    let blockers = self.start_blockers(id);
                    self.publishing(id, |sup| {
                        let unit = &mut sup.units[id];
                        match blockers {
                            Some((waiting, blocked)) => {
                                unit.reason = Reason::new(ReasonKind::Dependency, waiting);
                                if let Some(hold) = &mut unit.hold {
                                    hold.blocked = blocked;
                                }
                            }
                            None => {
                                if let Some(hold) = unit.hold.take() {
                                    unit.reason = hold.reason;
                                }
                                sup.start_spawn(now, id);
                                progressed = true;
                            }
                        }
                    });
                } else if unit.is_signal_pending()
                    && unit.state == State::Stopping
                    && !self.is_stop_held(id)
                    && let Some(stop) = &mut self.units[id].stop
                {
                    stop.signal_pending = false;
                    let reason = stop.reason.clone();
                    if self.units[id].pid.is_some() {
                        self.publishing(id, |sup| sup.begin_stop(now, id, reason));
                    }
                    self.sync(id);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }
}
