//! Waiting without code mapped, for the fd holder: a process that sleeps for hours between two
//! requests need not keep the pages of the code it ran mapped.
//!
//! Its code and read-only data are svcd's binary, which stays in the page cache (svcd maps it
//! too): mapping a page again on its next use costs a minor fault, nothing is read from disk.
//! But while mapped, those pages count in the holder's PSS, and the kernel maps 64 KiB around
//! each page a process touches, so the few functions a start-up runs leave about 1.5 MiB
//! mapped. [`sleep`] lets go of them and then waits in `ppoll(2)` issued from the same
//! function, with no library code run in between: only this function's own page is mapped
//! again before the wait.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by svcd's loop a second after its last work: the runtime's next park lets go of the
/// code (see [`on_park`]).
static LET_GO_AT_PARK: AtomicBool = AtomicBool::new(false);

/// svcd has had nothing to do for a while: its runtime lets go of its code pages the next
/// time it parks, just before it waits in `epoll_wait`.
pub fn let_go_at_next_park() {
    LET_GO_AT_PARK.store(true, Ordering::Relaxed);
}

/// The runtime's `on_thread_park` hook: lets go of [`code_ranges`] once asked to by
/// [`let_go_at_next_park`]; the few pages between here and the wait are mapped again on the
/// way to it (about 0.2 MiB), the rest stays unmapped until used.
pub fn on_park() {
    if !LET_GO_AT_PARK.swap(false, Ordering::Relaxed) {
        return;
    }
    for (start, end) in code_ranges() {
        // SAFETY: as in `drop_and_wait`: a whole read-only mapping of a file with no page of
        // the process's own; dropping its page table entries loses nothing.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The ranges [`sleep`] lets go of: every read-only mapping of a file with no page of the
/// process's own (none copied on write: relocated data keeps its pages).
pub fn code_ranges() -> Vec<(usize, usize)> {
    crate::proc::own_mappings()
        .into_iter()
        .filter(|m| !m.writable && m.anonymous == 0 && m.rss > 0 && m.path.is_some())
        .map(|m| (m.start, m.end))
        .collect()
}

/// What `fd` is waited on for: readable (`POLLIN`), or only hang-up and errors (no events).
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub fd: RawFd,
    pub readable: bool,
}

/// Lets go of `ranges` (from [`code_ranges`]), then waits until one of `waits` is ready or a
/// signal comes. Returns whether it waited so (`false`: this architecture has no such wait;
/// the caller waits as usual). Either way the caller then polls its descriptors again, which
/// reports the same readiness.
pub fn sleep(ranges: &[(usize, usize)], waits: &[Wait]) -> bool {
    let mut fds: Vec<libc::pollfd> = waits
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd,
            events: if w.readable { libc::POLLIN } else { 0 },
            revents: 0,
        })
        .collect();
    drop_and_wait(ranges, &mut fds)
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(never)]
fn drop_and_wait(ranges: &[(usize, usize)], fds: &mut [libc::pollfd]) -> bool {
    for &(start, end) in ranges {
        // SAFETY: each range is one whole read-only mapping of a file with no copied-on-write
        // page (see `code_ranges`): MADV_DONTNEED only drops page table entries, and the next
        // access maps the same bytes of the file again, whatever code or data of it is in use.
        // The syscall is issued inline: no library code runs after its own pages are dropped.
        unsafe {
            raw_syscall(
                libc::SYS_madvise as usize,
                [start, end - start, libc::MADV_DONTNEED as usize, 0, 0],
            );
        }
    }
    // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` pollfd structures the
    // kernel writes `revents` into; no timeout (null) and no signal mask (null, size 8 unused).
    unsafe {
        raw_syscall(
            libc::SYS_ppoll as usize,
            [fds.as_mut_ptr() as usize, fds.len(), 0, 0, 8],
        );
    }
    true
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn drop_and_wait(_ranges: &[(usize, usize)], _fds: &mut [libc::pollfd]) -> bool {
    false
}

/// A system call with up to five arguments, issued inline; its result is not needed here.
///
/// # Safety
/// As the system call `number` itself with these arguments.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw_syscall(number: usize, args: [usize; 5]) {
    // SAFETY: the x86-64 Linux system call convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8; the kernel clobbers rcx and r11 and returns in rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") number => _,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

/// A system call with up to five arguments, issued inline; its result is not needed here.
///
/// # Safety
/// As the system call `number` itself with these arguments.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn raw_syscall(number: usize, args: [usize; 5]) {
    // SAFETY: the AArch64 Linux system call convention: number in x8, arguments in x0 to x4,
    // the result in x0.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") number,
            inlateout("x0") args[0] => _,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The wait returns once a descriptor is ready, and the code it let go of runs on (this
    /// test's own code and std's are in the ranges dropped).
    #[test]
    fn sleeps_until_a_descriptor_is_ready_and_the_code_runs_on() {
        let ranges = code_ranges();
        assert!(!ranges.is_empty(), "no read-only file mapping found");
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            nix::unistd::write(&write, b"x").expect("write");
        });
        let waited = sleep(
            &ranges,
            &[Wait {
                fd: read.as_raw_fd(),
                readable: true,
            }],
        );
        writer.join().expect("writer");
        if waited {
            let mut byte = [0u8; 1];
            assert_eq!(nix::unistd::read(&read, &mut byte).expect("read"), 1);
        }
        // Code and read-only data are mapped again on use.
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
