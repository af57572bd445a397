//! The hooked spawn on real processes (as youki tests its process layer): the plan as built,
//! the child's steps as the unit sees them, and svcd's own state untouched by them.

use super::*;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

fn unit(text: &str) -> Unit {
    crate::unit::validate::validate(Path::new("/units/t.toml"), text).expect("a valid unit")
}

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").expect("/dev/null").into()
}

/// Spawns `unit`'s argv by the plan; its stdout, the pid reaped.
fn run(unit: &Unit) -> Result<String, (Option<HookStep>, c_int)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let null = devnull();
    let mut plan = plan_with_pipe(unit, &null, &write);
    let pid = spawn(&mut plan)?;
    drop(plan);
    drop(write);
    let out = read_all(read);
    assert_exited_0(pid);
    Ok(out)
}

/// What the steps could change in the calling process: umask, cwd, this thread's signal mask,
/// OOM score, nice, core limit.
/// (Read, not set and restored: the tests run in parallel, in one process.)
fn own_state() -> (String, std::path::PathBuf, u64, String, String, String) {
    let read = |path: &str| std::fs::read_to_string(path).expect(path);
    let status = read("/proc/self/status");
    let mask = status.lines().find(|l| l.starts_with("Umask:"));
    let mut sigmask: KernelSigset = 0;
    // SAFETY: reads this thread's mask into a local (no change: the new set is null).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<KernelSigset>(),
            &mut sigmask as *mut KernelSigset,
            size_of::<KernelSigset>(),
        );
    }
    let stat = read("/proc/thread-self/stat");
    let nice = stat.rsplit(')').next().and_then(|s| s.split(' ').nth(17));
    (
        mask.unwrap_or("").to_string(),
        std::env::current_dir().expect("cwd"),
        sigmask,
        read("/proc/self/oom_score_adj"),
        nice.unwrap_or("").to_string(),
        read("/proc/self/limits"),
    )
}

#[test]
fn the_plan_takes_only_what_the_unit_sets_and_keeps_a_slot_for_listen_pid() {
    let u = unit(
        "exec = [\"prog\", \"a b\"]\numask = \"027\"\nnice = 3\n[memory]\noom_score_adj = -5\n[limits]\ncore = 0\nnofile = \"100:infinity\"\n",
    );
    let null = devnull();
    let env = [(OsString::from("A"), OsString::from("1"))];
    let fds = || Fds {
        stdio: [null.as_fd(), null.as_fd(), null.as_fd()],
        cgroup: None,
        born_in: None,
        sockets: &[],
    };
    let ids = (Some(7), Some(8), Some(vec![8, 9]));
    let plan = Plan::new(&u, Path::new("/bin/prog"), &u.argv, &env, ids, fds()).expect("plan");
    assert_eq!(plan.path.as_bytes(), b"/bin/prog");
    assert_eq!(plan.argv_ptrs.len(), 3);
    assert!(plan.argv_ptrs[2].is_null());
    assert_eq!(plan.envp_ptrs.len(), 2, "A=1, then the null pointer");
    assert_eq!(plan._envp[0].as_bytes(), b"A=1");
    assert_eq!(plan.oom_score_adj.as_deref(), Some(&b"-5\n"[..]));
    let limits: Vec<(HookStep, c_int, u64, u64)> = plan
        .limits
        .iter()
        .map(|(s, r, l)| (*s, *r, l.rlim_cur, l.rlim_max))
        .collect();
    assert_eq!(
        limits,
        [
            (
                HookStep::LimitNofile,
                libc::RLIMIT_NOFILE as c_int,
                100,
                u64::MAX
            ),
            (HookStep::LimitCore, libc::RLIMIT_CORE as c_int, 0, 0),
        ]
    );
    assert_eq!((plan.nice, plan.umask), (Some(3), Some(0o027)));
    assert_eq!(
        (plan.uid, plan.gid, plan.groups),
        (Some(7), Some(8), Some(vec![8, 9]))
    );
    assert!(plan.workdir.is_none() && plan.listen.is_none());

    let socket = devnull();
    let sockets = [socket.as_fd()];
    let with_sockets = Fds {
        sockets: &sockets,
        ..fds()
    };
    let plan = Plan::new(
        &u,
        Path::new("/bin/prog"),
        &u.argv,
        &env,
        (None, None, None),
        with_sockets,
    )
    .expect("plan");
    assert_eq!(
        plan.envp_ptrs.len(),
        3,
        "A=1, LISTEN_PID's slot, the null pointer"
    );
    assert!(plan.envp_ptrs[2].is_null());
    assert_eq!(plan.listen.as_ref().map(|l| l.scratch.len()), Some(1));
}

