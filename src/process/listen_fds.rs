//! Passing held sockets to a unit by systemd's sd_listen_fds protocol: fds 3, 4, ... with
//! `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID`, the child's own pid.
//!
//! `LISTEN_PID` is known only in the child, after the fork: so the forked child itself puts the
//! sockets in place, writes its pid into an environment entry made (with room for any pid)
//! before the fork, and calls `execve` with it; nothing in the child allocates. Putting fds 3, 4,
//! ... in place may close whatever the fork left there (std's own error pipe among them), so
//! from then on a failure is reported on a pipe of our own: [`ListenExec::read_failure`].

use nix::errno::Errno;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// The variables of the protocol, which a unit never inherits from svcd's own environment.
pub const VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

const PID_PREFIX: &[u8] = b"LISTEN_PID=";
/// Room for any pid's digits and the NUL.
const PID_ROOM: usize = 21;

/// The first byte of a failure report on the pipe.
const FAILED: u8 = 0xff;

/// Everything the child needs to exec with the sockets, built before the fork.
pub struct ListenExec {
    /// svcd's descriptors of the sockets, in order: they become 3, 4, ...
    fds: Vec<RawFd>,
    /// Scratch for their copies above the targets; filled in the child.
    scratch: Vec<RawFd>,
    // Owned here so that the pointers below stay valid.
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    /// `LISTEN_PID=` and room for the pid; the child writes its digits in.
    pid_entry: Vec<u8>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// The failure pipe's write end (close-on-exec).
    report: OwnedFd,
}

// SAFETY: the raw pointers point into the CStrings and the pid entry owned by the same value,
// whose heap buffers never move; the value is used by one thread at a time (moved into the
// pre_exec hook, which runs in the forked child only).
unsafe impl Send for ListenExec {}
// SAFETY: as above; nothing is shared through `&ListenExec` in svcd.
unsafe impl Sync for ListenExec {}

/// The protocol's variables for `names` (the sockets' names, in order), added to `env`.
pub fn add_env(env: &mut Vec<(OsString, OsString)>, names: &[String]) {
    env.retain(|(k, _)| !VARS.iter().any(|v| k == v));
    env.push(("LISTEN_FDS".into(), names.len().to_string().into()));
    env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
}

impl ListenExec {
    /// Prepares the exec of `program` with `argv` (whose first entry is the name it runs as)
    /// and `env` (with [`add_env`]'s variables; `LISTEN_PID` comes in the child), passing
    /// `fds`. The second value is the failure pipe's read end, for [`ListenExec::read_failure`].
    pub fn new(
        program: &Path,
        argv: Vec<CString>,
        env: &[(OsString, OsString)],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(ListenExec, OwnedFd), Errno> {
        use std::os::unix::ffi::OsStrExt;
        let nul = |bytes: &[u8]| CString::new(bytes).map_err(|_| Errno::EINVAL);
        let path = nul(program.as_os_str().as_bytes())?;
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut entry = k.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            envp.push(nul(&entry)?);
        }
        let mut pid_entry = PID_PREFIX.to_vec();
        pid_entry.resize(PID_PREFIX.len() + PID_ROOM, 0);
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(pid_entry.as_ptr().cast());
        envp_ptrs.push(std::ptr::null());
        let (read, report) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok((
            ListenExec {
                fds: fds.iter().map(|fd| fd.as_raw_fd()).collect(),
                scratch: vec![-1; fds.len()],
                path,
                _argv: argv,
                _envp: envp,
                pid_entry,
                argv_ptrs,
                envp_ptrs,
                report,
            },
            read,
        ))
    }

    /// In the forked child, last: puts the sockets at 3, 4, ..., sets `LISTEN_PID` and execs.
    /// Returns only on failure, having reported it; the caller then ends the child.
    ///
    /// # Safety
    ///
    /// Only in a child between fork and exec: it calls async-signal-safe system calls only and
    /// writes into buffers allocated before the fork.
    pub unsafe fn exec(&mut self) -> Errno {
        let n = self.fds.len() as RawFd;
        let base = 3 + n;
        // The report pipe must survive the moves below: above the targets too.
        let mut report = self.report.as_raw_fd();
        // SAFETY: fcntl, dup2, getpid and execve are system calls on descriptors of this
        // process and on memory built before the fork; see the function's contract.
        unsafe {
            if report < base {
                report = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, base);
                if report < 0 {
                    return Errno::last();
                }
            }
            // Copies above the targets first, so that moving one never overwrites another.
            for (i, &fd) in self.fds.iter().enumerate() {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base);
                if copy < 0 {
                    return fail(report, 0);
                }
                self.scratch[i] = copy;
            }
            for (i, &copy) in self.scratch.iter().enumerate() {
                // dup2 leaves the target without close-on-exec: the unit keeps it.
                if libc::dup2(copy, 3 + i as RawFd) < 0 {
                    return fail(report, 0);
                }
            }
            write_pid(&mut self.pid_entry[PID_PREFIX.len()..], libc::getpid());
            // The pointer in envp_ptrs points into pid_entry's buffer, unmoved.
            libc::execve(
                self.path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            );
            fail(report, 1)
        }
    }

    /// In svcd after the fork: waits until the child has exec'd (the pipe closes empty) or
    /// reported a failure, which comes back as the error to name.
    pub fn read_failure(read: OwnedFd) -> Option<(bool, std::io::Error)> {
        let mut buf = [0u8; 6];
        let mut got = 0;
        loop {
            match nix::unistd::read(&read, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        break;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        if got < buf.len() || buf[0] != FAILED {
            return None;
        }
        let errno = i32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]);
        Some((buf[1] == 1, std::io::Error::from_raw_os_error(errno)))
    }
}

/// Reports the current errno and the stage (0: passing the sockets, 1: exec) on `report`.
///
/// # Safety
///
/// In the forked child only: write is async-signal-safe, the buffer is on this stack.
unsafe fn fail(report: RawFd, stage: u8) -> Errno {
    let errno = Errno::last();
    let code = (errno as i32).to_le_bytes();
    let buf = [FAILED, stage, code[0], code[1], code[2], code[3]];
    // SAFETY: see the function's contract.
    unsafe {
        libc::write(report, buf.as_ptr().cast(), buf.len());
    }
    errno
}

/// The decimal digits of `pid` then a NUL, into `room` (no allocation: runs in the child).
fn write_pid(room: &mut [u8], pid: libc::pid_t) {
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        room[i] = digits[len - 1 - i];
    }
    room[len] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_written_as_decimal_then_nul() {
        let mut room = [0xffu8; PID_ROOM];
        write_pid(&mut room, 4_194_304);
        assert_eq!(&room[..8], b"4194304\0");
        write_pid(&mut room, 7);
        assert_eq!(&room[..2], b"7\0");
    }

    #[test]
    fn inherited_protocol_variables_are_replaced() {
        let mut env = vec![
            ("LISTEN_FDS".into(), "9".into()),
            ("LISTEN_PID".into(), "1".into()),
            ("PATH".into(), "/bin".into()),
        ];
        add_env(&mut env, &["a".to_string(), "b".to_string()]);
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("LISTEN_FDS".to_string(), "2".to_string()),
                ("LISTEN_FDNAMES".to_string(), "a:b".to_string()),
            ]
        );
    }
}
