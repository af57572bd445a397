//! `memory.on_limit`'s `reclaim`: a unit's cold anonymous pages pushed to swap before its
//! restart, where swap has room. cgroup v1 has no `memory.reclaim`, so svcd asks the kernel
//! page by range: `process_madvise(MADV_PAGEOUT)` (Linux 5.10) over each private writable
//! mapping of each of the unit's processes, through a pidfd (a pid reused meanwhile is not
//! touched). The kernel pages out what is not in use; what it frees is measured by the caller
//! (the cgroup's memory before and after).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The most ranges one `process_madvise` call takes (`UIO_MAXIOV`).
const MAX_RANGES: usize = 1024;

/// The private, writable mappings of a process (`/proc/PID/maps` as `text`): heap, stack,
/// anonymous memory and written pages of private file mappings, as (start, length).
pub fn private_ranges(text: &str) -> Vec<(usize, usize)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (range, perms) = (fields.next()?, fields.next()?);
            // Writable and private; `[vsyscall]`-like special mappings are never writable.
            if perms.as_bytes().get(1) != Some(&b'w') || perms.as_bytes().get(3) != Some(&b'p') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end - start))
        })
        .collect()
}

/// Asks the kernel to page out process `pid`'s private writable memory; how many bytes it
/// was asked about (not what it freed: pages in use or without swap room stay).
pub fn page_out(pid: u32) -> Result<u64, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| format!("cannot read the maps of {pid}: {e}"))?;
    let ranges = private_ranges(&maps);
    // SAFETY: pidfd_open takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        return Err(format!(
            "pidfd_open({pid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let mut advised = 0u64;
    let mut failed = None;
    for chunk in ranges.chunks(MAX_RANGES) {
        let iov: Vec<libc::iovec> = chunk
            .iter()
            .map(|&(start, len)| libc::iovec {
                iov_base: start as *mut libc::c_void,
                iov_len: len,
            })
            .collect();
        // SAFETY: `iov` points to `iov.len()` iovecs that live until the call returns; the
        // addresses in them are the other process's, which the kernel only reads as ranges.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd.as_raw_fd(),
                iov.as_ptr(),
                iov.len(),
                libc::MADV_PAGEOUT,
                0u32,
            )
        };
        // A mapping gone meanwhile ends its chunk, not the others.
        match u64::try_from(done) {
            Ok(done) => advised += done,
            Err(_) => failed = Some(std::io::Error::last_os_error()),
        }
    }
    match failed {
        Some(error) if advised == 0 => Err(format!("process_madvise({pid}): {error}")),
        _ => Ok(advised),
    }
}

/// The swap free on the host, in bytes (`SwapFree` of /proc/meminfo).
pub fn swap_free() -> u64 {
    let host = super::HostMemory::read();
    host.swap_total.saturating_sub(host.swap_used())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_writable_mappings_are_paged_out() {
        let maps = "\
55d0c0000000-55d0c0021000 r--p 00000000 08:01 1234  /usr/bin/python3
55d0c0021000-55d0c0042000 rw-p 00021000 08:01 1234  /usr/bin/python3
55d0c1000000-55d0c3000000 rw-p 00000000 00:00 0     [heap]
7f0000000000-7f0000400000 rw-s 00000000 00:05 99    /dev/shm/x
7f0000400000-7f0004400000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
";
        assert_eq!(
            private_ranges(maps),
            [
                (0x55d0c0021000, 0x21000),
                (0x55d0c1000000, 0x2000000),
                (0x7f0000400000, 0x4000000),
                (0x7ffd00000000, 0x21000),
            ]
        );
    }

    /// The kernel takes the request for a real process (its private memory is advised; what
    /// it frees depends on swap, which this test does not need).
    #[test]
    fn a_real_process_can_be_asked_to_page_out() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let advised = page_out(child.id());
        let _ = child.kill();
        let _ = child.wait();
        match advised {
            Ok(bytes) => assert!(bytes > 0, "nothing advised"),
            // Kernels before 5.10, or without the capability to advise another process.
            Err(why) if why.contains("ENOSYS") || why.contains("Function not implemented") => {}
            Err(why) => panic!("{why}"),
        }
    }
}
