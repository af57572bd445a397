//! Unit logs: every line a unit prints, stamped with time and stream, in `<state-dir>/logs`.
//!
//! # Layout
//!
//! - [`capture`]: reads one run's stdout and stderr pipes and cuts them into bounded lines.
//! - [`mod@file`]: the log file of a unit: append, rotate by size, survive disk trouble.
//! - [`tail`]: the last lines of a unit's log files, for `svc logs -n`.
//! - [`output`]: svcd's own stdout and stderr, which never fail it; escaping for terminals.
//!
//! Here: [`UnitLog`], where a unit's lines go (file, the ring of last lines that `status`
//! shows, svcd's stdout, followers), and the [`Registry`] of them by unit name.
//!
//! A line in the file reads `2026-11-25T13:10:02.123Z out the text`: RFC 3339 time (UTC, ms),
//! the stream (`out` or `err`), the text as printed. Lines longer than [`MAX_LINE`] are split.
//! svcd's own events about the unit are in the same file, with the stream `svcd`
//! (`2026-11-25T13:10:02.123Z svcd running, pid 812: started with svcd`), as `journalctl -u`
//! shows systemd's lines beside the service's: [`Registry::note`], [`describe`].

pub mod capture;
pub mod file;
pub mod output;
pub mod tail;

pub use output::{escape_controls, escape_controls_into, stdout_is_null};

use crate::supervisor::UnitStatus;
use file::LogFile;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc;

/// Longest piece written as one line; a longer line is split into pieces this long, so what a
/// unit prints never makes svcd hold more than this per stream.
pub const MAX_LINE: usize = 16 * 1024;

/// Lines kept in memory per unit for `status`.
pub const RING_LINES: usize = 10;

/// Longest line kept in the ring (the whole line is in the file).
const RING_LINE_MAX: usize = 1024;

/// Bytes of a line's text kept in the ring: 3 more than shown, so that a character cut at the
/// end of what is kept lies past [`RING_LINE_MAX`] once the text is made valid UTF-8 (which
/// never shortens it) and a line shows as if the whole of it had been converted.
const RING_KEEP: usize = RING_LINE_MAX + 3;

/// Whether and how a unit's lines are copied to svcd's stdout (a container's log, PID 1 mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Not copied: svcd's stdout is /dev/null.
    Off,
    /// As printed: a pipe or a file, read by a program (`docker logs`, a collector).
    Raw,
    /// With their control characters escaped ([`escape_controls`]): svcd's stdout is a
    /// terminal, whose screen a unit's escape sequences must not rewrite.
    Escaped,
}

impl Forward {
    /// `Off` unless `forward`; then `Escaped` if svcd's stdout is a terminal, else `Raw`.
    pub fn for_stdout(forward: bool) -> Forward {
        match (forward, output::stdout_is_terminal()) {
            (false, _) => Forward::Off,
            (true, true) => Forward::Escaped,
            (true, false) => Forward::Raw,
        }
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
    /// svcd's own words about the unit (started, exited, restarting, ...).
    Svcd,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
            Stream::Svcd => "svcd",
        }
    }
}

/// Rotation of one unit's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A file never grows past this (unless a single line is longer).
    pub max_size: u64,
    /// Rotated files kept: `NAME.log.1` (newest) … `NAME.log.KEEP`.
    pub keep: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_size: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// A unit's log, shared by the capture of each of its runs (which write to it) and the daemon
/// and control connections (which read the ring and follow). Everything runs on svcd's one
/// thread, so the lock is never contended; it is a `Mutex` only because tokio tasks must be
/// `Send`.
pub type SharedLog = Arc<Mutex<UnitLog>>;

/// Locks `log`; a panic elsewhere while holding it leaves data that is still usable.
pub fn lock(log: &SharedLog) -> MutexGuard<'_, UnitLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lines for followers: what one read of a unit's pipes brought, formatted as in the file.
#[derive(Debug)]
pub struct Batch {
    pub unit: String,
    /// `TIME STREAM TEXT\n` lines.
    pub text: Vec<u8>,
    pub lines: u64,
}

