//! Reading unit files and directories.

use super::{Unit, UnitErrors};
use std::path::{Path, PathBuf};

/// What a set of units directories holds: the valid units and the broken ones.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Sorted by name.
    pub units: Vec<Unit>,
    /// Sorted by name. A broken unit is still a unit: svcd lists it with its errors.
    pub broken: Vec<UnitErrors>,
}

/// Reads and validates one `NAME.toml`. Relative `workdir` / `env_file` resolve against
/// `path`'s directory.
pub fn load_file(path: &Path) -> Result<Unit, UnitErrors> {
    let _ = path;
    todo!()
}

/// Reads every `*.toml` in each directory (not recursive; other files ignored). A name found in
/// two directories: the first wins and the second is broken ("duplicate unit, also in ...").
/// A directory that cannot be read is an `Err` naming it.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Loaded, std::io::Error> {
    let _ = dirs;
    todo!()
}

/// placeholder until the unit branch lands
pub fn check_paths(paths: &[PathBuf]) -> Vec<Result<Unit, UnitErrors>> {
    let _ = paths;
    todo!()
}
