//! A unit's process born in its cgroup v2: `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7), so
//! that it never has to join it.
//!
//! A join is a write to `cgroup.procs`, which takes the kernel's lock on moving thread groups
//! (`cgroup_threadgroup_rwsem`) for writing, and that waits for an RCU grace period unless one
//! passed lately: at one respawn every 100 ms, nearly every join waits (cgroup v1 has `tasks`,
//! which skips the lock; v2 has none). A process cloned into the cgroup takes that lock for
//! reading only, as every fork does.
//!
//! The hooked spawn (`process::vfork`) runs its child on svcd's memory (`CLONE_VM |
//! CLONE_VFORK`) and a stack of its own. glibc has no wrapper of `clone3`, and the raw system
//! call returns in the child on the new stack, with no frame to return to: [`spawn`] is the
//! small entry glibc's and musl's `clone` have, per architecture (x86_64, aarch64; elsewhere
//! the kernel's answer is taken to be ENOSYS), that calls the child's function and ends the
//! child with its result. A `clone3` without `CLONE_VM` would return normally, but copy svcd's
//! page tables on every spawn (at 11 MiB, 1,000 units: 0.34 ms a spawn against 0.05 ms, and
//! a fault on each page svcd writes afterwards).
//!
//! Where the kernel refuses `clone3` itself (before 5.3, qemu-user, a seccomp filter: ENOSYS
//! or EPERM; before 5.7: E2BIG or EINVAL), svcd remembers it and every spawn joins its cgroup
//! by `cgroup.procs` as before; where it refuses one cgroup (EBUSY, EOPNOTSUPP, ...), that
//! spawn joins, and the join says what is wrong with the cgroup.

use std::os::fd::{OwnedFd, RawFd};
use std::os::raw::{c_int, c_long, c_void};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a new process enters its unit's cgroup (see [`crate::memory::cgroup`]).
#[derive(Debug)]
pub enum CgroupFd {
    /// A file the child writes `0` to before anything else: v1's `tasks`.
    Join(OwnedFd),
    /// A cgroup v2 directory (opened `O_PATH`) the child is cloned into; where the kernel
    /// refuses, the child joins its `cgroup.procs` instead.
    Dir(OwnedFd),
}

/// `CLONE_INTO_CGROUP` (Linux 5.7): clone into the cgroup of `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, 88 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    /// The stack's lowest address; the kernel starts the child at `stack + stack_size`.
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

impl CloneArgs {
    /// The arguments of the hooked spawn's clone: `flags` (`CLONE_VM | CLONE_VFORK`, with
    /// `CLONE_FILES` or not), the child on the `len` bytes of stack from `stack` up, born in
    /// the cgroup of directory `cgroup`, SIGCHLD to svcd at its end (as `clone`'s low byte).
    pub(super) fn new(flags: c_int, stack: *mut c_void, len: usize, cgroup: RawFd) -> CloneArgs {
        CloneArgs {
            // The flags are bits: their c_int's sign is no number's.
            flags: u64::from(flags as u32) | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack as u64,
            stack_size: len as u64,
            cgroup: cgroup as u64,
            ..CloneArgs::default()
        }
    }
}

/// What a failed `clone3` says about the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The kernel (or an emulator, or a seccomp filter) has no `clone3` or no
    /// `CLONE_INTO_CGROUP`: no spawn tries again.
    Kernel,
    /// The cgroup refused the process (no internal processes, a threaded or removed cgroup,
    /// permissions): this spawn joins instead, and the join's error, if any, names it.
    Cgroup,
}

/// Whether `errno`, from `clone3` into a cgroup, is a refusal to fall back from; `None`: a
/// failure of the spawn itself (no memory, no pids left), which a join would meet too.
pub(super) fn refusal(errno: c_int) -> Option<Refusal> {
    match errno {
        // ENOSYS: before 5.3, qemu-user, Docker's seccomp profile since 20.10; EPERM: an older
        // profile; E2BIG (a `cgroup` field it does not know) or EINVAL (the flag): before 5.7.
        libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL => Some(Refusal::Kernel),
        // EBUSY: controllers enabled below it; EOPNOTSUPP: a threaded or invalid domain;
        // ENODEV: removed; EBADF: not a cgroup2 directory; EACCES, ENOENT: not svcd's to use.
        libc::EBUSY
        | libc::EOPNOTSUPP
        | libc::ENODEV
        | libc::EBADF
        | libc::EACCES
        | libc::ENOENT => Some(Refusal::Cgroup),
        _ => None,
    }
}

