//! The indexes that keep the core's work per event independent of the number of units: the
//! queue of every unit's next deadline, the units a `settle` must look at, and who depends on
//! whom.
//!
//! None of them is the truth: the units' records are ([`super::timers::Timers`], holds and
//! pending stop signals, configs). [`super::Supervisor::publishing`] wraps every handler and
//! brings the indexes of the unit it ran on up to date afterwards ([`super::Supervisor::sync`]),
//! so the many places that arm or disarm a timer do not each have to remember the queue. In
//! debug builds, [`super::Supervisor::poll_timeout`] and `settle` check them against a scan of
//! every unit, so a handler that changes a unit outside `publishing` without syncing it is
//! caught by the tests.

use super::UnitId;
use std::collections::BTreeSet;
use std::time::Instant;

/// Every unit's earliest armed deadline, ordered by time: the next wake-up is the first entry,
/// and arming, moving or disarming costs O(log n).
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    /// (deadline, unit), one entry per unit that has a timer armed.
    queue: BTreeSet<(Instant, UnitId)>,
    /// Indexed by [`UnitId`]: the deadline `queue` holds for the unit, to find its entry.
    queued: Vec<Option<Instant>>,
}

impl TimerQueue {
    /// Records that unit `id`'s earliest deadline is now `next`.
    pub(super) fn set(&mut self, id: UnitId, next: Option<Instant>) {
        if self.queued.len() <= id {
            if next.is_none() {
                return;
            }
            self.queued.resize(id + 1, None);
        }
        let slot = &mut self.queued[id];
        if *slot == next {
            return;
        }
        if let Some(old) = slot.take() {
            self.queue.remove(&(old, id));
        }
        if let Some(at) = next {
            self.queue.insert((at, id));
        }
        *slot = next;
    }

    /// The earliest deadline of all units.
    pub(super) fn first(&self) -> Option<Instant> {
        self.queue.first().map(|&(at, _)| at)
    }

    /// The unit whose deadline is the earliest, if that is due at `now`.
    pub(super) fn first_due(&self, now: Instant) -> Option<UnitId> {
        self.queue
            .first()
            .filter(|&&(at, _)| at <= now)
            .map(|&(_, id)| id)
    }
}

/// Unit ids, each at most once, in id order (the order a scan of every unit would visit
/// them): the units held in `starting` by their dependencies or with a stop signal waiting for
/// their dependents, which [`super::Supervisor::settle`] looks at after every event.
pub(super) type UnitSet = BTreeSet<UnitId>;

/// Who names a unit in their dependencies (`requires`, `after`, `wants`), by [`UnitId`]: the
/// units a change of that one may concern. Each list is sorted, so visiting it gives the order
/// a scan of every unit would.
#[derive(Debug, Default)]
pub(super) struct Dependents(Vec<Vec<UnitId>>);

impl Dependents {
    /// The units that name `id` in a dependency.
    pub(super) fn of(&self, id: UnitId) -> &[UnitId] {
        self.0.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// `dependent` names each of `deps` (it may name one several times).
    pub(super) fn add(&mut self, dependent: UnitId, deps: impl IntoIterator<Item = UnitId>) {
        for dep in deps {
            if self.0.len() <= dep {
                self.0.resize_with(dep + 1, Vec::new);
            }
            let list = &mut self.0[dep];
            if let Err(at) = list.binary_search(&dependent) {
                list.insert(at, dependent);
            }
        }
    }

    /// `dependent` no longer names any of `deps`.
    pub(super) fn remove(&mut self, dependent: UnitId, deps: impl IntoIterator<Item = UnitId>) {
        for dep in deps {
            if let Some(list) = self.0.get_mut(dep)
                && let Ok(at) = list.binary_search(&dependent)
            {
                list.remove(at);
            }
        }
    }

    /// Forgets who named `id` (its slot is freed); returns them.
    pub(super) fn take(&mut self, id: UnitId) -> Vec<UnitId> {
        self.0.get_mut(id).map(std::mem::take).unwrap_or_default()
    }
}
