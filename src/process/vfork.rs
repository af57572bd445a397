//! The hooked way of spawning: `clone(CLONE_VM | CLONE_VFORK)`, as glibc's `posix_spawn` does
//! it, for a unit that needs steps between fork and exec that posix_spawn has no attribute for
//! (a cgroup to join or be born in, the OOM score, resource limits, nice, an identity, a
//! workdir, a umask, held sockets).
//!
//! A `fork()` would copy svcd's page tables (11 MiB of RSS at 1,000 units) only for the child
//! to throw them away at exec, and svcd puts every unit in a cgroup of its own as root, so
//! every unit would pay it, at its start and at each respawn. Here the child runs on svcd's own
//! memory, on a small stack of its own, until it execs or exits; svcd's calling thread waits
//! for that (CLONE_VFORK), and nothing is copied but the descriptor table, and not even that
//! once svcd has reserved its slots (`process::slots`): the child shares the table until its
//! first system call takes a small one of its own.
//!
//! Everything the child reads is built before the clone, in a [`Plan`]; the child runs raw
//! system calls only and reports a failed step and its errno in memory the parent reads once it
//! resumes. The rules it keeps are in the SAFETY comment of [`clone_child`].

use super::clone3;
use super::listen_fds;
use super::slots;
use super::spawn::HookStep;
use crate::unit::Unit;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

/// The child's stack, above a guard page: the steps need a few KiB (debug builds more).
const STACK_SIZE: usize = 64 * 1024;

/// The kernel's sigset: 64 signals, one bit each (x86_64, aarch64).
type KernelSigset = u64;

/// The descriptors the child starts with, all svcd's (close-on-exec in svcd).
pub(super) struct Fds<'a> {
    /// To become 0, 1 and 2.
    pub stdio: [BorrowedFd<'a>; 3],
    /// The unit's cgroup's `tasks` (v1), open for writing: joined first.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// The unit's cgroup v2 directory, which the child is born in (`clone3`), or where the
    /// kernel refuses, joins by its `cgroup.procs`. svcd's own: the child need not have it.
    pub born_in: Option<BorrowedFd<'a>>,
    /// Held sockets: they become 3, 4, ... by the sd_listen_fds protocol.
    pub sockets: &'a [BorrowedFd<'a>],
}

/// Everything the child does, built in svcd before the clone: the child must not allocate.
pub(super) struct Plan<'a> {
    // Owned here so that the pointer arrays below stay valid; never read otherwise.
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    /// Ends with a slot for `LISTEN_PID` (with sockets), then the null pointer.
    envp_ptrs: Vec<*const c_char>,
    /// Kept borrowed for as long as the plan lives; the child uses `raw`.
    _fds: Fds<'a>,
    /// The descriptors the child takes: `fds` itself, or the slots they were copied into.
    raw: RawFds,
    /// The cgroup v2 directory to clone the child into (`Fds::born_in`), until the kernel
    /// refuses.
    born_in: Option<RawFd>,
    /// With `born_in` refused: its `cgroup.procs`, which the child joins (`raw` has it).
    _procs: Option<OwnedFd>,
    /// With the descriptor table shared (`CLONE_FILES`): the first descriptor the child closes
    /// as it unshares the table, its first system call (see `process::slots`).
    unshare_from: Option<RawFd>,
    /// `CLOSE_RANGE_UNSHARE` (a test puts a flag the kernel refuses in, as an old kernel does).
    unshare_flags: c_uint,
    /// `memory.oom_score_adj` as the text to write.
    oom_score_adj: Option<Vec<u8>>,
    /// The limits the unit sets, with the step each reports.
    limits: Vec<(HookStep, c_int, libc::rlimit)>,
    nice: Option<c_int>,
    groups: Option<Vec<libc::gid_t>>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    workdir: Option<CString>,
    umask: Option<libc::mode_t>,
    /// With sockets: where their copies go (filled in the child), and `LISTEN_PID=` with room
    /// for the child's pid.
    listen: Option<Listen>,
}

