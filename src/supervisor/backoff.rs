//! Restart delays and the start limit, as pure functions of the config and history.

use crate::unit::{RestartConfig, StartLimit};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The wait before the restart that follows the `n`-th consecutive crash (`n` from 0):
/// `delay × multiplier^n`, capped at `max_delay`.
///
/// Computed in `f64` nanoseconds: `multiplier^n` overflows to infinity long before `n` runs out,
/// and infinity (or anything past the cap) simply yields `max_delay`, so no input can panic.
/// A first `delay` above `max_delay` is capped too.
pub(super) fn delay(config: &RestartConfig, n: u32) -> Duration {
    if config.delay.is_zero() {
        return Duration::ZERO;
    }
    // Validation guarantees `multiplier ≥ 1`; a NaN or a shrinking factor here would make the
    // sequence meaningless, so fall back to a constant delay rather than trust it.
    let multiplier = if config.multiplier.is_finite() && config.multiplier >= 1.0 {
        config.multiplier
    } else {
        1.0
    };
    let exponent = i32::try_from(n).unwrap_or(i32::MAX);
    let nanos = config.delay.as_nanos() as f64 * multiplier.powi(exponent);
    let cap = config.max_delay.as_nanos() as f64;
    if !nanos.is_finite() || nanos >= cap {
        return config.max_delay;
    }
    // Whole nanoseconds keep the common sequences exact (100ms × 2³ is 800ms, not 799.99…ms).
    if nanos < u64::MAX as f64 {
        Duration::from_nanos(nanos.round() as u64)
    } else {
        // Below the cap (a Duration), so finite and in range.
        Duration::from_secs_f64(nanos / 1e9)
    }
}

/// The first throttle step: after the first immediate restart, starts of a unit that keeps
/// crashing are at least this far apart, whatever its `delay`.
pub(super) const FLOOR_MIN: Duration = Duration::from_millis(10);
/// Where the throttle stops growing (s6 keeps a fixed 1 s between spawns).
pub(super) const FLOOR_MAX: Duration = Duration::from_secs(1);

/// The least time between the last start and the restart that follows the `n`-th consecutive
/// crash (`n` from 0): none for the first (a one-off crash is repaired at once), then
/// [`FLOOR_MIN`], doubling with each further crash up to [`FLOOR_MAX`] (or `max_delay`, if
/// smaller, but never below [`FLOOR_MIN`]).
///
/// It is what keeps `delay = "0s"` from respawning a command that fails at once thousands of
/// times a second; a unit that ran a while before it crashed is past the floor already.
pub(super) fn floor(config: &RestartConfig, n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let cap = config.max_delay.clamp(FLOOR_MIN, FLOOR_MAX);
    let doublings = (n - 1).min(16);
    FLOOR_MIN.saturating_mul(1 << doublings).min(cap)
}

/// `Some(starts)` when one more start at `at` would break the limit: `starts` is how many
/// starts already happened within `limit.interval` before `at` (at least `limit.burst`), so
/// `burst` starts are allowed and the one after them is refused.
///
/// A recorded start counts when `at - start < interval`: a start exactly `interval` ago has
/// left the window (systemd's `StartLimitIntervalSec` treats its window the same way).
pub(super) fn limit_exceeded(
    history: &VecDeque<Instant>,
    at: Instant,
    limit: StartLimit,
) -> Option<u64> {
    let recent = history
        .iter()
        .filter(|&&start| at.saturating_duration_since(start) < limit.interval)
        .count() as u64;
    (recent >= u64::from(limit.burst)).then_some(recent)
}

/// Drops the starts that can no longer count in any window ending at or after `now`, and keeps
/// at most `burst + 1` entries, so the history stays small however long svcd runs.
pub(super) fn prune(history: &mut VecDeque<Instant>, now: Instant, limit: StartLimit) {
    while let Some(&oldest) = history.front() {
        if now.saturating_duration_since(oldest) >= limit.interval {
            history.pop_front();
        } else {
            break;
        }
    }
    // Only whether more than `burst` are recent matters; older surplus entries change nothing.
    let keep = usize::try_from(limit.burst)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    while history.len() > keep {
        history.pop_front();
    }
}

