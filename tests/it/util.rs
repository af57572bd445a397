//! The harness: a real `svcd` in a temp dir, driven by the real `svc`.
//!
//! Nothing here sleeps for a fixed time: every wait is for a condition, with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
pub const SVC: &str = env!("CARGO_BIN_EXE_svc");

/// How long any wait may take before the test fails; generous for a loaded CI machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `condition` until it gives `Some`, or panics after `timeout` with `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A temp dir with a `units/` directory to write unit files into.
pub struct Dir {
    pub root: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        let root = tempfile::Builder::new()
            .prefix("svc-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(root.path().join("units")).expect("units dir");
        Dir { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn units(&self) -> PathBuf {
        self.path().join("units")
    }

    /// Writes `units/NAME.toml`.
    pub fn unit(&self, name: &str, toml: &str) -> &Dir {
        std::fs::write(self.units().join(format!("{name}.toml")), toml).expect("write unit");
        self
    }

    /// [`Dir::unit`] for chaining.
    pub fn with(self, name: &str, toml: &str) -> Dir {
        self.unit(name, toml);
        self
    }

    /// Starts svcd on this dir's units.
    pub fn start(self) -> Svcd {
        Svcd::start(self, &[], &[])
    }

    /// Starts svcd with more arguments (e.g. `--init`).
    pub fn start_with(self, args: &[&str]) -> Svcd {
        Svcd::start(self, &[], args)
    }

    /// Starts svcd with its stdout a pipe that nobody reads (kept open, in the `Child`).
    pub fn start_with_unread_stdout(self) -> Svcd {
        Svcd::start_to(self, &[], &[], Stdio::piped())
    }

    /// Starts svcd as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`), or
    /// `None`, with a note on stderr, where that is not possible (not root, no unshare).
    pub fn start_pid1(self) -> Option<Svcd> {
        let probe = Command::new("unshare")
            .args(UNSHARE)
            .arg("true")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            skip(&format!(
                "cannot run `unshare {}` (needs root)",
                UNSHARE.join(" ")
            ));
            return None;
        }
        let mut prefix = vec!["unshare"];
        prefix.extend(UNSHARE);
        Some(Svcd::start(self, &prefix, &[]))
    }
}

/// A new PID namespace with its own /proc; `--kill-child`: if the test dies, so does svcd.
const UNSHARE: [&str; 4] = ["--pid", "--fork", "--mount-proc", "--kill-child"];

/// A running svcd; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Svcd {
    pub dir: Dir,
    /// svcd, or the command that runs it (`unshare`), whose exit status is svcd's.
    pub child: Option<Child>,
    pub socket: PathBuf,
    /// svcd's own pid, as this test sees it (not `child`'s when that is `unshare`).
    svcd_pid: u32,
}

impl Svcd {
    fn start(dir: Dir, prefix: &[&str], extra: &[&str]) -> Svcd {
        let stdout = std::fs::File::create(dir.path().join("svcd.out")).expect("stdout file");
        Svcd::start_to(dir, prefix, extra, Stdio::from(stdout))
    }

