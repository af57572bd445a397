//! The client's side of the socket: one request, one answer, blocking (no runtime needed, so
//! `svc status` starts and ends in a few milliseconds).

use super::protocol::{Command, LogEvent, PROTOCOL_VERSION, Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach svcd at {}: {source} (is svcd running? set --socket or SVC_SOCKET)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to svcd at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out")]
    Timeout,
    #[error("svcd closed the connection without answering")]
    Closed,
    #[error("svcd answered something this svc does not understand: {0}")]
    BadResponse(String),
    #[error("refusing the default state directory {}: {reason}", path.display())]
    UnsafeStateDir { path: PathBuf, reason: String },
}

/// The default state directory: `/run/svc` for root, else `$XDG_RUNTIME_DIR/svc`, else
/// `/tmp/svc-UID`.
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/run/svc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("svc"),
        _ => PathBuf::from(format!("/tmp/svc-{}", nix::unistd::Uid::effective())),
    }
}

/// Why the default state directory `dir` cannot be trusted, if it cannot: it must be a real
/// directory of this user (or root), not writable by group or others. Another user who made
/// `/tmp/svc-UID` first could put a socket of theirs there. A missing one is fine: there is
/// nothing to connect to.
pub fn check_default_state_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    let euid = nix::unistd::Uid::effective().as_raw();
    if !meta.is_dir() {
        return Err("it is not a directory (a symbolic link?); remove it".to_string());
    }
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(format!(
            "it belongs to uid {}, not to you (uid {euid}): its socket may not be svcd's; \
             remove it, or pass --socket",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {:04o}); run `chmod go-w` on it, or pass \
             --socket",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The socket `svc` talks to: `--socket`, else `$SVC_SOCKET`, else the default.
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("SVC_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| default_state_dir().join("svcd.sock"))
}

/// Connects to `socket` and sends `command`; the answer is to be read from the stream.
fn send(socket: &Path, command: Command) -> Result<UnixStream, ClientError> {
    let default = default_state_dir();
    if socket == default.join("svcd.sock") {
        check_default_state_dir(&default).map_err(|reason| ClientError::UnsafeStateDir {
            path: default,
            reason,
        })?;
    }
    let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    let request = Request {
        v: PROTOCOL_VERSION,
        command,
    };
    let mut line =
        serde_json::to_vec(&request).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(io_error(socket))?;
    Ok(stream)
}

/// Wraps an I/O error on the connection to `socket`.
fn io_error(socket: &Path) -> impl Fn(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    }
}

/// Sends `command` and reads the answer, waiting at most `timeout` for it (`None`: forever).
pub fn request(
    socket: &Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<Response, ClientError> {
    let stream = send(socket, command)?;
    let io = io_error(socket);
    stream.set_read_timeout(timeout).map_err(&io)?;
    let mut answer = String::new();
    match BufReader::new(&stream).read_line(&mut answer) {
        Ok(0) => Err(ClientError::Closed),
        Ok(_) => serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse(e.to_string())),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(ClientError::Timeout)
        }
        Err(source) => Err(io(source)),
    }
}

/// Sends a streaming `command` (`logs`): returns its answer once the stream ended (`end`, or
/// svcd closed the connection), after handing each event to `each`; `each` returns false to stop
/// reading. An error answer is returned at once.
pub fn stream(
    socket: &Path,
    command: Command,
    mut each: impl FnMut(LogEvent) -> bool,
) -> Result<Response, ClientError> {
    let stream = send(socket, command)?;
    let io = io_error(socket);
    let mut reader = BufReader::new(&stream);
    let mut answer = String::new();
    if reader.read_line(&mut answer).map_err(&io)? == 0 {
        return Err(ClientError::Closed);
    }
    let response: Response =
        serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    if !response.ok {
        return Ok(response);
    }
    loop {
        answer.clear();
        if reader.read_line(&mut answer).map_err(&io)? == 0 {
            return Ok(response);
        }
        let event: LogEvent =
            serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        if event.end || !each(event) {
            return Ok(response);
        }
    }
}
