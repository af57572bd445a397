//! Starting a unit's process: in a session of its own, with a clean signal state, its output
//! into two pipes.
//!
//! Two ways, one result. A unit that needs nothing done between fork and exec but what
//! `posix_spawn` can do (new session, signal mask and dispositions, stdio, working directory)
//! is started by glibc's `posix_spawn` (clone with CLONE_VFORK: several times faster than fork
//! for a daemon with a large heap; 1,000 units start in a third of the time). One that changes
//! identity, umask, OOM score, resource limits or nice is forked by `std::process::Command`
//! with a `pre_exec` hook.
//! Either way a failure names the step that failed (chdir, setgid, exec, ...).

use super::credentials::{Credentials, Step as IdStep};
use super::listen_fds::{self, ListenExec};
use super::strays::UNIT_ENV;
use crate::unit::Unit;
use crate::unit::limits::{INFINITY, Rlimit};
use nix::errno::Errno;
use nix::sys::stat::{Mode, umask};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// PATH when neither the unit nor svcd has one (glibc's `execvp` default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Why a unit could not be spawned.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot resolve user/group: {0}")]
    Credentials(String),
    #[error("cannot create an output pipe: {0}")]
    Pipe(#[source] Errno),
    #[error("cannot execute `{program}`: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A step before exec failed; `step` says which, e.g. "chdir to workdir /srv/app".
    #[error("cannot start `{program}`: {step} failed: {source}")]
    Step {
        program: String,
        step: String,
        #[source]
        source: std::io::Error,
    },
}

/// A process just started: its pid (also its session and process group) and the read ends of
/// its output.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    /// The unit's stdout, for [`crate::logs::capture`].
    pub stdout: OwnedFd,
    /// The unit's stderr, a pipe of its own so that each line is stamped with its stream.
    pub stderr: OwnedFd,
}

/// The steps of the `pre_exec` hook, as the byte it reports a failure with.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum HookStep {
    Setsid = 1,
    OomScoreAdj,
    LimitNofile,
    LimitNproc,
    LimitCore,
    LimitMemlock,
    Nice,
    Setgroups,
    Setgid,
    Setuid,
    Chdir,
    Cgroup,
}

impl HookStep {
    fn from_byte(byte: u8) -> Option<HookStep> {
        [
            HookStep::Setsid,
            HookStep::OomScoreAdj,
            HookStep::LimitNofile,
            HookStep::LimitNproc,
            HookStep::LimitCore,
            HookStep::LimitMemlock,
            HookStep::Nice,
            HookStep::Setgroups,
            HookStep::Setgid,
            HookStep::Setuid,
            HookStep::Chdir,
            HookStep::Cgroup,
        ]
        .into_iter()
        .find(|s| *s as u8 == byte)
    }

    fn describe(self, unit: &Unit) -> String {
        match self {
            HookStep::Setsid => "setsid (a session of its own)".to_string(),
            HookStep::OomScoreAdj => "writing /proc/self/oom_score_adj".to_string(),
            HookStep::LimitNofile => limit_step("nofile", unit.limits.nofile),
            HookStep::LimitNproc => limit_step("nproc", unit.limits.nproc),
            HookStep::LimitCore => limit_step("core", unit.limits.core),
            HookStep::LimitMemlock => limit_step("memlock", unit.limits.memlock),
            HookStep::Nice => format!("setpriority (nice {})", unit.nice.unwrap_or(0)),
            HookStep::Setgroups => "setgroups (supplementary groups)".to_string(),
            HookStep::Setgid => format!("setgid (group {})", identity(unit)),
            HookStep::Setuid => format!("setuid (user {})", identity(unit)),
            HookStep::Chdir => chdir_step(unit),
            HookStep::Cgroup => "joining the unit's memory cgroup".to_string(),
        }
    }
}