    /// [`Svcd::start`] with svcd's stdout going to `stdout`.
    fn start_to(dir: Dir, prefix: &[&str], extra: &[&str], stdout: Stdio) -> Svcd {
        let socket = dir.path().join("state/svcd.sock");
        let stderr = std::fs::File::create(dir.path().join("svcd.err")).expect("stderr file");
        if !dir.path().join("svcd.toml").exists() {
            std::fs::write(dir.path().join("svcd.toml"), "").expect("config");
        }
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(SVCD);
                command
            }
            None => Command::new(SVCD),
        };
        let child = command
            .arg("--units")
            .arg(dir.units())
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--config")
            .arg(dir.path().join("svcd.toml"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .args(extra)
            .env("SVCD_LOG", "debug")
            .spawn()
            .expect("spawn svcd");
        let wrapper = child.id();
        let mut svcd = Svcd {
            dir,
            child: Some(child),
            socket,
            svcd_pid: wrapper,
        };
        if !prefix.is_empty() {
            svcd.svcd_pid = wait_until("svcd under its wrapper", DEADLINE, || {
                children(wrapper).first().copied()
            });
        }
        wait_until("svcd's socket", DEADLINE, || {
            if let Some(status) = svcd.try_exit() {
                panic!("svcd exited early with {status}: {}", svcd.stderr());
            }
            std::os::unix::net::UnixStream::connect(&svcd.socket).ok()
        });
        svcd
    }

    /// Runs `svc --socket SOCKET ARGS...`.
    pub fn svc(&self, args: &[&str]) -> Output {
        Command::new(SVC)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run svc")
    }

    /// Runs svc and asserts it exited with `code`; returns stdout.
    pub fn svc_ok(&self, args: &[&str], code: i32) -> String {
        let out = self.svc(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "svc {args:?}\nstdout: {}\nstderr: {}\nsvcd: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.stderr()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `svc status NAME --json`, the unit's object.
    pub fn status(&self, name: &str) -> serde_json::Value {
        let out = self.svc(&["status", name, "--json"]);
        let units: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        units[0].clone()
    }

    /// `svc wait NAME --for STATE`, asserting it is reached.
    pub fn wait_for(&self, name: &str, state: &str) {
        let timeout = format!("{}s", DEADLINE.as_secs());
        self.svc_ok(&["wait", name, "--for", state, "--timeout", &timeout], 0);
    }

    /// Polls the unit's status until `condition` holds; returns that status.
    pub fn wait_status(
        &self,
        name: &str,
        what: &str,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_until(what, DEADLINE, || {
            Some(self.status(name)).filter(|s| condition(s))
        })
    }

    /// svcd's pid (also when it runs in a PID namespace of its own, where it is 1).
    pub fn pid(&self) -> u32 {
        self.svcd_pid
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("svcd.out")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("svcd.err")).unwrap_or_default()
    }

    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` to svcd and waits for it to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> std::process::ExitStatus {
        kill(self.pid(), signal);
        wait_until("svcd to exit", DEADLINE, || self.try_exit())
    }
}

impl Drop for Svcd {
    fn drop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        kill(self.pid(), 15);
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if self.try_exit().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `svc check PATH`, offline.
pub fn svc_check(path: &Path) -> Output {
    Command::new(SVC)
        .arg("check")
        .arg(path)
        .output()
        .expect("svc check")
}

pub fn kill(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
    assert!(status.is_ok(), "kill -{signal} {pid}");
}

/// Whether `pid` is gone (or a zombie, which runs nothing).
pub fn is_dead(pid: u32) -> bool {
    svc::proc::stat(pid).is_none_or(|stat| stat.is_zombie())
}

/// Reads whitespace-separated pids written by a unit into `file`, once there are `count`.
pub fn read_pids(file: &Path, count: usize) -> Vec<u32> {
    wait_until(
        &format!("{count} pids in {}", file.display()),
        DEADLINE,
        || {
            let text = std::fs::read_to_string(file).ok()?;
            let pids: Vec<u32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            (pids.len() >= count).then_some(pids)
        },
    )
}

/// The children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    svc::proc::children(pid)
}

/// (state, parent pid) of `pid`, from /proc/PID/stat.
pub fn state_and_parent(pid: u32) -> Option<(char, u32)> {
    svc::proc::stat(pid).map(|stat| (stat.state, stat.ppid))
}

/// The zombie children of `parent`: exited, not yet reaped.
pub fn zombies_of(parent: u32) -> Vec<u32> {
    children(parent)
        .into_iter()
        .filter(|pid| state_and_parent(*pid).is_some_and(|(state, _)| state == 'Z'))
        .collect()
}

impl Svcd {
    /// A svcd that a test started itself, with outputs of its choosing, on `dir`'s units
    /// (`svcd_args`), once its socket answers. `child` must be svcd (or `exec` it).
    pub fn adopt(dir: Dir, child: Child) -> Svcd {
        let socket = dir.path().join("state/svcd.sock");
        let svcd_pid = child.id();
        let mut svcd = Svcd {
            dir,
            child: Some(child),
            socket,
            svcd_pid,
        };
        wait_until("svcd's socket", DEADLINE, || {
            let exited = svcd.try_exit();
            assert!(exited.is_none(), "svcd exited early with {exited:?}");
            std::os::unix::net::UnixStream::connect(&svcd.socket).ok()
        });
        svcd
    }
}

impl Dir {
    /// svcd's arguments for this dir: its units, `state/`, an empty `svcd.toml`.
    pub fn svcd_args(&self) -> Vec<std::ffi::OsString> {
        let config = self.path().join("svcd.toml");
        if !config.exists() {
            std::fs::write(&config, "").expect("config");
        }
        let mut args: Vec<std::ffi::OsString> = vec!["--units".into(), self.units().into()];
        args.extend(["--state-dir".into(), self.path().join("state").into()]);
        args.extend(["--config".into(), config.into()]);
        args
    }

    /// Starts svcd as the child of `wrapper` (a command given svcd's command line as its
    /// arguments), e.g. one that changes what svcd inherits.
    pub fn start_wrapped(self, wrapper: &[&str]) -> Svcd {
        Svcd::start(self, wrapper, &[])
    }
}

/// Skips the calling test, visibly: prints `SKIPPED: why` to stderr (shown by
/// `cargo test -- --nocapture`). Where `SVC_TEST_NO_SKIP` is set a skip fails the test instead:
/// `.ci/run` sets it after checking that the machine has all the tests need (root, `unshare`,
/// `setpriv`, `useradd`, `swapon`, …), so that in CI every test runs.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("SVC_TEST_NO_SKIP").is_none(),
        "this test cannot run here: {why} (SVC_TEST_NO_SKIP is set: nothing may be skipped)"
    );
    eprintln!("SKIPPED: {why}");
}

/// Grows by 2 MiB every 20 ms, touching every page, up to `limit_mib`, then waits.
pub fn grower(limit_mib: u32) -> String {
    format!(
        "import time\nchunks = []\nfor _ in range({}):\n    chunks.append(bytearray(2 << 20))\n    time.sleep(0.02)\ntime.sleep(3600)\n",
        limit_mib / 2
    )
}

/// Memory samples every 100 ms (the `[memory]` table of `dir`'s svcd.toml).
pub fn fast_sampling(dir: &Dir) {
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"100ms\"\n",
    )
    .expect("config");
}

/// A user made with `useradd` for one test, member of new groups of its own besides its
/// primary one, removed with those groups when dropped (also when the test fails), together
/// with the default state dirs a non-root svcd of its would have made (`/tmp/svc-UID`,
/// `/run/svc-UID`).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The extra groups, `(name, gid)`.
    pub groups: Vec<(String, u32)>,
}

impl TestUser {
    /// A new user in `groups` new groups; `None`, after [`skip`], where users cannot be made
    /// (not root, no useradd).
    pub fn new(groups: usize) -> Option<TestUser> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = || {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            format!("svct{}x{n}", std::process::id())
        };
        if !nix::unistd::Uid::effective().is_root() {
            skip("making a user needs root");
            return None;
        }
        // Removed by its Drop whatever step fails below.
        let mut user = TestUser {
            name: unique(),
            uid: u32::MAX,
            gid: u32::MAX,
            groups: Vec::new(),
        };
        for _ in 0..groups {
            let group = unique();
            if !user_tool("groupadd", &[&group]) {
                skip("cannot groupadd (needs root)");
                return None;
            }
            user.groups.push((group, u32::MAX));
        }
        let names: Vec<&str> = user.groups.iter().map(|(g, _)| g.as_str()).collect();
        let joined = names.join(",");
        let mut args = vec!["--no-create-home", "--shell", "/usr/sbin/nologin"];
        if !joined.is_empty() {
            args.extend(["--groups", &joined]);
        }
        args.push(&user.name);
        if !user_tool("useradd", &args) {
            skip("cannot useradd (needs root)");
            return None;
        }
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, &user.name]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        user.uid = id("-u").expect("the new user's uid");
        user.gid = id("-g").expect("the new user's gid");
        let etc_group = std::fs::read_to_string("/etc/group").expect("/etc/group");
        for (group, gid) in &mut user.groups {
            *gid = etc_group
                .lines()
                .find_map(|line| {
                    let mut fields = line.split(':');
                    (fields.next()? == group.as_str()).then_some(())?;
                    fields.nth(1)?.parse().ok()
                })
                .expect("the new group in /etc/group");
        }
        Some(user)
    }

    /// `setpriv` running `program` as this user, with its primary and extra groups.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut groups = vec![self.gid.to_string()];
        groups.extend(self.groups.iter().map(|(_, gid)| gid.to_string()));
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg(format!("--groups={}", groups.join(",")))
            .arg(program)
            .stdin(Stdio::null());
        command
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if self.uid != u32::MAX {
            for dir in ["/tmp", "/run"] {
                let _ = std::fs::remove_dir_all(format!("{dir}/svc-{}", self.uid));
            }
        }
        user_tool("userdel", &[&self.name]);
        for (group, _) in &self.groups {
            user_tool("groupdel", &[group]);
        }
    }
}

/// Runs `useradd`, `groupadd`, `userdel` or `groupdel`; whether it succeeded. Tests running in
/// parallel contend for the locks of /etc/passwd and /etc/group: a failure to update them (exit
/// 1 or 10, what a busy lock gives) is tried again, with a deadline.
fn user_tool(program: &str, args: &[&str]) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => return true,
            Ok(status) if matches!(status.code(), Some(1 | 10)) && start.elapsed() < DEADLINE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            _ => return false,
        }
    }
}

/// How many descriptors `pid` holds open; 0 once it is gone.
pub fn fd_count(pid: u32) -> usize {
    svc::proc::fd_count(pid).unwrap_or(0)
}