/// A batch as one follower gets it.
#[derive(Debug, Clone)]
pub struct Followed {
    /// Lines this follower missed just before this batch, its queue being full.
    pub skipped: u64,
    pub batch: Arc<Batch>,
}

/// A follower: a `svc logs -f` connection.
#[derive(Debug)]
struct Follower {
    tx: mpsc::Sender<Followed>,
    skipped: u64,
}

/// Where one unit's lines go.
#[derive(Debug)]
pub struct UnitLog {
    name: String,
    file: LogFile,
    /// The last lines, formatted as in the file, for `status`: as read (bytes, not checked for
    /// UTF-8 until `status` asks, since a flood of lines is mostly never shown), each text cut
    /// at [`RING_KEEP`] bytes.
    ring: VecDeque<Vec<u8>>,
    followers: Vec<Follower>,
    /// Copy lines to svcd's stdout as `name | line`, and how.
    forward: Forward,
    /// `name | line\n` lines waiting for [`UnitLog::flush`].
    stdout: Vec<u8>,
    /// The last copy to svcd's stdout had to leave bytes out (said once per stall).
    stdout_stalled: bool,
    /// `STAMP STREAM TEXT\n` lines waiting for [`UnitLog::flush`]: the one copy of a read's
    /// lines, written to the file as it is, the ring's last lines taken from it, and the
    /// followers' batch.
    batch: Vec<u8>,
    /// Lines in `batch`.
    batch_lines: u64,
    /// The last pushes into `batch` (by push number modulo [`RING_LINES`]; each brought a line
    /// at least): the ring is filled once per flush, with the batch's last lines only, found
    /// from these instead of noted at every line of a flood.
    pushes: [Push; RING_LINES],
    /// Pushes into `batch` since the last flush.
    push_count: u64,
    /// `STAMP STREAM ` of the lines being pushed.
    head: Vec<u8>,
}

/// A batch is written once it holds this much, whatever the caller: a flood is written in
/// pieces of up to this size (fewer, larger writes: ext4 charges each `write` a journalled
/// time update besides its pages).
const BATCH_MAX: usize = 1024 * 1024;

/// What a unit's batch keeps between flushes; a larger one goes back to [`SPARE`].
const BATCH_KEPT: usize = 64 * 1024;

