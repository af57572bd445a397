//! Checks of a valid unit against this host's files, for `svc check`: a `workdir` that is not
//! there, an `exec` (or hook command's) program not found on PATH or not executable.
//!
//! Warnings, not errors: a unit file may be checked on another host than the one it runs on,
//! and the directory or program may be made before svcd starts the unit.

use super::Unit;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// PATH when neither the unit nor the environment sets one (glibc's default for a root shell).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Something in a valid unit that will not work on this host as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The unit file.
    pub path: PathBuf,
    /// The key concerned: `workdir`, `exec`, or a hook's (`exec_start_pre`, ...).
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: warning: key `{}`: {}",
            self.path.display(),
            self.key,
            self.message
        )
    }
}

/// The warnings about `unit` on this host; none when it would start as written.
pub fn warnings(unit: &Unit) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut warn = |key, message| {
        warnings.push(Warning {
            path: unit.path.clone(),
            key,
            message,
        })
    };
    if let Some(dir) = &unit.workdir
        && !dir.is_dir()
    {
        let what = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        warn(
            "workdir",
            format!(
                "{} {what} on this host; create it before the unit starts",
                dir.display()
            ),
        );
    }
    if let Some(program) = unit.argv.first()
        && let Some(message) = program_problem(program, unit)
    {
        warn("exec", message);
    }
    let hooks = [
        ("exec_start_pre", &unit.hooks.start_pre),
        ("exec_start_post", &unit.hooks.start_post),
        ("exec_stop", &unit.hooks.stop),
    ];
    for (key, commands) in hooks {
        for command in commands.iter().filter(|c| !c.ignore_failure) {
            if let Some(program) = command.argv.first()
                && let Some(message) = program_problem(program, unit)
            {
                warn(key, message);
            }
        }
    }
    warnings
}

/// Why `program` cannot be executed as the unit would, or `None` when it can (or when that
/// cannot be told here: a relative path without a `workdir` depends on svcd's directory).
fn program_problem(program: &str, unit: &Unit) -> Option<String> {
    if program.contains('/') {
        let path = Path::new(program);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            unit.workdir.as_ref()?.join(path)
        };
        return match executable(&path) {
            Ok(()) => None,
            Err(why) => Some(format!("the program {} {why}", path.display())),
        };
    }
    // As std's spawn searches: the unit's PATH when it sets one, else svcd's (here: svc's).
    let search: OsString = match unit.env.get("PATH") {
        Some(path) => path.into(),
        None => std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
    };
    let mut found_unexecutable = None;
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(program);
        match executable(&candidate) {
            Ok(()) => return None,
            Err(_) if candidate.is_file() => {
                found_unexecutable.get_or_insert(candidate);
            }
            Err(_) => {}
        }
    }
    Some(match found_unexecutable {
        Some(path) => format!(
            "`{program}` is {} on PATH, which is not executable; chmod +x it",
            path.display()
        ),
        None => format!(
            "`{program}` is not found on PATH ({}); install it, or give its full path",
            search.to_string_lossy()
        ),
    })
}

/// `Ok` when `path` is a file with an execute bit (a link is followed).
fn executable(path: &Path) -> Result<(), &'static str> {
    match std::fs::metadata(path) {
        Err(_) => Err("does not exist on this host"),
        Ok(meta) if !meta.is_file() => Err("is not a file"),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err("is not executable; chmod +x it"),
        Ok(_) => Ok(()),
    }
}
