//! The fd holder: a small process of its own that keeps a duplicate of the read end of every
//! unit's output pipes, so that the pipes outlive a svcd that crashes. While it holds them, a
//! unit that writes gets no EPIPE, and what it writes waits in the pipe (up to the pipe's
//! size) until the next svcd takes the read ends back from the holder and reads on: no line is
//! lost, and none is read twice (the holder never reads).
//!
//! It is svcd's own binary, started as `svcd --fd-holder SOCKET` (before anything else in
//! `main`, so it touches little memory), in a process group of its own, and it lives on when
//! svcd dies. It speaks over a `SOCK_SEQPACKET` socket (`<state-dir>/fdholder.sock`, 0600): each
//! message is one command, with its descriptors (`SCM_RIGHTS`):
//!
//! - `hold KEY` with two descriptors (stdout, stderr): keep them; KEY is `PID:STARTTIME`.
//! - `drop KEY`: close them (the unit's run ended and svcd drained its pipes).
//! - `sock KEY` with one descriptor: keep a listening socket svcd holds for a unit (`listen`);
//!   KEY is `listen:UNIT:ADDRESS`. Also a unit's pressure FIFO (`memory.on_limit` or
//!   `memory.on_pressure` with `notify`), KEY `pressure:UNIT`: kept open for writing, so that the unit's reader sees no
//!   hang-up while svcd is down.
//! - `give`: answered by `fds KEY...` (keys one a line) with two descriptors per key, up to 100
//!   keys a message, then `socks KEY...` with one descriptor per key, then `end`.
//! - `exit`: svcd stopped every unit and exits for good.
//!
//! One svcd at a time: a new connection replaces the old. With no svcd connected, it exits once
//! every pipe it holds has lost its writers (its unit is gone too), so a holder never outlives
//! both svcd and the units; the sockets it holds go with it.

use super::light_sleep::{self, Wait};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, accept, bind, connect, listen, recvmsg, sendmsg, socket,
};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The holder's socket, in the state directory.
pub const SOCKET: &str = "fdholder.sock";
/// The hidden first argument of svcd that makes it the holder.
pub const FLAG: &str = "--fd-holder";

/// Longest message: a command and its keys.
const MAX_MESSAGE: usize = 4096;
/// Runs per `fds` answer: 100 pairs of descriptors, within the kernel's 253 per message, so
/// that giving back 1,000 units' pipes takes 10 messages, not 1,000 round trips between two
/// processes that a loaded machine schedules slowly.
const PER_MESSAGE: usize = 100;

/// The read ends of one unit run's stdout and stderr.
pub type Pipes = (OwnedFd, OwnedFd);

/// What the holder gives back: the runs' pipes and the units' listening sockets, by key.
pub type Given = (HashMap<String, Pipes>, HashMap<String, OwnedFd>);

/// The holder's key of the socket svcd holds for unit `unit` at `addr` (`None` for an address
/// that does not fit in a key: a newline in a Unix socket's path).
pub fn socket_key(unit: &str, addr: &str) -> Option<String> {
    let key = format!("listen:{unit}:{addr}");
    (!key.contains('\n')).then_some(key)
}

/// The key of a process: its pid and start time (a pid alone may be reused).
/// The key of unit `unit`'s pressure FIFO (`notify` in `memory.on_limit` or `memory.on_pressure`), which the holder
/// keeps open for writing (with `sock`) so that the unit's reader sees no hang-up while svcd is
/// down; the next svcd opens the FIFO again by its path.
pub fn fifo_key(unit: &str) -> String {
    format!("pressure:{unit}")
}

pub fn key(pid: u32, start_time: u64) -> String {
    format!("{pid}:{start_time}")
}

fn seqpacket() -> std::io::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(std::io::Error::from)
}