thread_local! {
    /// The one large batch, shared by every unit (svcd has one thread): a flooding unit's batch
    /// grows to [`BATCH_MAX`] and more, and is handed back here at each flush, so that svcd
    /// holds one large batch whatever the number of units that ever flooded.
    static SPARE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl UnitLog {
    pub fn new(dir: &Path, name: &str, settings: Settings, forward: Forward) -> UnitLog {
        UnitLog {
            name: name.to_string(),
            file: LogFile::new(dir, name, settings),
            ring: VecDeque::with_capacity(RING_LINES),
            followers: Vec::new(),
            forward,
            stdout: Vec::new(),
            stdout_stalled: false,
            batch: Vec::new(),
            batch_lines: 0,
            pushes: [Push::default(); RING_LINES],
            push_count: 0,
            head: Vec::new(),
        }
    }

    /// New rotation settings (a unit file changed); they apply from the next line.
    pub fn set_settings(&mut self, settings: Settings) {
        self.file.set_settings(settings);
    }

    /// One line (without its newline), read at `stamp` (RFC 3339). Call [`UnitLog::flush`] after
    /// a batch.
    pub fn push_line(&mut self, stream: Stream, stamp: &str, text: &[u8], now: Instant) {
        self.push_lines(stream, stamp, now, |lines| lines.push(text));
    }

    /// The lines `feed` gives to [`Lines::push`], all read at `stamp` (RFC 3339) from `stream`.
    /// Call [`UnitLog::flush`] after a batch.
    pub fn push_lines(
        &mut self,
        stream: Stream,
        stamp: &str,
        now: Instant,
        feed: impl FnOnce(&mut Lines<'_>),
    ) {
        // `STAMP STREAM `, built once for all the lines.
        self.head.clear();
        self.head.extend_from_slice(stamp.as_bytes());
        self.head.push(b' ');
        self.head.extend_from_slice(stream.as_str().as_bytes());
        self.head.push(b' ');
        // svcd's own lines are on its stderr already.
        let forward = match stream {
            Stream::Svcd => Forward::Off,
            _ => self.forward,
        };
        if self.batch.is_empty() && self.batch.capacity() <= BATCH_KEPT {
            SPARE.with_borrow_mut(|spare| {
                if spare.capacity() > self.batch.capacity() {
                    std::mem::swap(spare, &mut self.batch);
                }
            });
        }
        let (start, before) = (self.batch.len(), self.batch_lines);
        let mut lines = Lines {
            head: &self.head,
            batch: &mut self.batch,
            count: &mut self.batch_lines,
            name: &self.name,
            forward,
            stdout: &mut self.stdout,
        };
        feed(&mut lines);
        if self.batch_lines > before {
            self.pushes[(self.push_count % RING_LINES as u64) as usize] = Push {
                start,
                end: self.batch.len(),
                head: self.head.len(),
                lines: self.batch_lines - before,
            };
            self.push_count += 1;
        }
        if self.batch.len() >= BATCH_MAX {
            self.flush(now);
        }
    }

    fn send_to_followers(&mut self) {
        if self.followers.is_empty() {
            return;
        }
        let batch = Arc::new(Batch {
            unit: self.name.clone(),
            text: self.batch.clone(),
            lines: self.batch_lines,
        });
        self.followers.retain_mut(|follower| {
            let followed = Followed {
                skipped: follower.skipped,
                batch: batch.clone(),
            };
            match follower.tx.try_send(followed) {
                Ok(()) => {
                    follower.skipped = 0;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    follower.skipped += batch.lines;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Where the batch's last lines (at most [`RING_LINES`]) are, oldest first, each without
    /// its newline and its text cut at [`RING_KEEP`] bytes.
    fn batch_tail(&self) -> Vec<std::ops::Range<usize>> {
        let mut parts = Vec::with_capacity(RING_LINES);
        let pushes = self.push_count.min(RING_LINES as u64);
        for number in (self.push_count - pushes..self.push_count).rev() {
            let push = self.pushes[(number % RING_LINES as u64) as usize];
            let mut end = push.end;
            for _ in 0..push.lines {
                if parts.len() == RING_LINES {
                    break;
                }
                // One line: its text may hold a newline (svcd's notes); several: they do not.
                let start = match push.lines {
                    1 => push.start,
                    _ => memchr::memrchr(b'\n', &self.batch[push.start..end - 1])
                        .map_or(push.start, |at| push.start + at + 1),
                };
                parts.push(start..(end - 1).min(start + push.head + RING_KEEP));
                end = start;
            }
        }
        parts.reverse();
        parts
    }

    /// Writes what the last lines left buffered: to the file, the ring, the followers, and
    /// svcd's stdout.
    pub fn flush(&mut self, now: Instant) {
        if !self.batch.is_empty() {
            self.file.write_lines(&self.batch, now);
            for part in self.batch_tail() {
                let mut line = match self.ring.len() {
                    RING_LINES.. => self.ring.pop_front().unwrap_or_default(),
                    _ => Vec::new(),
                };
                line.clear();
                line.extend_from_slice(&self.batch[part]);
                self.ring.push_back(line);
            }
            self.send_to_followers();
            self.batch.clear();
            self.batch_lines = 0;
            self.push_count = 0;
            if self.batch.capacity() > BATCH_KEPT {
                SPARE.with_borrow_mut(|spare| {
                    if spare.capacity() < self.batch.capacity() {
                        std::mem::swap(spare, &mut self.batch);
                    }
                });
                // Two floods at once (the spare was taken): keep one large batch only.
                if self.batch.capacity() > BATCH_KEPT {
                    self.batch = Vec::new();
                }
            }
        }
        if !self.stdout.is_empty() {
            let dropped = output::write_stdout_without_blocking(&self.stdout);
            if dropped > 0 && !self.stdout_stalled {
                tracing::warn!(unit = %self.name, "svcd's stdout is not being read: {dropped} bytes of the unit's output left out there (its log file has them)");
            }
            self.stdout_stalled = dropped > 0;
            self.stdout.clear();
            if self.stdout.capacity() > 2 * MAX_LINE {
                self.stdout.shrink_to(MAX_LINE);
            }
        }
    }

    /// The last lines, oldest first, as in the file; a text longer than [`RING_LINE_MAX`] bytes
    /// is cut there.
    pub fn last_lines(&self) -> Vec<String> {
        let pending = self.batch_lines.min(RING_LINES as u64) as usize;
        let flushed = self.ring.len().saturating_sub(RING_LINES - pending);
        self.ring
            .iter()
            .skip(flushed)
            .map(Vec::as_slice)
            .chain(self.batch_tail().into_iter().map(|part| &self.batch[part]))
            .map(|line| {
                let lossy = String::from_utf8_lossy(line);
                // The stamp and stream are ASCII: the text begins after the second space.
                let head = line
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == b' ')
                    .nth(1)
                    .map_or(line.len(), |(at, _)| at + 1);
                truncate(&lossy, head + RING_LINE_MAX).to_string()
            })
            .collect()
    }

    /// Why the log file cannot be written, while it cannot.
    pub fn error(&self) -> Option<String> {
        self.file.error()
    }

    /// Sends every line from now on to `tx`.
    pub fn follow(&mut self, tx: mpsc::Sender<Followed>) {
        self.followers.push(Follower { tx, skipped: 0 });
    }

    /// The files, newest first: `NAME.log`, `NAME.log.1`, …
    pub fn paths(&self) -> Vec<PathBuf> {
        self.file.paths()
    }
}

/// Where one [`UnitLog::push_lines`] put its lines in the batch.
#[derive(Debug, Clone, Copy, Default)]
struct Push {
    start: usize,
    end: usize,
    /// The length of `STAMP STREAM ` before each line's text.
    head: usize,
    lines: u64,
}

/// Where [`UnitLog::push_lines`] puts the lines of one read: each is copied once, after the
/// stamp and stream written for all of them.
pub struct Lines<'a> {
    /// `STAMP STREAM `.
    head: &'a [u8],
    batch: &'a mut Vec<u8>,
    count: &'a mut u64,
    name: &'a str,
    forward: Forward,
    stdout: &'a mut Vec<u8>,
}

impl Lines<'_> {
    /// One line, without its newline.
    pub fn push(&mut self, text: &[u8]) {
        self.batch.reserve(self.head.len() + text.len() + 1);
        self.batch.extend_from_slice(self.head);
        self.batch.extend_from_slice(text);
        self.batch.push(b'\n');
        *self.count += 1;
        if self.forward != Forward::Off {
            self.stdout.extend_from_slice(self.name.as_bytes());
            self.stdout.extend_from_slice(b" | ");
            match self.forward {
                Forward::Escaped => escape_controls_into(text, self.stdout),
                _ => self.stdout.extend_from_slice(text),
            }
            self.stdout.push(b'\n');
        }
    }
}

/// svcd's line about a unit that changed, for [`Registry::note`]: its state, pid and why, and
/// the exit that brought it there: `running, pid 812: started with svcd`, `exited with code 3;
/// backoff: restarting in 200ms`, `stopping, pid 812: health check failed: ...`, `killed by
/// SIGKILL; failed: start limit hit: 11 starts within 5m`.
pub fn describe(status: &UnitStatus) -> String {
    let pid = status
        .pid
        .map(|pid| format!(", pid {pid}"))
        .unwrap_or_default();
    let state = format!("{}{pid}: {}", status.state, status.reason);
    match &status.last_exit {
        // The exit happened as this state began: it is why the unit is here.
        Some(exit) if exit.at >= status.since && !status.reason.contains(&exit.reason) => {
            format!("{}; {state}", exit.reason)
        }
        _ => state,
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Every unit's log by name, shared by the daemon (captures) and control connections
/// (`svc logs`). A log is created at a unit's first run, or when someone follows it.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

#[derive(Debug)]
struct RegistryInner {
    dir: PathBuf,
    defaults: Settings,
    forward: Forward,
    logs: Mutex<HashMap<String, SharedLog>>,
}

impl Registry {
    /// Logs in `dir` (created when the first line is written), rotated by `defaults` unless a
    /// unit says otherwise; `forward`: copy lines to svcd's stdout (escaped if it is a
    /// terminal).
    pub fn new(dir: PathBuf, defaults: Settings, forward: bool) -> Registry {
        Registry {
            inner: Arc::new(RegistryInner {
                dir,
                defaults,
                forward: Forward::for_stdout(forward),
                logs: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn defaults(&self) -> Settings {
        self.inner.defaults
    }

    /// The log of `name`, created if needed.
    pub fn log(&self, name: &str) -> SharedLog {
        let mut logs = self
            .inner
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        logs.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(UnitLog::new(
                    &self.inner.dir,
                    name,
                    self.inner.defaults,
                    self.inner.forward,
                )))
            })
            .clone()
    }

    /// Writes svcd's `message` about unit `name` into its log (file, the last lines, followers;
    /// not svcd's stdout: its stderr has it), stamped now, with the stream `svcd`.
    pub fn note(&self, name: &str, message: &str) {
        let log = self.log(name);
        let mut log = lock(&log);
        let now = Instant::now();
        let stamp = crate::time::rfc3339(std::time::SystemTime::now());
        log.push_line(Stream::Svcd, &stamp, message.as_bytes(), now);
        log.flush(now);
    }

    /// The log of `name` if it was ever created.
    pub fn find(&self, name: &str) -> Option<SharedLog> {
        let logs = self
            .inner
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        logs.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = UnitLog::new(dir.path(), "u", Settings::default(), Forward::Off);
        let now = Instant::now();
        for i in 0..25 {
            log.push_line(Stream::Out, "T", format!("line {i}").as_bytes(), now);
        }
        log.push_line(Stream::Err, "T", &vec![b'x'; 5000], now);
        log.flush(now);
        let lines = log.last_lines();
        assert_eq!(lines.len(), RING_LINES);
        assert_eq!(lines[0], "T out line 16");
        assert_eq!(lines[8], "T out line 24");
        assert!(lines[9].starts_with("T err xxx"));
        assert!(lines[9].len() <= RING_LINE_MAX + 6);
        let text = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        assert_eq!(text.lines().count(), 26);
        assert!(text.starts_with("T out line 0\n"), "{text:.40}");
    }

    /// The lines of one read go into the file each once, after the one stamp of their read; the
    /// ring, filled at the flush, and `status` before it, show the last ten.
    #[test]
    fn the_lines_of_one_read_share_its_stamp_and_the_ring_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = UnitLog::new(dir.path(), "u", Settings::default(), Forward::Off);
        let now = Instant::now();
        log.push_line(Stream::Out, "S0", b"before", now);
        log.flush(now);
        log.push_lines(Stream::Err, "S1", now, |lines| {
            for i in 0..25 {
                lines.push(format!("line {i}").as_bytes());
            }
        });
        let expected: Vec<String> = (15..25).map(|i| format!("S1 err line {i}")).collect();
        assert_eq!(log.last_lines(), expected, "before the flush");
        log.flush(now);
        assert_eq!(log.last_lines(), expected, "after the flush");
        log.push_lines(Stream::Out, "S2", now, |lines| lines.push(b"last"));
        let mut shifted = expected[1..].to_vec();
        shifted.push("S2 out last".into());
        assert_eq!(log.last_lines(), shifted, "before the next flush");
        log.flush(now);
        assert_eq!(log.last_lines(), shifted);
        // A line pushed alone is one line of the ring, even with a newline in it.
        log.push_line(Stream::Svcd, "S3", b"two\nparts", now);
        assert_eq!(log.last_lines()[9], "S3 svcd two\nparts");
        log.flush(now);
        assert_eq!(log.last_lines()[8..], ["S2 out last", "S3 svcd two\nparts"]);
        let text = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        let mut file = vec!["S0 out before".to_string()];
        file.extend((0..25).map(|i| format!("S1 err line {i}")));
        file.extend(["S2 out last".into(), "S3 svcd two".into(), "parts".into()]);
        assert_eq!(text.lines().collect::<Vec<_>>(), file);
    }

    /// A flood's large batch is svcd's one shared buffer between flushes, not a unit's: units
    /// that flooded once keep no more than [`BATCH_KEPT`] each.
    #[test]
    fn a_large_batch_is_handed_back_at_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let line = vec![b'x'; 99];
        let mut units: Vec<UnitLog> = (0..3)
            .map(|i| {
                UnitLog::new(
                    dir.path(),
                    &format!("u{i}"),
                    Settings::default(),
                    Forward::Off,
                )
            })
            .collect();
        for log in &mut units {
            log.push_lines(Stream::Out, "T", now, |lines| {
                for _ in 0..(BATCH_MAX / 200) {
                    lines.push(&line);
                }
            });
            assert!(log.batch.capacity() > BATCH_KEPT);
            log.flush(now);
            assert!(log.batch.capacity() <= BATCH_KEPT);
        }
        assert!(SPARE.with_borrow(|spare| spare.capacity()) > BATCH_KEPT);
        let size = std::fs::metadata(dir.path().join("u2.log")).unwrap().len();
        assert_eq!(size, (BATCH_MAX / 200 * 106) as u64);
    }

    #[test]
    fn ring_lines_are_cut_as_if_the_whole_line_were_converted() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = UnitLog::new(dir.path(), "u", Settings::default(), Forward::Off);
        let now = Instant::now();
        // Two-byte characters: one straddles the byte where the ring stops keeping; invalid
        // bytes become U+FFFD (three bytes each).
        let mut lines = vec!["é".repeat(600).into_bytes(), b"ok \xff done".to_vec()];
        let mut invalid = vec![0xffu8; 400];
        invalid.extend("é".repeat(300).as_bytes());
        lines.push(invalid);
        for line in &lines {
            log.push_line(Stream::Out, "T", line, now);
        }
        let whole: Vec<String> = lines
            .iter()
            .map(|line| {
                let lossy = String::from_utf8_lossy(line);
                format!("T out {}", truncate(&lossy, RING_LINE_MAX))
            })
            .collect();
        assert_eq!(log.last_lines(), whole);
        assert_eq!(log.last_lines()[0].len(), "T out ".len() + RING_LINE_MAX);
    }

    #[test]
    fn slow_followers_skip_lines_and_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = UnitLog::new(dir.path(), "u", Settings::default(), Forward::Off);
        let (tx, mut rx) = mpsc::channel(2);
        log.follow(tx);
        let now = Instant::now();
        for i in 0..5 {
            log.push_line(Stream::Out, "T", format!("{i}").as_bytes(), now);
            log.push_line(Stream::Err, "T", format!("e{i}").as_bytes(), now);
            log.flush(now);
        }
        let text = |f: Followed| String::from_utf8(f.batch.text.clone()).unwrap();
        assert_eq!(
            rx.try_recv().map(text).ok().as_deref(),
            Some("T out 0\nT err e0\n")
        );
        assert_eq!(
            rx.try_recv().map(text).ok().as_deref(),
            Some("T out 1\nT err e1\n")
        );
        log.push_line(Stream::Out, "T", b"5", now);
        log.flush(now);
        let next = rx.try_recv().unwrap();
        assert_eq!(next.skipped, 6);
        assert_eq!(text(next), "T out 5\n");
        drop(rx);
        log.push_line(Stream::Out, "T", b"6", now);
        log.flush(now);
        assert!(log.followers.is_empty());
    }
}