struct Listen {
    scratch: Vec<RawFd>,
    pid_entry: Vec<u8>,
}

/// The numbers of the child's descriptors, in the order of [`Fds`]: stdin, stdout, stderr,
/// then the cgroup's (if any), then the sockets.
struct RawFds {
    all: Vec<RawFd>,
    cgroup: bool,
}

impl RawFds {
    fn new(fds: &Fds<'_>) -> RawFds {
        let mut all: Vec<RawFd> = fds.stdio.iter().map(AsRawFd::as_raw_fd).collect();
        all.extend(fds.cgroup.as_ref().map(AsRawFd::as_raw_fd));
        all.extend(fds.sockets.iter().map(AsRawFd::as_raw_fd));
        RawFds {
            all,
            cgroup: fds.cgroup.is_some(),
        }
    }

    fn stdio(&self) -> [RawFd; 3] {
        let at = |i: usize| self.all.get(i).copied().unwrap_or(-1);
        [at(0), at(1), at(2)]
    }

    fn cgroup(&self) -> Option<RawFd> {
        self.all.get(3).copied().filter(|_| self.cgroup)
    }

    fn sockets(&self) -> &[RawFd] {
        self.all.get(3 + usize::from(self.cgroup)..).unwrap_or(&[])
    }

    /// Adds `procs` as the file to join (where there was none: a refused `clone3`).
    fn join(&mut self, procs: RawFd) {
        if !self.cgroup && self.all.len() >= 3 {
            self.all.insert(3, procs);
            self.cgroup = true;
        }
    }
}

/// What the child reports: the failed step's byte (0: none) and its errno.
#[derive(Default)]
struct Report {
    step: AtomicU8,
    errno: AtomicI32,
}

/// The identity to take: (uid, gid, supplementary groups), each only when it changes.
pub(super) type Ids = (Option<u32>, Option<u32>, Option<Vec<u32>>);

impl<'a> Plan<'a> {
    /// The plan for `unit`: run `program` as `argv` (its first entry the name it runs as) with
    /// `env`, taking `ids`, on the descriptors `fds`. Fails on a NUL byte in a string.
    pub fn new(
        unit: &Unit,
        program: &Path,
        argv: &[String],
        env: &[(OsString, OsString)],
        ids: Ids,
        fds: Fds<'a>,
    ) -> Result<Plan<'a>, &'static str> {
        let nul = |bytes: &[u8], what: &'static str| CString::new(bytes).map_err(|_| what);
        let path = nul(program.as_os_str().as_bytes(), "the program")?;
        let mut c_argv = Vec::with_capacity(argv.len());
        for arg in argv {
            c_argv.push(nul(arg.as_bytes(), "an argument")?);
        }
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut entry = k.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            envp.push(nul(&entry, "the environment")?);
        }
        let mut argv_ptrs: Vec<*const c_char> = c_argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        let listen = (!fds.sockets.is_empty()).then(|| {
            // The slot the child points at its `LISTEN_PID=` entry.
            envp_ptrs.push(std::ptr::null());
            Listen {
                scratch: vec![-1; fds.sockets.len()],
                pid_entry: listen_fds::pid_entry(),
            }
        });
        envp_ptrs.push(std::ptr::null());
        let limits = [
            (
                HookStep::LimitNofile,
                libc::RLIMIT_NOFILE,
                unit.limits.nofile,
            ),
            (HookStep::LimitNproc, libc::RLIMIT_NPROC, unit.limits.nproc),
            (HookStep::LimitCore, libc::RLIMIT_CORE, unit.limits.core),
            (
                HookStep::LimitMemlock,
                libc::RLIMIT_MEMLOCK,
                unit.limits.memlock,
            ),
        ]
        .into_iter()
        .filter_map(|(step, resource, limit)| {
            let limit = limit?;
            let value = libc::rlimit {
                rlim_cur: limit.soft,
                rlim_max: limit.hard,
            };
            Some((step, resource as c_int, value))
        })
        .collect();
        let workdir = match &unit.workdir {
            Some(dir) => Some(nul(dir.as_os_str().as_bytes(), "the workdir")?),
            None => None,
        };
        let (uid, gid, groups) = ids;
        Ok(Plan {
            path,
            _argv: c_argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            raw: RawFds::new(&fds),
            born_in: fds.born_in.as_ref().map(AsRawFd::as_raw_fd),
            _procs: None,
            _fds: fds,
            unshare_from: None,
            unshare_flags: libc::CLOSE_RANGE_UNSHARE,
            oom_score_adj: unit
                .memory
                .oom_score_adj
                .map(|adj| format!("{adj}\n").into_bytes()),
            limits,
            nice: unit.nice.map(c_int::from),
            groups,
            gid,
            uid,
            workdir,
            umask: unit.umask.map(|m| m as libc::mode_t),
            listen,
        })
    }
}