fn identity(unit: &Unit) -> String {
    match (unit.run_as(is_root()), &unit.group) {
        (Some(u), Some(g)) => format!("`{u}`, group `{g}`"),
        (Some(u), None) => format!("of user `{u}`"),
        (None, Some(g)) => format!("`{g}`"),
        (None, None) => "unchanged".to_string(),
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn limit_step(key: &str, limit: Option<Rlimit>) -> String {
    let side = |n: u64| match n {
        INFINITY => "infinity".to_string(),
        n => n.to_string(),
    };
    match limit {
        Some(l) => format!(
            "setrlimit (limits.{key} = {}:{}; raising a hard limit needs CAP_SYS_RESOURCE)",
            side(l.soft),
            side(l.hard)
        ),
        None => format!("setrlimit (limits.{key})"),
    }
}

fn chdir_step(unit: &Unit) -> String {
    let dir = unit.workdir.as_deref().unwrap_or(Path::new(""));
    match unit.run_as(is_root()) {
        // The user's rights decide: say whose they were.
        Some(user) => format!("chdir to workdir {} as user `{user}`", dir.display()),
        None => format!("chdir to workdir {}", dir.display()),
    }
}

/// Spawns `unit` in a new session (so it is its own process group and has no controlling
/// terminal), stdin from /dev/null, stdout and stderr into a pipe each, with an empty signal mask
/// and every signal's default disposition. The environment is svcd's own, then the unit's
/// `env_file`, then its `env`, then `SVC_UNIT=<name>`, by which [`super::svcd_orphans`]
/// recognizes the unit's processes.
///
/// Every descriptor made here is closed again on every path, success or failure: svcd keeps
/// only the two read ends it returns.
pub fn spawn(unit: &Unit) -> Result<Spawned, SpawnError> {
    spawn_with(unit, &[], None)
}

/// [`spawn`], passing `sockets` (held by svcd, with their names) as fds 3, 4, ... by the
/// sd_listen_fds protocol (see `process::listen_fds`), and the process joining a cgroup before
/// anything else: `cgroup` is that cgroup's `cgroup.procs`, open for writing (see
/// [`crate::memory::cgroup`]). Such a unit takes the forked way: posix_spawn has no step for
/// either, and only there can the child learn its own pid for `LISTEN_PID`.
pub fn spawn_with(
    unit: &Unit,
    sockets: &[(BorrowedFd<'_>, String)],
    cgroup: Option<OwnedFd>,
) -> Result<Spawned, SpawnError> {
    let creds = Credentials::resolve(
        unit.run_as(is_root()),
        unit.group.as_deref(),
        &unit.supplementary_groups,
    )
    .map_err(SpawnError::Credentials)?;
    let name = unit.argv.first().cloned().unwrap_or_default();
    let mut env = environment(unit);
    if !sockets.is_empty() {
        let names: Vec<String> = sockets.iter().map(|(_, n)| n.clone()).collect();
        listen_fds::add_env(&mut env, &names);
    }
    let program =
        find_program(&name, &env, unit.workdir.as_deref()).map_err(|source| SpawnError::Exec {
            program: name.clone(),
            source,
        })?;
    let (read_out, write_out) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let (read_err, write_err) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    // A workdir takes the hook too: glibc's posix_spawn_file_actions_addchdir_np is a weak
    // symbol that a static, LTO-linked svcd may leave unresolved (a call to address 0).
    let needs_hook = !creds.is_noop()
        || unit.umask.is_some()
        || unit.memory.oom_score_adj.is_some()
        || unit.workdir.is_some()
        || !unit.limits.is_empty()
        || unit.nice.is_some()
        || !sockets.is_empty()
        || cgroup.is_some();
    let pid = if needs_hook {
        let listen = if sockets.is_empty() {
            None
        } else {
            let mut argv = Vec::with_capacity(unit.argv.len());
            argv.push(cstring(name.as_bytes(), "the program", &name)?);
            for arg in unit.argv.iter().skip(1) {
                argv.push(cstring(arg.as_bytes(), "an argument", &name)?);
            }
            let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|(fd, _)| *fd).collect();
            Some(ListenExec::new(&program, argv, &env, &fds).map_err(SpawnError::Pipe)?)
        };
        let outputs = (write_out, write_err);
        let extras = ForkExtras { listen, cgroup };
        spawn_forked(unit, creds, &program, &name, env, outputs, extras)?
    } else {
        spawn_posix(unit, &program, &name, env, &write_out, &write_err)?
    };
    Ok(Spawned {
        pid,
        stdout: read_out,
        stderr: read_err,
    })
}

/// svcd's environment with the unit's on top, in order, each name once.
fn environment(unit: &Unit) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_str().unwrap_or("");
            k != UNIT_ENV && !unit.env.contains_key(k)
        })
        .collect();
    env.extend(
        unit.env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    env.push((UNIT_ENV.into(), OsString::from(&unit.name)));
    env
}

/// The file to execute for `name`: as given when it has a `/` (relative to the workdir, where
/// the process will be), else the first executable file of that name in the unit's PATH (its
/// own `env`'s, else svcd's), searched by svcd so that both ways of spawning agree and a
/// missing program is named before anything is created.
fn find_program(
    name: &str,
    env: &[(OsString, OsString)],
    workdir: Option<&Path>,
) -> std::io::Result<PathBuf> {
    if name.is_empty() {
        return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| OsString::from(DEFAULT_PATH), |(_, v)| v.clone());
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = Path::new(OsStr::from_bytes(if dir.is_empty() { b"." } else { dir }));
        let dir = match workdir {
            Some(work) if dir.is_relative() => work.join(dir),
            _ => dir.to_path_buf(),
        };
        let candidate = dir.join(name);
        let is_file = std::fs::metadata(&candidate).is_ok_and(|m| m.is_file());
        if is_file && nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "not found in PATH ({}); install it or give its full path",
            path.to_string_lossy()
        ),
    ))
}