#[test]
fn the_child_runs_the_units_steps_and_leaves_the_parent_as_it_was() {
    let before = own_state();
    let script =
        "umask; pwd; cat /proc/self/oom_score_adj; ulimit -c; cut -d' ' -f19 /proc/self/stat";
    let u = unit(&format!(
        "exec = [\"/bin/sh\", \"-c\", \"{script}\"]\nworkdir = \"/\"\numask = \"027\"\nnice = 5\n[memory]\noom_score_adj = 500\n[limits]\ncore = 0\n"
    ));
    for _ in 0..20 {
        let out = run(&u).expect("spawned");
        assert_eq!(out, "0027\n/\n500\n0\n5\n");
        assert_eq!(own_state(), before);
    }
}

#[test]
fn a_failing_step_comes_back_as_its_step_and_errno() {
    let before = own_state();
    let missing = unit("exec = [\"/bin/true\"]\nworkdir = \"/nonexistent-svc-workdir\"\n");
    assert_eq!(run(&missing), Err((Some(HookStep::Chdir), libc::ENOENT)));
    let no_program = unit("exec = [\"/nonexistent-svc-program\"]\numask = \"077\"\n");
    assert_eq!(run(&no_program), Err((Some(HookStep::Exec), libc::ENOENT)));
    assert_eq!(own_state(), before);
}

/// The test process's standard descriptors, as /proc names them.
fn own_stdio() -> Vec<String> {
    (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// A plan for `unit` writing stdout into a new pipe; the pipe's read end and the plan.
fn plan_with_pipe<'a>(unit: &Unit, null: &'a OwnedFd, write: &'a OwnedFd) -> Plan<'a> {
    let fds = Fds {
        stdio: [null.as_fd(), write.as_fd(), null.as_fd()],
        cgroup: None,
        born_in: None,
        sockets: &[],
    };
    let program = Path::new(&unit.argv[0]);
    Plan::new(unit, program, &unit.argv, &[], (None, None, None), fds).expect("a plan")
}

fn read_all(read: OwnedFd) -> String {
    let mut out = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut out)
        .expect("the child's output");
    out
}

#[test]
fn a_child_sharing_the_table_runs_its_steps_on_a_table_of_its_own() {
    let before = own_stdio();
    let u = unit("exec = [\"/bin/sh\", \"-c\", \"echo shared\"]\nworkdir = \"/\"\n");
    let null = devnull();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut plan = plan_with_pipe(&u, &null, &write);
    let first = null.as_raw_fd().max(write.as_raw_fd()) + 1;
    plan.unshare_from = Some(first);
    let pid = clone_child(&mut plan, libc::CLONE_FILES).expect("spawned");
    drop(plan);
    drop(write);
    assert_eq!(read_all(read), "shared\n");
    assert_exited_0(pid);
    assert_eq!(
        own_stdio(),
        before,
        "the child placed its stdio in its own table"
    );
}

#[test]
fn a_refused_unshare_ends_the_child_before_it_touches_the_shared_table() {
    let before = own_stdio();
    let u = unit("exec = [\"/bin/sh\", \"-c\", \"echo ran\"]\nworkdir = \"/\"\n");
    let null = devnull();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut plan = plan_with_pipe(&u, &null, &write);
    plan.unshare_from = Some(3);
    // A flag no kernel knows: refused with EINVAL, as a kernel before 5.9 refuses UNSHARE.
    plan.unshare_flags = libc::CLOSE_RANGE_UNSHARE | 1 << 20;
    let refused = clone_child(&mut plan, libc::CLONE_FILES);
    assert_eq!(refused, Err((Some(HookStep::Unshare), libc::EINVAL)));
    assert_eq!(own_stdio(), before, "the child touched the shared table");
    // The way `spawn` goes on then: the copying clone.
    plan.unshare_from = None;
    let pid = clone_child(&mut plan, 0).expect("spawned by the copying clone");
    drop(plan);
    drop(write);
    assert_eq!(
        read_all(read),
        "ran\n",
        "one run only: the refused child never ran"
    );
    assert_exited_0(pid);
}

/// Reaps `pid`, which must have exited with status 0.
fn assert_exited_0(pid: u32) {
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    assert!(
        matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
        "{status:?}"
    );
}

/// Under qemu-user (the aarch64 smoke of CI) the clone itself refused `CLONE_FILES` with
/// EINVAL, and every spawn failed: that refusal, like a refused unshare, sends the spawn to the
/// copying clone; a step of the child that failed is the unit's error, not a refusal.
#[test]
fn a_clone_refused_for_sharing_the_table_falls_back_to_the_copying_one() {
    assert_eq!(
        refused_sharing(&Err((None, libc::EINVAL))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        refused_sharing(&Err((Some(HookStep::Unshare), libc::ENOSYS))),
        Some(libc::ENOSYS)
    );
    assert_eq!(refused_sharing(&Err((None, libc::EAGAIN))), None);
    assert_eq!(
        refused_sharing(&Err((Some(HookStep::Cgroup), libc::EINVAL))),
        None
    );
    assert_eq!(refused_sharing(&Ok(42)), None);
}

/// A cgroup v2 of the test's own, under the host's cgroup2 mount, removed on drop (after its
/// processes were reaped); `None` where the host has no cgroup2 mount root may write to.
struct TestCgroup {
    dir: std::path::PathBuf,
    /// Its path as `/proc/PID/cgroup` names it (`0::/...`).
    name: String,
}

impl TestCgroup {
    fn new() -> Option<TestCgroup> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = mountinfo.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            (after.starts_with("cgroup2 ") && fields.get(3) == Some(&"/"))
                .then(|| fields.get(4).map(|m| m.to_string()))?
        })?;
        let name = format!(
            "svc-test-clone3-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
        let dir = Path::new(&mount).join(&name);
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup {
            dir,
            name: format!("0::/{name}"),
        })
    }

    fn open(&self) -> OwnedFd {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&self.dir)
            .expect("the cgroup's directory")
            .into()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Says why a test cannot run here and passes it, unless `SVC_TEST_NO_SKIP` is set (CI), where
