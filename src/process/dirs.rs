//! The directories svcd makes for a unit (`runtime_dir`, `state_dir`, `logs_dir`), owned by
//! the unit's user and group.
//!
//! A unit's user owns its directory and may put anything in it, a symbolic link included;
//! svcd runs as root. So nothing here follows a symbolic link: each component is made with
//! `mkdirat` and opened with `openat(O_NOFOLLOW | O_DIRECTORY)` relative to its parent's
//! descriptor, and the owner and mode are set with `fchown`/`fchmod` on that descriptor,
//! never by path. A link where a directory should be fails the start instead of making svcd
//! chown what the link points to. Removal (`std::fs::remove_dir_all`) does not follow links
//! either.

use super::Credentials;
use crate::unit::{DirConfig, Unit};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::fchown;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where each kind of directory goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRoots {
    pub runtime: PathBuf,
    pub state: PathBuf,
    pub logs: PathBuf,
}

impl DirRoots {
    /// `/run`, `/var/lib`, `/var/log` for a root svcd with the default state directory
    /// (`system`); else under `state_dir`: `dirs/runtime`, `dirs/state`, `dirs/logs`.
    pub fn defaults(system: bool, state_dir: &Path) -> DirRoots {
        if system {
            DirRoots {
                runtime: PathBuf::from("/run"),
                state: PathBuf::from("/var/lib"),
                logs: PathBuf::from("/var/log"),
            }
        } else {
            let dirs = state_dir.join("dirs");
            DirRoots {
                runtime: dirs.join("runtime"),
                state: dirs.join("state"),
                logs: dirs.join("logs"),
            }
        }
    }

    /// Each kind of the unit's directories: its config, root and environment variable.
    pub fn kinds<'a>(&'a self, unit: &'a Unit) -> [(&'a DirConfig, &'a Path, &'static str); 3] {
        [
            (&unit.dirs.runtime, &self.runtime, "RUNTIME_DIRECTORY"),
            (&unit.dirs.state, &self.state, "STATE_DIRECTORY"),
            (&unit.dirs.logs, &self.logs, "LOGS_DIRECTORY"),
        ]
    }

    /// The variables the unit gets: each kind's paths, `:`-separated as systemd's.
    pub fn environment(&self, unit: &Unit) -> Vec<(&'static str, String)> {
        self.kinds(unit)
            .into_iter()
            .filter(|(config, _, _)| !config.names.is_empty())
            .map(|(config, root, var)| {
                let paths: Vec<String> = config
                    .names
                    .iter()
                    .map(|name| root.join(name).display().to_string())
                    .collect();
                (var, paths.join(":"))
            })
            .collect()
    }

    /// Makes every directory of the unit (the roots too, as root's, 0755), owned by the unit's
    /// user and group, with its kind's mode. Existing ones get their owner and mode set again.
    pub fn create(&self, unit: &Unit) -> Result<(), String> {
        let creds = Credentials::resolve(unit.user.as_deref(), unit.group.as_deref(), &[])?;
        let (uid, gid) = creds.owner();
        for (config, root, _) in self.kinds(unit) {
            if config.names.is_empty() {
                continue;
            }
            std::fs::create_dir_all(root)
                .map_err(|e| format!("cannot make {}: {e}", root.display()))?;
            for name in &config.names {
                let path = root.join(name);
                let fail = |e: Errno| format!("cannot make {}: {}", path.display(), e.desc());
                let dir = make_below(root, name).map_err(fail)?;
                fchown(&dir, uid, gid).map_err(fail)?;
                fchmod(&dir, Mode::from_bits_truncate(config.mode)).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Removes the unit's runtime directories (the unit stopped).
    pub fn remove_runtime(&self, unit: &Unit) {
        for name in &unit.dirs.runtime.names {
            let path = self.runtime.join(name);
            if let Err(e) = std::fs::remove_dir_all(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(unit = %unit.name, "cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// Opens `root`, then makes and opens each component of `name` below it, never following a
/// link; the last one's descriptor. Components made on the way are root's, 0755.
fn make_below(root: &Path, name: &str) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let mut dir = nix::fcntl::open(root, flags, Mode::empty())?;
    for part in name.split('/') {
        match mkdirat(&dir, part, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        dir = openat(&dir, part, flags, Mode::empty())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn unit_with(dirs: &str) -> Unit {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.toml");
        let text = format!("exec = \"true\"\n{dirs}\n");
        crate::unit::validate::validate(&path, &text).unwrap()
    }

    #[test]
    fn directories_are_made_with_their_mode_and_exported() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = DirRoots::defaults(false, tmp.path());
        let unit = unit_with(
            "runtime_dir = \"app\"\nstate_dir = [\"app\", \"app/cache\"]\nstate_dir_mode = \"0700\"",
        );
        roots.create(&unit).unwrap();
        let cache = roots.state.join("app/cache");
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        assert!(roots.runtime.join("app").is_dir());
        let env = roots.environment(&unit);
        let state = format!("{}:{}", roots.state.join("app").display(), cache.display());
        assert!(env.contains(&("STATE_DIRECTORY", state)), "{env:?}");
        // Again: the same, no error for what exists.
        roots.create(&unit).unwrap();
        roots.remove_runtime(&unit);
        assert!(!roots.runtime.join("app").exists());
        assert!(cache.is_dir());
    }

    #[test]
    fn a_symlink_in_place_of_a_directory_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = DirRoots::defaults(false, tmp.path());
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::create_dir_all(&roots.state).unwrap();
        std::os::unix::fs::symlink(&target, roots.state.join("app")).unwrap();
        let unit = unit_with("state_dir = \"app/x\"\nstate_dir_mode = \"0777\"");
        let error = roots.create(&unit).unwrap_err();
        assert!(error.contains("app"), "{error}");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o711);
        assert!(!target.join("x").exists());
        let unit = unit_with("state_dir = \"app\"\nstate_dir_mode = \"0777\"");
        assert!(roots.create(&unit).is_err());
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o711);
    }
}
