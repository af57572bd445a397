//! The host swap policy, pure: a host sample and the units that allow it in, a verdict out.
//!
//! Levels: `critical` when swap use reaches `swap_critical` or PSI `full avg10` reaches
//! `psi_critical`; `warn` when swap use reaches `swap_warn`; else `ok`. Entering `warn` or
//! `critical` (and only then, so a long episode logs once) yields a warning. In `critical`, the
//! unit holding the most swap (then the most RSS) among those with
//! `memory.on_pressure = "restart"` is to be restarted, at most once per `cooldown`.

use super::host::HostMemory;
use super::settings::MemorySettings;
use crate::supervisor::UnitId;
use crate::unit::duration::format_size;
use std::time::Instant;

/// How the host is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }
}

/// A running unit that allows the policy to restart it, with its latest sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: UnitId,
    pub rss: u64,
    pub swap: u64,
}

/// What the daemon should do after a sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// The host just entered `warn` or `critical`: log it and record the event.
    pub warning: Option<String>,
    /// Restart this unit, with this reason.
    pub restart: Option<(UnitId, String)>,
}

/// The policy's state between samples.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    settings: MemorySettings,
    level: Level,
    /// When the policy last restarted a unit: the cooldown counts from there.
    last_restart: Option<Instant>,
}

