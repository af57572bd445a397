//! A unit's timers: one slot per kind of deadline, as quinn's `TimerTable`.
//!
//! A unit may wait for several things at once (its ready timeout and, soon, a health interval
//! and a schedule), so one deadline whose meaning follows from the state is not enough. Each
//! kind has its own slot (a running unit may wait for its watchdog and its next health check
//! at once); [`super::Supervisor::poll_timeout`] stays the one place the daemon
//! learns the next wake-up.

use std::time::Instant;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// In `backoff`: the next start.
    Restart,
    /// In `starting` with a process: not ready by then → a failed start.
    Ready,
    /// In `running`: `WATCHDOG=1` must come before this.
    Watchdog,
    /// In `stopping`: the moment to escalate to SIGKILL.
    StopKill,
    /// In `running`: the next health check is due.
    Health,
    /// While an `exec_start_pre`, `exec_start_post` or `exec_stop` command runs: kill it then.
    Hook,
    /// A scheduled unit's next run is due, whatever its state: it survives [`Timers::clear`].
    Schedule,
    /// In any state: the old run of an overlapping restart outlived its stop timeout.
    OverlapKill,
}

impl Timer {
    /// Every kind, in the order [`Timers::take_due`] fires them.
    pub(super) const ALL: [Timer; 8] = [
        Timer::StopKill,
        Timer::Restart,
        Timer::Ready,
        Timer::Watchdog,
        Timer::Health,
        Timer::Hook,
        Timer::Schedule,
        Timer::OverlapKill,
    ];

    fn index(self) -> usize {
        match self {
            Timer::Restart => 0,
            Timer::Ready => 1,
            Timer::Watchdog => 2,
            Timer::StopKill => 3,
            Timer::Health => 4,
            Timer::Hook => 5,
            Timer::Schedule => 6,
            Timer::OverlapKill => 7,
        }
    }
}

/// One optional deadline per [`Timer`]. Unset slots never wake the daemon, so an idle unit
/// costs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Timers([Option<Instant>; Timer::ALL.len()]);

impl Timers {
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer.index()]
    }

    /// Arms `timer` at `at`; `None` (a time too far to represent) disarms it.
    pub(super) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.0[timer.index()] = at;
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.0[timer.index()] = None;
    }

    /// Disarms every timer of the state: a new state begins, and none of the old deadlines
    /// applies to it. A schedule's next run is not the state's: it stays.
    pub(super) fn clear(&mut self) {
        let schedule = self.get(Timer::Schedule);
        self.0 = [None; Timer::ALL.len()];
        self.set(Timer::Schedule, schedule);
    }

    /// The earliest armed deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// The first timer due at `now` (disarmed as it is returned), in [`Timer::ALL`]'s order.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|&timer| self.get(timer).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn several_timers_fire_each_once_earliest_first_in_time() {
        let base = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Ready, Some(base + Duration::from_secs(2)));
        timers.set(Timer::Watchdog, Some(base + Duration::from_secs(1)));
        assert_eq!(timers.next(), Some(base + Duration::from_secs(1)));
        assert_eq!(timers.take_due(base), None);
        let at = base + Duration::from_secs(1);
        assert_eq!(timers.take_due(at), Some(Timer::Watchdog));
        assert_eq!(timers.take_due(at), None);
        assert_eq!(timers.next(), Some(base + Duration::from_secs(2)));
        timers.clear();
        assert_eq!(timers.next(), None);
    }
}
