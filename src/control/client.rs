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
    #[error("cannot reach svcd at {}: permission denied ({why})", path.display())]
    PermissionDenied { path: PathBuf, why: String },
    #[error("talking to svcd at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("svcd at {} did not answer within {} (is it stuck? --timeout or SVC_TIMEOUT give it longer)", path.display(), crate::time::human_span(*after))]
    Timeout { path: PathBuf, after: Duration },
    #[error("svcd closed the connection without answering")]
    Closed,
    #[error("svcd answered something this svc does not understand: {0}")]
    BadResponse(String),
    #[error("refusing the default state directory {}: {reason}", path.display())]
    UnsafeStateDir { path: PathBuf, reason: String },
}

/// The default state directory: `/run/svc` for root, else `$XDG_RUNTIME_DIR/svc`, else
/// `/run/svc-UID` where this user may write in `/run` (a container's tmpfs, world-writable:
/// `--read-only --tmpfs /run --user 1000`), else `/tmp/svc-UID`.
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/run/svc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("svc"),
        _ => {
            let uid = nix::unistd::Uid::effective();
            let run = Path::new("/run");
            if nix::unistd::access(run, nix::unistd::AccessFlags::W_OK).is_ok() {
                run.join(format!("svc-{uid}"))
            } else {
                PathBuf::from(format!("/tmp/svc-{uid}"))
            }
        }
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

/// Connects to `socket` and sends `command`; the answer is to be read from the stream, each
/// read waiting at most `timeout` (`None`: for ever).
fn send(
    socket: &Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<UnixStream, ClientError> {
    let default = default_state_dir();
    if socket == default.join("svcd.sock") {
        check_default_state_dir(&default).map_err(|reason| ClientError::UnsafeStateDir {
            path: default,
            reason,
        })?;
    }
    let stream = UnixStream::connect(socket).map_err(|source| connect_error(socket, source))?;
    let io = io_error(socket);
    stream.set_read_timeout(timeout).map_err(&io)?;
    stream.set_write_timeout(timeout).map_err(&io)?;
    let request = Request {
        v: PROTOCOL_VERSION,
        command,
    };
    let mut line =
        serde_json::to_vec(&request).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    line.push(b'\n');
    match (&stream).write_all(&line) {
        Ok(()) => Ok(stream),
        // svcd answered and closed before reading (it turns away a peer over its connection
        // cap): its answer is there to read.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(stream)
        }
        Err(e) => Err(read_error(socket, timeout, e)),
    }
}

/// A failed connect; refused permission says who may connect instead of "is svcd running?".
fn connect_error(socket: &Path, source: std::io::Error) -> ClientError {
    if source.kind() != std::io::ErrorKind::PermissionDenied {
        return ClientError::Connect {
            path: socket.to_path_buf(),
            source,
        };
    }
    use std::os::unix::fs::MetadataExt;
    let why = match std::fs::metadata(socket) {
        Err(_) => "cannot reach the socket's directory".to_string(),
        Ok(meta) => {
            let owner = name_of(Path::new("/etc/passwd"), meta.uid());
            let group = name_of(Path::new("/etc/group"), meta.gid());
            let mode = meta.mode() & 0o777;
            let next = if meta.gid() == 0 {
                "run as root, or set admin_group in svcd.toml".to_string()
            } else {
                format!("join {group}")
            };
            format!("socket is {owner}:{group} {mode:04o}; {next}")
        }
    };
    ClientError::PermissionDenied {
        path: socket.to_path_buf(),
        why,
    }
}

/// The name of the user or group `id` in `file` (`/etc/passwd`, `/etc/group`: `NAME:x:ID:...`),
/// else the number. Read directly: the client stays a static binary without NSS lookups.
fn name_of(file: &Path, id: u32) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let found: u32 = fields.nth(1)?.parse().ok()?;
                (found == id && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| id.to_string())
}

/// Wraps an I/O error on the connection to `socket`.
fn io_error(socket: &Path) -> impl Fn(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    }
}

/// An error reading the answer: a read timeout is [`ClientError::Timeout`].
fn read_error(socket: &Path, timeout: Option<Duration>, e: std::io::Error) -> ClientError {
    match (e.kind(), timeout) {
        (std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut, Some(after)) => {
            ClientError::Timeout {
                path: socket.to_path_buf(),
                after,
            }
        }
        _ => io_error(socket)(e),
    }
}

/// Sends `command` and reads the answer, waiting at most `timeout` for it (`None`: forever).
pub fn request(
    socket: &Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<Response, ClientError> {
    let answer = request_raw(socket, command, timeout)?;
    parse_response(&answer)
}

/// The answer line `answer` (from [`request_raw`]) as a [`Response`].
pub fn parse_response(answer: &[u8]) -> Result<Response, ClientError> {
    serde_json::from_slice(answer).map_err(|e| ClientError::BadResponse(e.to_string()))
}

/// [`request`], the answer left as the line svcd sent (without its newline).
pub fn request_raw(
    socket: &Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, ClientError> {
    let stream = send(socket, command, timeout)?;
    let mut answer = Vec::new();
    match BufReader::new(&stream).read_until(b'\n', &mut answer) {
        Ok(0) => Err(ClientError::Closed),
        Ok(_) => {
            if answer.last() == Some(&b'\n') {
                answer.pop();
            }
            Ok(answer)
        }
        Err(e) => Err(read_error(socket, timeout, e)),
    }
}

/// How a stream of log lines ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// svcd sent `end`, with why when it ended a follow itself.
    End(Option<String>),
    /// `each` asked to stop.
    Stopped,
    /// svcd closed the connection (it shut down).
    Closed,
}

/// Sends a streaming `command` (`logs`): returns its answer once the stream ended, after
/// handing each event to `each`; `each` returns false to stop reading. An error answer is
/// returned at once. Each read waits at most `timeout` (`None`: for ever, as a follower does).
pub fn stream(
    socket: &Path,
    command: Command,
    timeout: Option<Duration>,
    mut each: impl FnMut(LogEvent) -> bool,
) -> Result<(Response, StreamEnd), ClientError> {
    let stream = send(socket, command, timeout)?;
    let mut reader = BufReader::new(&stream);
    let mut answer = String::new();
    let read = |reader: &mut BufReader<&UnixStream>, answer: &mut String| {
        reader
            .read_line(answer)
            .map_err(|e| read_error(socket, timeout, e))
    };
    if read(&mut reader, &mut answer)? == 0 {
        return Err(ClientError::Closed);
    }
    let response: Response =
        serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    if !response.ok {
        return Ok((response, StreamEnd::End(None)));
    }
    loop {
        answer.clear();
        if read(&mut reader, &mut answer)? == 0 {
            return Ok((response, StreamEnd::Closed));
        }
        let event: LogEvent =
            serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        if event.end {
            return Ok((response, StreamEnd::End(event.message)));
        }
        if !each(event) {
            return Ok((response, StreamEnd::Stopped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_files_or_are_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("group");
        std::fs::write(&file, "root:x:0:\nbroken\nsvc-admin:x:990:alice,bob\n").expect("write");
        assert_eq!(name_of(&file, 0), "root");
        assert_eq!(name_of(&file, 990), "svc-admin");
        assert_eq!(name_of(&file, 7), "7");
        assert_eq!(name_of(&dir.path().join("none"), 3), "3");
    }
}