fn send(sock: &OwnedFd, text: &str, fds: &[RawFd]) -> std::io::Result<()> {
    let iov = [IoSlice::new(text.as_bytes())];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    // MSG_NOSIGNAL: a holder that died is an error to report, not a SIGPIPE.
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// One message: its text and descriptors; `None` at the end of the connection.
fn receive(sock: &OwnedFd) -> std::io::Result<Option<(String, Vec<OwnedFd>)>> {
    let mut buf = [0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; 2 * PER_MESSAGE]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these descriptors in this process for this
            // message; nothing else owns them.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let len = msg.bytes;
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    Ok(Some((text, fds)))
}

/// svcd's side: a connection to the holder.
///
/// Non-blocking, but for [`Holder::give`]: svcd's event loop never waits for the holder, a
/// process that a loaded machine may not run for a while. A `hold` that does not fit in the
/// socket's buffer is left out (that run's output is not held: lost only if svcd crashes
/// before the run ends); a `drop` that does not fit is kept and sent before the next message,
/// so the holder never keeps a run's pipes for ever.
#[derive(Debug)]
pub struct Holder {
    sock: OwnedFd,
    /// `drop`s not sent yet: they go with the next `hold` (a crash and its restart are one
    /// message, one wake-up of the holder) or at the end of the loop's turn
    /// ([`Holder::flush`]), or once the socket has room.
    drops: std::cell::RefCell<Vec<String>>,
}

impl Holder {
    /// Connects to the holder of `state_dir`, starting one if none answers.
    pub fn connect_or_start(state_dir: &Path) -> std::io::Result<Holder> {
        let path = state_dir.join(SOCKET);
        if let Ok(holder) = Holder::connect(&path) {
            return Ok(holder);
        }
        let _ = std::fs::remove_file(&path);
        start(&path)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Holder::connect(&path) {
                Ok(holder) => return Ok(holder),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn connect(path: &Path) -> std::io::Result<Holder> {
        let sock = seqpacket()?;
        let addr = UnixAddr::new(path).map_err(std::io::Error::from)?;
        connect(sock.as_raw_fd(), &addr).map_err(std::io::Error::from)?;
        let holder = Holder {
            sock,
            drops: Default::default(),
        };
        holder.set_blocking(false)?;
        Ok(holder)
    }

    fn set_blocking(&self, blocking: bool) -> std::io::Result<()> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let flags = fcntl(&self.sock, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
        let mut flags = OFlag::from_bits_truncate(flags);
        flags.set(OFlag::O_NONBLOCK, !blocking);
        fcntl(&self.sock, FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// Sends the drops that waited for room, all in one message; whether they went.
    fn flush_drops(&self) -> std::io::Result<bool> {
        if self.drops.borrow().is_empty() {
            return Ok(true);
        }
        match self.send_after_drops(None, &[]) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One message: the drops not sent yet, then `command` (if any) with `fds`; the drops are
    /// forgotten once sent.
    fn send_after_drops(&self, command: Option<&str>, fds: &[RawFd]) -> std::io::Result<()> {
        let mut drops = self.drops.borrow_mut();
        let mut text: Vec<String> = drops.iter().map(|key| format!("drop {key}")).collect();
        text.extend(command.map(str::to_string));
        send(&self.sock, &text.join("\n"), fds)?;
        drops.clear();
        Ok(())
    }

    /// Hands the holder duplicates of a run's read ends, with the drops not sent yet; left
    /// out (`Ok`) when the holder is behind: svcd does not wait for it.
    pub fn hold(&mut self, key: &str, out: &OwnedFd, err: &OwnedFd) -> std::io::Result<()> {
        let fds = [out.as_raw_fd(), err.as_raw_fd()];
        match self.send_after_drops(Some(&format!("hold {key}")), &fds) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!("the fd holder is behind: the output of run {key} is not held");
                Ok(())
            }
            result => result,
        }
    }

    /// Hands the holder a duplicate of a listening socket svcd holds (key from [`socket_key`]),
    /// with the drops not sent yet; `WouldBlock` when the holder is behind (the caller tries
    /// again at the unit's next start).
    pub fn hold_socket(&mut self, key: &str, fd: RawFd) -> std::io::Result<()> {
        let result = self.send_after_drops(Some(&format!("sock {key}")), &[fd]);
        if let Err(e) = &result
            && e.kind() == std::io::ErrorKind::WouldBlock
        {
            tracing::debug!("the fd holder is behind: the socket {key} is not held");
        }
        result
    }

    /// The run `key` ended: the holder closes its duplicates (with the next message).
    pub fn drop_key(&self, key: &str) -> std::io::Result<()> {
        self.drops.borrow_mut().push(key.to_string());
        Ok(())
    }

    /// Sends the drops still waiting, at the end of a turn of svcd's loop.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.flush_drops().map(drop)
    }

    /// Every pipe and socket the holder keeps, by key (its own copies stay with it). Blocks
    /// until the holder has answered.
    pub fn give(&self) -> std::io::Result<Given> {
        self.set_blocking(true)?;
        let all = self.give_blocking();
        self.set_blocking(false)?;
        all
    }

    fn give_blocking(&self) -> std::io::Result<Given> {
        self.flush_drops()?;
        send(&self.sock, "give", &[])?;
        let (mut pipes, mut sockets) = (HashMap::new(), HashMap::new());
        loop {
            let Some((text, fds)) = receive(&self.sock)? else {
                return Err(std::io::Error::other("the fd holder hung up"));
            };
            if text == "end" {
                return Ok((pipes, sockets));
            }
            let mut fds = fds.into_iter();
            if let Some(keys) = text.strip_prefix("socks ") {
                for (key, fd) in keys.lines().zip(fds.by_ref()) {
                    sockets.insert(key.to_string(), fd);
                }
                continue;
            }
            let keys = text.strip_prefix("fds ").unwrap_or_default();
            for key in keys.lines() {
                if let (Some(out), Some(err)) = (fds.next(), fds.next()) {
                    pipes.insert(key.to_string(), (out, err));
                }
            }
        }
    }

    /// svcd exits for good: so does the holder (waiting for it to take the message).
    pub fn exit(&self) {
        let _ = self.set_blocking(true);
        let _ = send(&self.sock, "exit", &[]);
    }
}

/// Starts `svcd --fd-holder PATH` from svcd's binary, in a process group of its own (a stop
/// of svcd's group leaves it), with nothing on its standard streams.
fn start(path: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::fs::read_link("/proc/self/exe")?;
    std::process::Command::new(exe)
        .arg(FLAG)
        .arg(path)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env_clear()
        .spawn()
        .map(drop)
}

/// How long the holder waits with nothing to do before it lets go of its code pages.
const IDLE_AFTER_MS: u16 = 1000;

/// The holder process: `svcd --fd-holder PATH`. Returns only on an error that ends it.
pub fn run(path: PathBuf) -> std::io::Result<()> {
    let listener = seqpacket()?;
    let addr = UnixAddr::new(&path).map_err(std::io::Error::from)?;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = bind(listener.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    bound.map_err(std::io::Error::from)?;
    listen(&listener, Backlog::new(4).map_err(std::io::Error::from)?)
        .map_err(std::io::Error::from)?;
    let mut held: HashMap<String, Pipes> = HashMap::new();
    let mut sockets: HashMap<String, OwnedFd> = HashMap::new();
    // Pipes whose writers are gone while no svcd was connected: no longer watched (a hung-up
    // pipe polls ready for ever), kept for the next svcd to drain.
    let mut hung_up: Vec<String> = Vec::new();
    let mut conn: Option<OwnedFd> = None;
    let mut served = false;
    let mut code_mapped = true;
    loop {
        if conn.is_none() && served && held.keys().all(|k| hung_up.contains(k)) {
            // Neither svcd nor any unit is left to care.
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        let watched: Vec<String> = match conn {
            Some(_) => Vec::new(),
            None => held
                .keys()
                .filter(|k| !hung_up.contains(k))
                .cloned()
                .collect(),
        };
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if let Some(conn) = &conn {
            fds.push(PollFd::new(conn.as_fd(), PollFlags::POLLIN));
        }
        for key in &watched {
            if let Some((out, _)) = held.get(key) {
                fds.push(PollFd::new(out.as_fd(), PollFlags::empty()));
            }
        }
        // Once quiet for a second, it waits without the code it ran mapped (see
        // `light_sleep`): one wake-up after each burst of work, none while nothing happens.
        let wait = if code_mapped {
            PollTimeout::from(IDLE_AFTER_MS)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, wait) {
            Ok(0) => {
                let waits: Vec<Wait> = fds
                    .iter()
                    .map(|fd| Wait {
                        fd: fd.as_fd().as_raw_fd(),
                        readable: fd.events().contains(PollFlags::POLLIN),
                    })
                    .collect();
                drop(fds);
                light_sleep::sleep(&light_sleep::code_ranges(), &waits);
                code_mapped = false;
                continue;
            }
            Ok(_) => code_mapped = true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let accept_ready = ready(&fds[0]);
        let conn_ready = conn.is_some() && ready(&fds[1]);
        let offset = 1 + usize::from(conn.is_some());
        let newly_hung: Vec<String> = watched
            .iter()
            .zip(&fds[offset..])
            .filter(|(_, fd)| ready(fd))
            .map(|(key, _)| key.clone())
            .collect();
        drop(fds);
        hung_up.extend(newly_hung);
        if conn_ready && let Some(sock) = &conn {
            match receive(sock) {
                Ok(Some((text, fds))) => {
                    let kept = Kept {
                        pipes: &mut held,
                        sockets: &mut sockets,
                        hung_up: &mut hung_up,
                    };
                    if handle(sock, &text, fds, kept) {
                        let _ = std::fs::remove_file(&path);
                        return Ok(());
                    }
                }
                Ok(None) | Err(_) => conn = None,
            }
        }
        if accept_ready && let Ok(sock) = accept(&listener) {
            conn = Some(sock);
            served = true;
        }
    }
}

/// What the holder keeps: the runs' pipes (and which have lost their writers), the sockets.
struct Kept<'a> {
    pipes: &'a mut HashMap<String, Pipes>,
    sockets: &'a mut HashMap<String, OwnedFd>,
    hung_up: &'a mut Vec<String>,
}

/// One command; whether the holder is to exit.
fn handle(sock: &OwnedFd, text: &str, fds: Vec<OwnedFd>, mut kept: Kept<'_>) -> bool {
    let mut fds = fds.into_iter();
    for line in text.lines() {
        if handle_line(sock, line, &mut fds, &mut kept) {
            return true;
        }
    }
    false
}

/// One command of a message, taking its descriptors from `fds`; whether to exit.
fn handle_line(
    sock: &OwnedFd,
    text: &str,
    fds: &mut impl Iterator<Item = OwnedFd>,
    kept: &mut Kept<'_>,
) -> bool {
    let (command, key) = text.split_once(' ').unwrap_or((text, ""));
    match command {
        "hold" => {
            if let (Some(out), Some(err)) = (fds.next(), fds.next()) {
                kept.pipes.insert(key.to_string(), (out, err));
                kept.hung_up.retain(|k| k != key);
            }
        }
        "sock" => {
            if let Some(fd) = fds.next() {
                kept.sockets.insert(key.to_string(), fd);
            }
        }
        "drop" => {
            kept.pipes.remove(key);
            kept.sockets.remove(key);
            kept.hung_up.retain(|k| k != key);
        }
        "give" => {
            let all: Vec<(&String, &Pipes)> = kept.pipes.iter().collect();
            for chunk in all.chunks(PER_MESSAGE) {
                let keys: Vec<&str> = chunk.iter().map(|(key, _)| key.as_str()).collect();
                let fds: Vec<RawFd> = chunk
                    .iter()
                    .flat_map(|(_, (out, err))| [out.as_raw_fd(), err.as_raw_fd()])
                    .collect();
                let _ = send(sock, &format!("fds {}", keys.join("\n")), &fds);
            }
            let sockets: Vec<(&String, &OwnedFd)> = kept.sockets.iter().collect();
            for chunk in sockets.chunks(2 * PER_MESSAGE) {
                let keys: Vec<&str> = chunk.iter().map(|(key, _)| key.as_str()).collect();
                let fds: Vec<RawFd> = chunk.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
                let _ = send(sock, &format!("socks {}", keys.join("\n")), &fds);
            }
            let _ = send(sock, "end", &[]);
        }
        "exit" => return true,
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_keeps_pipes_and_gives_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET);
        let server = path.clone();
        let thread = std::thread::spawn(move || run(server));
        let deadline = Instant::now() + Duration::from_secs(10);
        let holder = loop {
            match Holder::connect(&path) {
                Ok(holder) => break holder,
                Err(e) => assert!(Instant::now() < deadline, "{e}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (err_r, _err_w) = nix::unistd::pipe().unwrap();
        let mut holder = holder;
        holder.hold(&key(1, 2), &out_r, &err_r).unwrap();
        holder.flush().unwrap();
        // svcd is gone: its ends closed. The holder's keep the pipe open for the writer.
        drop((out_r, err_r));
        nix::unistd::write(&out_w, b"kept\n").unwrap();
        drop(holder);
        let mut holder = Holder::connect(&path).unwrap();
        let (listener, _) = nix::unistd::pipe().unwrap();
        let socket = socket_key("chat", "127.0.0.1:3000").unwrap();
        holder.hold_socket(&socket, listener.as_raw_fd()).unwrap();
        drop(listener);
        let (mut all, mut sockets) = holder.give().unwrap();
        let (out, _err) = all.remove(&key(1, 2)).expect("held");
        assert!(sockets.remove(&socket).is_some(), "the socket held");
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&out, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"kept\n");
        holder.drop_key(&key(1, 2)).unwrap();
        holder.drop_key(&socket).unwrap();
        holder.flush().unwrap();
        let (pipes, sockets) = holder.give().unwrap();
        assert!(pipes.is_empty() && sockets.is_empty());
        holder.exit();
        thread.join().unwrap().unwrap();
        assert!(!path.exists());
    }
}