/// A compact duration for messages: "400ms", "1m30s", "2h", "0s", "1s250ms", "15µs".
pub fn fmt_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_string();
    }
    if duration < Duration::from_millis(1) {
        let nanos = duration.subsec_nanos();
        return if nanos.is_multiple_of(1000) {
            format!("{}µs", nanos / 1000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = duration.as_secs();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(duration.subsec_millis()), "ms"),
    ];
    let mut text = String::new();
    for (value, unit) in parts {
        if value != 0 {
            text.push_str(&value.to_string());
            text.push_str(unit);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(delay_ms: u64, multiplier: f64, max_ms: u64) -> RestartConfig {
        RestartConfig {
            delay: Duration::from_millis(delay_ms),
            multiplier,
            max_delay: Duration::from_millis(max_ms),
            ..RestartConfig::default()
        }
    }

    #[test]
    fn delay_grows_then_caps() {
        let c = config(100, 2.0, 1000);
        let got: Vec<u64> = (0..6).map(|n| delay(&c, n).as_millis() as u64).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn delay_never_overflows() {
        let c = config(100, 1e300, 30_000);
        assert_eq!(delay(&c, u32::MAX), Duration::from_secs(30));
        let huge = RestartConfig {
            max_delay: Duration::MAX,
            ..config(100, 10.0, 0)
        };
        assert_eq!(delay(&huge, u32::MAX), Duration::MAX);
        assert_eq!(delay(&huge, 1), Duration::from_secs(1));
    }

    #[test]
    fn zero_delay_and_bad_multiplier() {
        assert_eq!(delay(&config(0, 2.0, 1000), 5), Duration::ZERO);
        assert_eq!(
            delay(&config(100, f64::NAN, 1000), 5),
            Duration::from_millis(100)
        );
        // A first delay above the cap is capped as well.
        assert_eq!(
            delay(&config(5000, 2.0, 1000), 0),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn limit_window_is_half_open() {
        let base = Instant::now();
        let limit = StartLimit {
            burst: 2,
            interval: Duration::from_secs(1),
        };
        let history: VecDeque<Instant> = [base, base + Duration::from_millis(500)].into();
        assert_eq!(
            limit_exceeded(&history, base + Duration::from_millis(999), limit),
            Some(2)
        );
        assert_eq!(
            limit_exceeded(&history, base + Duration::from_secs(1), limit),
            None
        );
    }

    #[test]
    fn floor_starts_at_zero_then_doubles_to_a_cap() {
        let c = config(0, 2.0, 30_000);
        let got: Vec<u64> = (0..10).map(|n| floor(&c, n).as_millis() as u64).collect();
        assert_eq!(got, [0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(floor(&c, u32::MAX), FLOOR_MAX);
        // A smaller max_delay caps it sooner, but never below the first step.
        assert_eq!(floor(&config(0, 2.0, 50), 5), Duration::from_millis(50));
        assert_eq!(floor(&config(0, 2.0, 0), 5), FLOOR_MIN);
    }

    #[test]
    fn prune_keeps_history_small() {
        let base = Instant::now();
        let limit = StartLimit {
            burst: 2,
            interval: Duration::from_secs(10),
        };
        let mut history: VecDeque<Instant> =
            (0..10).map(|i| base + Duration::from_secs(i)).collect();
        prune(&mut history, base + Duration::from_secs(12), limit);
        assert_eq!(history.len(), 3);
        assert_eq!(history.front(), Some(&(base + Duration::from_secs(7))));
    }

    #[test]
    fn formats_compactly() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(400), "400ms"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_millis(1250), "1s250ms"),
            (Duration::from_micros(15), "15µs"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_secs(300), "5m"),
        ];
        for (duration, text) in cases {
            assert_eq!(fmt_duration(duration), text);
        }
    }
}
