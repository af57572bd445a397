//! The state file, `<state-dir>/state`: what svcd needs to take its units back after its own
//! crash or an upgrade (see [`super::adopt`]).
//!
//! JSON, versioned: unknown fields are ignored and new ones come with defaults, so a newer svcd
//! reads an older file and the other way round. Written atomically (a temporary file, then
//! `rename`; mode 0600) by a thread of its own, so the event loop never waits for the disk. The
//! loop hands over the whole text after each turn in which a unit changed; the thread writes
//! the latest it was given, at most once per 10 ms, so a burst of changes costs one write, not
//! one each.
//!
//! No `fsync`: the file's only reader is a svcd of the same boot (a crash of the machine ends
//! every unit, and their state with them), which the page cache serves whole after `rename`.
//! An `fdatasync` per change cost about 10 ms on a disk, and a unit crashing in a loop made it
//! a stream of journal commits that stalled svcd's own log writes: four units restarting every
//! 2 ms fell from 300 restarts in 11 s to fewer in 20 s.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// The state file, in the state directory.
pub const STATE_FILE: &str = "state";
/// The format this build writes; it reads this one and any older.
pub const STATE_VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    /// The svcd that wrote it: the same pid reading it back means an upgrade (`exec`), and
    /// the output pipes named in `units` are open in this process.
    #[serde(default)]
    pub svcd_pid: u32,
    #[serde(default)]
    pub units: Vec<SavedUnit>,
}

/// One unit, as `status` showed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedUnit {
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub ready: bool,
    /// The main process (its own group leader), while there is one.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    #[serde(default)]
    pub start_time: Option<u64>,
    /// When it was spawned, seconds since the epoch.
    #[serde(default)]
    pub started: Option<f64>,
    /// When the unit entered its state, seconds since the epoch.
    #[serde(default)]
    pub since: f64,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub starts: u64,
    #[serde(default)]
    pub last_exit: Option<SavedExit>,
    /// The unit's argv: a different one in the unit file now is a changed unit.
    #[serde(default)]
    pub command: Vec<String>,
    /// Only in the file written just before an upgrade's `exec`: the read ends of the unit's
    /// stdout and stderr, open (not close-on-exec) in the re-executed svcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_fds: Option<[RawFd; 2]>,
    /// The sockets svcd held for the unit (`listen`), which the next svcd takes back (from the
    /// fd holder after a crash, across the `exec` of an upgrade) instead of binding anew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sockets: Vec<SavedSocket>,
}

/// A socket svcd held for a unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedSocket {
    /// The address as `listen` writes it (`127.0.0.1:3000`, `unix:/run/chat.sock`).
    pub addr: String,
    /// Only in the file written just before an upgrade's `exec`: its descriptor, open (not
    /// close-on-exec) in the re-executed svcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<RawFd>,
}

/// A unit's last exit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedExit {
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    pub at: f64,
    pub reason: String,
    #[serde(default)]
    pub kind: String,
}

/// Writes `bytes` as `path`, atomically (not durably: see the module's doc): a reader sees the
/// old file or the new one, whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)?;
    file.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

/// The state file in `dir`, if there is a readable one; a broken one is reported and ignored.
pub fn read(dir: &Path) -> Option<SavedState> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read {}: {e}; no unit is adopted", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<SavedState>(&text) {
        Ok(state) if state.version <= STATE_VERSION => Some(state),
        Ok(state) => {
            tracing::warn!(
                "{} has version {}, newer than this svcd's {STATE_VERSION}; no unit is adopted",
                path.display(),
                state.version
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "{} is not a state file ({e}); no unit is adopted",
                path.display()
            );
            None
        }
    }
}

/// The least time between two writes of the state file.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The writing thread's side of the hand-over: the latest text not yet written.
#[derive(Debug, Default)]
struct Pending {
    next: Option<Vec<u8>>,
    /// The thread is writing: a synchronous write waits for it.
    busy: bool,
    /// The file was removed at svcd's clean end: nothing is written any more.
    closed: bool,
}

/// Writes the state file from a thread of its own, the latest text given first.
#[derive(Debug, Clone)]
pub struct Writer {
    path: PathBuf,
    shared: Arc<(Mutex<Pending>, Condvar)>,
}

