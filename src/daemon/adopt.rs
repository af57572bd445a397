//! svcd's state on disk, and taking units back when svcd comes up again: after a crash (the
//! processes run on, now orphans: watched through a pidfd) or after `svc upgrade` (the same
//! pid re-executed: the processes are still its children, and their output pipes are passed
//! across the `exec`).
//!
//! The state file ([`super::statefile`]) is made again at the end of each turn of the event
//! loop in which a unit's visible status changed (the core's `Publish`), never on a timer, and
//! handed to its writing thread. Each unit's part is serialized again only when that unit
//! changed, and a unit adopted as the file records it leaves the file as it is. The units'
//! output pipes outlive a crash in the fd holder ([`super::fdholder`]).
//!
//! A process is the one recorded only if both its pid and its start time (field 22 of
//! `/proc/PID/stat`) match: a pid alone may have been reused by another process meanwhile.
//! The pidfd is opened before that one read, so a match also proves the pidfd is the
//! recorded process's. svcd logs the adoption step's time and, once it answers, the time
//! since its own exec (issue 14's figure; `cargo bench --bench adopt` measures it from
//! outside).

use super::fdholder::socket_key;
use super::statefile::{
    STATE_FILE, STATE_VERSION, SavedExit, SavedSocket, SavedState, SavedUnit, Writer,
};
use super::{Daemon, Entry};
use crate::daemon::report::Clocks;
use crate::logs::capture::Capture;
use crate::supervisor::{Adopted, Exit, ExitStatus, ReasonKind, UnitId};
use crate::time::wall_clock;
use std::collections::{HashMap, HashSet};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Words of a loss whose exit status cannot be known.
pub const LOST_WHILE_DOWN: &str = "exited while svcd was down";
pub const LOST_NOT_CHILD: &str = "exited while not a child of svcd";

/// The daemon's part in this: where the file goes, what changed since it was written, which
/// units were adopted.
#[derive(Debug, Default)]
pub(super) struct Adoption {
    /// Writes `<state-dir>/state`; `None` until the daemon runs (tests of the daemon's parts).
    writer: Option<Writer>,
    /// Units whose status changed since the file was written.
    dirty: HashSet<UnitId>,
    /// Units adopted as the file records them, until their first change (the adoption's own,
    /// published in the turn of the adoption), which leaves the file as it is: 1,000 units
    /// adopted cost 5 ms of serialization for a file that said the same. The next real
    /// change writes them all.
    settled: HashSet<UnitId>,
    /// Each unit's last serialized part, with the name it was made for (a slot reused by a
    /// reload is another unit) and its main pid then.
    lines: HashMap<UnitId, Line>,
    /// Main pid → its start time, read once per process.
    start_times: HashMap<u32, u64>,
    /// Unit → the pid it was adopted with: `list` marks the unit while it still runs as it.
    pub adopted: HashMap<UnitId, u32>,
    /// Where the pidfd watchers report an adopted process's exit.
    exits: Option<mpsc::UnboundedSender<u32>>,
    /// The fd holder, keeping the units' output pipes open across a crash of svcd.
    holder: Option<super::fdholder::Holder>,
    /// The keys of the listening sockets the holder keeps ([`super::fdholder::socket_key`]).
    socket_keys: HashSet<String>,
    /// `svc upgrade` asked for (the answer, sent just before the `exec`), or SIGUSR2.
    pub upgrade: Option<Option<tokio::sync::oneshot::Sender<crate::control::Response>>>,
    /// Units were taken back and svcd does not answer yet: (how many, how long the adoption
    /// step took), logged with the time since svcd's exec once it answers
    /// ([`Daemon::note_answering`]).
    answering: Option<(usize, Duration)>,
    /// Adopted units whose memory cgroups are still to be taken back, as (unit, pid): after
    /// svcd answers, a batch per turn of the event loop ([`Daemon::take_cgroups_back`]).
    cgroups_due: Vec<(UnitId, u32)>,
    /// When the first batch began, and how many cgroups were taken back so far: logged once
    /// the last batch is done.
    cgroups_taken: Option<(Instant, usize)>,
}

impl Adoption {
    /// Unit `id`'s status changed: the file is written again at the end of this turn.
    pub fn changed(&mut self, id: UnitId) {
        if self.writer.is_some() && !self.settled.remove(&id) {
            self.dirty.insert(id);
        }
    }
}

/// One unit's part of the state file, as last made.
#[derive(Debug)]
struct Line {
    /// The unit it was made for.
    name: String,
    json: String,
    pid: Option<u32>,
    start_time: Option<u64>,
}

