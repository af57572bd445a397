//! The sd_notify protocol: a datagram socket at `<state-dir>/notify.sock`, exported to units
//! with `ready.notify` or `health.watchdog` as `NOTIFY_SOCKET` (an absolute path).
//!
//! The kernel tells who sent each datagram (`SO_PASSCRED`). As systemd's `NotifyAccess`, a
//! message counts for a unit only when its sender is the unit's main process (or the pid the
//! unit named with `MAINPID=`), or, with `notify_access = "all"`, a descendant of it: never
//! because of a process group, which any process may join. `MAINPID=` may name only a process
//! of the unit's own tree.
//!
//! The socket is writable by everyone (units run as other users), so a message from a pid of no
//! unit is dropped before anything is formatted or logged: it is counted, and a summary line is
//! logged at most once per [`SUMMARY_EVERY`]. File descriptors passed with a message
//! (`BARRIER=1`) are received and closed once the message was handled: closing them is the
//! answer to a barrier, and none is kept.

use super::Daemon;
use super::checks::Message;
use crate::supervisor::UnitId;
use crate::unit::NotifyAccess;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt::PassCred};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

/// Largest message read (systemd's own limit); longer ones are cut.
const MAX_MESSAGE: usize = 4096;
/// The kernel's limit of descriptors in one message (`SCM_MAX_FD`): with room for this many,
/// the control data is never cut, so every descriptor received is seen, and closed.
const MAX_FDS: usize = 253;
/// At most one summary of dropped messages per this long.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// How far up the parents a sender is followed to find a unit's main process.
const MAX_DEPTH: usize = 64;

/// Binds the notify socket at `path` (a stale one is replaced: the state directory is locked, so
/// it is no other svcd's).
pub fn bind(path: &Path) -> std::io::Result<UnixDatagram> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let socket = std::os::unix::net::UnixDatagram::bind(path)?;
    socket.set_nonblocking(true)?;
    setsockopt(&socket, PassCred, &true).map_err(std::io::Error::from)?;
    // Units may run as other users; the sender check, not the mode, decides who is heard.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    UnixDatagram::from_std(socket)
}

/// Reads datagrams forever, passing each (with its sender's pid and descriptors) to the event
/// loop.
pub async fn serve(socket: UnixDatagram, tx: mpsc::UnboundedSender<Message>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials, [RawFd; MAX_FDS]);
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let received = socket.try_io(Interest::READABLE, || {
            receive(&socket, &mut buf, &mut space)
        });
        match received {
            Ok((pid, text, fds)) => {
                if tx.send(Message::Notify { pid, text, fds }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::debug!("notify socket: {e}"),
        }
    }
}

/// One datagram: its sender's pid, its bytes, the descriptors passed with it.
fn receive(
    socket: &UnixDatagram,
    buf: &mut [u8],
    space: &mut [u8],
) -> std::io::Result<(Option<u32>, Vec<u8>, PassedFds)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut pid = None;
    let mut fds = PassedFds::default();
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        match cmsg {
            ControlMessageOwned::ScmCredentials(creds) => {
                pid = u32::try_from(creds.pid()).ok().filter(|p| *p > 0);
            }
            ControlMessageOwned::ScmRights(received) => fds.0.extend(received),
            _ => {}
        }
    }
    let len = msg.bytes;
    Ok((pid, buf[..len].to_vec(), fds))
}

/// Descriptors passed with a message, closed when it is dropped: after the message was
/// handled, or at once when it is dropped unheard. Never kept, never leaked.
#[derive(Debug, Default)]
pub struct PassedFds(Vec<RawFd>);

impl Drop for PassedFds {
    fn drop(&mut self) {
        for fd in self.0.drain(..) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// The count of messages dropped because their sender belongs to no unit.
#[derive(Debug, Default)]
pub struct Drops {
    /// Since svcd started.
    total: u64,
    /// Since the last summary line.
    pending: u64,
    last_summary: Option<Instant>,
}

impl Drops {
    /// Counts one dropped message. Returns `(since the last summary, total)` when a summary
    /// line is due: at the first drop, then at most once per [`SUMMARY_EVERY`].
    pub fn handle_drop(&mut self, now: Instant) -> Option<(u64, u64)> {
        self.total += 1;
        self.pending += 1;
        if self
            .last_summary
            .is_some_and(|at| now.saturating_duration_since(at) < SUMMARY_EVERY)
        {
            return None;
        }
        self.last_summary = Some(now);
        let pending = std::mem::take(&mut self.pending);
        Some((pending, self.total))
    }
}

/// The parent of `pid`, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    crate::proc::stat(pid).map(|stat| stat.ppid)
}

/// Whether `pid` is `ancestor` or one of its descendants.
fn is_in_tree(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if current == ancestor {
            return true;
        }
        match parent_of(current) {
            Some(parent) if parent > 1 && parent != current => current = parent,
            _ => return false,
        }
    }
    false
}

