//! A unit's log file: `NAME.log`, rotated to `NAME.log.1` … `NAME.log.KEEP` by size. A name
//! too long for `NAME.log.KEEP` to be a file name has a shorter stem instead ([`file_stem`]).
//!
//! Disk trouble (a full disk, a removed directory, a permission) never stops a unit nor svcd:
//! the lines that cannot be written are counted and dropped from the file (the ring and svcd's
//! stdout still get them), the error is logged once and shown by `status`, and the file is
//! opened again at the first line after a back-off (1 s, doubling up to 30 s). The trouble (and
//! its count of lost lines) ends only when a write succeeds, not when the file opens again: on
//! a full disk, opening works and writing does not. A write cut short (ENOSPC in mid-line)
//! leaves only whole lines: the file is truncated back to its last one, and a file found not
//! ending in a newline gets one before the next line. The clock is given to every call, so the
//! back-off is tested without waiting.

use super::Settings;
use nix::libc;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// First wait before opening a failed file again; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How often an open file is checked for having been removed (`rm -r logs/`).
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest file name (`NAME_MAX` of Linux's file systems).
const NAME_MAX: usize = 255;
/// What the longest rotated file name adds to the stem: `.log.` and the digits of a `u32`.
const SUFFIX_MAX: usize = ".log.".len() + 10;

#[derive(Debug)]
pub struct LogFile {
    dir: PathBuf,
    /// The unit's name, for messages.
    name: String,
    /// The files' names without `.log`: see [`file_stem`].
    stem: String,
    settings: Settings,
    file: Option<File>,
    /// Bytes in the current file: where a write cut short is cut back to.
    size: u64,
    /// The file was found ending in the middle of a line: a newline goes before the next.
    mend: bool,
    trouble: Option<Trouble>,
    /// When the open file was last checked for still having a name.
    checked: Option<Instant>,
    /// Tests: open `/dev/full` instead of the file, a disk where opening works and writing
    /// fails with ENOSPC (the real file is never a device: [`LogFile::open`] refuses one).
    #[cfg(test)]
    full_disk: bool,
}

/// The file cannot be written.
#[derive(Debug)]
struct Trouble {
    message: String,
    failures: u32,
    retry_at: Instant,
    /// Lines not written since the trouble began.
    lost: u64,
}

impl LogFile {
    pub fn new(dir: &Path, name: &str, settings: Settings) -> LogFile {
        LogFile {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            stem: file_stem(name),
            settings,
            file: None,
            size: 0,
            mend: false,
            trouble: None,
            checked: None,
            #[cfg(test)]
            full_disk: false,
        }
    }

    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// `NAME.log` for 0, `NAME.log.N` for N.
    pub fn path(&self, index: u32) -> PathBuf {
        match index {
            0 => self.dir.join(format!("{}.log", self.stem)),
            n => self.dir.join(format!("{}.log.{n}", self.stem)),
        }
    }

    /// Every file that may hold lines, newest first.
    pub fn paths(&self) -> Vec<PathBuf> {
        (0..=self.settings.keep).map(|i| self.path(i)).collect()
    }

    pub fn error(&self) -> Option<String> {
        self.trouble.as_ref().map(|t| {
            format!(
                "{}; {} lines not written to the file (they are in svcd's stdout)",
                t.message, t.lost
            )
        })
    }

    /// Writes `lines` (whole `STAMP STREAM TEXT\n` lines) as they are, in one `write` unless
    /// the file must rotate first: a line that would make it grow past `max_size` begins the
    /// next file.
    pub fn write_lines(&mut self, lines: &[u8], now: Instant) {
        let mut rest = lines;
        let mut rotated = false;
        while !rest.is_empty() {
            if !self.is_open(now) {
                if let Some(trouble) = &mut self.trouble {
                    trouble.lost += count_lines(rest);
                }
                return;
            }
            let room = self.settings.max_size.saturating_sub(self.size);
            let mut take = match usize::try_from(room) {
                Ok(room) if room < rest.len() => {
                    memchr::memrchr(b'\n', &rest[..room]).map_or(0, |at| at + 1)
                }
                _ => rest.len(),
            };
            if take == 0 {
                if self.size > 0 && !rotated {
                    self.rotate(now);
                    rotated = true;
                    continue;
                }
                // A line longer than a whole file: alone in one.
                take = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
            }
            rotated = false;
            let (piece, next) = rest.split_at(take);
            if !self.write(piece, now) {
                if let Some(trouble) = &mut self.trouble {
                    trouble.lost += count_lines(next);
                }
                return;
            }
            rest = next;
        }
    }

    /// Writes whole lines to the open file: whether they all made it.
    fn write(&mut self, piece: &[u8], now: Instant) -> bool {
        let Some(file) = &mut self.file else {
            return false;
        };
        let mut result = Ok(());
        if self.mend {
            // A line cut short: the next one starts on a line of its own.
            result = match write_all(file, b"\n") {
                (_, Ok(())) => {
                    self.mend = false;
                    self.size += 1;
                    Ok(())
                }
                (_, Err(e)) => Err((e, count_lines(piece))),
            };
        }
        let written = self.size;
        let result = result.and_then(|()| {
            let (done, result) = write_all(file, piece);
            self.size += done as u64;
            result.map_err(|e| {
                // Keep the whole lines that made it; cut the piece of one that did not.
                let whole = memchr::memrchr(b'\n', &piece[..done]).map_or(0, |at| at + 1);
                if whole < done {
                    // Should this fail too, the next open finds the piece and ends it.
                    let _ = file.set_len(written + whole as u64);
                }
                self.size = written + whole as u64;
                (e, count_lines(&piece[whole..]))
            })
        });
        match result {
            Ok(()) => {
                if let Some(trouble) = self.trouble.take() {
                    tracing::info!(unit = %self.name, lost = trouble.lost, "log file {} is writable again; {} lines could not be written to it", self.path(0).display(), trouble.lost);
                }
                true
            }
            Err((e, lost)) => {
                let path = self.path(0);
                self.fail(now, format!("cannot write {}: {e}", path.display()));
                if let Some(trouble) = &mut self.trouble {
                    trouble.lost += lost;
                }
                false
            }
        }
    }

    /// Whether lines can go to a file now: opens it when needed and the back-off allows.
    fn is_open(&mut self, now: Instant) -> bool {
        if self.file.is_some() {
            let due = self.checked.is_none_or(|at| now >= at + CHECK_EVERY);
            if !due {
                return true;
            }
            self.checked = Some(now);
            let linked = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .is_some_and(|m| m.nlink() > 0);
            if linked {
                return true;
            }
            self.file = None;
            tracing::warn!(unit = %self.name, "log file {} was removed; creating it again", self.path(0).display());
        }
        if self.trouble.as_ref().is_some_and(|t| now < t.retry_at) {
            return false;
        }
        // The trouble, if any, stays until a write succeeds.
        match self.open() {
            Ok((file, size)) => {
                self.file = Some(file);
                self.size = size;
                self.checked = Some(now);
                self.mend = size > 0 && !ends_a_line(self.file.as_ref(), size);
                true
            }
            Err(message) => {
                self.fail(now, message);
                false
            }
        }
    }

    /// Opens `NAME.log` for appending, never through a link: the log directory is svcd's and
    /// not writable by others (checked at each open), and a link or a file with other names
    /// planted as `NAME.log` is refused rather than followed to someone else's file.
    fn open(&self) -> Result<(File, u64), String> {
        #[cfg(test)]
        if self.full_disk {
            let full = OpenOptions::new().append(true).open("/dev/full");
            return full.map(|f| (f, 0)).map_err(|e| e.to_string());
        }
        crate::daemon::statedir::private_subdir(&self.dir, 0o750)
            .map_err(|why| format!("cannot create the log directory: {why}"))?;
        let path = self.path(0);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640)
            // A FIFO planted there must not block svcd: O_NONBLOCK, and only a regular file.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => format!(
                    "cannot open {}: it is a symbolic link, which svcd does not follow; remove it",
                    path.display()
                ),
                _ => format!("cannot open {}: {e}", path.display()),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        if !meta.is_file() || meta.nlink() > 1 {
            return Err(format!(
                "cannot open {}: not a regular file of its own (a special file or a hard link); \
                 remove it",
                path.display()
            ));
        }
        Ok((file, meta.len()))
    }

    /// `NAME.log` → `NAME.log.1` → … → `NAME.log.KEEP` → gone, then a new `NAME.log`.
    fn rotate(&mut self, now: Instant) {
        self.file = None;
        self.size = 0;
        let keep = self.settings.keep;
        let result = (|| -> std::io::Result<()> {
            remove_if_there(&self.path(keep))?;
            for index in (0..keep).rev() {
                match std::fs::rename(self.path(index), self.path(index + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.fail(
                now,
                format!("cannot rotate {}: {e}", self.path(0).display()),
            );
        }
    }

    fn fail(&mut self, now: Instant, message: String) {
        self.file = None;
        let failures = self.trouble.as_ref().map_or(0, |t| t.failures) + 1;
        let wait = FIRST_RETRY
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_RETRY);
        if self.trouble.as_ref().is_none_or(|t| t.message != message) {
            tracing::error!(unit = %self.name, "{message}; its lines go to svcd's stdout only, trying again in {}s", wait.as_secs());
        }
        let lost = self.trouble.as_ref().map_or(0, |t| t.lost);
        self.trouble = Some(Trouble {
            message,
            failures,
            retry_at: now + wait,
            lost,
        });
    }
}

/// The stem of a unit's log files: its name, unless `NAME.log.KEEP` could then be too long a
/// file name (a name of more than 240 bytes), which could never rotate: then its first bytes, `-`
/// and a hash of the whole name (16 hex digits), so that every rotated name fits and two long
/// names sharing their start still have files of their own.
pub fn file_stem(name: &str) -> String {
    if name.len() + SUFFIX_MAX <= NAME_MAX {
        return name.to_string();
    }
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut end = NAME_MAX - SUFFIX_MAX - "-0123456789abcdef".len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash:016x}", &name[..end])
}

/// Writes `bytes` until done or an error: how many bytes were written, and the error.
fn write_all(file: &mut File, bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let mut done = 0;
    while done < bytes.len() {
        match file.write(&bytes[done..]) {
            Ok(0) => return (done, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// Lines in `bytes` (each ends with a newline).
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Whether the file's last byte (at `size - 1`) is a newline; a file that cannot be read says so.
fn ends_a_line(file: Option<&File>, size: u64) -> bool {
    let mut last = [0u8];
    file.is_none_or(|f| f.read_exact_at(&mut last, size - 1).is_err() || last[0] == b'\n')
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl LogFile {
        fn push_line(&mut self, stamp: &str, stream: &str, text: &[u8], now: Instant) {
            let mut line = format!("{stamp} {stream} ").into_bytes();
            line.extend_from_slice(text);
            line.push(b'\n');
            self.write_lines(&line, now);
        }
    }

    fn settings(max_size: u64, keep: u32) -> Settings {
        Settings { max_size, keep }
    }

    #[test]
    fn rotation_bounds_each_file_and_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::new(dir.path(), "u", settings(100, 2));
        let now = Instant::now();
        for i in 0..100 {
            log.push_line("T", "out", format!("line {i:03}").as_bytes(), now);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["u.log", "u.log.1", "u.log.2"]);
        for name in &names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 100 && len > 0, "{name}: {len}");
        }
        let newest = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        assert!(newest.ends_with("T out line 099\n"), "{newest}");
        let older = std::fs::read_to_string(dir.path().join("u.log.1")).unwrap();
        let first_new = newest.lines().next().unwrap();
        let last_old = older.lines().last().unwrap();
        assert!(last_old < first_new, "{last_old} then {first_new}");
    }

    /// Lines written in one batch rotate where they must, at a line's end; a line longer than a
    /// whole file is alone in one.
    #[test]
    fn a_batch_rotates_at_line_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::new(dir.path(), "u", settings(100, 10));
        let now = Instant::now();
        let mut batch = Vec::new();
        for i in 0..30 {
            batch.extend_from_slice(format!("T out line {i:03}\n").as_bytes());
        }
        batch.extend_from_slice(format!("T out {}\n", "y".repeat(150)).as_bytes());
        batch.extend_from_slice(b"T out after\n");
        log.write_lines(&batch, now);
        assert_eq!(log.error(), None);
        let mut all = String::new();
        for index in (0..=10).rev() {
            let Ok(text) = std::fs::read_to_string(log.path(index)) else {
                continue;
            };
            assert!(text.ends_with('\n'), "{index}: {text}");
            assert!(
                text.len() <= 100 || text.lines().count() == 1,
                "{index}: {} bytes",
                text.len()
            );
            all.push_str(&text);
        }
        assert_eq!(all.as_bytes(), &batch[..]);
        let long = std::fs::read_to_string(log.path(1)).unwrap();
        assert!(long.starts_with("T out yyy") && long.lines().count() == 1);
    }

    #[test]
    fn disk_trouble_backs_off_then_recovers() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        std::fs::write(&dir, "not a directory").unwrap();
        let mut log = LogFile::new(&dir, "u", settings(1 << 20, 1));
        let t0 = Instant::now();
        log.push_line("T", "out", b"lost", t0);
        let error = log.error().expect("an error");
        assert!(error.contains("cannot create the log directory"), "{error}");
        assert!(error.contains("1 lines not written"), "{error}");
        std::fs::remove_file(&dir).unwrap();
        // Before the back-off is over, no retry.
        log.push_line("T", "out", b"lost too", t0 + Duration::from_millis(500));
        assert!(log.error().is_some_and(|e| e.contains("2 lines")));
        assert!(!dir.exists());
        log.push_line("T", "out", b"kept", t0 + Duration::from_secs(1));
        assert_eq!(log.error(), None);
        let text = std::fs::read_to_string(dir.join("u.log")).unwrap();
        assert_eq!(text, "T out kept\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("u.log")).unwrap().permissions();
        assert_eq!(mode.mode() & 0o007, 0, "never world-readable");
    }

    #[test]
    fn a_disk_that_stays_full_keeps_counting_lost_lines() {
        let dir = tempfile::tempdir().unwrap();
        // Opening works, writing fails with ENOSPC: a full disk.
        let mut log = LogFile::new(dir.path(), "u", settings(1 << 20, 1));
        log.full_disk = true;
        let t0 = Instant::now();
        let lost = |log: &LogFile| log.error().expect("still in trouble");
        log.push_line("T", "out", b"a", t0);
        assert!(lost(&log).contains("; 1 lines"), "{}", lost(&log));
        // The retries open the file again, and writing still fails: the count goes on.
        for (at, count) in [(1, 3), (3, 5)] {
            let now = t0 + Duration::from_secs(at);
            log.push_line("T", "out", b"b", now);
            log.push_line("T", "out", b"c", now);
            assert!(lost(&log).contains("No space left"), "{}", lost(&log));
            assert!(
                lost(&log).contains(&format!("; {count} lines")),
                "{}",
                lost(&log)
            );
        }
        log.full_disk = false;
        let now = t0 + Duration::from_secs(7);
        log.push_line("T", "out", b"kept", now);
        assert_eq!(log.error(), None);
        let text = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        assert_eq!(text, "T out kept\n");
    }

    #[test]
    fn a_line_cut_short_is_ended_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.log"), "T out whole\nT out cut sh").unwrap();
        let mut log = LogFile::new(dir.path(), "u", settings(1 << 20, 1));
        let now = Instant::now();
        log.push_line("T", "out", b"next", now);
        let text = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        assert_eq!(text, "T out whole\nT out cut sh\nT out next\n");
    }

    #[test]
    fn a_name_too_long_for_rotated_files_still_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let long = "u".repeat(250);
        let mut log = LogFile::new(dir.path(), &long, settings(100, 2));
        let now = Instant::now();
        for i in 0..20 {
            log.push_line("T", "out", format!("line {i:03}").as_bytes(), now);
        }
        assert_eq!(log.error(), None);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let stem = file_stem(&long);
        let expected = [0, 1, 2].map(|i| {
            log.path(i)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        });
        assert_eq!(names, expected);
        assert!(names[2].starts_with(&stem[..200]) && names[2].len() <= NAME_MAX);
        assert_ne!(file_stem(&"u".repeat(251)), stem);
        assert_eq!(file_stem("chat"), "chat");
        assert_eq!(file_stem(&"é".repeat(120)), "é".repeat(120));
        // Cut at a character's boundary.
        assert_eq!(file_stem(&"é".repeat(121)).len(), 222 + 17);
    }

    #[test]
    fn a_removed_file_is_created_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        let mut log = LogFile::new(&dir, "u", settings(1 << 20, 1));
        let t0 = Instant::now();
        log.push_line("T", "out", b"one", t0);
        std::fs::remove_dir_all(&dir).unwrap();
        let later = t0 + CHECK_EVERY;
        log.push_line("T", "out", b"two", later);
        assert_eq!(
            std::fs::read_to_string(dir.join("u.log")).unwrap(),
            "T out two\n"
        );
    }
}
