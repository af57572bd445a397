//! The state directory (`/run/svc`, `$XDG_RUNTIME_DIR/svc`, `/tmp/svc-UID`, or `--state-dir`):
//! made or checked before anything goes into it, then locked for svcd's whole life.
//!
//! Everything svcd writes as its own user goes there: the sockets, the logs. So another user must
//! neither own it nor be able to write into it, or they could replace the sockets or plant links
//! where svcd appends its logs. The directory is created exclusively (0755 as root, else 0700); a
//! directory that was already there must be svcd's user's and not writable by group or others,
//! else svcd refuses it and says why. Modes are set on an opened descriptor (`fchmod`), never
//! through a path that could be swapped in between.
//!
//! The lock is an `flock` on `svcd.lock` (holding svcd's pid), taken before anything else in the
//! directory is touched: a second svcd on the same directory leaves the first one's sockets and
//! logs alone and exits naming it. The descriptor is close-on-exec, so units never hold the lock.

use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file, in the state directory.
pub const LOCK_FILE: &str = "svcd.lock";

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot create the state directory {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing the state directory {}: {reason}", path.display())]
    Unsafe { path: PathBuf, reason: String },
    #[error("another svcd ({}) runs on {}; stop it or pass --state-dir", pid_text(*pid), path.display())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

/// The state directory, checked and locked: the lock lasts as long as this value.
#[derive(Debug)]
pub struct StateDir {
    /// Absolute: it is exported to units (`NOTIFY_SOCKET`), which run in other directories.
    pub path: PathBuf,
    /// Held, never read: dropping it (svcd's exit) releases the lock.
    _lock: Flock<File>,
}

/// `path` made absolute against the current directory (not resolving links).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Mode of a state directory svcd creates: 0755 as root (`/run/svc`), else 0700.
fn created_mode(euid: u32) -> u32 {
    if euid == 0 { 0o755 } else { 0o700 }
}

/// Creates (or checks) and locks the state directory at `path`.
pub fn prepare(path: &Path) -> Result<StateDir, StateDirError> {
    let path = absolute(path);
    let euid = nix::unistd::geteuid().as_raw();
    let mode = created_mode(euid);
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(parent)
            .map_err(|source| StateDirError::Create {
                path: path.clone(),
                source,
            })?;
    }
    let created = match std::fs::DirBuilder::new().mode(mode).create(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(source) => return Err(StateDirError::Create { path, source }),
    };
    let unsafe_dir = |reason: String| StateDirError::Unsafe {
        path: path.clone(),
        reason,
    };
    let dir = open_dir(&path).map_err(unsafe_dir)?;
    if created {
        // The umask may have narrowed the mode; never widened it. Set it exactly, on the fd.
        set_mode(&dir, mode).map_err(|e| unsafe_dir(format!("cannot set its mode: {e}")))?;
    } else {
        check_owned(&dir, euid).map_err(unsafe_dir)?;
    }
    let lock = lock(&path)?;
    Ok(StateDir { path, _lock: lock })
}

/// Opens the directory `path` itself, not a link to one.
fn open_dir(path: &Path) -> Result<File, String> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                "it is a symbolic link or not a directory; svcd uses only a real directory \
                 of its own: remove it"
                    .to_string()
            }
            _ => format!("cannot open it: {e}"),
        })?;
    Ok(dir)
}

fn set_mode(dir: &File, mode: u32) -> std::io::Result<()> {
    dir.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Why the opened directory `dir` is not safe for svcd (user `euid`) to write into: another
/// user's, or writable by group or others.
fn check_owned(dir: &File, euid: u32) -> Result<(), String> {
    let meta = dir
        .metadata()
        .map_err(|e| format!("cannot read its owner and mode: {e}"))?;
    if meta.uid() != euid {
        return Err(format!(
            "it belongs to uid {}, not to svcd's uid {euid}: whoever made it could replace \
             svcd's sockets and redirect its logs; remove it (or pass --state-dir DIR, a \
             directory of your own)",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {mode:04o}): they could replace svcd's \
             sockets and redirect its logs; run `chmod go-w` on it, or remove it"
        ));
    }
    Ok(())
}

/// A directory svcd writes into inside the state directory (`logs/`): created with `mode`, or
/// one already there that must be svcd's; one writable by group or others is narrowed to
/// `mode` (on the opened fd). The error says why it cannot be used.
pub fn private_subdir(path: &Path, mode: u32) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let dir = open_dir(path).map_err(|why| format!("{}: {why}", path.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    let meta = dir
        .metadata()
        .map_err(|e| format!("cannot read the owner of {}: {e}", path.display()))?;
    if meta.uid() != euid {
        return Err(format!(
            "{} belongs to uid {}, not to svcd's uid {euid}; svcd does not write its logs \
             there: remove it",
            path.display(),
            meta.uid()
        ));
    }
    let have = meta.mode() & 0o7777;
    if have & 0o022 != 0 {
        set_mode(&dir, mode).map_err(|e| format!("cannot narrow {}: {e}", path.display()))?;
        tracing::warn!(
            "{} was writable by group or others (mode {have:04o}); set it to {mode:04o}",
            path.display()
        );
    }
    Ok(())
}

/// Takes the lock of the state directory `dir`, writing svcd's pid into it.
fn lock(dir: &Path) -> Result<Flock<File>, StateDirError> {
    let path = dir.join(LOCK_FILE);
    let lock_error = |source: std::io::Error| StateDirError::Lock {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(lock_error)?;
    let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            return Err(StateDirError::Locked {
                path: dir.to_path_buf(),
                pid: holder(file),
            });
        }
        Err((_, errno)) => return Err(lock_error(errno.into())),
    };
    locked.set_len(0).map_err(lock_error)?;
    locked.rewind().map_err(lock_error)?;
    locked
        .write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(lock_error)?;
    Ok(locked)
}

/// The pid the lock's holder wrote; it writes it just after taking the lock, so an empty file
/// is read again for a moment.
fn holder(mut file: File) -> Option<u32> {
    let start = Instant::now();
    loop {
        let mut text = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
        if read.is_ok()
            && let Ok(pid) = text.trim().parse()
        {
            return Some(pid);
        }
        if start.elapsed() > Duration::from_millis(500) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state");
        let first = prepare(&path).unwrap();
        match prepare(&path) {
            Err(StateDirError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        prepare(&path).unwrap();
    }

    #[test]
    fn the_lock_is_close_on_exec() {
        let root = tempfile::tempdir().unwrap();
        let state = prepare(&root.path().join("state")).unwrap();
        let flags = nix::fcntl::fcntl(&*state._lock, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn a_group_writable_state_dir_is_refused_with_the_reason() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = prepare(&path).unwrap_err().to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        assert!(!path.join(LOCK_FILE).exists());
    }

    #[test]
    fn a_symlinked_state_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        let link = root.path().join("state");
        std::os::unix::fs::symlink(root.path().join("real"), &link).unwrap();
        let error = prepare(&link).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
    }

    #[test]
    fn a_created_state_dir_has_its_mode_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/state");
        let state = prepare(&path).unwrap();
        assert!(state.path.is_absolute());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, created_mode(nix::unistd::geteuid().as_raw()));
    }

    #[test]
    fn a_logs_dir_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::os::unix::fs::chown(&logs, Some(65534), Some(65534)).unwrap();
        let error = private_subdir(&logs, 0o750).unwrap_err();
        assert!(error.contains("belongs to uid 65534"), "{error}");
    }

    #[test]
    fn a_group_writable_logs_dir_is_narrowed() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_subdir(&logs, 0o750).unwrap();
        let mode = std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
    }
}
