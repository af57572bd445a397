//! The sockets svcd holds for units with `listen`: bound at the unit's first start, kept open
//! across its restarts, crashes and reloads, passed to each of its runs as fds 3, 4, ...
//!
//! svcd never reads or polls them: a held socket costs no wake-up. Connections that arrive while
//! the unit is down wait in the kernel's backlog until its next run accepts them.
//!
//! Everything held is in one [`HeldSockets`], so that what must survive svcd (its re-execution,
//! its re-adoption of running units) can list it: [`HeldSockets::entries`].

use crate::unit::{ListenAddr, Unit};
use nix::sys::socket::{Backlog, listen};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One socket held for a unit.
#[derive(Debug)]
pub struct Held {
    pub addr: ListenAddr,
    /// The backlog it listens with now.
    pub backlog: u32,
    /// Close-on-exec in svcd; the spawn duplicates it into place for the unit.
    pub fd: OwnedFd,
    /// A Unix socket's file, as created: (device, inode), so that svcd removes only its own.
    file: Option<(u64, u64)>,
}

/// Every socket svcd holds, by unit name.
#[derive(Debug, Default)]
pub struct HeldSockets {
    units: HashMap<String, Vec<Held>>,
}

/// Why a unit's sockets could not be bound: the unit's start failure.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{hint}")]
pub struct BindError {
    pub addr: ListenAddr,
    #[source]
    pub source: std::io::Error,
    /// What to do next, when the error says it.
    hint: &'static str,
}

impl super::Daemon {
    /// Binds (or keeps) the sockets of unit `id` before a spawn; an error is its start failure.
    pub(super) fn hold_sockets(&mut self, id: crate::supervisor::UnitId) -> Result<(), String> {
        let unit = &self.units[id];
        if unit.sockets.listen.is_empty() && self.sockets.of(&unit.name).is_empty() {
            return Ok(());
        }
        // The owner of its Unix socket files: the unit's user and group.
        let owner =
            crate::process::Credentials::resolve(unit.user.as_deref(), unit.group.as_deref(), &[])
                .map(|creds| creds.ids())
                .map_err(|e| format!("cannot resolve user/group: {e}"))?;
        let name = unit.name.clone();
        let result = self.sockets.ensure(unit, owner).map_err(|e| e.to_string());
        self.sync_held_sockets(&name);
        result
    }
}

