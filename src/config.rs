//! The daemon's own settings, `svcd.toml` (optional).
//!
//! Only what this version uses is accepted; an unknown key is an error that names it, so a
//! typo never silently leaves a default in place.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Host-wide settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Members of this group may start, stop and restart units over the socket; without it only
    /// root and svcd's own user may.
    pub admin_group: Option<String>,
    /// `[memory]`: the sampling interval and the host swap policy.
    #[serde(default)]
    pub memory: crate::memory::MemorySettings,
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
        assert!(load(&dir.path().join("none.toml"), true).is_err());
    }
}