impl HostPolicy {
    pub fn new(settings: MemorySettings) -> HostPolicy {
        HostPolicy {
            settings,
            level: Level::Ok,
            last_restart: None,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// Judges one sample of the host; `candidates` are the running units with
    /// `memory.on_pressure = "restart"`.
    pub fn handle_sample(
        &mut self,
        now: Instant,
        host: &HostMemory,
        candidates: &[Candidate],
    ) -> Verdict {
        let (level, why) = self.judge(host);
        let mut verdict = Verdict::default();
        if level > self.level {
            verdict.warning = Some(format!("host memory {}: {why}", level.as_str()));
        }
        self.level = level;
        if level != Level::Critical {
            return verdict;
        }
        let cooled = self
            .last_restart
            .is_none_or(|at| now.saturating_duration_since(at) >= self.settings.cooldown);
        if !cooled {
            return verdict;
        }
        let victim = candidates
            .iter()
            .max_by_key(|c| (c.swap, c.rss, std::cmp::Reverse(c.id)));
        if let Some(victim) = victim {
            self.last_restart = Some(now);
            let reason = format!(
                "host memory pressure: {why}; this unit held the most (swap {}, rss {})",
                format_size(victim.swap),
                format_size(victim.rss)
            );
            verdict.restart = Some((victim.id, reason));
        }
        verdict
    }

    /// The level of `host`, and why, in words.
    fn judge(&self, host: &HostMemory) -> (Level, String) {
        let used = host.swap_used();
        let total = host.swap_total;
        let swap_words = |threshold| {
            format!(
                "swap {} of {} used (≥ {threshold})",
                format_size(used),
                format_size(total)
            )
        };
        if let Some(t) = self.settings.swap_critical
            && t.is_reached(used, total)
        {
            return (Level::Critical, swap_words(t));
        }
        if let (Some(limit), Some(full)) = (self.settings.psi_critical, host.psi_full_avg10)
            && full >= limit
        {
            return (
                Level::Critical,
                format!("pressure full avg10 {full:.1}% (≥ {limit}%)"),
            );
        }
        if let Some(t) = self.settings.swap_warn
            && t.is_reached(used, total)
        {
            return (Level::Warn, swap_words(t));
        }
        (Level::Ok, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::Threshold;
    use super::*;
    use std::time::Duration;

    const M: u64 = 1 << 20;

    fn host(swap_used: u64, psi_full: Option<f64>) -> HostMemory {
        HostMemory {
            mem_total: 512 * M,
            mem_available: 50 * M,
            swap_total: 1024 * M,
            swap_free: 1024 * M - swap_used,
            psi_some_avg10: psi_full,
            psi_full_avg10: psi_full,
        }
    }

    fn policy() -> HostPolicy {
        HostPolicy::new(MemorySettings {
            swap_warn: Some(Threshold::Percent(50.0)),
            swap_critical: Some(Threshold::Bytes(800 * M)),
            psi_critical: Some(20.0),
            cooldown: Duration::from_secs(60),
            ..MemorySettings::default()
        })
    }

    fn units() -> Vec<Candidate> {
        vec![
            Candidate {
                id: 0,
                rss: 300 * M,
                swap: 10 * M,
            },
            Candidate {
                id: 1,
                rss: 50 * M,
                swap: 200 * M,
            },
            Candidate {
                id: 2,
                rss: 80 * M,
                swap: 200 * M,
            },
        ]
    }

    #[test]
    fn thresholds_in_percent_and_sizes() {
        assert!(Threshold::Percent(50.0).is_reached(512 * M, 1024 * M));
        assert!(!Threshold::Percent(50.0).is_reached(511 * M, 1024 * M));
        assert!(
            !Threshold::Percent(0.0).is_reached(0, 0),
            "no swap, nothing to fill"
        );
        assert!(Threshold::Bytes(64 * M).is_reached(64 * M, 0));
        assert_eq!(Threshold::parse("50%"), Ok(Threshold::Percent(50.0)));
        assert_eq!(Threshold::parse("256M"), Ok(Threshold::Bytes(256 * M)));
        assert!(Threshold::parse("150%").is_err());
        assert!(Threshold::parse("lots").unwrap_err().contains("percentage"));
    }

    #[test]
    fn warn_logs_once_per_episode() {
        let mut p = policy();
        let now = Instant::now();
        assert_eq!(
            p.handle_sample(now, &host(100 * M, None), &units()),
            Verdict::default()
        );
        let v = p.handle_sample(now, &host(600 * M, None), &units());
        assert_eq!(
            v.warning.as_deref(),
            Some("host memory warn: swap 600M of 1G used (≥ 50%)")
        );
        assert_eq!(v.restart, None, "warn restarts nothing");
        assert_eq!(
            p.handle_sample(now, &host(650 * M, None), &units()),
            Verdict::default()
        );
        assert_eq!(p.level(), Level::Warn);
        p.handle_sample(now, &host(100 * M, None), &units());
        assert_eq!(p.level(), Level::Ok);
        assert!(
            p.handle_sample(now, &host(600 * M, None), &units())
                .warning
                .is_some()
        );
    }

    #[test]
    fn critical_restarts_the_biggest_swapper_then_cools_down() {
        let mut p = policy();
        let t0 = Instant::now();
        let v = p.handle_sample(t0, &host(900 * M, None), &units());
        assert!(
            v.warning
                .is_some_and(|w| w.starts_with("host memory critical: swap 900M"))
        );
        let (id, reason) = v.restart.expect("a victim");
        assert_eq!(id, 2, "most swap, then most RSS");
        assert_eq!(
            reason,
            "host memory pressure: swap 900M of 1G used (≥ 800M); this unit held the most (swap 200M, rss 80M)"
        );
        // Still critical, within the cooldown: nothing more.
        let v = p.handle_sample(t0 + Duration::from_secs(59), &host(900 * M, None), &units());
        assert_eq!(v, Verdict::default());
        let v = p.handle_sample(t0 + Duration::from_secs(60), &host(900 * M, None), &units());
        assert_eq!(v.restart.map(|(id, _)| id), Some(2));
    }

    #[test]
    fn pressure_alone_is_critical_and_no_candidate_means_no_restart() {
        let mut p = policy();
        let now = Instant::now();
        let v = p.handle_sample(now, &host(0, Some(25.0)), &[]);
        assert_eq!(
            v.warning.as_deref(),
            Some("host memory critical: pressure full avg10 25.0% (≥ 20%)")
        );
        assert_eq!(v.restart, None);
        // The cooldown did not start: the first candidate is restarted at once.
        let v = p.handle_sample(now, &host(0, Some(25.0)), &units()[..1]);
        assert_eq!(v.restart.map(|(id, _)| id), Some(0));
        // Without PSI (None), the PSI threshold never fires.
        let mut p = policy();
        assert_eq!(
            p.handle_sample(now, &host(0, None), &units()),
            Verdict::default()
        );
    }
}