impl Daemon {
    /// The unit a notify sender speaks for: the unit whose main process it is, else, for units
    /// with `notify_access = "all"`, the unit whose main process it descends from.
    fn notify_sender(&self, pid: u32) -> Option<UnitId> {
        if let Some(&id) = self.pids.get(&pid) {
            return Some(id);
        }
        if let Some((&id, _)) = self.checks.main_pid.iter().find(|(_, p)| **p == pid) {
            return Some(id);
        }
        // The main pids (started, or named) of the units that hear their whole tree.
        let open: Vec<(UnitId, u32)> = self
            .pids
            .iter()
            .map(|(&pid, &id)| (id, pid))
            .chain(self.checks.main_pid.iter().map(|(&id, &pid)| (id, pid)))
            .filter(|&(id, _)| {
                self.units
                    .get(id)
                    .is_some_and(|unit| unit.notify_access == NotifyAccess::All)
            })
            .collect();
        if open.is_empty() {
            return None;
        }
        let mut current = pid;
        for _ in 0..MAX_DEPTH {
            current = match parent_of(current) {
                Some(parent) if parent > 1 && parent != current => parent,
                _ => return None,
            };
            if let Some(&(id, _)) = open.iter().find(|(_, main)| *main == current) {
                return Some(id);
            }
        }
        None
    }

    pub(super) fn handle_notify(&mut self, pid: Option<u32>, bytes: &[u8]) {
        let id = pid.and_then(|pid| self.notify_sender(pid));
        let Some(id) = id else {
            // Anyone may write to the socket: nothing is formatted before this count.
            if let Some((dropped, total)) = self.checks.drops.handle_drop(Instant::now()) {
                tracing::warn!(
                    total,
                    "dropped {dropped} notify messages from pids of no unit"
                );
            }
            return;
        };
        let now = Instant::now();
        let text = String::from_utf8_lossy(bytes);
        let name = self.units[id].name.clone();
        for (key, value) in parse(&text) {
            match (key, value) {
                ("READY", "1") if self.units[id].ready.notify => {
                    // Running but not ready: only a reload (RELOADING=1) does that.
                    let status = self.supervisor.status(id);
                    let reloading =
                        status.state == crate::supervisor::State::Running && !status.ready;
                    self.supervisor.handle_ready(now, id);
                    if reloading {
                        self.note_notify_reload(id);
                    }
                }
                ("READY", "1") => {
                    tracing::debug!(unit = %name, "READY=1 ignored: ready.notify is not set")
                }
                ("STATUS", text) => {
                    self.supervisor.handle_status_text(now, id, text);
                }
                ("RELOADING", "1") => self.supervisor.handle_reloading(now, id),
                ("STOPPING", "1") => tracing::info!(unit = %name, "the unit says it is stopping"),
                ("WATCHDOG", "1") => self.supervisor.handle_watchdog(now, id),
                // Answered by closing the descriptor it came with, once this message is handled.
                ("BARRIER", "1") => {}
                ("MAINPID", value) => match value.parse::<u32>() {
                    Ok(main)
                        if main > 1
                            && self
                                .supervisor
                                .status(id)
                                .pid
                                .is_some_and(|started| is_in_tree(main, started)) =>
                    {
                        tracing::info!(unit = %name, pid = main, "MAINPID: may speak for the unit");
                        self.checks.main_pid.insert(id, main);
                    }
                    _ => {
                        tracing::warn!(unit = %name, "MAINPID={value} ignored: not a process of the unit")
                    }
                },
                _ => tracing::debug!(unit = %name, "notify: {key}={value}"),
            }
        }
    }
}

/// The `KEY=value` lines of one notify message, in order (a line without `=` is a key with an
/// empty value). Pure, so that it can be fuzzed.
pub fn parse(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(|line| line.split_once('=').unwrap_or((line, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summed_up_at_most_once_per_period() {
        let mut drops = Drops::default();
        let t0 = Instant::now();
        assert_eq!(drops.handle_drop(t0), Some((1, 1)));
        for i in 1..1000 {
            assert_eq!(drops.handle_drop(t0 + Duration::from_millis(i)), None);
        }
        let later = t0 + SUMMARY_EVERY;
        assert_eq!(drops.handle_drop(later), Some((1000, 1001)));
    }

    #[test]
    fn a_child_is_in_its_parents_tree_and_not_the_other_way() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(is_in_tree(child.id(), me));
        assert!(is_in_tree(me, me));
        assert!(!is_in_tree(me, child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
}