/// Starts the process `plan` describes: its pid, or the step that failed (`None`: the clone
/// itself) and the errno. A child that failed a step is reaped here (as glibc's posix_spawn
/// does); one that got as far as exec belongs to the daemon's reap loop.
///
/// With svcd's slots reserved (`process::slots`), the child shares svcd's descriptor table
/// until it unshares the part below the slots' end: no copy of svcd's ~2 descriptors per
/// running unit. Without them, with more descriptors than slots, or on a kernel without
/// `CLOSE_RANGE_UNSHARE`, the clone copies the table.
///
/// With a cgroup v2 to be born in, the clone is a `clone3` into it (`process::clone3`); where
/// the kernel refuses, the child joins the cgroup by its `cgroup.procs` instead.
pub(super) fn spawn(plan: &mut Plan<'_>) -> Result<u32, (Option<HookStep>, c_int)> {
    let Some(dir) = plan.born_in else {
        return spawn_once(plan);
    };
    if clone3::works() {
        let result = spawn_once(plan);
        let Err((None, errno)) = result else {
            return result;
        };
        match clone3::refusal(errno) {
            Some(clone3::Refusal::Kernel) => clone3::refused(errno, "by the kernel"),
            Some(clone3::Refusal::Cgroup) => {}
            None => return result,
        }
    }
    plan.born_in = None;
    let procs = open_procs(dir).map_err(|errno| (Some(HookStep::Cgroup), errno))?;
    plan.raw.join(procs.as_raw_fd());
    plan._procs = Some(procs);
    spawn_once(plan)
}