impl Writer {
    /// Starts the writing thread for `path`; `None` (svcd then writes inline) if the thread
    /// cannot be made.
    pub fn start(path: PathBuf) -> Writer {
        let writer = Writer {
            path,
            shared: Arc::default(),
        };
        let thread = writer.clone();
        let spawned = std::thread::Builder::new()
            .name("state-writer".into())
            .stack_size(64 * 1024)
            .spawn(move || thread.run());
        if let Err(e) = spawned {
            tracing::warn!("cannot start the state file's writer ({e}); writing inline");
        }
        writer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(self) {
        loop {
            let bytes = {
                let mut pending = self.lock();
                loop {
                    if pending.closed {
                        return;
                    }
                    if let Some(bytes) = pending.next.take() {
                        pending.busy = true;
                        break bytes;
                    }
                    pending = self
                        .shared
                        .1
                        .wait(pending)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            if let Err(e) = write_atomically(&self.path, &bytes) {
                tracing::warn!("cannot write {}: {e}", self.path.display());
            }
            self.lock().busy = false;
            self.shared.1.notify_all();
            // A unit in a crash loop changes hundreds of times a second: what changes in the
            // meantime is written as one, rather than a file made and renamed per change,
            // which took CPU and disk from svcd and its units on a small machine.
            std::thread::sleep(MIN_INTERVAL);
        }
    }

    /// Hands `bytes` over to be written soon, replacing what was not written yet.
    pub fn submit(&self, bytes: Vec<u8>) {
        let mut pending = self.lock();
        if pending.closed {
            return;
        }
        pending.next = Some(bytes);
        drop(pending);
        self.shared.1.notify_all();
    }

    /// The writer's state, locked, with what was handed over dropped and a write under way
    /// finished: what the caller does to the file next is the last word on it.
    fn last_word(&self) -> std::sync::MutexGuard<'_, Pending> {
        let mut pending = self.lock();
        pending.next = None;
        while pending.busy {
            pending = self
                .shared
                .1
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        pending
    }

    /// Removes the state file at svcd's clean end, when every unit is stopped and there is
    /// nothing for a next svcd to adopt: what was handed over is dropped, a write under way
    /// finished first, and nothing is written after.
    pub fn remove(&self) -> std::io::Result<()> {
        let mut pending = self.last_word();
        pending.closed = true;
        self.shared.1.notify_all();
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes `bytes` now (just before an `exec`): what was handed over before is dropped,
    /// and a write under way finished first, so this one is the last.
    pub fn write_now(&self, bytes: &[u8]) -> std::io::Result<()> {
        let pending = self.last_word();
        let result = write_atomically(&self.path, bytes);
        drop(pending);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_state_file_is_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        write_atomically(&path, b"{\"version\":1}").unwrap();
        write_atomically(&path, b"{\"version\":1,\"units\":[]}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("state.tmp").exists());
        let state = read(dir.path()).unwrap();
        assert!(state.units.is_empty());
    }

    #[test]
    fn an_unknown_field_is_ignored_and_a_newer_version_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let unit = r#"{"name":"a","state":"running","pid":7,"timers":[3],"since":1.5}"#;
        let text = format!(r#"{{"version":1,"later":true,"units":[{unit}]}}"#);
        write_atomically(&path, text.as_bytes()).unwrap();
        let state = read(dir.path()).unwrap();
        assert_eq!(state.units[0].pid, Some(7));
        write_atomically(&path, b"{\"version\":99}").unwrap();
        assert!(read(dir.path()).is_none());
        write_atomically(&path, b"not json").unwrap();
        assert!(read(dir.path()).is_none());
    }

    #[test]
    fn the_writer_writes_the_latest_text_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let writer = Writer::start(path.clone());
        writer.submit(b"{\"version\":1,\"svcd_pid\":1}".to_vec());
        writer.submit(b"{\"version\":1,\"svcd_pid\":2}".to_vec());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read(dir.path()).map(|s| s.svcd_pid) != Some(2) {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        writer.write_now(b"{\"version\":1,\"svcd_pid\":3}").unwrap();
        assert_eq!(read(dir.path()).map(|s| s.svcd_pid), Some(3));
    }
}
