//! Forwarding a unit's output to svcd's stdout, one `name | line` at a time.
//!
//! A stopgap until the logs issue captures into files: it keeps lines whole and bounded, so a
//! unit that prints a huge line or floods is written through in pieces, never buffered whole.

use std::io::Write;
use std::os::fd::OwnedFd;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// Longest piece written as one line; a longer line is split.
const MAX_LINE: usize = 16 * 1024;

/// Reads `fd` until every writer closed it, prefixing each line with `name | `.
pub async fn forward_output(name: String, fd: OwnedFd) {
    let mut receiver = match pipe::Receiver::from_owned_fd(fd) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(unit = %name, "cannot read the unit's output: {e}");
            return;
        }
    };
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match receiver.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(&name, &pending[start..start + pos]);
            start += pos + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE {
            emit(&name, &pending[..MAX_LINE]);
            pending.drain(..MAX_LINE);
        }
    }
    if !pending.is_empty() {
        emit(&name, &pending);
    }
}

fn emit(name: &str, line: &[u8]) {
    let mut out = std::io::stdout().lock();
    // svcd's stdout may be closed or full of nothing to say; a unit's line is not worth dying for.
    let _ = out.write_all(name.as_bytes());
    let _ = out.write_all(b" | ");
    let _ = out.write_all(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}