/// `cgroup.procs` in the cgroup v2 directory `dir`, open for writing (close-on-exec).
fn open_procs(dir: RawFd) -> Result<OwnedFd, c_int> {
    use std::os::fd::FromRawFd;
    let flags = libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: openat in svcd, relative to its open directory `dir`, of a NUL-terminated name.
    let fd = unsafe { libc::openat(dir, c"cgroup.procs".as_ptr(), flags) };
    if fd < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// [`spawn`]'s clone, sharing svcd's table where it can.
fn spawn_once(plan: &mut Plan<'_>) -> Result<u32, (Option<HookStep>, c_int)> {
    if let Some(mut slots) = slots::lock() {
        let own = plan.raw.all.clone();
        let placed = slots.place(&mut plan.raw.all).is_some();
        let result = placed.then(|| {
            plan.unshare_from = Some(slots.first());
            clone_child(plan, libc::CLONE_FILES)
        });
        // The child has exec'd or exited (CLONE_VFORK): svcd's copies go.
        if placed {
            slots.give_back(own.len());
        }
        plan.raw.all = own;
        plan.unshare_from = None;
        if let Some(result) = result {
            // A refused clone3 is [`spawn`]'s to take back, sharing or not.
            let clone3_refused = |errno| plan.born_in.is_some() && clone3::refusal(errno).is_some();
            match refused_sharing(&result) {
                Some(errno) if !clone3_refused(errno) => slots::unshare_failed(errno),
                _ => return result,
            }
        }
    }
    clone_child(plan, 0)
}

/// Whether the shared-table clone's `result` is the kernel (or an emulator) refusing the
/// sharing itself, so that the copying clone is to be taken instead: its errno then. Either
/// the child's `close_range(CLOSE_RANGE_UNSHARE)` failed (a kernel before 5.9), or the clone
/// refused `CLONE_FILES` with EINVAL: qemu-user runs a clone that is not a thread's as a fork,
/// and refuses any flag a fork cannot honour (every spawn failed under it).
fn refused_sharing(result: &Result<u32, (Option<HookStep>, c_int)>) -> Option<c_int> {
    match *result {
        Err((Some(HookStep::Unshare), errno)) => Some(errno),
        Err((None, libc::EINVAL)) => Some(libc::EINVAL),
        _ => None,
    }
}

/// [`spawn`]'s clone, with `CLONE_FILES` in `files` or not.
fn clone_child(plan: &mut Plan<'_>, files: c_int) -> Result<u32, (Option<HookStep>, c_int)> {
    let stack = Stack::new().map_err(|errno| (None, errno))?;
    let born_in = plan.born_in;
    let report = Report::default();
    let mut shared = Shared {
        plan,
        report: &report,
    };
    let all: KernelSigset = !0;
    let mut old: KernelSigset = 0;
    // SAFETY: the hazards of running a child on svcd's memory, and how each is met:
    // - svcd's other threads (tokio's blocking pool, the fd holder) keep running while only
    //   this one waits: the child takes no lock and allocates nothing (a lock held by another
    //   thread at the moment of the clone would never be released in the child; malloc's
    //   arenas are shared with the threads still running). Everything it reads (argv, envp,
    //   paths, ids, the oom text, the pid entry) is in `plan`, built above; it writes only into
    //   `plan.listen` and envp's `LISTEN_PID` slot (both preallocated), `report`, and its own
    //   stack.
    // - glibc's wrappers keep process-wide state: setuid, setgid and setgroups broadcast to
    //   every thread of the process (setxid, with a lock and signals to svcd's threads, which
    //   nix's wrappers call too); open, write and close are cancellation points that mark the
    //   caller's thread (svcd's, through its TLS). The child calls the kernel directly
    //   (`libc::syscall`), so nothing of glibc's runs in it but `syscall` and `errno`.
    // - signals: every signal (glibc's internal ones too) is blocked in this thread before the
    //   clone, so the child starts with all blocked and a copy (no CLONE_SIGHAND) of svcd's
    //   handlers; it sets every signal's action to the default before it unblocks any (a
    //   handler of svcd's running in the child would write to svcd's self-pipe of a signal it
    //   never got); this thread's mask is restored as soon as clone returns.
    // - errno and TLS are this thread's: the child's failed calls write errno, which it reads
    //   right after each call; the parent reads errno only when the clone itself failed (no
    //   child ran) and never relies on a value from before it.
    // - the stack is the child's own (mapped above, with a guard page below it so that an
    //   overflow faults instead of writing into svcd's memory), and is unmapped only after
    //   the child has exec'd or exited, which CLONE_VFORK waits for.
    // - with a cgroup to be born in, the clone is `clone3` (`process::clone3::spawn`), whose
    //   child starts on the same stack and calls the same `child`, under the same rules.
    // - no CLONE_FS, CLONE_SIGHAND or CLONE_THREAD: the cwd, umask, signal actions, limits,
    //   credentials and session the child changes are its own. The OOM score too: the kernel
    //   leaves svcd's alone for a vfork child.
    // - the descriptor table: copied (no CLONE_FILES in `files`), or shared (CLONE_FILES)
    //   until the child's first system call, close_range(first, ~0, CLOSE_RANGE_UNSHARE),
    //   gives it a table of its own with only the descriptors below `first`. Until then it
    //   touches no descriptor (every step on one comes after the unshare), and svcd's other
    //   threads cannot change what it gets: everything below `first` is open (`slots`), the
    //   slots hold what the child needs (placed under the slots' lock, which the caller holds
    //   until it has given the slots back, after this call) and are close-on-exec, as every
    //   descriptor of svcd's is, so that nothing the child does not place reaches the unit.
    //   A failed unshare (an old kernel) ends the child before it touches anything, and the
    //   caller then clones again without CLONE_FILES.
    // - the child's code must not panic (a panic would allocate, lock stderr and unwind on
    //   svcd's memory): no indexing, no unwrap, no arithmetic that can overflow in it.
    // - `shared` lives on this stack frame, which stays put while this thread waits. A child
    //   stopped before exec (SIGSTOP cannot be blocked) holds this thread as long, as glibc's
    //   posix_spawn's would: nobody but root can stop it, and svcd does not know its pid yet.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const KernelSigset,
            &mut old as *mut KernelSigset,
            size_of::<KernelSigset>(),
        );
        let arg = (&mut shared as *mut Shared<'_, '_>).cast::<c_void>();
        let (pid, clone_errno) = match born_in {
            Some(cgroup) => {
                let (base, len) = stack.usable();
                let flags = libc::CLONE_VM | libc::CLONE_VFORK | files;
                let args = clone3::CloneArgs::new(flags, base, len, cgroup);
                let rc = clone3::spawn(&args, child, arg);
                let errno = c_int::try_from(rc.saturating_neg()).unwrap_or(libc::EINVAL);
                (c_int::try_from(rc).unwrap_or(-1), errno)
            }
            None => {
                let flags = libc::CLONE_VM | libc::CLONE_VFORK | files | libc::SIGCHLD;
                let pid = libc::clone(child, stack.top(), flags, arg);
                (pid, nix::errno::Errno::last_raw())
            }
        };
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const KernelSigset,
            std::ptr::null_mut::<KernelSigset>(),
            size_of::<KernelSigset>(),
        );
        if pid < 0 {
            return Err((None, clone_errno));
        }
        pid
    };
    drop(stack);
    let step = HookStep::from_byte(report.step.load(Ordering::Acquire));
    match step {
        None => Ok(pid as u32),
        Some(step) => {
            reap(pid);
            Err((Some(step), report.errno.load(Ordering::Acquire)))
        }
    }
}