impl HeldSockets {
    /// The sockets of `unit`, as its `listen` says: those held already for the same address are
    /// kept (a changed backlog applied, a Unix socket's mode and owner set again), the others
    /// bound now, and those it no longer lists closed. On a bind error nothing held changes.
    pub fn ensure(
        &mut self,
        unit: &Unit,
        owner: (Option<u32>, Option<u32>),
    ) -> Result<(), BindError> {
        let config = &unit.sockets;
        let mut old = self.units.remove(&unit.name).unwrap_or_default();
        if config.listen.is_empty() {
            release_all(old);
            return Ok(());
        }
        // (socket, held before this call)
        let mut kept: Vec<(Held, bool)> = Vec::with_capacity(config.listen.len());
        let mut failure = None;
        for addr in &config.listen {
            let result = match old.iter().position(|h| &h.addr == addr) {
                Some(at) => {
                    let mut held = old.swap_remove(at);
                    let result = refresh(&mut held, config.backlog, config.mode, owner);
                    kept.push((held, true));
                    result
                }
                None => bind_one(addr, config.backlog, config.mode, owner)
                    .map(|held| kept.push((held, false))),
            };
            if let Err(e) = result {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            // Back as they were: what was held stays held, what was bound now is closed.
            for (held, was_held) in kept {
                if was_held {
                    old.push(held);
                } else {
                    release(held);
                }
            }
            self.units.insert(unit.name.clone(), old);
            return Err(e);
        }
        release_all(old);
        self.units.insert(
            unit.name.clone(),
            kept.into_iter().map(|(h, _)| h).collect(),
        );
        Ok(())
    }

    /// The fds of `name`'s sockets, in `listen`'s order, with their names.
    pub fn of(&self, name: &str) -> Vec<(BorrowedFd<'_>, String)> {
        self.units
            .get(name)
            .map(|held| {
                held.iter()
                    .map(|h| (h.fd.as_fd(), h.addr.fd_name()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether svcd holds a socket of `name` bound to `addr`.
    pub fn holds(&self, name: &str, addr: SocketAddr) -> bool {
        self.units
            .get(name)
            .is_some_and(|held| held.iter().any(|h| h.addr == ListenAddr::Tcp(addr)))
    }

    /// Closes the sockets of a unit that is gone, and removes its Unix socket files.
    pub fn release(&mut self, name: &str) {
        if let Some(held) = self.units.remove(name) {
            release_all(held);
        }
    }

    /// Closes every held socket and removes the Unix socket files: svcd is exiting.
    pub fn release_every(&mut self) {
        for (_, held) in self.units.drain() {
            release_all(held);
        }
    }

    /// The sockets held for unit `name`: address and descriptor in svcd.
    pub fn addrs_of(&self, name: &str) -> Vec<(&ListenAddr, RawFd)> {
        self.units
            .get(name)
            .map(|held| held.iter().map(|h| (&h.addr, h.fd.as_raw_fd())).collect())
            .unwrap_or_default()
    }

    /// A socket a previous svcd held for `unit` at `addr`, taken back: held as if bound here
    /// (the unit's next start keeps it, as [`HeldSockets::ensure`] keeps what it holds).
    pub fn adopt(&mut self, unit: &Unit, addr: ListenAddr, fd: OwnedFd) {
        let file = match &addr {
            ListenAddr::Unix(path) => file_id(path),
            ListenAddr::Tcp(_) => None,
        };
        let held = self.units.entry(unit.name.clone()).or_default();
        held.retain(|h| h.addr != addr);
        held.push(Held {
            addr,
            backlog: unit.sockets.backlog,
            fd,
            file,
        });
    }

    /// Every held socket: unit name, address, descriptor in svcd.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ListenAddr, RawFd)> {
        self.units.iter().flat_map(|(name, held)| {
            held.iter()
                .map(move |h| (name.as_str(), &h.addr, h.fd.as_raw_fd()))
        })
    }
}

fn release_all(held: Vec<Held>) {
    for h in held {
        release(h);
    }
}

/// Closes a socket; a Unix socket's file goes too, if it is still the one svcd made.
fn release(held: Held) {
    if let (ListenAddr::Unix(path), Some(id)) = (&held.addr, held.file)
        && file_id(path) == Some(id)
    {
        let _ = std::fs::remove_file(path);
    }
    drop(held);
}

/// (device, inode) of the socket file at `path`, not following a symlink.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    use std::os::unix::fs::FileTypeExt;
    meta.file_type()
        .is_socket()
        .then(|| (meta.dev(), meta.ino()))
}

/// A socket held already, with the unit's (maybe changed) backlog, mode and owner.
fn refresh(
    held: &mut Held,
    backlog: u32,
    mode: u32,
    owner: (Option<u32>, Option<u32>),
) -> Result<(), BindError> {
    if held.backlog != backlog {
        // Listening again on a listening socket only changes its backlog (Linux).
        listen(&held.fd, to_backlog(backlog)).map_err(|e| error(&held.addr, e.into()))?;
        held.backlog = backlog;
    }
    if let ListenAddr::Unix(path) = &held.addr {
        set_file(path, mode, owner).map_err(|e| error(&held.addr, e))?;
    }
    Ok(())
}

fn to_backlog(backlog: u32) -> Backlog {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    Backlog::new(backlog).unwrap_or(Backlog::MAXCONN)
}

fn error(addr: &ListenAddr, source: std::io::Error) -> BindError {
    let hint = match source.raw_os_error() {
        Some(libc::EADDRINUSE) => {
            "; another process holds it (see `ss -ltnp`), stop it or change `listen`"
        }
        Some(libc::EACCES) => "; a port below 1024 needs svcd to run as root",
        _ => "",
    };
    BindError {
        addr: addr.clone(),
        source,
        hint,
    }
}

/// A new listening socket, close-on-exec, bound to `addr`.
fn bind_one(
    addr: &ListenAddr,
    backlog: u32,
    mode: u32,
    owner: (Option<u32>, Option<u32>),
) -> Result<Held, BindError> {
    // std binds with SO_REUSEADDR (a restarted svcd binds again at once, whatever is left in
    // TIME_WAIT) and close-on-exec, and listens with a backlog of 128: set ours right after.
    let (fd, file): (OwnedFd, _) = match addr {
        ListenAddr::Tcp(sa) => {
            let listener = std::net::TcpListener::bind(sa).map_err(|e| error(addr, e))?;
            (listener.into(), None)
        }
        ListenAddr::Unix(path) => {
            remove_stale(path).map_err(|e| error(addr, e))?;
            let listener =
                std::os::unix::net::UnixListener::bind(path).map_err(|e| error(addr, e))?;
            let id = file_id(path);
            if let Err(e) = set_file(path, mode, owner) {
                if file_id(path) == id {
                    let _ = std::fs::remove_file(path);
                }
                return Err(error(addr, e));
            }
            (listener.into(), id)
        }
    };
    listen(&fd, to_backlog(backlog)).map_err(|e| error(addr, e.into()))?;
    Ok(Held {
        addr: addr.clone(),
        backlog,
        fd,
        file,
    })
}

/// A socket file left at `path` (by an svcd that did not end cleanly) is removed; anything
/// else there (a file, a symlink, a directory) is an error: svcd does not remove or follow it.
fn remove_stale(path: &PathBuf) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "something that is not a socket is at that path; remove it or change `listen`",
        )),
    }
}

