//! Low descriptors reserved at svcd's start, so that a spawn need not copy svcd's descriptor
//! table (two pipe ends per running unit: ~2,000 at 1,000 units).
//!
//! A clone copies the table (a reference taken per open file) and the child's exec closes the
//! copies again (close-on-exec: one release per file): per spawn, work that grows with the
//! number of units. Instead the hooked spawn (`process::vfork`) clones with `CLONE_FILES` (no
//! copy), and the child's first system call is `close_range(FIRST, ~0, CLOSE_RANGE_UNSHARE)`:
//! the kernel then gives it a table of its own holding only the descriptors below `FIRST` (the
//! range reaches past the last open one, so only those below it are copied). What the child
//! needs (stdio, the cgroup's file to join, held sockets) is placed in the reserved slots,
//! all below `FIRST`, before the clone, and the slots are given back their `/dev/null` as soon
//! as the clone returns.
//!
//! The rule that keeps it sound: no descriptor below `FIRST` is ever free (another thread's
//! open would land there and reach the child until its exec). The slots are taken by the first
//! opens of svcd's `main`, when everything below them is already open (the kernel hands out
//! the lowest free number); a standard descriptor svcd started without is filled with
//! `/dev/null` here and kept. Spawns are serialized by a lock on the slots.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// How many descriptors a child may get through the slots: stdin, stdout, stderr, the cgroup
/// and 8 held sockets. A child that needs more takes the copying way.
pub(super) const COUNT: usize = 12;

/// The reserved descriptors, all below `first`.
pub(super) struct Slots {
    /// Each holds `/dev/null` (read-only, close-on-exec) between spawns.
    slots: [OwnedFd; COUNT],
    /// Another `/dev/null`, put back into the slots after each spawn.
    null: OwnedFd,
    /// One past the highest descriptor the child keeps: every one below it is open.
    first: RawFd,
    /// Standard descriptors svcd started without, filled so that they are not free.
    _filled: Vec<OwnedFd>,
}

static RESERVED: OnceLock<Mutex<Slots>> = OnceLock::new();

/// Cleared once the kernel refused `CLOSE_RANGE_UNSHARE` (before Linux 5.9): every spawn then
/// copies the table as before.
static UNSHARE_WORKS: AtomicBool = AtomicBool::new(true);

/// Reserves the slots: to be called first thing in svcd's `main`, before any other thread or
/// descriptor exists (later, the slots may sit above descriptors that are closed again). Once
/// only; without it every spawn copies svcd's table. Fails only when `/dev/null` cannot be
/// opened, and then changes nothing.
pub fn reserve() -> std::io::Result<()> {
    if RESERVED.get().is_some() {
        return Ok(());
    }
    let open = || -> std::io::Result<OwnedFd> {
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
        let mode = nix::sys::stat::Mode::empty();
        Ok(nix::fcntl::open(c"/dev/null", flags, mode)?)
    };
    let mut filled = Vec::new();
    let mut taken = Vec::with_capacity(COUNT + 1);
    while taken.len() < COUNT + 1 {
        let fd = open()?;
        if fd.as_raw_fd() < 3 {
            filled.push(fd);
        } else {
            taken.push(fd);
        }
    }
    let first = taken.iter().map(AsRawFd::as_raw_fd).max().unwrap_or(2) + 1;
    let null = taken.pop().ok_or(std::io::ErrorKind::InvalidData)?;
    let slots: [OwnedFd; COUNT] = taken
        .try_into()
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    let _ = RESERVED.set(Mutex::new(Slots {
        slots,
        null,
        first,
        _filled: filled,
    }));
    Ok(())
}

/// Whether spawns can share svcd's table (the slots are reserved and the kernel has not
/// refused the unshare).
pub(super) fn available() -> bool {
    UNSHARE_WORKS.load(Ordering::Relaxed) && RESERVED.get().is_some()
}

/// The slots, locked for one spawn, if they were reserved and the kernel can unshare.
pub(super) fn lock() -> Option<MutexGuard<'static, Slots>> {
    if !UNSHARE_WORKS.load(Ordering::Relaxed) {
        return None;
    }
    let slots = RESERVED.get()?;
    // A poisoned lock: a panic while placing; `give_back` runs on the next use all the same.
    Some(slots.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The kernel refused the unshare with `errno`: from now on (for ENOSYS and EINVAL, a kernel
/// without `CLOSE_RANGE_UNSHARE`) every spawn copies the table.
pub(super) fn unshare_failed(errno: libc::c_int) {
    if errno == libc::ENOSYS || errno == libc::EINVAL {
        UNSHARE_WORKS.store(false, Ordering::Relaxed);
    }
}

impl Slots {
    /// The first descriptor the child closes (with all above it).
    pub(super) fn first(&self) -> RawFd {
        self.first
    }

    /// Copies `fds` into the slots (close-on-exec, so that none reaches the unit unless the
    /// child places it) and writes each one's slot into `fds`. `None` (nothing left placed)
    /// when there are more than [`COUNT`] or a copy failed.
    pub(super) fn place(&mut self, fds: &mut [RawFd]) -> Option<()> {
        if fds.len() > COUNT {
            return None;
        }
        for (i, (fd, slot)) in fds.iter_mut().zip(&self.slots).enumerate() {
            if dup3(*fd, slot.as_raw_fd()).is_err() {
                self.give_back(i);
                return None;
            }
            *fd = slot.as_raw_fd();
        }
        Some(())
    }

    /// Puts `/dev/null` back into the first `used` slots, dropping svcd's copies of what the
    /// child got (a unit's pipe held there would never see its end).
    pub(super) fn give_back(&mut self, used: usize) {
        for slot in self.slots.iter().take(used) {
            // Both descriptors are open: only a race with another thread's open (EBUSY) or a
            // signal makes it fail, and a retry succeeds.
            for _ in 0..100 {
                if dup3(self.null.as_raw_fd(), slot.as_raw_fd()).is_ok() {
                    break;
                }
            }
        }
    }
}

/// `dup3(fd, target, O_CLOEXEC)`.
fn dup3(fd: RawFd, target: RawFd) -> Result<(), nix::errno::Errno> {
    // SAFETY: `target` is a slot, owned by `Slots` and open for svcd's whole run: replacing
    // what it refers to closes nothing another owner holds; `fd` is only read.
    let rc = unsafe { libc::dup3(fd, target, libc::O_CLOEXEC) };
    if rc < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}
