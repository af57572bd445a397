//! The last lines of a unit's log files, read backwards block by block, so `svc logs -n 10` on
//! a large log reads a few KiB, not the whole file.

use crate::control::LogLine;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Most lines one `svc logs -n` answer holds (each at most a line's length, so the answer's
/// memory stays bounded).
pub const MAX_LINES: usize = 10_000;

const BLOCK: u64 = 64 * 1024;

/// The last `n` lines of `unit` in `files` (newest file first), oldest line first.
pub fn last_lines(unit: &str, files: &[PathBuf], n: usize) -> Vec<LogLine> {
    let n = n.min(MAX_LINES);
    let mut lines: Vec<Vec<u8>> = Vec::new(); // newest first
    for path in files {
        if lines.len() >= n {
            break;
        }
        match last_of_file(path, n - lines.len()) {
            Ok(mut found) => {
                found.reverse();
                lines.extend(found);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => {
                tracing::warn!(unit, "cannot read {}: {e}", path.display());
                break;
            }
        }
    }
    lines.reverse();
    lines.iter().map(|line| parse(unit, line)).collect()
}

/// The last `n` lines of one file, oldest first.
fn last_of_file(path: &Path, n: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    let mut lines: Vec<Vec<u8>> = Vec::new(); // newest first
    let mut carry: Vec<u8> = Vec::new();
    let mut at_end = true;
    while pos > 0 && lines.len() < n {
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - start) as usize];
        file.read_exact_at(&mut block, start)?;
        block.extend_from_slice(&carry);
        pos = start;
        if at_end {
            at_end = false;
            if block.last() == Some(&b'\n') {
                block.pop();
            }
        }
        let mut pieces: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
        // The first piece may be the end of a line that starts in an earlier block.
        let first = if pos > 0 {
            Some(pieces.remove(0))
        } else {
            None
        };
        for piece in pieces.into_iter().rev() {
            if lines.len() == n {
                break;
            }
            lines.push(piece.to_vec());
        }
        carry = first.map(<[u8]>::to_vec).unwrap_or_default();
    }
    lines.reverse();
    Ok(lines)
}

/// `TIME STREAM TEXT` → a [`LogLine`] (STREAM: `out`, `err`, or `svcd` for svcd's own lines);
/// a line that does not read so is all text.
pub fn parse(unit: &str, line: &[u8]) -> LogLine {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(time), Some(stream @ ("out" | "err" | "svcd")), rest) => LogLine {
            unit: unit.to_string(),
            time: time.to_string(),
            stream: stream.to_string(),
            line: rest.unwrap_or_default().to_string(),
            skipped: 0,
        },
        _ => LogLine {
            unit: unit.to_string(),
            time: String::new(),
            stream: String::new(),
            line: text.into_owned(),
            skipped: 0,
        },
    }
}

/// Several units' lines in one list ordered by time (RFC 3339 UTC strings sort as times),
/// keeping the last `n`.
pub fn interleave(mut lists: Vec<Vec<LogLine>>, n: usize) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = lists.drain(..).flatten().collect();
    all.sort_by(|a, b| a.time.cmp(&b.time)); // stable: one unit's order is kept
    let skip = all.len().saturating_sub(n);
    all.drain(..skip);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_span_blocks_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("u.log.1");
        let new = dir.path().join("u.log");
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("2026-01-01T00:00:00.000Z out old {i}\n"));
        }
        std::fs::write(&old, &text).unwrap();
        std::fs::write(&new, "2026-01-01T00:00:01.000Z err new 0\nT out new 1\n").unwrap();
        let files = [new.clone(), old.clone(), dir.path().join("u.log.2")];
        let lines = last_lines("u", &files, 5);
        let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            texts,
            ["old 19997", "old 19998", "old 19999", "new 0", "new 1"]
        );
        assert_eq!(lines[3].stream, "err");
        assert_eq!(lines[3].time, "2026-01-01T00:00:01.000Z");
        let lines = last_lines("u", &files, 9_000);
        assert_eq!(lines.len(), 9_000);
        assert_eq!(lines[0].line, "old 11002");
        assert_eq!(last_lines("u", &files, 0).len(), 0);
        assert_eq!(last_lines("u", &[dir.path().join("none")], 3).len(), 0);
    }

    #[test]
    fn units_interleave_by_time() {
        let a = vec![
            parse("a", b"2026-01-01T00:00:01.000Z out a1"),
            parse("a", b"2026-01-01T00:00:03.000Z out a3"),
        ];
        let b = vec![parse("b", b"2026-01-01T00:00:02.000Z out b2")];
        let lines = interleave(vec![a, b], 2);
        let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["b2", "a3"]);
    }

    #[test]
    fn svcd_lines_keep_their_stream() {
        let line = parse(
            "u",
            b"2026-01-01T00:00:01.000Z svcd running, pid 8: started",
        );
        assert_eq!(
            (line.stream.as_str(), line.line.as_str()),
            ("svcd", "running, pid 8: started")
        );
    }
}
