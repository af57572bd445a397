//! The daemon's side of the socket: accept, check the peer, read requests, hand them to the
//! daemon task over a channel, write its answers.
//!
//! Connections never touch the supervisor: the daemon task owns it, and each request travels to
//! it as an [`Envelope`] with a one-shot channel for the answer.
//!
//! Every request costs bounded work: a request line is at most [`MAX_REQUEST`] bytes, its names
//! are de-duplicated and `logs` is capped (see [`protocol::parse_request`]), a peer that is not
//! root has at most [`MAX_PER_UID`] connections and all such peers [`MAX_UNPRIVILEGED`] together,
//! so svcd keeps descriptors and memory for its units and for root whatever they send.

use super::protocol::{self, Command, ErrorKind, Permission, Response};
use nix::unistd::Gid;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf, UCred};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Longest request line accepted; a longer one is an error and the connection is closed.
pub const MAX_REQUEST: u64 = 64 * 1024;

/// Connections one non-root peer (uid) may hold open at once.
pub const MAX_PER_UID: usize = 32;

/// Connections all non-root peers together may hold open at once.
pub const MAX_UNPRIVILEGED: usize = 128;

/// Answers to non-root peers being built or written at once: an answer (`status` of every
/// unit, with their last lines; `logs`) can be MiBs, and a peer need not read it.
pub const MAX_UNPRIVILEGED_ANSWERS: usize = 2;

/// A peer that takes no byte of its answer for this long is disconnected: it holds the answer
/// in svcd for nothing.
pub(super) const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// A request on its way to the daemon task.
#[derive(Debug)]
pub struct Envelope {
    pub command: Command,
    pub reply: oneshot::Sender<Response>,
}

/// Who may change things: root, svcd's own user, and members of the admin group. Anyone else
/// who can open the socket may read.
#[derive(Debug, Clone)]
pub struct Access {
    pub daemon_uid: u32,
    pub admin_group: Option<Gid>,
}

impl Access {
    /// Whether the peer may run `command`.
    pub fn allows(&self, cred: &UCred, command: &Command) -> bool {
        match command.permission() {
            Permission::Read => true,
            Permission::Admin => self.is_admin(cred),
        }
    }

    /// Whether the peer is root, svcd's user, or in the admin group (as its primary group, or a
    /// supplementary one).
    fn is_admin(&self, cred: &UCred) -> bool {
        if cred.uid() == 0 || cred.uid() == self.daemon_uid {
            return true;
        }
        let Some(admin) = self.admin_group else {
            return false;
        };
        if cred.gid() == admin.as_raw() {
            return true;
        }
        // The peer's supplementary groups, as the kernel has them (no user database lookup: the
        // groups a process holds are what counts). A peer whose pid is not visible (another
        // PID namespace) is not an admin.
        match cred.pid() {
            Some(pid) if pid > 0 => peer_groups(pid).contains(&admin.as_raw()),
            _ => false,
        }
    }
}

/// The supplementary groups of process `pid` (its `Groups:` line in /proc); empty when unknown.
fn peer_groups(pid: i32) -> Vec<u32> {
    u32::try_from(pid)
        .ok()
        .and_then(crate::proc::status)
        .map(|status| status.groups())
        .unwrap_or_default()
}

