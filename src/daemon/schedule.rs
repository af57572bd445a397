//! The daemon's side of scheduled units: the wall clock for the core, the kernel's word that
//! the clock was set, and the stamps of `persistent` units.
//!
//! The core turns calendar times into `Instant`s through the wall-clock reading it was last
//! given ([`crate::supervisor::Supervisor::handle_wall_clock`]). Two things make that reading
//! stale: the clock being set (by an operator, NTP stepping it) and a suspend, during which the
//! monotonic clock stands still. A timerfd on `CLOCK_REALTIME`, armed far ahead with
//! `TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET`, catches both: the kernel cancels it when the
//! clock is set, and (recent kernels) when the host resumes, and its read fails with
//! `ECANCELED`; the core then gets a fresh reading. It never expires otherwise, so it costs no
//! wake-up. It exists only once some unit has a schedule.

use super::Daemon;
use crate::schedule::stamp;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;

/// The daemon's schedule bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// Where the stamps are (`<state-dir>/schedule`); `None` until svcd has its state directory.
    state_dir: Option<PathBuf>,
    /// Units whose stamp was read (once each, when first loaded).
    read: HashSet<String>,
    /// Some unit has a schedule: the clock watch is needed.
    pub any: bool,
}

/// The wall clock now, as the core takes it.
fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Daemon {
    /// Where the stamps of persistent units are kept.
    pub(super) fn set_stamp_dir(&mut self, state_dir: PathBuf) {
        self.stamps.state_dir = Some(state_dir);
    }

    /// Gives the core the wall clock, after the persistent stamps of units it has not seen yet:
    /// at start and after a reload.
    pub(super) fn arm_schedules(&mut self, now: Instant) {
        self.stamps.any = false;
        for (id, unit) in self.units.iter().enumerate() {
            let Some(schedule) = unit.schedule.as_ref().filter(|_| unit.enabled) else {
                continue;
            };
            self.stamps.any = true;
            if !schedule.persistent || !self.stamps.read.insert(unit.name.clone()) {
                continue;
            }
            if let Some(dir) = &self.stamps.state_dir
                && let Some(secs) = stamp::read(dir, &unit.name)
            {
                self.supervisor.handle_last_run(id, secs);
            }
        }
        self.supervisor.handle_wall_clock(now, wall_now());
    }

    /// The clock was set, or the host resumed: the core reads it again.
    pub(super) fn clock_changed(&mut self) {
        let now = Instant::now();
        self.supervisor.handle_wall_clock(now, wall_now());
        self.supervisor.handle_timeout(now);
    }

    /// `Action::RecordRun`: a persistent unit ran.
    pub(super) fn record_run(&mut self, id: usize, unix_secs: i64) {
        let (Some(dir), Some(unit)) = (&self.stamps.state_dir, self.units.get(id)) else {
            return;
        };
        if let Err(e) = stamp::write(dir, &unit.name, unix_secs) {
            tracing::warn!(
                unit = %unit.name,
                "cannot record the run in {}: {e}; a run missed while svcd is down may not be made up",
                stamp::dir(dir).display()
            );
        }
    }
}

/// A timerfd, for tokio (which wants a raw descriptor).
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The watch on `CLOCK_REALTIME`; see the module's documentation.
pub(super) struct ClockWatch {
    fd: AsyncFd<Fd>,
    /// Armed, and not cancelled since: nothing to do on this turn of the loop.
    armed: bool,
}

impl ClockWatch {
    pub(super) fn new() -> Option<ClockWatch> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let fd = TimerFd::new(ClockId::CLOCK_REALTIME, flags)
            .map_err(|e| tracing::warn!("no timerfd ({e}): clock changes are not noticed"))
            .ok()?;
        // SAFETY: `Fd` owns the timerfd, which stays open and the same for as long as the
        // AsyncFd owns it (it is never taken out again), as `register` needs.
        let fd = unsafe { AsyncFd::register(Fd(fd)) }
            .map_err(|e| {
                tracing::warn!("timerfd not pollable ({e}): clock changes are not noticed")
            })
            .ok()?;
        Some(ClockWatch { fd, armed: false })
    }

    /// Arms it a year ahead, unless it is armed: it must be armed to be cancelled by a clock
    /// change (and should it expire, it is armed again).
    pub(super) fn arm(&mut self) {
        if self.armed {
            return;
        }
        let since = wall_now() + Duration::from_secs(365 * 86_400);
        // Never 0: a zero expiration disarms the timer.
        let spec = TimeSpec::from_duration(since.max(Duration::from_nanos(1)));
        let flags =
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET;
        match self.fd.get_ref().0.set(Expiration::OneShot(spec), flags) {
            Ok(()) => self.armed = true,
            Err(e) => tracing::debug!("timerfd_settime: {e}"),
        }
    }

    /// Waits until it expires or the clock is set; either way it must be armed again.
    pub(super) async fn fired(&mut self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            let mut buf = [0u8; 8];
            match guard.try_io(|fd| {
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut buf).map_err(std::io::Error::from)
            }) {
                Ok(Ok(_)) => break,
                // ECANCELED: the clock was set.
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::ECANCELED) => break,
                Ok(Err(e)) => {
                    tracing::debug!("timerfd read: {e}");
                    return std::future::pending().await;
                }
                Err(_would_block) => continue,
            }
        }
        self.armed = false;
    }
}

/// `clock.fired()` when there is a watch, else never.
pub(super) async fn clock_fired(clock: Option<&mut ClockWatch>) {
    match clock {
        Some(clock) => clock.fired().await,
        None => std::future::pending().await,
    }
}
