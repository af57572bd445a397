//! The daemon's side of the socket: accept, check the peer, read requests, hand them to the
//! daemon task over a channel, write its answers.
//!
//! Connections never touch the supervisor: the daemon task owns it, and each request travels to
//! it as an [`Envelope`] with a one-shot channel for the answer.

use super::protocol::{self, Command, ErrorKind, Response};
use nix::unistd::Gid;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted; a longer one is an error and the connection is closed.
const MAX_REQUEST: u64 = 64 * 1024;

/// A request on its way to the daemon task.
#[derive(Debug)]
pub struct Envelope {
    pub command: Command,
    pub reply: oneshot::Sender<Response>,
}

/// Who may change things: root, svcd's own user, and members of the admin group. Anyone who can
/// open the socket (mode 0660) may read.
#[derive(Debug, Clone)]
pub struct Access {
    pub daemon_uid: u32,
    pub admin_group: Option<Gid>,
}

impl Access {
    /// Whether the peer `uid`/`gid` may run mutating commands.
    pub fn may_change(&self, uid: u32, gid: u32) -> bool {
        if uid == 0 || uid == self.daemon_uid {
            return true;
        }
        let Some(admin) = self.admin_group else {
            return false;
        };
        if gid == admin.as_raw() {
            return true;
        }
        // Supplementary membership, looked up only for this rare case, in /etc/passwd and
        // /etc/group (never NSS: see `crate::users`). A uid without an entry is no member.
        let user = crate::users::user_by_uid(uid).ok().flatten();
        let group = crate::users::group_by_gid(admin.as_raw()).ok().flatten();
        match (user, group) {
            (Some(user), Some(group)) => {
                user.gid == admin.as_raw() || group.members.contains(&user.name)
            }
            _ => false,
        }
    }
}

/// Binds the socket at `path` with mode 0660, replacing a stale one but never a live one.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another svcd answers on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // The socket is created with the process umask; narrow it so the file is never, even for an
    // instant, wider than 0660.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Accepts connections forever, one task each.
pub async fn serve(
    listener: UnixListener,
    daemon: mpsc::Sender<Envelope>,
    access: Access,
    alive: mpsc::Sender<()>,
    logs: crate::logs::Registry,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let daemon = daemon.clone();
                let access = access.clone();
                let alive = alive.clone();
                let logs = logs.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, daemon, access, logs).await {
                        tracing::debug!("control connection: {e}");
                    }
                    drop(alive);
                });
            }
            Err(e) => {
                // EMFILE and friends: say so, and go on accepting once a descriptor frees up.
                tracing::warn!("accept on the control socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    stream: UnixStream,
    daemon: mpsc::Sender<Envelope>,
    access: Access,
    logs: crate::logs::Registry,
) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let n = (&mut reader)
            .take(MAX_REQUEST + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if n as u64 > MAX_REQUEST {
            let response = Response::error(
                ErrorKind::BadRequest,
                format!("request longer than {MAX_REQUEST} bytes"),
                vec![],
            );
            send(&mut write, &response).await?;
            return Ok(());
        }
        let response = match protocol::parse_request(line.trim_end()) {
            Err(response) => response,
            Ok(request)
                if request.command.is_mutating() && !access.may_change(cred.uid(), cred.gid()) =>
            {
                Response::error(
                    ErrorKind::PermissionDenied,
                    format!(
                        "uid {} may read status but not change it; run as root, as svcd's user, or as a member of its admin group",
                        cred.uid()
                    ),
                    vec![],
                )
            }
            Ok(request) if matches!(request.command, Command::Logs { .. }) => {
                let more =
                    super::logs::answer(request.command, &daemon, &logs, &mut reader, &mut write)
                        .await?;
                if more {
                    continue;
                }
                return Ok(());
            }
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                let envelope = Envelope {
                    command: request.command,
                    reply: tx,
                };
                if daemon.send(envelope).await.is_err() {
                    Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![])
                } else {
                    // A waiting request may take long: give up on it if the client hangs up.
                    let mut probe = [0u8; 1];
                    tokio::select! {
                        answer = rx => answer.unwrap_or_else(|_| {
                            Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![])
                        }),
                        _ = reader.get_mut().read(&mut probe) => return Ok(()),
                    }
                }
            }
        };
        send(&mut write, &response).await?;
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}
