//! The sd_notify protocol: a datagram socket at `<state-dir>/notify.sock`, exported to units
//! with `ready.notify` or `health.watchdog` as `NOTIFY_SOCKET`.
//!
//! The kernel tells who sent each datagram (`SO_PASSCRED`); a message counts only for the unit
//! whose main process sent it, or a process of that unit's group (or the pid it named with
//! `MAINPID=`), so a unit speaks only for itself.

use super::Daemon;
use super::checks::Message;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt::PassCred};
use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::path::Path;
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

/// Binds the notify socket at `path` (a stale one is replaced).
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

/// Reads datagrams forever, passing each (with its sender's pid) to the event loop.
pub async fn serve(socket: UnixDatagram, tx: mpsc::UnboundedSender<Message>) {
    let mut buf = vec![0u8; 4096];
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let received = socket.try_io(Interest::READABLE, || receive(&socket, &mut buf));
        match received {
            Ok((pid, text)) => {
                if tx.send(Message::Notify { pid, text }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::warn!("notify socket: {e}"),
        }
    }
}

fn receive(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<(Option<u32>, String)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut pid = None;
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmCredentials(creds) = cmsg {
            pid = u32::try_from(creds.pid()).ok().filter(|p| *p > 0);
        }
    }
    let len = msg.bytes;
    Ok((pid, String::from_utf8_lossy(&buf[..len]).into_owned()))
}

impl Daemon {
    /// The unit a notify sender belongs to: its main pid, the pid it named with `MAINPID=`, or a
    /// process in its group.
    fn notify_sender(&self, pid: u32) -> Option<usize> {
        if let Some(&id) = self.pids.get(&pid) {
            return Some(id);
        }
        if let Some((&id, _)) = self.checks.main_pid.iter().find(|(_, p)| **p == pid) {
            return Some(id);
        }
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32))).ok()?;
        self.pids.get(&(pgid.as_raw() as u32)).copied()
    }

    pub(super) fn handle_notify(&mut self, pid: Option<u32>, text: &str) {
        let Some(pid) = pid else {
            tracing::warn!("notify message without sender credentials, ignored");
            return;
        };
        let Some(id) = self.notify_sender(pid) else {
            tracing::warn!(pid, "notify message from a process of no unit, ignored");
            return;
        };
        let now = std::time::Instant::now();
        let name = self.units[id].name.clone();
        for (key, value) in parse(text) {
            match (key, value) {
                ("READY", "1") if self.units[id].ready.notify => {
                    self.supervisor.handle_ready(now, id)
                }
                ("READY", "1") => {
                    tracing::debug!(unit = %name, "READY=1 ignored: ready.notify is not set")
                }
                ("STATUS", text) => {
                    self.checks.status_text.insert(id, text.to_string());
                }
                ("RELOADING", "1") => self.supervisor.handle_reloading(now, id),
                ("STOPPING", "1") => tracing::info!(unit = %name, "the unit says it is stopping"),
                ("WATCHDOG", "1") => self.supervisor.handle_watchdog(now, id),
                ("MAINPID", value) => match value.parse::<u32>() {
                    Ok(main) if self.notify_sender(main) == Some(id) => {
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
