//! svcd's own outputs: its stdout (the units' lines as `name | line`, a container's log) and its
//! stderr (svcd's own log), and the escaping of what a unit prints before it reaches a terminal.
//!
//! Neither output may end or stall svcd: as PID 1 its end is the container's. Nobody reading
//! (EPIPE), a terminal gone (EIO) or a closed descriptor drop what was to be written; a reader
//! too slow makes the copy to stdout leave lines out (the log files have them).

use std::borrow::Cow;
use std::io::Write;

/// Whether svcd's stdout is /dev/null, where forwarding lines would only cost time.
pub fn stdout_is_null() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(null) = std::fs::metadata("/dev/null") else {
        return false;
    };
    let Ok(out) = nix::sys::stat::fstat(std::io::stdout()) else {
        return false;
    };
    (out.st_mode & nix::libc::S_IFMT) == nix::libc::S_IFCHR && out.st_rdev == null.rdev()
}

/// Whether svcd's stdout is a terminal, where what units print is escaped (see
/// [`escape_controls`]).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Writes `bytes` to svcd's stdout, but never waits for it: svcd's one thread must not stall on
/// a reader that does not read (a full pipe), or every unit would stall with it. Returns how
/// many bytes were left out (see [`write_without_blocking`]).
pub(super) fn write_stdout_without_blocking(bytes: &[u8]) -> usize {
    use std::os::fd::AsFd;
    write_without_blocking(std::io::stdout().as_fd(), bytes)
}

/// Writes `bytes` to `fd` in pieces of at most `PIPE_BUF`, each only when poll says the
/// descriptor takes that much now; what does not fit is left out. Returns how many bytes were
/// left out. A closed descriptor, or one that fails (EPIPE, EIO), counts as taking everything
/// (nobody is there to read it).
fn write_without_blocking(fd: std::os::fd::BorrowedFd<'_>, bytes: &[u8]) -> usize {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    const PIPE_BUF: usize = 4096;
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            _ => return rest.len(),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
            return 0;
        }
        let piece = &rest[..rest.len().min(PIPE_BUF)];
        match nix::unistd::write(fd, piece) {
            Ok(0) => return rest.len(),
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 0,
        }
    }
    0
}

/// svcd's stderr, for its own log (`tracing`) and last words. A write never waits (a stderr
/// pipe nobody reads must not stall svcd: what does not fit is left out, as on stdout), and one
/// that fails is dropped, never returned as an error (which `tracing-subscriber` would report
/// with `eprintln!`, which panics on a failed write: the abort this prevents).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::AsFd;
        write_without_blocking(std::io::stderr().as_fd(), buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of the control character at `text[at]` that [`escape_controls`] escapes: 1 for
/// C0 (but tab) and DEL, 2 for a C1 control written in UTF-8 (U+0080..U+009F, CSI among
/// them), 0 for anything else.
fn control_len(text: &[u8], at: usize) -> usize {
    match text[at] {
        b'\t' => 0,
        0..=0x1f | 0x7f => 1,
        0xc2 if matches!(text.get(at + 1), Some(0x80..=0x9f)) => 2,
        _ => 0,
    }
}

/// Appends `text` to `out` with its control characters escaped as `\xNN` (see
/// [`escape_controls`]).
pub fn escape_controls_into(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let len = control_len(text, at);
        if len == 0 {
            at += 1;
            continue;
        }
        out.extend_from_slice(&text[copied..at]);
        for &byte in &text[at..at + len] {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
        at += len;
        copied = at;
    }
    out.extend_from_slice(&text[copied..]);
}

/// `text` with its control characters escaped as `\xNN`, as journalctl shows them: what a unit
/// printed, made safe to show on a terminal, where an escape sequence (`\x1b[2J`) could
/// otherwise rewrite the operator's screen or retitle the window. Tab stays; C0 controls
/// (newline and carriage return among them), DEL and the C1 controls are escaped. Log files
/// keep the text as written; this is for terminals (svcd's stdout, and `svc logs` / `svc status`
/// printing to one).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !(0..bytes.len()).any(|at| control_len(bytes, at) > 0) {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len() + 16);
    escape_controls_into(bytes, &mut out);
    // Only whole ASCII and 2-byte characters were replaced, by ASCII: still UTF-8.
    match String::from_utf8(out) {
        Ok(escaped) => Cow::Owned(escaped),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_escaped_tab_and_text_stay() {
        assert!(matches!(escape_controls("plain\ttext é"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\x1b[2J\x1b]0;owned\x07b"),
            "a\\x1b[2J\\x1b]0;owned\\x07b"
        );
        assert_eq!(escape_controls("cr\rnl\ndel\x7f"), "cr\\x0dnl\\x0adel\\x7f");
        // C1 CSI (U+009B) in UTF-8; U+00A0 and é (0xc3 0xa9) are text.
        assert_eq!(escape_controls("\u{9b}2J\u{a0}é"), "\\xc2\\x9b2J\u{a0}é");
        let mut out = b"u | ".to_vec();
        escape_controls_into(b"\x1b[31mred\xff\xc2", &mut out);
        assert_eq!(out, b"u | \\x1b[31mred\xff\xc2");
    }
}
