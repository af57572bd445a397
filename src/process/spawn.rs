//! Starting a unit's process: in a session of its own, with a clean signal state, its output
//! into two pipes.
//!
//! Two ways, one result. A unit that needs nothing done between fork and exec but what
//! `posix_spawn` can do (new session, signal mask and dispositions, stdio, working directory)
//! is started by glibc's `posix_spawn` (clone with CLONE_VFORK: several times faster than fork
//! for a daemon with a large heap; 1,000 units start in a third of the time). One that joins a
//! cgroup, changes identity, umask, OOM score, resource limits or nice, or gets held sockets, is
//! started the same way by our own clone, whose child runs those steps (`process::vfork`).
//! Either way a failure names the step that failed (chdir, setgid, exec, ...). In svcd, which
//! reserves the slots of `process::slots` at its start, every unit takes our clone: its child
//! shares svcd's descriptor table instead of copying it (see `process::vfork`); posix_spawn is
//! left for the library's other users and for kernels before 5.9.

use super::clone3::CgroupFd;
use super::credentials::Credentials;
use super::listen_fds;
use super::strays::UNIT_ENV;
use super::vfork::{self, Fds, Plan};
use crate::unit::Unit;
use crate::unit::limits::{INFINITY, Rlimit};
use nix::errno::Errno;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

/// The steps the child of the hooked way runs before exec, as the byte it reports a failure
/// with (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum HookStep {
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
    Stdio,
    Listen,
    Exec,
    /// `close_range(CLOSE_RANGE_UNSHARE)` with the table shared: never reported (the spawn
    /// then copies the table instead).
    Unshare,
}

impl HookStep {
    pub(super) fn from_byte(byte: u8) -> Option<HookStep> {
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
            HookStep::Stdio,
            HookStep::Listen,
            HookStep::Exec,
            HookStep::Unshare,
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
            HookStep::Stdio => "connecting stdin, stdout and stderr".to_string(),
            HookStep::Listen => "passing the sockets of `listen` as fds 3, 4, ...".to_string(),
            HookStep::Exec => "exec".to_string(),
            HookStep::Unshare => "unsharing the descriptor table".to_string(),
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
/// sd_listen_fds protocol (see `process::listen_fds`), and the process in the cgroup `cgroup`
/// from its start: born in it (a cgroup v2 directory) or joining it before anything else (see
/// [`crate::memory::cgroup`]). Such a unit takes the hooked way: posix_spawn has no step for
/// either, and only there can the child learn its own pid for `LISTEN_PID`.
pub fn spawn_with(
    unit: &Unit,
    sockets: &[(BorrowedFd<'_>, String)],
    cgroup: Option<CgroupFd>,
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
    // With svcd's slots reserved, a unit with nothing to do before exec takes our clone too:
    // glibc's posix_spawn copies svcd's whole descriptor table, which grows with the units.
    let pid = if needs_hook || super::slots::available() {
        let stdio = (write_out.as_fd(), write_err.as_fd());
        let sockets: Vec<BorrowedFd<'_>> = sockets.iter().map(|(fd, _)| *fd).collect();
        let extras = (cgroup.as_ref(), &sockets[..]);
        spawn_hooked(unit, &creds, &program, &name, &env, stdio, extras)?
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

/// The hooked way: our own clone (`process::vfork`), whose child joins the cgroup, takes a
/// session of its own, default signal actions, stdio, the OOM score, the resource limits,
/// nice, the identity, the workdir, the umask and the held sockets (`extras`: the cgroup's
/// `cgroup.procs` and the sockets), then execs. A failing step is named in the error.
fn spawn_hooked(
    unit: &Unit,
    creds: &Credentials,
    program: &Path,
    name: &str,
    env: &[(OsString, OsString)],
    (out, err): (BorrowedFd<'_>, BorrowedFd<'_>),
    (cgroup, sockets): (Option<&CgroupFd>, &[BorrowedFd<'_>]),
) -> Result<u32, SpawnError> {
    use nix::fcntl::{OFlag, open};
    let null = open(
        c"/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| SpawnError::Step {
        program: name.to_string(),
        step: "opening /dev/null for stdin".to_string(),
        source: errno.into(),
    })?;
    let (uid, gid) = creds.ids();
    let fds = Fds {
        stdio: [null.as_fd(), out, err],
        cgroup: match cgroup {
            Some(CgroupFd::Join(fd)) => Some(fd.as_fd()),
            _ => None,
        },
        born_in: match cgroup {
            Some(CgroupFd::Dir(fd)) => Some(fd.as_fd()),
            _ => None,
        },
        sockets,
    };
    let mut plan = Plan::new(
        unit,
        program,
        &unit.argv,
        env,
        (uid, gid, creds.groups()),
        fds,
    )
    .map_err(|what| SpawnError::Exec {
        program: name.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        ),
    })?;
    vfork::spawn(&mut plan).map_err(|(step, errno)| {
        let source = std::io::Error::from_raw_os_error(errno);
        match step {
            None | Some(HookStep::Exec) => SpawnError::Exec {
                program: name.to_string(),
                source,
            },
            Some(step) => SpawnError::Step {
                program: name.to_string(),
                step: step.describe(unit),
                source,
            },
        }
    })
}