/// Waits for the child `pid`, which failed a step and has exited (or is about to).
fn reap(pid: c_int) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid of our own child, writing to a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || nix::errno::Errno::last_raw() != libc::EINTR {
            return;
        }
    }
}

/// What the child gets: the plan, and where to report.
struct Shared<'p, 'a> {
    plan: &'p mut Plan<'a>,
    report: &'p Report,
}

/// The child: runs the plan, and execs or reports the failed step and exits.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Shared` of `spawn`, alive and untouched by the parent thread, which
    // waits (CLONE_VFORK) until this child has exec'd or exited.
    let shared = unsafe { &mut *arg.cast::<Shared<'_, '_>>() };
    let (step, errno) = run(shared.plan);
    shared.report.errno.store(errno, Ordering::Release);
    shared.report.step.store(step as u8, Ordering::Release);
    // SAFETY: ends the child alone (it is a process of its own, not a thread of svcd's).
    unsafe { libc::syscall(libc::SYS_exit_group, 127) };
    127
}

/// A raw system call's result, or the errno it failed with (read at once: errno is the
/// parent thread's, which the next failing call overwrites).
fn check(rc: c_long) -> Result<c_long, c_int> {
    if rc < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(rc)
    }
}

/// The steps, in the child; returns only on failure, with the step and errno. Raw system calls
/// only, nothing that allocates, locks or panics.
fn run(p: &mut Plan<'_>) -> (HookStep, c_int) {
    macro_rules! sys {
        ($step:expr, $($arg:expr),+) => {
            // SAFETY: a system call on this child's own state, with pointers into the plan
            // (built before the clone) or this stack frame.
            if let Err(errno) = check(unsafe { libc::syscall($($arg),+) }) {
                return ($step, errno);
            }
        };
    }
    // Before anything else, with the table shared: a table of the child's own, holding only
    // what is below `first` (stdio and the slots; see `process::slots`).
    if let Some(first) = p.unshare_from {
        let (first, last) = (first as c_uint, c_uint::MAX);
        let flags = p.unshare_flags;
        sys!(HookStep::Unshare, libc::SYS_close_range, first, last, flags);
    }
    // First: whatever the child does from here on is the cgroup's to count.
    if let Some(procs) = p.raw.cgroup() {
        let zero = b"0";
        sys!(
            HookStep::Cgroup,
            libc::SYS_write,
            procs,
            zero.as_ptr(),
            1usize
        );
    }
    sys!(HookStep::Setsid, libc::SYS_setsid);
    default_actions();
    if let Err(errno) = stdio(p.raw.stdio()) {
        return (HookStep::Stdio, errno);
    }
    if let Some(text) = &p.oom_score_adj {
        // Before dropping privileges: lowering the score needs CAP_SYS_RESOURCE.
        if let Err(errno) = write_oom_score_adj(text) {
            return (HookStep::OomScoreAdj, errno);
        }
    }
    // Also before dropping privileges: raising a hard limit or lowering nice needs root.
    for (step, resource, value) in &p.limits {
        let none = std::ptr::null_mut::<libc::rlimit>();
        sys!(
            *step,
            libc::SYS_prlimit64,
            0,
            *resource,
            value as *const libc::rlimit,
            none
        );
    }
    if let Some(nice) = p.nice {
        sys!(
            HookStep::Nice,
            libc::SYS_setpriority,
            libc::PRIO_PROCESS,
            0,
            nice
        );
    }
    if let Some(groups) = &p.groups {
        sys!(
            HookStep::Setgroups,
            libc::SYS_setgroups,
            groups.len(),
            groups.as_ptr()
        );
    }
    if let Some(gid) = p.gid {
        sys!(HookStep::Setgid, libc::SYS_setresgid, gid, gid, gid);
    }
    if let Some(uid) = p.uid {
        sys!(HookStep::Setuid, libc::SYS_setresuid, uid, uid, uid);
    }
    // After taking the identity (as systemd does): the unit's user must be able to enter its
    // own workdir.
    if let Some(dir) = &p.workdir {
        sys!(HookStep::Chdir, libc::SYS_chdir, dir.as_ptr());
    }
    if let Some(mask) = p.umask {
        // SAFETY: umask cannot fail; it sets the child's own (no CLONE_FS).
        unsafe { libc::syscall(libc::SYS_umask, mask) };
    }
    if let Some(listen) = &mut p.listen {
        if let Err(errno) = place_sockets(p.raw.sockets(), &mut listen.scratch) {
            return (HookStep::Listen, errno);
        }
        // SAFETY: getpid cannot fail; the child's own pid (glibc caches none since 2.25).
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        listen_fds::write_pid(&mut listen.pid_entry, pid);
        // The slot before the final null pointer.
        let slots = p.envp_ptrs.len();
        if let Some(slot) = p.envp_ptrs.get_mut(slots.wrapping_sub(2)) {
            *slot = listen.pid_entry.as_ptr().cast();
        }
    }
    // Last: the unit starts with no signal blocked (a mask survives exec).
    let empty: KernelSigset = 0;
    let none = std::ptr::null_mut::<KernelSigset>();
    let size = size_of::<KernelSigset>();
    let how = libc::SIG_SETMASK;
    sys!(
        HookStep::Exec,
        libc::SYS_rt_sigprocmask,
        how,
        &empty as *const KernelSigset,
        none,
        size
    );
    let (path, argv, envp) = (p.path.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
    sys!(HookStep::Exec, libc::SYS_execve, path, argv, envp);
    // execve returns only on failure, which `sys!` reported.
    (HookStep::Exec, libc::EINVAL)
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout), for `rt_sigaction` itself:
/// glibc's `sigaction` refuses its two internal signals, which svcd may have inherited ignored
/// (a program spawned by glibc's posix_spawn gets them so).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: KernelSigset,
}

