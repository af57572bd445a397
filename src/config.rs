//! The daemon's own settings, `svcd.toml` (optional).
//!
//! Only what this version uses is accepted; an unknown key is an error that names it, so a
//! typo never silently leaves a default in place.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long svcd's whole shutdown may take by default: within `docker stop`'s 10 s grace.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);

/// Host-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Members of this group may start, stop and restart units over the socket; without it only
    /// root and svcd's own user may.
    pub admin_group: Option<String>,
    /// `[memory]`: the sampling interval and the host swap policy.
    #[serde(default)]
    pub memory: crate::memory::MemorySettings,
    /// Defaults of every unit's `log.max_size` and `log.keep`.
    #[serde(default)]
    pub log: LogConfig,
    /// The whole shutdown (SIGTERM, SIGINT, `svc shutdown`, a fatal unit) ends within this:
    /// stop timeouts that would run past it are cut short, and what is left then gets SIGKILL.
    #[serde(default = "default_shutdown_timeout", deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Signals svcd receives that it passes on to units: `{ SIGUSR1 = ["app"] }`.
    #[serde(default)]
    pub forward_signals: std::collections::BTreeMap<String, Vec<String>>,
    /// `[metrics]`: `listen` serves `svc metrics` over HTTP for Prometheus.
    #[serde(default)]
    pub metrics: crate::daemon::metrics::MetricsConfig,
    /// `[directories]`: where units' `runtime_dir`, `state_dir` and `logs_dir` go.
    #[serde(default)]
    pub directories: DirectoriesConfig,
}

/// `[directories]`: each root, or the default of [`crate::process::dirs::DirRoots::defaults`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoriesConfig {
    pub runtime: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub logs: Option<PathBuf>,
}

impl DirectoriesConfig {
    /// The roots: those given here, the defaults for the rest (`system`: svcd runs as root
    /// with the default state directory).
    pub fn roots(&self, system: bool, state_dir: &Path) -> crate::process::dirs::DirRoots {
        let mut roots = crate::process::dirs::DirRoots::defaults(system, state_dir);
        for (given, root) in [
            (&self.runtime, &mut roots.runtime),
            (&self.state, &mut roots.state),
            (&self.logs, &mut roots.logs),
        ] {
            if let Some(given) = given {
                *root = given.clone();
            }
        }
        roots
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admin_group: None,
            memory: Default::default(),
            log: LogConfig::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            forward_signals: Default::default(),
            metrics: Default::default(),
            directories: Default::default(),
        }
    }
}

fn default_shutdown_timeout() -> Duration {
    DEFAULT_SHUTDOWN_TIMEOUT
}

fn duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::unit::duration::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// `[log]`: how unit logs rotate unless a unit says otherwise.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A size as unit files write it: `"10M"`, or bytes as an integer.
    #[serde(default = "default_max_size", deserialize_with = "size")]
    pub max_size: u64,
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: default_max_size(),
            keep: default_keep(),
        }
    }
}

impl LogConfig {
    pub fn settings(&self) -> crate::logs::Settings {
        crate::logs::Settings {
            max_size: self.max_size,
            keep: self.keep,
        }
    }
}

fn default_max_size() -> u64 {
    crate::logs::Settings::default().max_size
}

fn default_keep() -> u32 {
    crate::logs::Settings::default().keep
}

fn size<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let bytes = match Size::deserialize(deserializer)? {
        Size::Bytes(n) => n,
        Size::Text(text) => {
            crate::unit::duration::parse_size(&text).map_err(serde::de::Error::custom)?
        }
    };
    if bytes < crate::unit::MIN_LOG_SIZE {
        return Err(serde::de::Error::custom(format!(
            "log.max_size must be at least {} bytes",
            crate::unit::MIN_LOG_SIZE
        )));
    }
    Ok(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// Reads `path`. A missing file is the default config when `required` is false (the default
/// path), an error when the user named it.
pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Config::default());
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svcd.toml");
        std::fs::write(&path, "admin_grop = \"svc\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("admin_grop"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        std::fs::write(&path, "admin_group = \"svc\"\n").unwrap();
        assert_eq!(
            load(&path, true).unwrap().admin_group.as_deref(),
            Some("svc")
        );
        assert!(load(&dir.path().join("none.toml"), false).is_ok());
        std::fs::write(&path, "[memory]\ninterval = \"100ms\"\nswap_warn = \"50%\"\nswap_critical = \"900M\"\npsi_critical = 20\ncooldown = \"30s\"\n").unwrap();
        let memory = load(&path, true).unwrap().memory;
        assert_eq!(memory.interval, std::time::Duration::from_millis(100));
        assert_eq!(
            memory.swap_warn,
            Some(crate::memory::Threshold::Percent(50.0))
        );
        assert_eq!(
            memory.swap_critical,
            Some(crate::memory::Threshold::Bytes(900 << 20))
        );
        assert_eq!(memory.psi_critical, Some(20.0));
        assert_eq!(memory.cooldown, std::time::Duration::from_secs(30));
        std::fs::write(&path, "[memory]\nswap_warn = \"5O%\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("memory.swap_warn"), "{err}");
        std::fs::write(&path, "[memory]\nswap_wrn = \"50%\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("swap_wrn"), "{err}");
        let defaults = load(&dir.path().join("none.toml"), false).unwrap().memory;
        assert_eq!(defaults.interval, std::time::Duration::from_secs(1));
        assert!(!defaults.watches_host());
        std::fs::write(&path, "[log]\nmax_size = \"2M\"\nkeep = 3\n").unwrap();
        let log = load(&path, true).unwrap().log;
        assert_eq!((log.max_size, log.keep), (2 << 20, 3));
        std::fs::write(&path, "[log]\nmax_size = 4096\n").unwrap();
        assert_eq!(load(&path, true).unwrap().log.keep, 5);
        std::fs::write(&path, "[log]\nmax_sise = \"2M\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("max_sise"), "{err}");
        std::fs::write(&path, "[log]\nmax_size = \"2X\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("invalid size"), "{err}");
        assert!(load(&dir.path().join("none.toml"), true).is_err());
    }

    #[test]
    fn shutdown_timeout_has_a_default_within_dockers_grace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svcd.toml");
        let defaults = load(&dir.path().join("none.toml"), false).unwrap();
        assert_eq!(defaults.shutdown_timeout, Duration::from_secs(8));
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            load(&path, true).unwrap().shutdown_timeout,
            Duration::from_secs(8)
        );
        std::fs::write(&path, "shutdown_timeout = \"1m30s\"\n").unwrap();
        assert_eq!(
            load(&path, true).unwrap().shutdown_timeout,
            Duration::from_secs(90)
        );
        std::fs::write(&path, "shutdown_timeout = \"soon\"\n").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("shutdown_timeout"), "{err}");
    }
}
