//! The `[memory]` table of `svcd.toml`: how often to sample, and the host swap policy.

use crate::unit::duration::{format_size, parse_duration, parse_size};
use serde::Deserialize;
use std::time::Duration;

/// A swap threshold: a share of the swap (`"50%"`) or an amount used (`"256M"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Percent(f64),
    Bytes(u64),
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, String> {
        if let Some(number) = text.strip_suffix('%') {
            match number.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(Threshold::Percent(p)),
                _ => Err(format!(
                    "invalid percentage \"{text}\"; write a number from 0 to 100 followed by %, e.g. \"50%\""
                )),
            }
        } else {
            parse_size(text)
                .map(Threshold::Bytes)
                .map_err(|e| format!("{e}; or a percentage of the swap such as \"50%\""))
        }
    }

    /// Whether `used` of `total` swap reaches the threshold. Without swap, a percentage is
    /// never reached (there is nothing to fill).
    pub fn is_reached(self, used: u64, total: u64) -> bool {
        match self {
            Threshold::Percent(_) if total == 0 => false,
            Threshold::Percent(p) => used as f64 * 100.0 >= p * total as f64 && used > 0,
            Threshold::Bytes(b) => used >= b,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Percent(p) => write!(f, "{p}%"),
            Threshold::Bytes(b) => f.write_str(&format_size(*b)),
        }
    }
}

/// `[memory]` of svcd.toml, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct MemorySettings {
    /// Time between samples, while a running unit has a limit or a host threshold is set.
    pub interval: Duration,
    /// Swap use that logs a warning, and takes the steps of `memory.on_pressure` before a
    /// restart (`notify`, `reclaim`).
    pub swap_warn: Option<Threshold>,
    /// Swap use that restarts a unit with `restart` in `memory.on_pressure` (after the steps
    /// before it).
    pub swap_critical: Option<Threshold>,
    /// `full avg10` of /proc/pressure/memory, in percent, that does the same.
    pub psi_critical: Option<f64>,
    /// At most one restart for host pressure per cooldown: the restart needs time to free
    /// memory (and the kernel's averages time to notice) before the next one is judged.
    pub cooldown: Duration,
    /// A memory cgroup per unit where svcd can make them (see [`super::cgroup`]).
    pub cgroups: super::cgroup::Setting,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            interval: DEFAULT_INTERVAL,
            swap_warn: None,
            swap_critical: None,
            psi_critical: None,
            cooldown: DEFAULT_COOLDOWN,
            cgroups: super::cgroup::Setting::default(),
        }
    }
}

impl MemorySettings {
    /// Whether the host policy has anything to watch.
    pub fn watches_host(&self) -> bool {
        self.swap_warn.is_some() || self.swap_critical.is_some() || self.psi_critical.is_some()
    }

    /// Whether host pressure may restart a unit.
    pub fn has_critical(&self) -> bool {
        self.swap_critical.is_some() || self.psi_critical.is_some()
    }
}

/// As written; every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    interval: Option<String>,
    swap_warn: Option<String>,
    swap_critical: Option<String>,
    psi_critical: Option<toml::Value>,
    cooldown: Option<String>,
    cgroups: Option<String>,
}

impl TryFrom<RawSettings> for MemorySettings {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        fn named(key: &'static str) -> impl Fn(String) -> String {
            move |e| format!("memory.{key}: {e}")
        }
        let mut settings = MemorySettings::default();
        if let Some(text) = &raw.interval {
            settings.interval = parse_duration(text).map_err(named("interval"))?;
            if settings.interval < Duration::from_millis(10) {
                return Err("memory.interval must be at least 10ms".to_string());
            }
        }
        if let Some(text) = &raw.cooldown {
            settings.cooldown = parse_duration(text).map_err(named("cooldown"))?;
        }
        if let Some(text) = &raw.cgroups {
            settings.cgroups = super::cgroup::Setting::parse(text)?;
        }
        if let Some(text) = &raw.swap_warn {
            settings.swap_warn = Some(Threshold::parse(text).map_err(named("swap_warn"))?);
        }
        if let Some(text) = &raw.swap_critical {
            settings.swap_critical = Some(Threshold::parse(text).map_err(named("swap_critical"))?);
        }
        if let Some(value) = &raw.psi_critical {
            let percent = match value {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::String(s) => s.trim_end_matches('%').trim().parse().ok(),
                _ => None,
            };
            match percent {
                Some(p) if p.is_finite() && p > 0.0 && p <= 100.0 => {
                    settings.psi_critical = Some(p)
                }
                _ => {
                    return Err(format!(
                        "memory.psi_critical: invalid value {value}; write a percentage above 0 \
                         and up to 100, e.g. 20 or \"20%\""
                    ));
                }
            }
        }
        Ok(settings)
    }
}
