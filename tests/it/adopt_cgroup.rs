//! An adopted unit gets its memory cgroup back (after `kill -9` of svcd and after `svc
//! upgrade`): it is stopped at its limit as soon as it crosses it, with every process it forked,
//! a kernel OOM kill is named as the reason of its end, and a unit told of its memory
//! (`memory.on_limit = ["notify", ...]`) is still told, through the FIFO it was given. Skipped
//! (visibly) where svcd cannot make memory cgroups.

use crate::adopt::{crash_and_start_again, crash_and_start_again_after, pid_of};
use crate::util::*;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Kills, when dropped, the processes a test saw that still run as what they ran as then
/// (`comm`): a test that fails after `kill -9` of svcd must not leave its units behind.
struct Leftovers(Vec<(u32, String)>);

impl Leftovers {
    fn watch(&mut self, pid: u32) {
        if let Some(comm) = svc::proc::comm(pid) {
            self.0.push((pid, comm));
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for (pid, comm) in &self.0 {
            if svc::proc::comm(*pid).as_ref() == Some(comm) {
                kill(*pid, 9);
            }
        }
    }
}

/// Python run as a unit: blocks SIGUSR1 first, then runs `before` (setup), makes the file
/// `<sys.argv[1]>.ready` (a path of the test's), waits for SIGUSR1 (the test's word, sent once
/// svcd took the unit back), then runs `after`.
fn on_usr1(before: &str, after: &str) -> String {
    format!(
        "import os, select, signal, sys, time\n\
         signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})\n\
         {before}\n\
         open(sys.argv[1] + '.ready', 'w').close()\n\
         signal.sigwait({{signal.SIGUSR1}})\n\
         {after}\n"
    )
}

/// Writes `text` as `path` at once (a reader sees all of it or nothing).
const WRITE: &str = "def write(path, text):\n    \
                     with open(path + '.tmp', 'w') as f:\n        f.write(text)\n    \
                     os.rename(path + '.tmp', path)";

/// svcd on `dir` running unit `name` as `script` (Python, given `arg`) with `memory` (TOML)
/// as its `[memory]` table and what follows it, once the unit waits for the test's word: svcd,
/// the unit's pid, and the guard that kills the unit if the test fails; `None` (after
/// [`skip`]) where svcd cannot make memory cgroups.
fn python_unit(
    dir: Dir,
    name: &str,
    script: &str,
    arg: &Path,
    memory: &str,
) -> Option<(Svcd, u32, Leftovers)> {
    let path = dir.path().join(format!("{name}.py"));
    std::fs::write(&path, script).expect("script");
    let unit = format!(
        "exec = [\"python3\", \"{}\", \"{}\"]\n[memory]\n{memory}\n",
        path.display(),
        arg.display()
    );
    let svcd = dir.with(name, &unit).start();
    svcd.wait_for(name, "running");
    let ready = PathBuf::from(format!("{}.ready", arg.display()));
    wait_until("the unit waiting for the test's word", DEADLINE, || {
        ready.exists().then_some(())
    });
    if svcd.status(name)["memory"]["mode"] != "cgroup" {
        skip("svcd cannot make memory cgroups here");
        return None;
    }
    let pid = pid_of(&svcd, name);
    let mut leftovers = Leftovers(Vec::new());
    leftovers.watch(pid);
    Some((svcd, pid, leftovers))
}

/// Waits until svcd runs the adopted unit `name` (process `pid`) in its cgroup again.
fn wait_taken_back(svcd: &Svcd, name: &str, pid: u32) {
    wait_until("the adopted unit's cgroup taken back", DEADLINE, || {
        let status = svcd.status(name);
        assert_eq!(status["pid"].as_u64(), Some(u64::from(pid)), "{status}");
        assert_eq!(status["adopted"], true, "{status}");
        (status["memory"]["mode"] == "cgroup").then_some(())
    });
}

/// A unit that leaves a process behind in a session of its own (a double fork: not its
/// child, not in its group), then, told by the test, holds 264 MiB: over `max` (256M), under
/// the kernel's limit (288M). Samples a minute apart: only the cgroup's threshold can make svcd
/// act within the test's deadline. Taken back after an upgrade and after a crash, the unit is
/// stopped over its limit at once, and the process it left behind with it (its cgroup's).
#[test]
fn an_adopted_unit_over_its_limit_is_stopped_at_once_with_every_process_it_forked() {
    let dir = Dir::new();
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"60s\"\n",
    )
    .expect("svcd.toml");
    let marker = dir.path().join("left");
    let script = on_usr1(
        &format!(
            "{WRITE}\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        \
             write(sys.argv[1], str(os.getpid()))\n        \
             os.execvp('sleep', ['sleep', '1000'])\n    os._exit(0)\nos.wait()"
        ),
        "x = b'a' * (264 << 20)\ntime.sleep(1000)",
    );
    let memory = "max = \"256M\"";
    let Some((mut svcd, pid, mut leftovers)) = python_unit(dir, "hog", &script, &marker, memory)
    else {
        return;
    };
    let left = read_pids(&marker, 1)[0];
    leftovers.watch(left);
    assert_ne!(
        svc::proc::stat(left).map(|s| s.ppid),
        Some(pid),
        "a double fork"
    );