/// Seconds since the epoch of `at`.
fn epoch(at: Instant, clocks: Clocks) -> f64 {
    wall_clock(at, clocks.now, clocks.wall)
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// The instant of `secs` since the epoch, never after `clocks.now`.
fn instant(secs: f64, clocks: Clocks) -> Instant {
    let then = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
    let wall_now = clocks
        .wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    clocks
        .now
        .checked_sub(wall_now.saturating_sub(then))
        .unwrap_or(clocks.now)
}

fn saved_exit(exit: &Exit, clocks: Clocks) -> SavedExit {
    SavedExit {
        code: match exit.status {
            Some(ExitStatus::Code(code)) => Some(code),
            _ => None,
        },
        signal: match exit.status {
            Some(ExitStatus::Signal(signal)) => Some(signal),
            _ => None,
        },
        at: epoch(exit.at, clocks),
        reason: exit.reason.clone(),
        kind: exit.kind.to_string(),
    }
}

fn exit_of(saved: &SavedExit, clocks: Clocks) -> Exit {
    let status = match (saved.code, saved.signal) {
        (Some(code), _) => Some(ExitStatus::Code(code)),
        (None, Some(signal)) => Some(ExitStatus::Signal(signal)),
        (None, None) => None,
    };
    let kind = ReasonKind::ALL
        .into_iter()
        .find(|k| k.as_str() == saved.kind)
        .unwrap_or(ReasonKind::Exited);
    Exit {
        status,
        at: instant(saved.at, clocks),
        reason: saved.reason.clone(),
        kind,
    }
}

/// The kernel's clock tick, the unit of a process's start time.
fn tick() -> Duration {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|hz| u32::try_from(hz).ok())
        .filter(|&hz| hz > 0)
        .unwrap_or(100);
    Duration::from_secs(1) / hz
}

/// How long ago this process started, by the kernel: its start time (field 22 of
/// `/proc/self/stat`, ticks since boot on the boot-time clock) against `CLOCK_BOOTTIME` now.
/// The start time is the fork's (the `exec` follows it at once) rounded down to a tick (10 ms
/// where `CLK_TCK` is 100): the figure is never short, and up to a tick long.
fn since_exec() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = u128::from(crate::proc::parse_start_time(&text)?);
    let started = Duration::from_nanos(u64::try_from(ticks * tick().as_nanos()).ok()?);
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    Duration::from(now).checked_sub(started)
}

/// A pidfd on `pid` (close-on-exec): it refers to that process even if the pid is reused.
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // is passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reports `pid` on `tx` once the process of `pidfd` exits, without polling.
fn watch_exit(pidfd: OwnedFd, pid: u32, tx: mpsc::UnboundedSender<u32>) -> std::io::Result<()> {
    // SAFETY: the AsyncFd owns `pidfd` and never gives it back, so the descriptor stays open
    // and the same while registered, as `register` needs.
    let watched = unsafe { tokio::io::unix::AsyncFd::register(pidfd) }?;
    tokio::spawn(async move {
        // Readable once the process has exited; an error means the same for us (it is gone
        // from our view), so report it too.
        let _ = watched.readable().await;
        let _ = tx.send(pid);
    });
    Ok(())
}

/// How long a turn of the event loop takes adopted units' cgroups back for, at most (and one
/// unit at least): requests, exits and timers wait no longer meanwhile. A unit without
/// `memory.max` costs a tenth of a millisecond (a read and a few writes); one with it 12-25 ms,
/// as each usage threshold registered waits for an RCU grace period in the kernel (cgroup v1's
/// `cgroup.event_control`), as at its spawn.
const CGROUP_TURN: Duration = Duration::from_millis(5);

/// Descriptors svcd holds per unit: two output pipes, a pidfd (adopted) or a check's.
const FDS_PER_UNIT: usize = 4;
/// svcd's own sockets, files and what the runtime keeps.
const FDS_BASE: usize = 64;