/// Set once the kernel refused `clone3` (or a debug build was told to act as if).
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether spawns try `clone3` into a cgroup: not once the kernel refused it. A debug build
/// takes `SVC_SPAWN_NO_CLONE3` in svcd's environment for such a kernel (the tests of the
/// fallback); a release build reads no such variable.
pub(super) fn works() -> bool {
    static FORCED: Once = Once::new();
    FORCED.call_once(|| {
        if cfg!(debug_assertions) && std::env::var_os("SVC_SPAWN_NO_CLONE3").is_some() {
            refused(libc::ENOSYS, "SVC_SPAWN_NO_CLONE3");
        }
    });
    !REFUSED.load(Ordering::Relaxed)
}

/// Remembers that the kernel refused `clone3` with `errno` (`why`), and says so once.
pub(super) fn refused(errno: c_int, why: &str) {
    if !REFUSED.swap(true, Ordering::Relaxed) {
        let errno = std::io::Error::from_raw_os_error(errno);
        tracing::info!(
            "clone3 into a cgroup refused ({why}: {errno}): each unit's process starts outside \
             its cgroup v2, joining it by cgroup.procs (slower: each join may wait for an RCU \
             grace period)"
        );
    }
}

/// Runs `child(arg)` in a new process cloned by `clone3(args)`, which must have a stack: the
/// child's pid, or `-errno`. The child ends with `child`'s result (exit_group), never
/// returning here.
///
/// # Safety
///
/// As for `libc::clone`: `args.stack`..`+ args.stack_size` is memory the child may use as its
/// stack, valid until it has exec'd or exited (with `CLONE_VFORK`, until this returns), and
/// `child` must be sound to run on it with `arg` in a process of its own (with `CLONE_VM`,
/// on svcd's memory: see the rules of `process::vfork`).
pub(super) unsafe fn spawn(
    args: &CloneArgs,
    child: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> c_long {
    let size = size_of::<CloneArgs>();
    let ret: c_long;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract. In the parent the system call clobbers rax (the result),
    // rcx and r11 only. The child starts after the `syscall` with a copy of the parent's
    // registers (rax 0) and rsp at its stack's top (16-byte aligned: the call leaves it as
    // the ABI wants at a function's entry); it calls `child` (r8) with `arg` (r9) and ends in
    // exit_group with its result, never reaching code after the block, on no frame of ours.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r9",
            "call r8",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit_group,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") size,
            in("r8") child,
            in("r9") arg,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as on x86_64: the system call clobbers x0 (the result) only; the child starts
    // after the `svc` with the parent's registers (x0 0) and sp at its stack's top (16-byte
    // aligned), calls `child` (x9) with `arg` (x10), and ends in exit_group with its result.
    unsafe {
        std::arch::asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x0, x10",
            "blr x9",
            "mov x8, #{exit}",
            "svc #0",
            "udf #0",
            "2:",
            exit = const libc::SYS_exit_group,
            inlateout("x0") args as *const CloneArgs => ret,
            in("x1") size,
            in("x8") libc::SYS_clone3,
            in("x9") child,
            in("x10") arg,
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (args, child, arg, size);
        ret = -c_long::from(libc::ENOSYS);
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_args_put_the_child_on_its_stack_in_the_cgroup_with_sigchld() {
        assert_eq!(size_of::<CloneArgs>(), 88, "CLONE_ARGS_SIZE_VER2");
        let stack = 0x7000_0000_1000usize as *mut c_void;
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES;
        let args = CloneArgs::new(flags, stack, 64 * 1024, 7);
        assert_eq!(
            args,
            CloneArgs {
                flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES) as u64
                    | 0x2_0000_0000,
                exit_signal: 17,
                stack: 0x7000_0000_1000,
                stack_size: 0x1_0000,
                cgroup: 7,
                ..CloneArgs::default()
            }
        );
        // No signal number (clone's low byte) among the flags: clone3 refuses one there.
        assert_eq!(args.flags & 0xff, 0);
    }

    #[test]
    fn a_kernel_without_clone3_is_remembered_and_a_cgroups_refusal_is_not() {
        for errno in [libc::ENOSYS, libc::EPERM, libc::E2BIG, libc::EINVAL] {
            assert_eq!(refusal(errno), Some(Refusal::Kernel), "errno {errno}");
        }
        for errno in [libc::EBUSY, libc::EOPNOTSUPP, libc::ENODEV, libc::EBADF] {
            assert_eq!(refusal(errno), Some(Refusal::Cgroup), "errno {errno}");
        }
        // The spawn's own failures: a join would meet them too.
        for errno in [libc::ENOMEM, libc::EAGAIN] {
            assert_eq!(refusal(errno), None, "errno {errno}");
        }
    }
}
