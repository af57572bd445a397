//! Scheduled units: `[schedule]` in a unit file runs its command when due, in place of cron.
//!
//! - [`calendar`]: systemd's `OnCalendar=` expressions, and the next due time in a zone (pure).
//! - [`zone`]: time zones from TZif files and POSIX `TZ` rules, without a date crate.
//! - [`stamp`]: the last run of a `persistent` unit, kept in the state directory.
//!
//! The supervisor core decides when a unit runs (its `Schedule` timer); the daemon gives it the
//! wall-clock time beside the monotonic one, and again whenever the clock is set.

pub mod calendar;
#[cfg(test)]
mod calendar_tests;
pub mod stamp;
pub mod zone;

pub use calendar::{Calendar, CalendarError};
pub use zone::Zone;

use std::sync::Arc;
use std::time::Duration;

/// What a run still going does to the next due run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overlap {
    /// The due run is skipped and counted.
    #[default]
    Skip,
    /// The due run starts once the current one has ended (at most one waits).
    Queue,
    /// The current run is stopped, then the due one starts.
    Kill,
}

impl Overlap {
    pub fn parse(text: &str) -> Option<Overlap> {
        match text {
            "skip" => Some(Overlap::Skip),
            "queue" => Some(Overlap::Queue),
            "kill" => Some(Overlap::Kill),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Kill => "kill",
        }
    }
}

/// A unit's `[schedule]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// `calendar`: due at each of their times, each read in its zone (the one it names, else
    /// `timezone`'s).
    pub calendars: Vec<(Calendar, Arc<Zone>)>,
    /// `every`: due this long after svcd's start, then after each scheduled run's start.
    pub every: Option<Duration>,
    /// `random_delay`: each run is put off by up to this long (spreads many hosts' runs).
    pub random_delay: Duration,
    /// `persistent`: a calendar time missed while svcd was down runs once at start.
    pub persistent: bool,
    /// `timezone`, as written (`None`: the host's).
    pub timezone: Option<String>,
    /// The zone of `timezone`, loaded when the unit file is read.
    pub zone: Arc<Zone>,
    /// `overlap`.
    pub overlap: Overlap,
    /// `retry`: a failed run follows the restart policy instead of waiting for the next time.
    pub retry: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            calendars: Vec::new(),
            every: None,
            random_delay: Duration::ZERO,
            persistent: false,
            timezone: None,
            zone: Arc::new(Zone::utc()),
            overlap: Overlap::Skip,
            retry: false,
        }
    }
}

impl ScheduleConfig {
    /// The earliest calendar time strictly after `after` (Unix seconds).
    pub fn next_calendar(&self, after: i64) -> Option<i64> {
        self.calendars
            .iter()
            .filter_map(|(cal, zone)| cal.next_after(after, zone))
            .min()
    }

    /// The delay added to the run due at `due` (a stable pseudo-random share of
    /// `random_delay`, from the unit's name and the due time, so the core stays deterministic).
    pub fn random_delay_for(&self, name: &str, due: u64) -> Duration {
        let max = self.random_delay.as_millis() as u64;
        if max == 0 {
            return Duration::ZERO;
        }
        // FNV-1a: small, stable across builds (std's hasher is neither promised).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes().chain(due.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Duration::from_millis(hash % max)
    }
}