/// Makes room for `count` descriptors in svcd's table now, while svcd has one thread. The
/// kernel grows the table by doubling, and in a process of several threads each growth waits
/// for an RCU grace period (`synchronize_rcu`, 10-20 ms): the 2,000 pipes of 1,000 units taken
/// back from the fd holder cost four of them, 40 ms of a 100 ms budget. A table once grown
/// stays so; a few KiB per 1,000 units.
fn grow_fd_table(dir: &Path, count: usize) {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let top = count.min(
        usize::try_from(soft)
            .unwrap_or(usize::MAX)
            .saturating_sub(1),
    );
    let Ok(top) = RawFd::try_from(top) else {
        return;
    };
    // The lowest free number from `top` on: the table grows to hold it, and it is closed.
    let Ok(dir) = std::fs::File::open(dir) else {
        return;
    };
    if let Ok(fd) = nix::fcntl::fcntl(&dir, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(top)) {
        // SAFETY: the descriptor was just made by F_DUPFD and nothing else owns it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// Whether process `pid` is the one that started at `start_time` (alive: a zombie is not), and
/// then whether it is svcd's own child (started by this pid before an `exec`); one read of
/// `/proc/PID/stat` for both.
fn identify(reader: &mut crate::proc::Reader, pid: u32, start_time: u64) -> Option<bool> {
    if !reader.read(pid, "stat") {
        return None;
    }
    let stat = crate::proc::parse_stat(&reader.text)?;
    let same = crate::proc::parse_start_time(&reader.text) == Some(start_time);
    (same && !stat.is_zombie()).then(|| stat.ppid == std::process::id())
}

/// Takes `fd` (a descriptor number named in the state file) if it is an open pipe.
fn take_pipe(fd: RawFd) -> Option<OwnedFd> {
    take_fd(fd, nix::libc::S_IFIFO)
}

/// Takes `fd` (a descriptor number named in the state file) if it is an open socket.
fn take_socket(fd: RawFd) -> Option<OwnedFd> {
    take_fd(fd, nix::libc::S_IFSOCK)
}

/// Takes `fd`, passed across an upgrade's `exec`, if it is open and of file type `kind`.
fn take_fd(fd: RawFd, kind: nix::libc::mode_t) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: only looked at (fstat) while borrowed; an fd number not open fails the call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let stat = nix::sys::stat::fstat(borrowed).ok()?;
    if stat.st_mode & nix::libc::S_IFMT != kind {
        return None;
    }
    // Close-on-exec again: the units spawned from now on must not inherit it.
    let flags = nix::fcntl::FdFlag::FD_CLOEXEC;
    // SAFETY: the number names an open pipe passed across the `exec` for exactly this use;
    // nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(flags)).ok()?;
    Some(fd)
}

impl Daemon {
    /// Starts keeping the state file in `state_dir`, reporting adopted processes' exits on
    /// `exits`.
    pub(super) fn keep_state(&mut self, state_dir: &Path, exits: mpsc::UnboundedSender<u32>) {
        // Before the writer's thread is made: see `grow_fd_table`.
        grow_fd_table(state_dir, FDS_BASE + FDS_PER_UNIT * self.units.len());
        self.adoption.writer = Some(Writer::start(state_dir.join(STATE_FILE)));
        self.adoption.exits = Some(exits);
        if std::process::id() == 1 {
            // PID 1's end is the end of every process of its namespace: nothing to hold for.
            return;
        }
        match super::fdholder::Holder::connect_or_start(state_dir) {
            Ok(holder) => self.adoption.holder = Some(holder),
            Err(e) => tracing::warn!(
                "cannot start the fd holder ({e}): after a crash of svcd, its units' output \
                 is lost"
            ),
        }
    }

    /// Hands the fd holder duplicates of a new run's output pipes (`pid` just spawned, not yet
    /// reaped: its start time is its own).
    pub(super) fn hold_output(&mut self, pid: u32, out: &OwnedFd, err: &OwnedFd) {
        let Some(holder) = &mut self.adoption.holder else {
            return;
        };
        let Some(start_time) = crate::proc::start_time(pid) else {
            return;
        };
        self.adoption.start_times.insert(pid, start_time);
        let key = super::fdholder::key(pid, start_time);
        if let Err(e) = holder.hold(&key, out, err) {
            tracing::warn!(
                "the fd holder is gone ({e}): after a crash of svcd, its units' output is lost"
            );
            self.adoption.holder = None;
            return;
        }
        // The run's pressure FIFO, made anew at this spawn: a copy replaces the last run's.
        let fifo = self.pids.get(&pid).and_then(|&id| {
            let fd = self.memory.pressure_fifo_fd(id)?;
            Some((super::fdholder::fifo_key(&self.units[id].name), fd))
        });
        if let (Some((key, fd)), Some(holder)) = (fifo, &mut self.adoption.holder) {
            // Not held (the holder is behind): a reader sees a hang-up while svcd is down.
            let _ = holder.hold_socket(&key, fd);
        }
    }

    /// The run of `pid` ended and its pipes are drained: the holder lets go of them.
    pub(super) fn release_output(&mut self, pid: u32) {
        let (Some(holder), Some(start_time)) = (
            &self.adoption.holder,
            self.adoption.start_times.get(&pid).copied(),
        ) else {
            return;
        };
        let _ = holder.drop_key(&super::fdholder::key(pid, start_time));
    }

    /// The sockets svcd holds for unit `name` (bound, kept or released just now), handed to the
    /// fd holder as they change, so that a crash of svcd loses none.
    pub(super) fn sync_held_sockets(&mut self, name: &str) {
        let current: Vec<(String, RawFd)> = self
            .sockets
            .addrs_of(name)
            .into_iter()
            .filter_map(|(addr, fd)| Some((socket_key(name, &addr.to_string())?, fd)))
            .collect();
        let Some(holder) = &mut self.adoption.holder else {
            return;
        };
        for (key, fd) in &current {
            if self.adoption.socket_keys.contains(key) {
                continue;
            }
            match holder.hold_socket(key, *fd) {
                Ok(()) => {
                    self.adoption.socket_keys.insert(key.clone());
                }
                // Tried again at the unit's next start.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::warn!(
                        "the fd holder is gone ({e}): after a crash of svcd, held sockets are bound anew"
                    );
                    self.adoption.holder = None;
                    return;
                }
            }
        }
        let prefix = format!("listen:{name}:");
        let gone: Vec<String> = self
            .adoption
            .socket_keys
            .iter()
            .filter(|key| key.starts_with(&prefix) && !current.iter().any(|(k, _)| k == *key))
            .cloned()
            .collect();
        for key in gone {
            let _ = holder.drop_key(&key);
            self.adoption.socket_keys.remove(&key);
        }
    }

    /// The sockets a previous svcd held for unit `id` (`saved`), taken back: across an
    /// upgrade's `exec` by their descriptors, after a crash from the fd holder's `given`.
    /// Those its unit file no longer lists are closed.
    fn take_sockets_back(
        &mut self,
        id: UnitId,
        saved: &[SavedSocket],
        upgrade: bool,
        given: &mut HashMap<String, OwnedFd>,
    ) {
        let name = self.units[id].name.clone();
        for socket in saved {
            let key = socket_key(&name, &socket.addr);
            let passed = socket.fd.filter(|_| upgrade).and_then(take_socket);
            let from_holder = key.as_ref().and_then(|key| given.remove(key));
            let Some(fd) = passed.or(from_holder) else {
                continue;
            };
            let unit = &self.units[id];
            let listed = unit
                .sockets
                .listen
                .iter()
                .find(|addr| addr.to_string() == socket.addr)
                .cloned();
            match (listed, key) {
                (Some(addr), key) => {
                    tracing::debug!(unit = %name, "took back the socket on {addr}");
                    self.sockets.adopt(unit, addr, fd);
                    if let (Some(key), true) = (key, self.adoption.holder.is_some()) {
                        self.adoption.socket_keys.insert(key);
                    }
                }
                (None, Some(key)) => {
                    if let Some(holder) = &self.adoption.holder {
                        let _ = holder.drop_key(&key);
                    }
                }
                (None, None) => {}
            }
        }
    }

    /// svcd's clean end, every unit stopped: the state file goes, so that the next svcd starts
    /// its units afresh, not as runs lost while it was down (with their restarts counted on).
    pub(super) fn forget_state(&mut self) {
        if let Some(writer) = self.adoption.writer.take()
            && let Err(e) = writer.remove()
        {
            tracing::warn!("cannot remove the state file: {e}");
        }
    }

    /// svcd exits for good (every unit stopped): so does the fd holder.
    pub(super) fn release_holder(&mut self) {
        if let Some(holder) = self.adoption.holder.take() {
            holder.exit();
        }
    }

    /// Takes back the units a previous svcd left running, as `saved` records them: returns the
    /// units dealt with (adopted, or lost and restarting), which svcd's boot start must leave
    /// alone.
    pub(super) fn adopt(&mut self, saved: SavedState) -> Vec<UnitId> {
        let clocks = Clocks::read();
        let upgrade = saved.svcd_pid == std::process::id();
        let mut handled = Vec::new();
        let mut adopted = 0usize;
        let (mut held, mut given_sockets) = match &self.adoption.holder {
            Some(holder) => holder.give().unwrap_or_else(|e| {
                tracing::warn!("cannot take the units' pipes back from the fd holder: {e}");
                Default::default()
            }),
            None => Default::default(),
        };
        tracing::debug!(
            pipes = held.len(),
            "took the pipes back from the fd holder in {:.2?}",
            clocks.now.elapsed()
        );
        let mut reader = crate::proc::Reader::default();
        for unit in saved.units {
            let Ok(index) = self
                .entries
                .binary_search_by(|(name, _)| name.as_str().cmp(&unit.name))
            else {
                continue;
            };
            let Entry::Unit(id) = self.entries[index].1 else {
                continue;
            };
            // Its sockets first: held on whether its process lives or not (connections may
            // wait in them for its next run).
            self.take_sockets_back(id, &unit.sockets, upgrade, &mut given_sockets);
            let fds = unit
                .output_fds
                .filter(|_| upgrade)
                .map(|[out, err]| (take_pipe(out), take_pipe(err)));
            let Some(pid) = unit.pid else {
                continue;
            };
            let key = unit.start_time.map(|t| super::fdholder::key(pid, t));
            let kept = key.as_ref().and_then(|key| held.remove(key));
            let prior = Adopted {
                pid,
                spawned_at: instant(unit.started.unwrap_or(unit.since), clocks),
                since: instant(unit.since, clocks),
                ready: unit.ready,
                restarts: unit.restarts,
                starts: unit.starts,
                last_exit: unit.last_exit.as_ref().map(|e| exit_of(e, clocks)),
            };
            handled.push(id);
            // The pidfd first, then one read of the process's stat: a start time that matches
            // after the pidfd is open proves that the pidfd is the recorded process's (that
            // process held the pid from before the open until the read).
            let pidfd = pidfd_open(pid);
            let seen = unit
                .start_time
                .and_then(|time| identify(&mut reader, pid, time));
            let Some(own_child) = seen else {
                tracing::warn!(unit = %unit.name, pid, "{LOST_WHILE_DOWN}: restarting it");
                // Its last words wait in the pipes the holder kept: read them to the end.
                if let (Some((out, err)), Some(key)) = (kept, &key) {
                    let log = self.logs.log(&unit.name);
                    let capture = Capture::start(log, out, err);
                    capture.drain();
                    if let Some(holder) = &self.adoption.holder {
                        let _ = holder.drop_key(key);
                    }
                }
                self.supervisor
                    .handle_lost(clocks.now, id, Some(prior), LOST_WHILE_DOWN);
                continue;
            };
            if !own_child {
                let watched = pidfd.and_then(|fd| {
                    let tx = self.adoption.exits.clone();
                    let tx = tx.ok_or_else(|| std::io::Error::other("no event loop"))?;
                    watch_exit(fd, pid, tx)
                });
                if let Err(e) = watched {
                    // Without a pidfd its exit would go unseen: better a second copy svcd
                    // supervises than one nobody does.
                    tracing::warn!(unit = %unit.name, pid, "cannot watch it ({e}); not adopted");
                    handled.pop();
                    continue;
                }
            }
            self.pids.insert(pid, id);
            self.adoption
                .start_times
                .insert(pid, unit.start_time.unwrap_or(0));
            self.adoption.adopted.insert(id, pid);
            // The pipes passed across an upgrade's exec, else the holder's copies.
            let pipes = match fds {
                Some((Some(out), Some(err))) => Some((out, err)),
                _ => kept,
            };
            if let Some((out, err)) = pipes {
                let log = self.logs.log(&unit.name);
                self.set_log_settings(id, &log);
                self.captures.insert(pid, Capture::start(log, out, err));
            }
            self.supervisor.handle_adopted(clocks.now, id, prior);
            adopted += 1;
            let changed = unit.command != self.units[id].argv;
            tracing::debug!(unit = %unit.name, pid, "adopted");
            if changed {
                let reason = "its unit file changed while svcd was down";
                self.supervisor.handle_restart(clocks.now, id, reason);
            } else {
                if !upgrade {
                    self.adoption.settled.insert(id);
                }
                self.memory.adopt_fifo(id, &self.units[id]);
                // Its cgroup once svcd answers: a read and a few writes per unit (and a wait
                // for the kernel per threshold) would make this step twice as long, or more
                // (issue 14's 100 ms from exec).
                if self.memory.makes_cgroups() {
                    self.adoption.cgroups_due.push((id, pid));
                }
            }
        }
        // The holder's copies of the pressure FIFOs stay with it: the FIFOs are opened again
        // by their paths as the adopted units' cgroups are taken back (for
        // `memory.on_pressure`, above).
        given_sockets.retain(|key, _| !key.starts_with(&super::fdholder::fifo_key("")));
        // Pipes of runs, and sockets, no unit has any more: let them go.
        if let Some(holder) = &self.adoption.holder {
            for key in held.keys().chain(given_sockets.keys()) {
                let _ = holder.drop_key(key);
            }
        }
        let took = clocks.now.elapsed();
        let lost = handled.len() - adopted;
        tracing::info!(
            adopted,
            lost,
            "took back the units of the previous svcd in {took:.2?}"
        );
        if adopted > 0 {
            self.adoption.answering = Some((adopted, took));
        }
        handled
    }

    /// svcd's first turn is done and it answers from now on: once after an adoption, logs the
    /// time from svcd's exec until then, which includes loading the units, the adoption step
    /// and publishing its changes.
    pub(super) fn note_answering(&mut self) {
        let Some((adopted, took)) = self.adoption.answering.take() else {
            return;
        };
        match since_exec() {
            Some(since) => tracing::info!(
                adopted,
                "every unit adopted and svcd answering {:.0?} after its exec (the kernel's \
                 start time, in ticks of {:.0?}; the adoption step {took:.2?})",
                since,
                tick()
            ),
            None => tracing::info!(adopted, "every unit adopted and svcd answering"),
        }
    }

    /// Whether adopted units' memory cgroups are still to be taken back: the event loop then
    /// calls [`Daemon::take_cgroups_back`] again, between its other work. The first batch
    /// comes after svcd's first answer (the adoption's turn ends with it).
    pub(super) fn cgroups_to_take_back(&self) -> bool {
        !self.adoption.cgroups_due.is_empty()
    }

    /// Takes back the memory cgroups of the next adopted units, for [`CGROUP_TURN`] (see
    /// [`super::memory::MemoryWatch::take_back_cgroup`]): each read, signalled and watched
    /// through its cgroup from then on, its kernel OOM kills counted from there, and told
    /// through its FIFO. A unit that runs another process by now got its cgroup at that
    /// spawn. After the last batch, svcd's log says how long it all took.
    pub(super) fn take_cgroups_back(&mut self) {
        let (began, mut taken) = *self
            .adoption
            .cgroups_taken
            .get_or_insert_with(|| (Instant::now(), 0));
        let turn = Instant::now();
        while let Some((id, pid)) = self.adoption.cgroups_due.pop() {
            let same_run = self.adoption.adopted.get(&id) == Some(&pid)
                && self.supervisor.status(id).pid == Some(pid);
            if same_run && self.memory.take_back_cgroup(id, &self.units[id], pid) {
                taken += 1;
            }
            if turn.elapsed() >= CGROUP_TURN {
                break;
            }
        }
        self.adoption.cgroups_taken = Some((began, taken));
        if !self.adoption.cgroups_due.is_empty() {
            return;
        }
        self.adoption.cgroups_taken = None;
        let took = began.elapsed();
        match since_exec() {
            Some(since) => tracing::info!(
                taken,
                "took back the memory cgroups of the adopted units in {took:.2?}, {since:.0?} \
                 after svcd's exec"
            ),
            None => tracing::info!(
                taken,
                "took back the memory cgroups of the adopted units in {took:.2?}"
            ),
        }
    }

    /// An adopted process that is not svcd's child has exited (its pidfd said so).
    pub(super) fn adopted_exited(&mut self, pid: u32) {
        // svcd's own child after all (reparented to it as subreaper): reaped, with its status.
        self.reap();
        let Some(&id) = self.pids.get(&pid) else {
            return;
        };
        if self.adoption.adopted.get(&id) != Some(&pid) {
            return;
        }
        self.pids.remove(&pid);
        if let Some(capture) = self.captures.remove(&pid) {
            capture.drain();
        }
        self.release_output(pid);
        tracing::info!(unit = %self.units[id].name, pid, "{LOST_NOT_CHILD}");
        self.supervisor
            .handle_lost(Instant::now(), id, None, LOST_NOT_CHILD);
        // Its exit status was its parent's to reap, not svcd's: a kernel OOM kill in its
        // cgroup since svcd last looked is taken for its end (the kernel's SIGKILL), and named.
        self.note_oom_kills(id, Some(ExitStatus::Signal(9)));
    }

    /// Whether unit `id` runs as the process it was adopted with (`list` shows it).
    pub(super) fn is_adopted(&self, id: UnitId, pid: Option<u32>) -> bool {
        pid.is_some() && self.adoption.adopted.get(&id).copied() == pid
    }

    /// Writes the state file if a unit changed this turn, and sends the fd holder this turn's
    /// runs.
    pub(super) fn save_state_if_changed(&mut self) {
        if let Some(holder) = &mut self.adoption.holder
            && let Err(e) = holder.flush()
        {
            tracing::warn!(
                "the fd holder is gone ({e}): after a crash of svcd, its units' output is lost"
            );
            self.adoption.holder = None;
        }
        // The adoption's turn is over: from now on every change is written.
        self.adoption.settled.clear();
        if self.adoption.dirty.is_empty() {
            return;
        }
        if let Err(e) = self.save_state(false) {
            tracing::warn!("cannot write the state file: {e}");
        }
    }

    /// Writes the state file; `with_fds`: name each unit's output pipes (just before an
    /// upgrade's `exec`).
    fn save_state(&mut self, with_fds: bool) -> std::io::Result<()> {
        let Some(writer) = self.adoption.writer.clone() else {
            return Ok(());
        };
        let clocks = Clocks::read();
        let dirty = std::mem::take(&mut self.adoption.dirty);
        let mut out = format!(
            "{{\"version\":{STATE_VERSION},\"svcd_pid\":{},\"units\":[",
            std::process::id()
        );
        let mut first = true;
        let mut old = std::mem::take(&mut self.adoption.lines);
        let mut lines = HashMap::with_capacity(self.entries.len());
        let mut live = HashSet::new();
        // Only the units that changed are looked at again: with 1,000 units, a crash of one
        // costs one unit's serialization and a copy of the others' lines.
        for (name, entry) in &self.entries {
            let Entry::Unit(id) = *entry else {
                continue;
            };
            let kept = old
                .remove(&id)
                .filter(|line| &line.name == name && !with_fds && !dirty.contains(&id));
            let line = match kept {
                Some(line) => line,
                None => {
                    let line = self.unit_line(id, name, with_fds, clocks)?;
                    if let (Some(pid), Some(time)) = (line.pid, line.start_time) {
                        self.adoption.start_times.insert(pid, time);
                    }
                    line
                }
            };
            if let Some(pid) = line.pid {
                live.insert(pid);
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&line.json);
            lines.insert(id, line);
        }
        out.push_str("]}\n");
        self.adoption.lines = lines;
        // Forget the start times of processes that are gone.
        if self.adoption.start_times.len() > live.len() {
            self.adoption
                .start_times
                .retain(|pid, _| live.contains(pid));
        }
        if with_fds {
            writer.write_now(out.as_bytes())
        } else {
            writer.submit(out.into_bytes());
            Ok(())
        }
    }

    /// Unit `id`'s part of the state file, made now.
    fn unit_line(
        &self,
        id: UnitId,
        name: &str,
        with_fds: bool,
        clocks: Clocks,
    ) -> std::io::Result<Line> {
        let status = self.supervisor.status(id);
        let start_time = status.pid.and_then(|pid| {
            let known = self.adoption.start_times.get(&pid).copied();
            known.or_else(|| crate::proc::start_time(pid))
        });
        let output_fds = status
            .pid
            .filter(|_| with_fds)
            .and_then(|pid| self.captures.get(&pid))
            .and_then(Capture::raw_fds);
        let saved = SavedUnit {
            name: name.to_string(),
            state: status.state.to_string(),
            ready: status.ready,
            pid: status.pid,
            start_time,
            started: status
                .pid
                .and_then(|_| self.supervisor.spawned_at(id))
                .map(|at| epoch(at, clocks)),
            since: epoch(status.since, clocks),
            restarts: status.restarts,
            starts: status.starts,
            last_exit: status.last_exit.as_ref().map(|e| saved_exit(e, clocks)),
            command: self.units[id].argv.clone(),
            output_fds,
            sockets: self
                .sockets
                .addrs_of(name)
                .into_iter()
                .map(|(addr, fd)| SavedSocket {
                    addr: addr.to_string(),
                    fd: with_fds.then_some(fd),
                })
                .collect(),
        };
        let json = serde_json::to_string(&saved).map_err(std::io::Error::other)?;
        Ok(Line {
            name: name.to_string(),
            json,
            pid: status.pid,
            start_time,
        })
    }

    /// `svc upgrade` or SIGUSR2: answered (if asked over the socket) and performed once this
    /// turn's actions are done, by [`Daemon::exec_upgrade`].
    pub(super) fn request_upgrade(
        &mut self,
        reply: Option<tokio::sync::oneshot::Sender<crate::control::Response>>,
    ) {
        let refused = match upgrade_binary() {
            _ if self.shutdown.is_some() => Some("svcd is shutting down".to_string()),
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if let Some(why) = refused {
            tracing::error!("upgrade refused: {why}");
            if let Some(reply) = reply {
                let kind = crate::control::ErrorKind::Failed;
                let _ = reply.send(crate::control::Response::error(kind, why, Vec::new()));
            }
            return;
        }
        tracing::info!("upgrade asked for: re-executing svcd");
        self.adoption.upgrade = Some(reply);
    }

    /// Re-executes svcd's binary on disk with the same pid and arguments, its units' output
    /// pipes kept open and named in the state file. Returns only if that failed, saying why:
    /// svcd then exits without stopping its units, and the next svcd adopts them.
    pub(super) fn exec_upgrade(&mut self) -> String {
        let binary = match upgrade_binary() {
            Ok(binary) => binary,
            Err(e) => return e,
        };
        for capture in self.captures.values() {
            capture.drain();
        }
        match self.save_state(true) {
            Ok(()) => self.exec_keeping_fds(&binary),
            Err(e) => format!("cannot write the state file: {e}"),
        }
    }

    fn exec_keeping_fds(&self, binary: &Path) -> String {
        for capture in self.captures.values() {
            if let Some(fds) = capture.raw_fds() {
                for fd in fds {
                    set_cloexec(fd, false);
                }
            }
        }
        for (_, _, fd) in self.sockets.entries() {
            set_cloexec(fd, false);
        }
        let args: Vec<std::ffi::CString> = std::env::args_os()
            .filter_map(|a| std::ffi::CString::new(a.into_encoded_bytes()).ok())
            .collect();
        let Ok(path) = std::ffi::CString::new(binary.as_os_str().as_encoded_bytes()) else {
            return format!("{} is not a path exec takes", binary.display());
        };
        tracing::info!(binary = %binary.display(), "re-executing");
        match nix::unistd::execv(&path, &args) {
            Err(e) => format!("cannot execute {}: {e}", binary.display()),
        }
    }
}