/// Sets the mode and owner of the socket file at `path` through a descriptor opened without
/// following a symlink, so that a symlink swapped in never redirects the change.
fn set_file(path: &Path, mode: u32, owner: (Option<u32>, Option<u32>)) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::{Mode, SFlag, fstat};
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = fstat(&fd)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path is no longer the socket svcd bound",
        ));
    }
    // An O_PATH descriptor takes no fchmod; its /proc link names exactly that inode.
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        link.as_str(),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    if owner.0.is_some() || owner.1.is_some() {
        nix::unistd::fchownat(
            &fd,
            "",
            owner.0.map(nix::unistd::Uid::from_raw),
            owner.1.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )?;
    }
    Ok(())
}

/// The `ready.tcp` check of a run whose socket svcd holds: the kernel accepts the probe's
/// connection into the backlog whether or not a process serves it, and the old run of an
/// overlapping restart serves the same socket, so a connection alone proves nothing. Returns
/// once a probe connection was accepted by a process of the run whose main process is `main`
/// (the accepted socket, found in `/proc/net/tcp` by the probe's own address, is one of its
/// fds); one the old run took is retried. Runs until the core's ready timeout ends the run.
pub async fn accepted_by_run(addr: SocketAddr, main: u32) {
    let mut pause = Duration::from_millis(5);
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await
            && let Ok(probe) = stream.local_addr()
        {
            let mut wait = Duration::from_millis(1);
            // Until some process accepts it (or it is gone); then whose it is.
            for _ in 0..40 {
                match accepted_inode(addr, probe) {
                    Some(0) => {}
                    Some(inode) => {
                        if holds_inode(main, inode) {
                            return;
                        }
                        break;
                    }
                    None => break,
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// The inode of the server side of the connection from `peer` to `local`: 0 while it waits in
/// the backlog (no process has accepted it), `None` if there is no such connection.
fn accepted_inode(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    ["net/tcp", "net/tcp6"].into_iter().find_map(|file| {
        let text = crate::proc::read_system(file)?;
        text.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let same = |at: usize, want: SocketAddr| {
                fields
                    .get(at)
                    .and_then(|f| super::ports::parse_address(f))
                    .is_some_and(|addr| addr == want)
            };
            (same(1, local) && same(2, peer)).then(|| fields.get(9)?.parse().ok())?
        })
    })
}

/// Whether a process of the run whose main process is `main` holds the socket `inode`.
fn holds_inode(main: u32, inode: u64) -> bool {
    if crate::proc::socket_inodes(main).contains(&inode) {
        return true;
    }
    crate::proc::pids().any(|pid| {
        pid != main
            && super::ports::belongs_to_unit(pid, main)
            && crate::proc::socket_inodes(pid).contains(&inode)
    })
}
