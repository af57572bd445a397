//! Capture of one run: its stdout and stderr pipes, read as they fill, cut into lines.
//!
//! One task per run waits on both pipes and reads what is there, at most [`BURST`] reads per
//! wake-up, into one buffer shared by every capture (svcd has one thread), so an idle unit costs
//! no buffer and a flooding one never makes svcd hold more than a line per stream. The lines of
//! one read share one stamp (they arrived together) and are copied once, into the unit's batch
//! ([`super::UnitLog::push_lines`]); the reads of one wake-up reach the file in one write.
//!
//! The last words: when the daemon reaps a unit's exit it calls [`Capture::drain`] *before* the
//! exit is published, which reads what is left in the pipes without waiting, so the lines a
//! unit printed just before dying are in its log and ring when `status` shows the exit.

use super::{MAX_LINE, SharedLog, Stream, lock};
use std::cell::RefCell;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime};
use tokio::net::unix::pipe::Receiver;

/// Bytes read at once.
const CHUNK: usize = 64 * 1024;
/// Reads at most made by [`Capture::drain`] per pipe (a pipe holds 64 KiB by default, at most
/// 1 MiB unless raised by root).
const DRAIN_READS: usize = 32;
/// Reads per wake-up before letting other tasks run.
const BURST: usize = 8;
/// What a pipe holds once its unit floods it (a read found it full): a unit that writes faster
/// than svcd is scheduled (a loaded machine) then goes on writing while svcd waits for a CPU,
/// and svcd takes more per wake-up, instead of both waking at every 64 KiB. The pages are the
/// kernel's only while they hold unread lines. Root only: an unprivileged user's pipes share a
/// budget (`/proc/sys/fs/pipe-user-pages-soft`) past which every new pipe of that user shrinks
/// to one page.
const FLOOD_PIPE: usize = 1024 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static STAMP: RefCell<Stamp> = const { RefCell::new(Stamp { millis: u128::MAX, text: String::new() }) };
}

/// The RFC 3339 stamp of the current millisecond, formatted again only when the millisecond
/// changes: a flood's reads follow each other within microseconds.
struct Stamp {
    /// Milliseconds since the epoch that `text` shows.
    millis: u128,
    text: String,
}

impl Stamp {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let millis = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        if millis != self.millis {
            self.millis = millis;
            self.text = crate::time::rfc3339(now);
        }
        &self.text
    }
}

/// Cuts bytes into lines of at most [`MAX_LINE`], keeping the unfinished one.
#[derive(Debug, Default)]
pub struct LineCutter {
    pending: Vec<u8>,
    /// Pieces of the unfinished line were emitted already (it is longer than [`MAX_LINE`]):
    /// its newline ends it, and makes no empty line of its own.
    continued: bool,
}

impl LineCutter {
    /// Calls `emit` with every line `chunk` completes (without its newline).
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() || self.continued {
            match memchr::memchr(b'\n', chunk) {
                Some(pos) => {
                    self.pending.extend_from_slice(&chunk[..pos]);
                    chunk = &chunk[pos + 1..];
                    self.continued = false;
                    let mut line = std::mem::take(&mut self.pending);
                    // Empty only when a line of an exact multiple of MAX_LINE ends here.
                    for piece in line.chunks(MAX_LINE) {
                        emit(piece);
                    }
                    line.clear();
                    if line.capacity() <= MAX_LINE {
                        self.pending = line;
                    }
                }
                None => {
                    self.pending.extend_from_slice(chunk);
                    self.split_long(&mut emit);
                    return;
                }
            }
        }
        let mut rest = chunk;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            for piece in rest[..pos].chunks(MAX_LINE.max(1)) {
                emit(piece);
            }
            if pos == 0 {
                emit(b"");
            }
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        self.split_long(&mut emit);
    }

    fn split_long(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.pending.len() < MAX_LINE {
            return;
        }
        let whole = self.pending.len() / MAX_LINE * MAX_LINE;
        for piece in self.pending[..whole].chunks(MAX_LINE) {
            emit(piece);
        }
        self.pending.drain(..whole);
        self.continued = true;
    }

    /// The unfinished line, at the end of the stream.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        self.continued = false;
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending = Vec::new();
        }
    }
}