fn cstring(bytes: &[u8], what: &str, program: &str) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::Exec {
        program: program.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        ),
    })
}

/// The fast way, for a unit with nothing to do between fork and exec (no identity, umask, OOM
/// score or workdir): `posix_spawn` with a new session, a clean signal state and stdio as its
/// attributes and file actions.
fn spawn_posix(
    unit: &Unit,
    program: &Path,
    name: &str,
    env: Vec<(OsString, OsString)>,
    out: &OwnedFd,
    err: &OwnedFd,
) -> Result<u32, SpawnError> {
    let path = cstring(program.as_os_str().as_bytes(), "the program", name)?;
    let mut argv = Vec::with_capacity(unit.argv.len());
    for arg in &unit.argv {
        argv.push(cstring(arg.as_bytes(), "an argument", name)?);
    }
    let mut envp = Vec::with_capacity(env.len());
    for (k, v) in env {
        let mut entry = k.into_encoded_bytes();
        entry.push(b'=');
        entry.extend_from_slice(v.as_encoded_bytes());
        envp.push(cstring(&entry, "the environment", name)?);
    }
    posix_spawn(&path, &argv, &envp, out, err).map_err(|errno| SpawnError::Exec {
        program: name.to_string(),
        source: std::io::Error::from_raw_os_error(errno),
    })
}

/// glibc's `posix_spawn`: a new session, an empty signal mask, every signal's default action,
/// stdin /dev/null, stdout and stderr `out` and `err`. The pid or the errno.
fn posix_spawn(
    path: &CStr,
    argv: &[CString],
    envp: &[CString],
    out: &OwnedFd,
    err: &OwnedFd,
) -> Result<u32, i32> {
    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let mut envp_ptrs: Vec<*mut libc::c_char> =
        envp.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp_ptrs.push(std::ptr::null_mut());
    let flags = libc::POSIX_SPAWN_SETSID
        | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
        | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(rc) };
    // SAFETY: the attribute and file-action objects are initialized before use and destroyed
    // on every path below; every pointer handed to libc (paths, argv, envp, the sigsets) points
    // to memory that lives until posix_spawn returns; argv and envp end with a null pointer.
    // posix_spawn itself runs the child on a copy of nothing svcd shares but these arguments.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        check(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let mut attr = attr.assume_init();
        let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        if let Err(rc) = check(libc::posix_spawn_file_actions_init(actions.as_mut_ptr())) {
            libc::posix_spawnattr_destroy(&mut attr);
            return Err(rc);
        }
        let mut actions = actions.assume_init();
        let result = (|| {
            let mut empty = std::mem::zeroed::<libc::sigset_t>();
            let mut all = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut empty);
            // Every bit, not sigfillset: glibc's leaves out its two internal signals, which
            // its posix_spawn then leaves ignored in the child, and so after exec.
            std::ptr::write_bytes(&mut all, 0xff, 1);
            check(libc::posix_spawnattr_setflags(&mut attr, flags))?;
            check(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attr, &all))?;
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions,
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                out.as_raw_fd(),
                1,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                err.as_raw_fd(),
                2,
            ))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attr,
                argv_ptrs.as_ptr(),
                envp_ptrs.as_ptr(),
            ))?;
            Ok(pid as u32)
        })();
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
        result
    }
}

