//! The host swap policy, pure: a host sample and the units that allow it in, a verdict out.
//!
//! Levels: `critical` when swap use reaches `swap_critical` or PSI `full avg10` reaches
//! `psi_critical`; `warn` when swap use reaches `swap_warn`; else `ok`. Entering `warn` or
//! `critical` (and only then, so a long episode logs once) yields a warning.
//!
//! The ladder (`memory.on_pressure`, see [`OnPressure`]): at `warn` and at `critical`, every
//! running unit that allows `notify` is told and every one that allows `reclaim` has its memory
//! paged out, once per level per episode (an episode ends when the level is back to `ok`): a
//! unit told at `warn` is told again when the host goes on to `critical`, not on every sample
//! of a long episode; a unit that starts during an episode takes the steps at the next sample.
//! In `critical`, the unit holding the most swap (then the most RSS) among those that allow
//! `restart` is restarted, at most once per `cooldown`; it is not told nor reclaimed in the
//! same sample (paging out what is about to end only costs the disk). Where it allows
//! `notify` or `reclaim` and has not taken them yet in the episode (the host went from `ok`
//! to `critical` at once), it takes them first and is restarted at the next sample that is
//! still critical: a sampling interval later, or sooner when the PSI trigger wakes svcd.

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

/// `memory.on_pressure`: which steps the host policy may take for a unit as the host enters
/// `warn` and `critical`. `"restart"` is `["restart"]`; `"none"` (the default) is `[]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnPressure {
    /// Tell the unit through its `MEMORY_PRESSURE_WATCH` FIFO (`"notify"`).
    pub notify: bool,
    /// Page its memory out to swap, where swap has room for it (`"reclaim"`).
    pub reclaim: bool,
    /// May be the one restarted in `critical` (`"restart"`).
    pub restart: bool,
}

impl OnPressure {
    /// From the steps as written, e.g. `["notify", "reclaim"]`.
    pub fn parse(steps: &[&str]) -> Result<OnPressure, String> {
        let (notify, reclaim, restart) = parse_steps("memory.on_pressure", steps)?;
        Ok(OnPressure {
            notify,
            reclaim,
            restart,
        })
    }

    /// Whether the policy may do anything to the unit.
    pub fn is_any(self) -> bool {
        self.notify || self.reclaim || self.restart
    }
}

/// The steps of a ladder as written for `key` (`memory.on_pressure`, `memory.on_limit`): which
/// of `notify`, `reclaim` and `restart` are there.
pub fn parse_steps(key: &str, steps: &[&str]) -> Result<(bool, bool, bool), String> {
    let (mut notify, mut reclaim, mut restart) = (false, false, false);
    for step in steps {
        match *step {
            "notify" => notify = true,
            "reclaim" => reclaim = true,
            "restart" => restart = true,
            other => {
                return Err(format!(
                    "unknown {key} step \"{other}\"; use \"notify\", \"reclaim\" and/or \
                     \"restart\""
                ));
            }
        }
    }
    Ok((notify, reclaim, restart))
}

/// A running unit that allows the policy some step, with its latest sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: UnitId,
    pub rss: u64,
    pub swap: u64,
    /// What it allows (`memory.on_pressure`).
    pub steps: OnPressure,
}

/// What the daemon should do after a sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// The host just entered `warn` or `critical`: log it and record the event.
    pub warning: Option<String>,
    /// Tell these units through their FIFO (`notify`).
    pub tell: Vec<UnitId>,
    /// Page these units' memory out to swap (`reclaim`).
    pub reclaim: Vec<UnitId>,
    /// Why `tell` and `reclaim`: the level and what reached it ("host memory warn: swap ...");
    /// empty when both are.
    pub cause: String,
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
    /// The highest level at which each unit took its steps in this episode (cleared when the
    /// host is back to `ok`): at most one unit per unit that ran during the episode.
    stepped: std::collections::HashMap<UnitId, Level>,
}