/// One run's pipes, shared by its reading task and the daemon (for [`Capture::drain`]).
#[derive(Debug, Clone)]
pub struct Capture {
    run: Arc<Mutex<Run>>,
}

#[derive(Debug)]
struct Run {
    log: SharedLog,
    /// stdout then stderr (fewer if one could not be watched).
    pipes: Vec<Pipe>,
}

#[derive(Debug)]
struct Pipe {
    stream: Stream,
    /// Non-blocking: neither the task nor `drain` ever waits on a pipe that a surviving child
    /// keeps open. The only strong reference: the task waits for it to be readable through a
    /// `Weak` one, so the pipe closes as soon as its end is read (`None` from then on), even
    /// while a daemon busy with a storm of restarts has not got round to the task yet.
    rx: Option<Arc<Receiver>>,
    /// Every writer closed it.
    eof: bool,
    /// It was found full once: it was asked to hold [`FLOOD_PIPE`] from then on.
    grown: bool,
    cutter: LineCutter,
}

/// What a read found.
enum Read {
    /// Nothing more for now.
    Empty,
    /// Read [`BURST`] times; there may be more.
    More,
    /// Every writer closed the pipe.
    Eof,
}

impl Capture {
    /// Starts reading `out` and `err` (the read ends) into `log`, in a task of the current
    /// runtime.
    /// A pipe that cannot be watched is logged and its lines are lost; the unit runs on.
    pub fn start(log: SharedLog, out: OwnedFd, err: OwnedFd) -> Capture {
        let receiver = |fd| match Receiver::from_owned_fd(fd) {
            Ok(rx) => Some(Arc::new(rx)),
            Err(e) => {
                tracing::warn!("cannot watch a unit's output: {e}; its lines are lost");
                None
            }
        };
        let rxs = [receiver(out), receiver(err)];
        let mut pipes = Vec::new();
        for (rx, stream) in rxs.iter().zip([Stream::Out, Stream::Err]) {
            if let Some(rx) = rx {
                pipes.push(Pipe {
                    stream,
                    rx: Some(rx.clone()),
                    eof: false,
                    grown: false,
                    cutter: LineCutter::default(),
                });
            }
        }
        let capture = Capture {
            run: Arc::new(Mutex::new(Run { log, pipes })),
        };
        let [out, err] = rxs.map(|rx| rx.as_ref().map(Arc::downgrade));
        tokio::spawn(capture.clone().read_loop(out, err));
        capture
    }

    /// Reads what the pipes hold now, without waiting: the last words of a run that just
    /// exited.
    pub fn drain(&self) {
        let mut run = self.lock();
        for index in 0..run.pipes.len() {
            // Bounded: a surviving child of the unit that keeps writing must not hold the
            // daemon here; what the exited process wrote fits in a pipe's buffer.
            run.read(index, DRAIN_READS, true);
        }
    }