/// The hooked way: fork with `std::process::Command`, then in the child a new session, default
/// signal dispositions, the OOM score, the resource limits, nice, the identity, the workdir and
/// the umask. A failing step
/// writes its [`HookStep`] byte to a close-on-exec pipe, so the parent can name it. With
/// `listen`, the hook ends by passing the sockets and exec'ing itself.
#[allow(clippy::too_many_arguments)]
/// What the forked child does besides applying the unit's settings: pass the held sockets
/// (`listen`: the exec to finish with, and the pipe it reports a failure on) and join a cgroup
/// (`cgroup.procs`, open for writing).
struct ForkExtras {
    listen: Option<(ListenExec, OwnedFd)>,
    cgroup: Option<OwnedFd>,
}

fn spawn_forked(
    unit: &Unit,
    creds: Credentials,
    program: &Path,
    name: &str,
    env: Vec<(OsString, OsString)>,
    (out, err): (OwnedFd, OwnedFd),
    ForkExtras { listen, cgroup }: ForkExtras,
) -> Result<u32, SpawnError> {
    let (mut listen, listen_report) = match listen {
        Some((exec, read)) => (Some(exec), Some(read)),
        None => (None, None),
    };
    let (step_read, step_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(SpawnError::Pipe)?;
    let mut command = Command::new(program);
    command
        .arg0(name)
        .args(unit.argv.iter().skip(1))
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // Built now: the child must not allocate.
    let oom_score_adj: Option<Vec<u8>> = unit
        .memory
        .oom_score_adj
        .map(|adj| format!("{adj}\n").into_bytes());
    let workdir = match &unit.workdir {
        Some(dir) => Some(cstring(dir.as_os_str().as_bytes(), "the workdir", name)?),
        None => None,
    };
    let unit_umask = unit.umask;
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
    ];
    let nice = unit.nice;
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: write (to cgroup.procs, an fd opened before the fork), setsid, sigaction, sigprocmask, open, write, close, setrlimit,
    // setpriority, setgroups, setgid, setuid, chdir and umask are plain system calls (paths are C strings built before
    // the fork, so nothing allocates), and `creds`, the oom_score_adj text and the workdir were
    // fully built (all allocation done) before the fork. With `listen`, fcntl, dup2, getpid,
    // execve and _exit, on buffers `ListenExec` built before the fork.
    unsafe {
        command.pre_exec(move || {
            let fail = |step: HookStep, errno: Errno| {
                let _ = nix::unistd::write(&step_write, &[step as u8]);
                std::io::Error::from_raw_os_error(errno as i32)
            };
            // First: whatever the child does from here on is the cgroup's to count.
            if let Some(procs) = &cgroup {
                nix::unistd::write(procs, b"0").map_err(|e| fail(HookStep::Cgroup, e))?;
            }
            nix::unistd::setsid().map_err(|e| fail(HookStep::Setsid, e))?;
            default_signals();
            if let Some(text) = &oom_score_adj {
                // Before dropping privileges: lowering the score needs CAP_SYS_RESOURCE.
                write_oom_score_adj(text).map_err(|e| fail(HookStep::OomScoreAdj, e))?;
            }
            // Also before dropping privileges: raising a hard limit or lowering nice needs root.
            for (step, resource, limit) in limits {
                if let Some(limit) = limit {
                    set_rlimit(resource, limit).map_err(|e| fail(step, e))?;
                }
            }
            if let Some(nice) = nice {
                set_nice(nice).map_err(|e| fail(HookStep::Nice, e))?;
            }
            creds.apply().map_err(|(step, e)| {
                let step = match step {
                    IdStep::Setgroups => HookStep::Setgroups,
                    IdStep::Setgid => HookStep::Setgid,
                    IdStep::Setuid => HookStep::Setuid,
                };
                fail(step, e)
            })?;
            // After taking the identity (as systemd does): the unit's user must be able to
            // enter its own workdir.
            if let Some(dir) = &workdir {
                nix::unistd::chdir(dir.as_c_str()).map_err(|e| fail(HookStep::Chdir, e))?;
            }
            if let Some(mask) = unit_umask {
                umask(Mode::from_bits_truncate(mask));
            }
            if let Some(exec) = &mut listen {
                // Returns only on failure, reported on its own pipe: std's may be gone.
                exec.exec();
                libc::_exit(127);
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    // Closes svcd's copies of the pipes' write ends, and of the step pipe's (in the hook).
    drop(command);
    match spawned {
        // Dropping the `Child` neither kills nor waits: the daemon's reap loop owns the exit
        // (also of a child that failed to pass its sockets or to exec, reaped as a stray).
        Ok(child) => match listen_report.and_then(ListenExec::read_failure) {
            None => Ok(child.id()),
            Some((true, source)) => Err(SpawnError::Exec {
                program: name.to_string(),
                source,
            }),
            Some((false, source)) => Err(SpawnError::Step {
                program: name.to_string(),
                step: "passing the sockets of `listen` as fds 3, 4, ...".to_string(),
                source,
            }),
        },
        Err(source) => {
            let mut byte = [0u8];
            let step = match nix::unistd::read(&step_read, &mut byte) {
                Ok(1) => HookStep::from_byte(byte[0]),
                _ => None,
            };
            Err(match step {
                Some(step) => SpawnError::Step {
                    program: name.to_string(),
                    step: step.describe(unit),
                    source,
                },
                None => SpawnError::Exec {
                    program: name.to_string(),
                    source,
                },
            })
        }
    }
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout), for `rt_sigaction` itself:
/// glibc's `sigaction` refuses its two internal signals, which svcd may have inherited ignored
/// (a program spawned by glibc's posix_spawn gets them so).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Every signal's default action and none blocked, in the forked child (a signal svcd's parent
/// ignored or blocked must not reach the unit so; handlers are reset by exec anyway).
fn default_signals() {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction with SIG_DFL and sigprocmask are async-signal-safe system calls on
    // memory of this stack frame, `default` matching the kernel's layout and its sigset size (8
    // bytes); failures (SIGKILL, SIGSTOP) are expected and harmless.
    unsafe {
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// `setrlimit` of `resource`; runs in the forked child.
fn set_rlimit(resource: libc::__rlimit_resource_t, limit: Rlimit) -> Result<(), Errno> {
    let value = libc::rlimit {
        rlim_cur: limit.soft,
        rlim_max: limit.hard,
    };
    // SAFETY: setrlimit is a plain system call reading a struct of this stack frame.
    let rc = unsafe { libc::setrlimit(resource, &value) };
    Errno::result(rc).map(drop)
}

/// `setpriority` of this process; runs in the forked child.
fn set_nice(nice: i8) -> Result<(), Errno> {
    // SAFETY: setpriority is a plain system call on this process (who = 0), no memory involved.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, libc::c_int::from(nice)) };
    Errno::result(rc).map(drop)
}

/// Writes `text` to /proc/self/oom_score_adj; runs in the forked child, so it does not allocate.
fn write_oom_score_adj(text: &[u8]) -> Result<(), Errno> {
    use nix::fcntl::{OFlag, open};
    let fd = open(
        c"/proc/self/oom_score_adj",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let written = nix::unistd::write(&fd, text)?;
    if written != text.len() {
        return Err(Errno::EIO);
    }
    Ok(())
}