fn set_cloexec(fd: RawFd, on: bool) {
    let flags = if on {
        nix::fcntl::FdFlag::FD_CLOEXEC
    } else {
        nix::fcntl::FdFlag::empty()
    };
    // SAFETY: `fd` is a capture's pipe or a held socket, open for as long as the capture or
    // the held socket lives (all of this call); the borrow does not outlive it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(flags));
}

/// The svcd binary on disk now: the one this process runs, or the file that replaced it (the
/// kernel names a replaced executable `PATH (deleted)`).
fn upgrade_binary() -> Result<PathBuf, String> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("cannot find svcd's binary: {e}"))?;
    let text = exe.as_os_str().to_string_lossy();
    let path = match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe.clone(),
    };
    nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| format!("cannot execute {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_survive_the_round_trip_through_the_wall_clock() {
        let clocks = Clocks::read();
        let at = clocks.now - Duration::from_secs(90);
        let back = instant(epoch(at, clocks), clocks);
        let diff = if back > at { back - at } else { at - back };
        assert!(diff < Duration::from_millis(1), "{diff:?}");
        assert!(instant(f64::MAX, clocks) <= clocks.now);
    }

    #[test]
    fn the_adoption_of_a_unit_as_recorded_does_not_write_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut adoption = Adoption {
            writer: Some(Writer::start(dir.path().join(STATE_FILE))),
            ..Adoption::default()
        };
        adoption.settled.insert(1);
        adoption.changed(1);
        assert!(
            adoption.dirty.is_empty(),
            "the adoption's own change is in the file"
        );
        adoption.changed(1);
        adoption.changed(2);
        assert_eq!(
            adoption.dirty,
            HashSet::from([1, 2]),
            "later changes are written"
        );
    }

    #[test]
    fn the_time_since_exec_counts_from_this_process_start() {
        let before = Instant::now();
        // A few ticks: a figure that does not count from the start fails.
        std::thread::sleep(tick() * 3);
        let since = since_exec().expect("the start time and the boot-time clock");
        assert!(
            since >= before.elapsed(),
            "{since:?} < {:?}",
            before.elapsed()
        );
        // The test binary started moments ago, not at boot.
        assert!(since < Duration::from_secs(600), "{since:?}");
    }

    /// The size of this process's descriptor table (`FDSize` of `/proc/self/status`).
    fn fd_table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn the_descriptor_table_is_grown_at_once_for_every_unit() {
        use nix::sys::resource::{Resource, getrlimit};
        let dir = tempfile::tempdir().unwrap();
        let want = fd_table_size() * 2;
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(
            soft > want as u64,
            "RLIMIT_NOFILE {soft} too low for this test"
        );
        grow_fd_table(dir.path(), want);
        assert!(fd_table_size() > want, "{} <= {want}", fd_table_size());
    }
}