impl HostPolicy {
    pub fn new(settings: MemorySettings) -> HostPolicy {
        HostPolicy {
            settings,
            level: Level::Ok,
            last_restart: None,
            stepped: std::collections::HashMap::new(),
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// Unit `id` is gone (its id may be given to another unit): it took no step.
    pub fn forget(&mut self, id: UnitId) {
        self.stepped.remove(&id);
    }

    /// Judges one sample of the host; `candidates` are the running units whose
    /// `memory.on_pressure` allows some step.
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
        if level == Level::Ok {
            self.stepped.clear();
            return verdict;
        }
        if level == Level::Critical {
            verdict.restart = self.victim(now, &why, candidates);
        }
        let victim = verdict.restart.as_ref().map(|(id, _)| *id);
        for c in candidates {
            let done = self.stepped.get(&c.id).is_some_and(|&at| at >= level);
            if done || !(c.steps.notify || c.steps.reclaim || Some(c.id) == victim) {
                continue;
            }
            self.stepped.insert(c.id, level);
            if Some(c.id) == victim {
                continue;
            }
            if c.steps.notify {
                verdict.tell.push(c.id);
            }
            if c.steps.reclaim {
                verdict.reclaim.push(c.id);
            }
        }
        if !verdict.tell.is_empty() || !verdict.reclaim.is_empty() {
            verdict.cause = format!("host memory {}: {why}", level.as_str());
        }
        verdict
    }

    /// In `critical` (`why`): the unit to restart among `candidates` that allow it, and the
    /// reason, once the cooldown since the last is over.
    fn victim(
        &mut self,
        now: Instant,
        why: &str,
        candidates: &[Candidate],
    ) -> Option<(UnitId, String)> {
        let cooled = self
            .last_restart
            .is_none_or(|at| now.saturating_duration_since(at) >= self.settings.cooldown);
        if !cooled {
            return None;
        }
        let victim = candidates
            .iter()
            .filter(|c| c.steps.restart)
            .max_by_key(|c| (c.swap, c.rss, std::cmp::Reverse(c.id)))?;
        // Gently first: one that allows the steps before a restart and has not taken them in
        // this episode takes them now, and is restarted at a later sample if the host is
        // still critical then.
        let gentler = victim.steps.notify || victim.steps.reclaim;
        if gentler && !self.stepped.contains_key(&victim.id) {
            return None;
        }
        self.last_restart = Some(now);
        let reason = format!(
            "host memory pressure: {why}; this unit held the most (swap {}, rss {})",
            format_size(victim.swap),
            format_size(victim.rss)
        );
        Some((victim.id, reason))
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

    const RESTART: OnPressure = OnPressure {
        notify: false,
        reclaim: false,
        restart: true,
    };

    fn unit(id: UnitId, rss: u64, swap: u64, steps: OnPressure) -> Candidate {
        Candidate {
            id,
            rss,
            swap,
            steps,
        }
    }

    fn units() -> Vec<Candidate> {
        vec![
            unit(0, 300 * M, 10 * M, RESTART),
            unit(1, 50 * M, 200 * M, RESTART),
            unit(2, 80 * M, 200 * M, RESTART),
        ]
    }

    fn steps(written: &[&str]) -> OnPressure {
        OnPressure::parse(written).expect("valid steps")
    }

    /// The units of the ladder's tests: 0 told, 1 reclaimed, 2 both and restartable, 3 only
    /// restartable, 4 nothing.
    fn ladder_units() -> Vec<Candidate> {
        vec![
            unit(0, 100 * M, 0, steps(&["notify"])),
            unit(1, 100 * M, 0, steps(&["reclaim"])),
            unit(2, 100 * M, 50 * M, steps(&["notify", "reclaim", "restart"])),
            unit(3, 100 * M, 10 * M, steps(&["restart"])),
            unit(4, 400 * M, 300 * M, OnPressure::default()),
        ]
    }

    #[test]
    fn on_pressure_parses_the_steps() {
        assert_eq!(steps(&[]), OnPressure::default());
        assert!(!OnPressure::default().is_any());
        assert_eq!(steps(&["restart"]), RESTART);
        let all = steps(&["notify", "reclaim", "restart"]);
        assert!(all.notify && all.reclaim && all.restart);
        let error = OnPressure::parse(&["notify", "kill"]).expect_err("kill is no step");
        assert!(error.contains("\"kill\""), "{error}");
    }

    #[test]
    fn entering_warn_tells_and_reclaims_once_per_episode() {
        let mut p = policy();
        let t0 = Instant::now();
        let v = p.handle_sample(t0, &host(600 * M, None), &ladder_units());
        assert_eq!(v.tell, [0, 2]);
        assert_eq!(v.reclaim, [1, 2]);
        assert_eq!(v.cause, "host memory warn: swap 600M of 1G used (≥ 50%)");
        assert_eq!(v.restart, None, "warn restarts nothing");
        // A long episode: not again on every sample, however long it lasts.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            p.handle_sample(later, &host(650 * M, None), &ladder_units()),
            Verdict::default()
        );
        // A unit that starts during the episode takes its steps at the next sample.
        let mut more = ladder_units();
        more.push(unit(5, 10 * M, 0, steps(&["notify"])));
        let v = p.handle_sample(later, &host(650 * M, None), &more);
        assert_eq!((v.tell, v.reclaim), (vec![5], vec![]));
        // A unit gone, its id given to a new one: the new one is told.
        p.forget(5);
        let v = p.handle_sample(later, &host(650 * M, None), &more);
        assert_eq!(v.tell, [5]);
        // Back to ok ends the episode: the next one tells them again.
        assert_eq!(
            p.handle_sample(later, &host(100 * M, None), &more),
            Verdict::default()
        );
        let v = p.handle_sample(later, &host(600 * M, None), &more);
        assert_eq!(v.tell, [0, 2, 5]);
    }

    #[test]
    fn critical_takes_the_steps_again_and_restarts_the_victim_without_them() {
        let mut p = policy();
        let t0 = Instant::now();
        p.handle_sample(t0, &host(600 * M, None), &ladder_units());
        let v = p.handle_sample(t0, &host(900 * M, None), &ladder_units());
        let (victim, reason) = v.restart.expect("a victim");
        assert_eq!(victim, 2, "the most swap among those that allow a restart");
        assert!(
            reason.starts_with("host memory pressure: swap 900M"),
            "{reason}"
        );
        // The victim is restarted, not told nor paged out; the others take the steps again.
        assert_eq!(v.tell, [0]);
        assert_eq!(v.reclaim, [1]);
        assert!(v.cause.starts_with("host memory critical: swap 900M"));
        // Still critical, within the cooldown: nothing more; after it, the next victim.
        let v = p.handle_sample(
            t0 + Duration::from_secs(1),
            &host(900 * M, None),
            &ladder_units(),
        );
        assert_eq!(v, Verdict::default());
        let v = p.handle_sample(
            t0 + Duration::from_secs(60),
            &host(900 * M, None),
            &ladder_units(),
        );
        assert_eq!(v.restart.map(|(id, _)| id), Some(2));
        // Down to warn within the episode: nothing is taken again.
        let v = p.handle_sample(
            t0 + Duration::from_secs(61),
            &host(600 * M, None),
            &ladder_units(),
        );
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn a_victim_that_allows_notify_is_told_before_it_is_restarted() {
        let mut p = policy();
        let t0 = Instant::now();
        let units = [
            unit(0, 100 * M, 300 * M, steps(&["notify", "restart"])),
            unit(1, 100 * M, 10 * M, RESTART),
        ];
        // Straight from ok to critical: the biggest is told, nobody restarted yet.
        let v = p.handle_sample(t0, &host(900 * M, None), &units);
        assert_eq!((v.tell, v.restart), (vec![0], None));
        // Still critical at the next sample: now it is restarted.
        let next = t0 + Duration::from_millis(100);
        let v = p.handle_sample(next, &host(900 * M, None), &units);
        assert_eq!(v.restart.map(|(id, _)| id), Some(0));
        assert!(v.tell.is_empty());
        // Gone under critical meanwhile: no restart.
        let mut p = policy();
        p.handle_sample(t0, &host(900 * M, None), &units);
        let v = p.handle_sample(next, &host(600 * M, None), &units);
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn none_and_restart_alone_are_never_told() {
        let mut p = policy();
        let now = Instant::now();
        let quiet = [
            unit(0, 100 * M, 100 * M, OnPressure::default()),
            unit(1, 100 * M, 0, RESTART),
        ];
        let v = p.handle_sample(now, &host(900 * M, None), &quiet);
        assert!(v.tell.is_empty() && v.reclaim.is_empty() && v.cause.is_empty());
        assert_eq!(
            v.restart.map(|(id, _)| id),
            Some(1),
            "only one that allows it"
        );
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