/// Every signal's default action, in the child (a signal svcd ignores must not reach the
/// unit so, and none of svcd's handlers may run in it); the mask stays as it is.
fn default_actions() {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: rt_sigaction on the child's own copy of the actions, reading `default`
            // of this frame in the kernel's layout and sigset size; failures are harmless.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    size_of::<KernelSigset>(),
                );
            }
        }
    }
}

/// `fds` as 0, 1 and 2. One below 3 is first copied above them, so that placing one never
/// overwrites another still to place (svcd started with a standard descriptor closed).
fn stdio(fds: [RawFd; 3]) -> Result<(), c_int> {
    let mut sources = [-1; 3];
    for (source, fd) in sources.iter_mut().zip(fds) {
        *source = if fd < 3 {
            // SAFETY: fcntl on the child's own descriptor table.
            let copy =
                check(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, 3) })?;
            copy as RawFd
        } else {
            fd
        };
    }
    for (target, source) in (0..).zip(sources) {
        // SAFETY: dup3 on the child's own descriptor table; source >= 3 > target, so they
        // differ (dup3 refuses equal ones), and the copy is not close-on-exec.
        check(unsafe { libc::syscall(libc::SYS_dup3, source, target as RawFd, 0) })?;
    }
    Ok(())
}

/// Puts `sockets` at 3, 4, ... (copies above all the targets first, into `scratch`, so that
/// moving one never overwrites another).
fn place_sockets(sockets: &[RawFd], scratch: &mut [RawFd]) -> Result<(), c_int> {
    let base = 3 + sockets.len().min(1 << 16) as c_long;
    for (copy, &fd) in scratch.iter_mut().zip(sockets) {
        // SAFETY: fcntl on the child's own descriptor table.
        let rc = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, base) };
        *copy = check(rc)? as RawFd;
    }
    for (target, &copy) in (3..).zip(scratch.iter()) {
        // SAFETY: as in `stdio`: copy >= base > target; the target is kept across exec.
        check(unsafe { libc::syscall(libc::SYS_dup3, copy, target as RawFd, 0) })?;
    }
    Ok(())
}

