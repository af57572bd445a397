//! The last run of a `persistent` scheduled unit: `<state-dir>/schedule/NAME`, one line of Unix
//! seconds, written atomically (a temporary file renamed over it) and readable by root only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The directory of the stamps under the state directory.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("schedule")
}

/// The stamp of unit `name`; `None` when there is none or it is unreadable (as if never run).
pub fn read(state_dir: &Path, name: &str) -> Option<i64> {
    let text = std::fs::read_to_string(dir(state_dir).join(name)).ok()?;
    text.trim().parse().ok()
}

/// Records that unit `name` ran at `unix_secs`.
pub fn write(state_dir: &Path, name: &str, unix_secs: i64) -> std::io::Result<()> {
    let dir = dir(state_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(file, "{unix_secs}")?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}