    svcd.svc_ok(&["upgrade"], 0);
    assert!(svcd.try_exit().is_none(), "svcd exited: {}", svcd.stderr());
    wait_taken_back(&svcd, "hog", pid);
    let svcd = crash_and_start_again(svcd);
    wait_taken_back(&svcd, "hog", pid);
    let said = svcd.stderr();
    assert!(
        said.contains("took back the memory cgroups of the adopted units in"),
        "{said}"
    );

    kill(pid, 10);
    let status = svcd.wait_status("hog", "hog restarted over its limit", |s| {
        s["state"] == "running" && s["pid"].as_u64() != Some(u64::from(pid))
    });
    assert_eq!(status["restarts"], 1, "{status}");
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("memory limit: rss "), "{status}");
    wait_until(
        "the process it left behind to end with it",
        DEADLINE,
        || is_dead(left).then_some(()),
    );
}

/// A unit that, told by the test, leaks 8 MiB at a time and ignores SIGTERM: the kernel kills
/// it at its limit (64M + 16M) wherever svcd is, and a svcd that took its cgroup back says so,
/// though the process was not its child and its exit status not its to read.
#[test]
fn a_kernel_oom_kill_of_an_adopted_unit_is_named_as_the_reason() {
    let dir = Dir::new();
    let unused = dir.path().join("unused");
    let script = on_usr1(
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "x = []\nwhile True:\n    x.append(b'a' * (8 << 20))",
    );
    let memory = "max = \"64M\"\n[restart]\npolicy = \"never\"";
    let Some((svcd, pid, _leftovers)) = python_unit(dir, "leak", &script, &unused, memory) else {
        return;
    };
    let svcd = crash_and_start_again(svcd);
    wait_taken_back(&svcd, "leak", pid);

    kill(pid, 10);
    let status = svcd.wait_status("leak", "leak failed", |s| s["state"] == "failed");
    // Its exit status was not svcd's to read: what svcd knows, and what the kernel counted.
    let words = "exited while not a child of svcd; killed by the kernel: out of memory \
                 (memory.max 64M, the kernel's limit 80M)";
    assert_eq!(status["last_exit"]["reason"], words, "{status}");
    assert_eq!(status["last_exit"]["kind"], "oom_kill", "{status}");
}

/// The ladder's first step survives svcd's crash: a unit that opened the FIFO of its
/// `MEMORY_PRESSURE_WATCH` before the crash grows, told by the test, past 90% of its limit
/// (84 MiB of cache and the interpreter, of 96M), and is told through that FIFO; it sheds its
/// cache and writes `shed <MiB>` to its marker. While no svcd runs, the fd holder keeps the
/// FIFO open for writing: a reader sees no hang-up (a loop polling it would spin).
#[test]
fn an_adopted_unit_is_told_of_its_memory_through_the_fifo_it_was_given() {
    let dir = Dir::new();
    let marker = dir.path().join("shed");
    let script = on_usr1(
        "fd = os.open(os.environ['MEMORY_PRESSURE_WATCH'], os.O_RDONLY | os.O_NONBLOCK)",
        "cache = []\nwhile len(cache) < 21:\n    cache.append(b'c' * (4 << 20))\n    \
         time.sleep(0.01)\nselect.select([fd], [], [])\nos.read(fd, 64)\n\
         size = len(cache) * 4\ncache.clear()\n\
         with open(sys.argv[1], 'w') as out:\n    out.write('shed %d\\n' % size)\n\
         time.sleep(3600)",
    );
    let memory = "max = \"96M\"\non_limit = [\"notify\", \"restart\"]\ngrace = \"30s\"";
    let Some((svcd, pid, _leftovers)) = python_unit(dir, "shedder", &script, &marker, memory)
    else {
        return;
    };
    let fifo: PathBuf = svcd.dir.path().join("state/pressure/shedder");
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .expect("the unit's FIFO");
    let svcd = crash_and_start_again_after(svcd, || {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&reader),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
        let revents = fds[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        assert!(
            !revents.contains(nix::poll::PollFlags::POLLHUP),
            "the unit's FIFO lost its writer while svcd was down: {revents:?}"
        );
    });
    wait_taken_back(&svcd, "shedder", pid);

    kill(pid, 10);
    let shed = wait_until("the unit told and its cache shed", DEADLINE, || {
        std::fs::read_to_string(&marker).ok()
    });
    assert!(shed.starts_with("shed "), "{shed}");
    let status = svcd.status("shedder");
    assert_eq!(status["pid"].as_u64(), Some(u64::from(pid)), "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["memory"]["ladder"]["told"], 1, "{status}");
}