/// Writes `text` to /proc/self/oom_score_adj (the child's own: the kernel does not pass a
/// vfork child's score on to the process whose memory it shares).
fn write_oom_score_adj(text: &[u8]) -> Result<(), c_int> {
    let path = c"/proc/self/oom_score_adj";
    let flags = libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: openat, write and close on the child's own descriptors and the bytes of `text`.
    unsafe {
        let fd = check(libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
        ))?;
        let written = check(libc::syscall(
            libc::SYS_write,
            fd,
            text.as_ptr(),
            text.len(),
        ));
        libc::syscall(libc::SYS_close, fd);
        if written? as usize != text.len() {
            return Err(libc::EIO);
        }
    }
    Ok(())
}

/// The child's stack: an anonymous mapping with a guard page at its low end, unmapped on drop.
struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
    fn new() -> Result<Stack, c_int> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = STACK_SIZE + page;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE;
        // SAFETY: a fresh anonymous mapping, then its first page made inaccessible; the
        // mapping is owned by the returned `Stack` alone.
        unsafe {
            let base = libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0);
            if base == libc::MAP_FAILED {
                return Err(nix::errno::Errno::last_raw());
            }
            let stack = Stack { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(nix::errno::Errno::last_raw());
            }
            Ok(stack)
        }
    }

    /// The stack's top (it grows down), 16-byte aligned as the ABIs want: the mapping's end.
    fn top(&self) -> *mut c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }

    /// The stack above the guard page: its lowest address and length (`clone3` takes these
    /// and starts the child at [`Stack::top`]).
    fn usable(&self) -> (*mut c_void, usize) {
        let guard = self.len.saturating_sub(STACK_SIZE);
        (
            self.base.cast::<u8>().wrapping_add(guard).cast(),
            STACK_SIZE,
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used (the child has exec'd or exited).
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

#[cfg(test)]
#[path = "vfork_tests.rs"]
mod tests;