/// Binds the socket at `path` with mode 0660, replacing a stale one but never a live one. With
/// `admin_group`, the socket's group is that group, so that its members can connect.
pub fn bind(path: &Path, admin_group: Option<Gid>) -> std::io::Result<UnixListener> {
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
    if let Some(group) = admin_group {
        nix::unistd::chown(path, None, Some(group)).map_err(std::io::Error::from)?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// The connections open per non-root uid, shared by the connection tasks.
#[derive(Debug, Clone, Default)]
struct Slots(Arc<Mutex<SlotCounts>>);

#[derive(Debug, Default)]
struct SlotCounts {
    per_uid: HashMap<u32, usize>,
    total: usize,
}

/// One connection's place among [`Slots`]; given back when dropped.
struct Slot {
    slots: Slots,
    uid: u32,
}

impl Slots {
    fn counts(&self) -> std::sync::MutexGuard<'_, SlotCounts> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection of `uid`, or `None` when it or all unprivileged peers together
    /// are at their cap.
    fn take(&self, uid: u32) -> Option<Slot> {
        let mut counts = self.counts();
        let mine = counts.per_uid.get(&uid).copied().unwrap_or(0);
        if mine >= MAX_PER_UID || counts.total >= MAX_UNPRIVILEGED {
            return None;
        }
        counts.per_uid.insert(uid, mine + 1);
        counts.total += 1;
        Some(Slot {
            slots: self.clone(),
            uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.per_uid.get_mut(&self.uid) {
            *mine -= 1;
            if *mine == 0 {
                counts.per_uid.remove(&self.uid);
            }
        }
    }
}

/// Accepts connections forever, one task each.
pub async fn serve(
    listener: UnixListener,
    daemon: mpsc::Sender<Envelope>,
    access: Access,
    alive: mpsc::Sender<()>,
    logs: crate::logs::Registry,
    events: Option<crate::daemon::events::Subscribe>,
) {
    let slots = Slots::default();
    let answers = Arc::new(Semaphore::new(MAX_UNPRIVILEGED_ANSWERS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: say so, and go on accepting once a descriptor frees up.
                tracing::warn!("accept on the control socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(cred) = stream.peer_cred() else {
            continue;
        };
        // Root and svcd's own user are always served; others within their caps.
        let privileged = cred.uid() == 0 || cred.uid() == access.daemon_uid;
        let slot = if privileged {
            None
        } else {
            match slots.take(cred.uid()) {
                Some(slot) => Some(slot),
                None => {
                    refuse_busy(&stream, cred.uid());
                    continue;
                }
            }
        };
        let daemon = daemon.clone();
        let access = access.clone();
        let alive = alive.clone();
        let logs = logs.clone();
        let events = events.clone();
        let answers = (!privileged).then(|| answers.clone());
        tokio::spawn(async move {
            let streams = Streams { logs, events };
            if let Err(e) = connection(stream, cred, daemon, access, streams, answers).await {
                tracing::debug!("control connection: {e}");
            }
            drop(slot);
            drop(alive);
        });
    }
}

/// Tells a peer over its cap why it is turned away, without waiting for it to read.
fn refuse_busy(stream: &UnixStream, uid: u32) {
    let response = Response::error(
        ErrorKind::Busy,
        format!(
            "too many connections from uid {uid} (at most {MAX_PER_UID} per user, {MAX_UNPRIVILEGED} for all but root); close some and retry"
        ),
        vec![],
    );
    if let Ok(mut bytes) = serde_json::to_vec(&response) {
        bytes.push(b'\n');
        let _ = stream.try_write(&bytes);
    }
}

/// What the client did while svcd was busy with its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// It closed the connection (or it broke): nobody will read an answer.
    Gone,
    /// It sent more (its next request, or for a follower: "stop").
    Spoke,
    /// It shut down its write side only (`printf ... | socat`): it still reads the answer.
    HalfClosed,
}

/// Waits until the client sends something or closes its side; reads nothing away.
pub(super) async fn watch(reader: &mut BufReader<OwnedReadHalf>) -> Peer {
    let end_of_input = match reader.fill_buf().await {
        Err(_) => return Peer::Gone,
        Ok(buffered) => buffered.is_empty(),
    };
    if !end_of_input {
        Peer::Spoke
    } else if fully_closed(reader.get_ref()) {
        Peer::Gone
    } else {
        Peer::HalfClosed
    }
}

/// Whether the peer closed both directions (POLLHUP), not only its write side (end of input).
fn fully_closed(read: &OwnedReadHalf) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stream: &UnixStream = read.as_ref();
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// What a connection follows for `logs -f` and `events`.
struct Streams {
    logs: crate::logs::Registry,
    events: Option<crate::daemon::events::Subscribe>,
}

async fn connection(
    stream: UnixStream,
    cred: UCred,
    daemon: mpsc::Sender<Envelope>,
    access: Access,
    streams: Streams,
    answers: Option<Arc<Semaphore>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    // Every complete request line is answered, also those that came before the client shut
    // its write side: the loop ends only at the end of input.
    loop {
        // A long request's buffer is not kept for the connection's life.
        line.clear();
        line.shrink_to(1024);
        let n = (&mut reader)
            .take(MAX_REQUEST + 1)
            .read_until(b'\n', &mut line)
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
        let parsed = match std::str::from_utf8(&line) {
            Ok(text) => protocol::parse_request(text.trim_end()),
            Err(_) => Err(Response::error(
                ErrorKind::BadRequest,
                "malformed request: not UTF-8",
                vec![],
            )),
        };
        let response = match parsed {
            Err(response) => response,
            Ok(request) if !access.allows(&cred, &request.command) => Response::error(
                ErrorKind::PermissionDenied,
                format!(
                    "uid {} may read status but not change it; run as root, as svcd's user, or as a member of its admin group",
                    cred.uid()
                ),
                vec![],
            ),
            Ok(request) if matches!(request.command, Command::Logs { .. }) => {
                let connection = super::logs::Connection {
                    daemon: &daemon,
                    registry: &streams.logs,
                    reader: &mut reader,
                    write: &mut write,
                    answers: &answers,
                };
                let more = super::logs::answer(request.command, connection).await?;
                if more {
                    continue;
                }
                return Ok(());
            }
            Ok(request) if matches!(request.command, Command::Events {}) => {
                let subscription = streams.events.as_ref().and_then(|s| s.upgrade());
                let Some(events) = subscription.map(|s| s.subscribe()) else {
                    let response =
                        Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![]);
                    send(&mut write, &response).await?;
                    return Ok(());
                };
                send(&mut write, &Response::ok(None)).await?;
                super::events::follow(events, &mut reader, &mut write).await?;
                return Ok(());
            }
            Ok(request) => {
                // A `wait` may take for ever: it takes its turn once answered.
                let early = !matches!(request.command, Command::Wait { .. });
                let mut turn = if early {
                    take_turn(&answers).await?
                } else {
                    None
                };
                let Some(response) = ask(&daemon, request.command, &mut reader).await else {
                    return Ok(());
                };
                if turn.is_none() {
                    turn = take_turn(&answers).await?;
                }
                send(&mut write, &response).await?;
                drop(turn);
                continue;
            }
        };
        send(&mut write, &response).await?;
    }
}

/// For a peer that is not root: its turn among [`MAX_UNPRIVILEGED_ANSWERS`].
pub(super) async fn take_turn(
    answers: &Option<Arc<Semaphore>>,
) -> std::io::Result<Option<tokio::sync::OwnedSemaphorePermit>> {
    match answers {
        None => Ok(None),
        Some(answers) => answers
            .clone()
            .acquire_owned()
            .await
            .map(Some)
            .map_err(std::io::Error::other),
    }
}

/// Hands `command` to the daemon task and waits for its answer; `None` when the client closed
/// the connection meanwhile (a `wait` it gave up on: the daemon forgets it).
async fn ask(
    daemon: &mpsc::Sender<Envelope>,
    command: Command,
    reader: &mut BufReader<OwnedReadHalf>,
) -> Option<Response> {
    let shutting_down =
        || Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![]);
    let (tx, mut rx) = oneshot::channel();
    let envelope = Envelope { command, reply: tx };
    if daemon.send(envelope).await.is_err() {
        return Some(shutting_down());
    }
    let answer = tokio::select! {
        answer = &mut rx => answer,
        peer = watch(reader) => match peer {
            Peer::Gone => return None,
            // The client still reads: answer it; its next request waits in the buffer.
            Peer::Spoke | Peer::HalfClosed => rx.await,
        },
    };
    Some(answer.unwrap_or_else(|_| shutting_down()))
}

/// Writes `response`; a peer that does not take it within [`STALL`] is given up on.
async fn send(write: &mut OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    // A metrics text (565 kB at 1,000 units) is written once into room made for it and its
    // escaped quotes, not through a buffer doubled and copied eight times.
    let room = response
        .metrics
        .as_ref()
        .map_or(256, |text| text.len() * 9 / 8);
    let mut bytes = Vec::with_capacity(room);
    serde_json::to_writer(&mut bytes, response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    match tokio::time::timeout(STALL, write.write_all(&bytes)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