    /// The read ends of stdout and stderr while both are open, for passing them across svcd's
    /// re-execution (`svc upgrade`); valid for as long as this capture lives.
    pub fn raw_fds(&self) -> Option<[std::os::fd::RawFd; 2]> {
        use std::os::fd::AsRawFd;
        let run = self.lock();
        let fd = |stream| {
            let pipe = run.pipes.iter().find(|p| p.stream == stream)?;
            pipe.rx.as_ref().map(|rx| rx.as_raw_fd())
        };
        Some([fd(Stream::Out)?, fd(Stream::Err)?])
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn read_loop(self, out: Option<Weak<Receiver>>, err: Option<Weak<Receiver>>) {
        let mut open = [out.is_some(), err.is_some()];
        while open[0] || open[1] {
            let (stream, ready) = tokio::select! {
                ready = wait(&out), if open[0] => (Stream::Out, ready),
                ready = wait(&err), if open[1] => (Stream::Err, ready),
            };
            let slot = usize::from(stream == Stream::Err);
            if ready.is_err() {
                open[slot] = false;
                continue;
            }
            let found = {
                let mut run = self.lock();
                match run.pipes.iter().position(|p| p.stream == stream) {
                    Some(index) => run.read(index, BURST, false),
                    None => Read::Eof,
                }
            };
            match found {
                Read::Eof => open[slot] = false,
                Read::Empty => {}
                Read::More => tokio::task::yield_now().await,
            }
        }
    }
}

impl Run {
    /// Reads pipe `index` until it is empty, closed, or `reads` reads were made. `direct`: with
    /// read(2) itself, not through tokio's readiness, which a daemon busy with a storm of
    /// restarts may not have learnt yet (`try_read` would then say "empty" without reading).
    fn read(&mut self, index: usize, reads: usize, direct: bool) -> Read {
        let Run { log, pipes } = self;
        let pipe = &mut pipes[index];
        if pipe.eof {
            return Read::Eof;
        }
        let Some(rx) = pipe.rx.clone() else {
            return Read::Eof;
        };
        let mut log = lock(log);
        let found = BUFFER.with_borrow_mut(|buffer| {
            buffer.resize(CHUNK, 0);
            let mut count = 0;
            loop {
                if count == reads {
                    return Read::More;
                }
                count += 1;
                let result = if direct {
                    nix::unistd::read(&*rx, buffer).map_err(std::io::Error::from)
                } else {
                    rx.try_read(buffer)
                };
                match result {
                    Ok(0) => return Read::Eof,
                    Ok(n) => {
                        if n == buffer.len() && !pipe.grown {
                            pipe.grown = true;
                            grow(&*rx);
                        }
                        // One stamp for the lines read together: they arrived together.
                        let cutter = &mut pipe.cutter;
                        STAMP.with_borrow_mut(|stamp| {
                            log.push_lines(pipe.stream, stamp.now(), Instant::now(), |lines| {
                                cutter.feed(&buffer[..n], |line| lines.push(line))
                            })
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => count -= 1,
                    // `try_read` also clears the readiness the task waits on.
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Read::Empty,
                    Err(e) => {
                        tracing::warn!("reading a unit's output: {e}");
                        return Read::Eof;
                    }
                }
            }
        });
        // The lines of every read of this wake-up in as few writes as the batch's bound allows.
        log.flush(Instant::now());
        if let Read::Eof = found {
            let stamp = crate::time::rfc3339(SystemTime::now());
            let now = Instant::now();
            let cutter = &mut pipe.cutter;
            log.push_lines(pipe.stream, &stamp, now, |lines| {
                cutter.finish(|line| lines.push(line))
            });
            log.flush(now);
            pipe.eof = true;
            // Closes the pipe (the task holds it weakly).
            pipe.rx = None;
        }
        found
    }
}

/// Asks a flooded pipe to hold [`FLOOD_PIPE`] bytes, when svcd runs as root; a refusal
/// changes nothing but the number of wake-ups.
fn grow(pipe: &impl std::os::fd::AsFd) {
    if nix::unistd::Uid::effective().is_root() {
        let size = nix::fcntl::FcntlArg::F_SETPIPE_SZ(FLOOD_PIPE as i32);
        let _ = nix::fcntl::fcntl(pipe, size);
    }
}

/// Waits until the pipe is readable; an error once it is closed.
async fn wait(rx: &Option<Weak<Receiver>>) -> std::io::Result<()> {
    match rx {
        Some(rx) => {
            // A strong reference only during each poll, never while waiting.
            std::future::poll_fn(|cx| match rx.upgrade() {
                Some(rx) => rx.poll_read_ready(cx),
                None => std::task::Poll::Ready(Err(ErrorKind::BrokenPipe.into())),
            })
            .await
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut cutter = LineCutter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            cutter.feed(chunk, |l| lines.push(l.to_vec()));
        }
        cutter.finish(|l| lines.push(l.to_vec()));
        lines
    }

    /// A unit flooding its pipe faster than svcd was scheduled woke svcd at every 64 KiB (the
    /// default pipe), and svcd captured half of supervisord's rate on a loaded machine.
    #[tokio::test]
    async fn a_flooded_pipe_is_grown_and_an_idle_one_is_not() {
        use nix::fcntl::{FcntlArg, fcntl};
        let dir = tempfile::tempdir().unwrap();
        let log: SharedLog = Arc::new(Mutex::new(crate::logs::UnitLog::new(
            dir.path(),
            "u",
            crate::logs::Settings::default(),
            crate::logs::Forward::Off,
        )));
        let (out, out_w) = nix::unistd::pipe().unwrap();
        let (err, err_w) = nix::unistd::pipe().unwrap();
        for fd in [&out, &err, &out_w, &err_w] {
            nix::fcntl::fcntl(fd, FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        }
        // Full: a pipe holds 64 KiB by default (16 pages), as much as one read takes; written a
        // page at a time, so that no page is left part empty.
        let lines = b"x".repeat(99).into_iter().chain([b'\n']).cycle();
        let flood: Vec<u8> = lines.take(CHUNK).collect();
        for page in flood.chunks(4096) {
            assert_eq!(nix::unistd::write(&out_w, page), Ok(page.len()));
        }
        nix::unistd::write(&err_w, b"one line\n").unwrap();
        let capture = Capture::start(log, out, err);
        capture.drain();
        let size = |fd: &OwnedFd| fcntl(fd, FcntlArg::F_GETPIPE_SZ).unwrap() as usize;
        assert_eq!(size(&err_w), CHUNK, "an idle pipe keeps the default size");
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(size(&out_w), FLOOD_PIPE);
        } else {
            assert_eq!(size(&out_w), CHUNK, "only root grows pipes");
        }
        let text = std::fs::read_to_string(dir.path().join("u.log")).unwrap();
        // The flood's whole lines, its unfinished one (at the drain, the pipes are still open,
        // so it waits), and the other stream's line.
        assert_eq!(text.lines().count(), CHUNK / 100 + 1, "{:.200}", text);
    }

    #[test]
    fn lines_are_cut_across_chunks() {
        let lines = cut(&[b"a\nb", b"c\n\nd", b"e"]);
        assert_eq!(lines, [&b"a"[..], b"bc", b"", b"de"]);
    }

    #[test]
    fn long_lines_are_split_and_memory_stays_bounded() {
        let long = vec![b'x'; MAX_LINE * 3 + 5];
        let mut cutter = LineCutter::default();
        let mut lines = Vec::new();
        for piece in long.chunks(1000) {
            cutter.feed(piece, |l| lines.push(l.len()));
            assert!(cutter.pending.len() < MAX_LINE);
        }
        cutter.feed(b"\n", |l| lines.push(l.len()));
        assert_eq!(lines, [MAX_LINE, MAX_LINE, MAX_LINE, 5]);
        let lines = cut(&[&long, b"\n"]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, MAX_LINE, 5]);
    }

    #[test]
    fn a_line_of_an_exact_multiple_of_max_line_leaves_no_empty_line() {
        let lens = |lines: Vec<Vec<u8>>| lines.iter().map(Vec::len).collect::<Vec<_>>();
        for whole in [MAX_LINE, 2 * MAX_LINE] {
            let long = vec![b'x'; whole];
            let pieces = whole / MAX_LINE;
            // The newline comes in a later read than the line, or in the same one.
            let split = cut(&[&long, b"\nnext\n\n"]);
            let mut one = long.clone();
            one.extend_from_slice(b"\nnext\n\n");
            let mut expected = vec![MAX_LINE; pieces];
            expected.extend([4, 0]);
            assert_eq!(lens(split), expected);
            assert_eq!(lens(cut(&[&one])), expected);
            let bytes: Vec<&[u8]> = one.chunks(1000).collect();
            assert_eq!(lens(cut(&bytes)), expected);
        }
    }
}