/// nothing may be skipped (as the integration tests' `util::skip`).
fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
    assert!(
        std::env::var_os("SVC_TEST_NO_SKIP").is_none(),
        "this test cannot run here: {why} (SVC_TEST_NO_SKIP is set: nothing may be skipped)"
    );
}

/// On cgroup v2 a join by `cgroup.procs` waits for an RCU grace period: the child is cloned
/// into the cgroup instead (clone3), so the program's first instruction already runs there.
#[test]
fn a_child_is_born_in_its_cgroup_v2_before_its_first_instruction() {
    let Some(cgroup) = TestCgroup::new() else {
        return skip("no cgroup2 mount to make a cgroup in");
    };
    let u = unit("exec = [\"/bin/cat\", \"/proc/self/cgroup\"]\n");
    let null = devnull();
    let dir = cgroup.open();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut plan = plan_with_pipe(&u, &null, &write);
    plan.born_in = Some(dir.as_raw_fd());
    // The clone itself, without `spawn`'s fallback to a join.
    let pid = match clone_child(&mut plan, 0) {
        Ok(pid) => pid,
        Err((None, errno)) if clone3::refusal(errno) == Some(clone3::Refusal::Kernel) => {
            return skip(&format!(
                "this kernel has no clone3 into a cgroup (errno {errno})"
            ));
        }
        Err(e) => panic!("clone3 into {}: {e:?}", cgroup.dir.display()),
    };
    drop(plan);
    drop(write);
    let out = read_all(read);
    assert_exited_0(pid);
    assert!(
        out.lines().any(|line| line == cgroup.name),
        "not born in {}: {out}",
        cgroup.name
    );
}

/// A cgroup that refuses the clone (here: a directory that is no cgroup, EBADF) is joined by
/// its `cgroup.procs` instead, and the next spawns still try clone3.
#[test]
fn a_cgroup_that_refuses_the_clone_is_joined_by_its_procs_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let procs = dir.path().join("cgroup.procs");
    std::fs::write(&procs, "").expect("cgroup.procs");
    let u = unit("exec = [\"/bin/sh\", \"-c\", \"echo joined\"]\n");
    let null = devnull();
    let dir_fd: OwnedFd = std::fs::File::open(dir.path()).expect("dir").into();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut plan = plan_with_pipe(&u, &null, &write);
    plan.born_in = Some(dir_fd.as_raw_fd());
    let pid = spawn(&mut plan).expect("spawned after the join");
    drop(plan);
    drop(write);
    assert_eq!(read_all(read), "joined\n");
    assert_exited_0(pid);
    assert_eq!(std::fs::read_to_string(&procs).expect("procs"), "0");
    // (Under qemu-user, which has no clone3, the kernel's refusal came first.)
    assert!(
        clone3::works() || !kernel_has_clone3(),
        "one cgroup's refusal is not the kernel's"
    );
}

/// Whether the kernel knows `clone3`: it refuses arguments too short for any version with
/// EINVAL, and answers ENOSYS where it has none.
fn kernel_has_clone3() -> bool {
    // SAFETY: clone3 with no arguments (size 0) clones nothing: it fails either way.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<c_void>(), 0usize) };
    rc < 0 && nix::errno::Errno::last_raw() != libc::ENOSYS
}
