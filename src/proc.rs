//! The one reader of `/proc`: every file svc reads there is opened and parsed here.
//!
//! Each reader returns `None` (or an empty answer) when the process is gone or unreadable:
//! a pid read from one file may have exited before the next is opened, so callers treat every
//! answer as a best-effort snapshot. The parsers are pure (`parse_*`) and tested on text
//! samples; the readers add only the `open`.
//!
//! `/proc/PID/stat`'s second field is the command name in parentheses, and a program may name
//! itself anything, spaces and `)` included: the fields are counted from the *last* `)`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;

/// The fields of `/proc/PID/stat` that svc uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name (`comm`), without its parentheses.
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, …
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// The kernel's `PF_*` flags of the process.
    pub flags: u64,
    /// Page faults served without reading from disk (a page mapped again from the page cache,
    /// a fresh zeroed page).
    pub minflt: u64,
    /// CPU time in user and kernel mode, in clock ticks (`CLK_TCK`).
    pub utime: u64,
    pub stime: u64,
}

/// `PF_KTHREAD` in [`Stat::flags`].
const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    /// Exited but not yet reaped: it runs nothing.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// One of the kernel's own threads, which never exit.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// utime + stime + cutime + cstime (fields 14 to 17 of `/proc/PID/stat`): the CPU time of the
/// process and of the children it reaped, in clock ticks; 0 for text that is not a stat line.
pub fn cpu_ticks(stat: &str) -> u64 {
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    // After the command name, field 3 (the state) comes first: fields 14..=17 are 11..=14.
    stat[close + 1..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum()
}

/// Parses the text of `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut fields = text.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut number = || fields.next()?.parse::<u64>().ok();
    let ppid = u32::try_from(number()?).ok()?;
    let pgrp = u32::try_from(number()?).ok()?;
    let session = u32::try_from(number()?).ok()?;
    // tty_nr and tpgid skipped (tpgid may be -1), flags, minflt, then cminflt, majflt and
    // cmajflt skipped.
    let flags = fields.nth(2)?.parse().ok()?;
    let minflt = fields.next()?.parse().ok()?;
    for _ in 0..3 {
        fields.next()?;
    }
    let utime = fields.next()?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        ppid,
        pgrp,
        session,
        flags,
        minflt,
        utime,
        stime,
    })
}

/// The process group, from `/proc/PID/stat`'s text, without building a whole [`Stat`].
pub fn parse_pgrp(text: &str) -> Option<u32> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The number of threads (field 20 of `/proc/PID/stat`), from its text.
pub fn parse_threads(text: &str) -> Option<u64> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(17)?.parse().ok()
}

/// `/proc/PID/stat`.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&read_string(pid, "stat")?)
}

/// When the process started, in clock ticks since boot (field 22 of `/proc/PID/stat`), from
/// its text: with the pid, the identity of a process (a pid may be reused, the pair is not).
pub fn parse_start_time(text: &str) -> Option<u64> {
    // After the command name, field 3 (the state) comes first: field 22 is the 20th.
    let rest = text.get(text.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The start time of `pid` (see [`parse_start_time`]), `None` for a zombie or a pid not in use.
pub fn start_time(pid: u32) -> Option<u64> {
    let text = read_string(pid, "stat")?;
    let stat = parse_stat(&text)?;
    if stat.is_zombie() {
        return None;
    }
    parse_start_time(&text)
}

/// `/proc/PID/status`: `Name: value` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    text: String,
}

impl Status {
    pub fn parse(text: impl Into<String>) -> Status {
        Status { text: text.into() }
    }

    /// The value of field `name` (without its colon), trimmed.
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.text, name)
    }

    /// A number field; a `kB` one (`VmRSS`) in KiB. 0 when absent: kernel threads have no
    /// `VmRSS`, kernels without swap no `VmSwap`.
    pub fn number(&self, name: &str) -> u64 {
        kib(&self.text, name)
    }

    /// Whether the process is on its way out: a zombie, or a SIGKILL pending for it (the
    /// kernel's OOM killer sends one), which nothing can stop.
    pub fn is_dying(&self) -> bool {
        const SIGKILL_BIT: u64 = 1 << (9 - 1);
        let pending = |name: &str| {
            self.field(name)
                .and_then(|mask| u64::from_str_radix(mask, 16).ok())
                .is_some_and(|mask| mask & SIGKILL_BIT != 0)
        };
        self.field("State").is_some_and(|s| s.starts_with('Z'))
            || pending("SigPnd")
            || pending("ShdPnd")
    }

    /// The supplementary groups (`Groups:`).
    pub fn groups(&self) -> Vec<u32> {
        self.field("Groups")
            .map(|g| {
                g.split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `/proc/PID/status`.
pub fn status(pid: u32) -> Option<Status> {
    read_string(pid, "status").map(Status::parse)
}

/// The memory of a process summed over all its mappings, from `/proc/PID/smaps_rollup`
/// (kernels 4.14 and later), in KiB.
///
/// RSS counts every resident page the process maps; PSS counts a page shared by N processes as
/// 1/N of it. On a host, a dynamically linked program shares libc's pages with every other one,
/// so its PSS is what it really adds; a static one shares nothing with other programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    pub rss: u64,
    pub pss: u64,
    /// Pages of files (the program and its libraries), resident and shared with no one else.
    pub private_clean: u64,
    /// Pages written to (heap, stacks, data): the process's own.
    pub private_dirty: u64,
    pub swap: u64,
}

/// Parses the text of `/proc/PID/smaps_rollup`; `None` when it has no `Rss:` line (not such a
/// file).
pub fn parse_rollup(text: &str) -> Option<Rollup> {
    field(text, "Rss")?;
    Some(Rollup {
        rss: kib(text, "Rss"),
        pss: kib(text, "Pss"),
        private_clean: kib(text, "Private_Clean"),
        private_dirty: kib(text, "Private_Dirty"),
        swap: kib(text, "Swap"),
    })
}

/// `/proc/PID/smaps_rollup`; `None` also for a kernel thread (no mappings) or a kernel without
/// the file.
pub fn rollup(pid: u32) -> Option<Rollup> {
    parse_rollup(&read_string(pid, "smaps_rollup")?)
}

/// One mapping of a process, from `/proc/PID/smaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub writable: bool,
    /// The file mapped (`None` for anonymous memory, the heap, the stack, `[vdso]`...).
    pub path: Option<PathBuf>,
    /// KiB resident, and of those, KiB that are the process's own copies (written to, or
    /// anonymous memory): a file mapping with none is the file's pages, unchanged.
    pub rss: u64,
    pub anonymous: u64,
}

/// Parses the text of `/proc/PID/smaps`: each mapping's line, then its `Name: value` fields.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(range), Some(perms)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some((start, end)) = range.split_once('-')
            && perms.len() == 4
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            // Offset, device and inode hold no `/`: a file's path (which may hold spaces) is
            // the rest of the line from its first one.
            let path = line
                .find(" /")
                .map(|at| PathBuf::from(line[at + 1..].trim_end()));
            mappings.push(Mapping {
                start,
                end,
                writable: perms.as_bytes()[1] == b'w',
                path,
                rss: 0,
                anonymous: 0,
            });
            continue;
        }
        let Some(mapping) = mappings.last_mut() else {
            continue;
        };
        match range {
            "Rss:" => mapping.rss = kib(line, "Rss"),
            "Anonymous:" => mapping.anonymous = kib(line, "Anonymous"),
            _ => {}
        }
    }
    mappings
}

/// This process's mappings (`/proc/self/smaps`).
pub fn own_mappings() -> Vec<Mapping> {
    std::fs::read_to_string("/proc/self/smaps")
        .map(|text| parse_smaps(&text))
        .unwrap_or_default()
}

/// The value of field `name` in a `Name: value` file (`status`, `/proc/meminfo`), trimmed.
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// A number field of a `Name: value` file; a `kB` one in KiB; 0 when absent or not a number.
pub fn kib(text: &str, name: &str) -> u64 {
    field(text, name)
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Pids in a `children` file (or any whitespace-separated list).
pub fn parse_pids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split_whitespace().filter_map(|p| p.parse().ok())
}

/// The children of `pid`, from `/proc/PID/task/*/children`; where the kernel lacks that file
/// (built without `CONFIG_PROC_CHILDREN`), by a scan of every process's parent.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => found.extend(parse_pids(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return children_by_scan(pid),
            Err(_) => {}
        }
    }
    found
}

/// The children of one thread `tid` of `pid` (`/proc/PID/task/TID/children`): a process forks
/// from one thread, and orphans go to a subreaper's first living thread, so for a
/// single-forking-thread process this is its whole list at the cost of one read.
pub fn task_children(pid: u32, tid: u32) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).ok()?;
    Some(parse_pids(&text).collect())
}

/// Whether this kernel has `/proc/PID/task/TID/children`. Each sample asks; a yes is kept (a
/// kernel's build has the file or not), a no is asked again (/proc may be mounted later).
pub fn has_children_files() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static HAS: AtomicBool = AtomicBool::new(false);
    if HAS.load(Ordering::Relaxed) {
        return true;
    }
    let me = std::process::id();
    let has = std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists();
    HAS.store(has, Ordering::Relaxed);
    has
}

fn children_by_scan(parent: u32) -> Vec<u32> {
    pids()
        .filter(|pid| stat(*pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

/// Every process's pid (the numeric entries of `/proc`).
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flat_map(|entries| entries.flatten())
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// `/proc/PID/comm`, trimmed.
pub fn comm(pid: u32) -> Option<String> {
    read_string(pid, "comm").map(|c| c.trim_end_matches('\n').to_string())
}

/// `/proc/PID/cmdline`, split at its NULs (lossily decoded). Empty for a zombie or a kernel
/// thread.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        split_nul(&bytes)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The value of `name` in the environment `pid` was started with (`/proc/PID/environ`: it
/// keeps the initial environment even if the process changed its own variables since).
pub fn environ_var(pid: u32, name: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ_lookup(&bytes, name).map(<[u8]>::to_vec)
}

/// The value of `name` in an environment block (`NAME=value` strings, NUL-separated).
pub fn environ_lookup<'a>(environ: &'a [u8], name: &str) -> Option<&'a [u8]> {
    split_nul(environ).find_map(|var| var.strip_prefix(name.as_bytes())?.strip_prefix(b"="))
}

/// Whether `/proc/PID/environ` reads empty: right after `exec` the kernel has not yet recorded
/// where the new environment lies, and a zombie has none.
pub fn environ_is_empty(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.is_empty())
}

fn split_nul(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == 0).filter(|s| !s.is_empty())
}

/// The number of open file descriptors of `pid`: since Linux 6.2 the size `stat` gives
/// `/proc/PID/fd` (one call, where listing 2,000 descriptors was a fifth of a metrics answer at
/// 1,000 units); before, that size is 0 and the directory is counted.
pub fn fd_count(pid: u32) -> Option<usize> {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir).ok()?.len() {
        0 => Some(std::fs::read_dir(&dir).ok()?.count()),
        size => usize::try_from(size).ok(),
    }
}

/// The inodes of the sockets `pid` holds open (`/proc/PID/fd/*` → `socket:[INODE]`).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            parse_socket_link(target.to_str()?)
        })
        .collect()
}

/// `socket:[1234]` → 1234.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// `/proc/PID/oom_score_adj`.
pub fn oom_score_adj(pid: u32) -> Option<i32> {
    read_string(pid, "oom_score_adj")?.trim().parse().ok()
}

/// A whole `/proc` file that is not per process (`/proc/meminfo`, `/proc/net/tcp`).
pub fn read_system(file: &str) -> Option<String> {
    read_whole(format!("/proc/{file}"))
}

fn read_string(pid: u32, file: &str) -> Option<String> {
    read_whole(format!("/proc/{pid}/{file}"))
}

/// A /proc (or cgroup) file read whole, in room for a page: such a file says its size is 0, so
/// `fs::read_to_string` asks for it (`statx`) and then reads 32 bytes, 32, 64, ... (eight
/// reads for `/proc/meminfo`, seven for a cgroup's `memory.stat`); here it takes one read and
/// the one that finds the end.
pub fn read_whole(path: impl AsRef<std::path::Path>) -> Option<String> {
    let mut text = String::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(u64::MAX).read_to_string(&mut text))
        .ok()?;
    Some(text)
}

/// svcd's own resident memory in bytes, from `/proc/self/statm` (one short line: cheaper than
/// the whole `status`).
pub fn own_rss() -> Option<u64> {
    let text = read_whole("/proc/self/statm")?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the C library; no memory is touched.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    Some(pages * page)
}

/// Reads `/proc/PID/FILE` into buffers kept between calls, for samplers that read thousands of
/// files a minute and should not allocate for each.
#[derive(Debug, Default)]
pub struct Reader {
    path: String,
    /// The last file read.
    pub text: String,
}

impl Reader {
    /// Reads `/proc/PID/FILE` into [`Reader::text`]; false if the process is gone.
    pub fn read(&mut self, pid: u32, file: &str) -> bool {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/{file}");
        self.read_path()
    }

    /// Reads the file at [`Reader::path`] into [`Reader::text`].
    fn read_path(&mut self) -> bool {
        self.text.clear();
        // Through `take`: `File`'s own `read_to_string` first asks the file's size (`statx`,
        // `lseek`), two calls per read that a /proc file answers with 0 anyway.
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(u64::MAX).read_to_string(&mut self.text))
            .is_ok()
    }

    /// Appends the children of thread `tid` of `pid` to `out`.
    fn task_children_into(&mut self, pid: u32, tid: u32, out: &mut Vec<u32>) {
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/task/{tid}/children");
        if self.read_path() {
            out.extend(parse_pids(&self.text));
        }
    }

    /// [`Reader::children_into`] for a process with `threads` threads (from its `stat`): one
    /// with a single thread has its children read from that thread's file, without listing
    /// its task directory (five system calls fewer).
    pub fn children_of(&mut self, pid: u32, threads: Option<u64>, out: &mut Vec<u32>) {
        match threads {
            Some(1) => self.task_children_into(pid, pid, out),
            _ => self.children_into(pid, out),
        }
    }

    /// Appends the children of every thread of `pid` to `out`.
    pub fn children_into(&mut self, pid: u32, out: &mut Vec<u32>) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for task in tasks.flatten() {
            if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
                self.task_children_into(pid, tid, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_user_system_and_reaped_children_time() {
        let stat = "42 (a) b (c) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 1 0";
        assert_eq!(cpu_ticks(stat), 310);
        assert_eq!(cpu_ticks("garbage"), 0);
    }

    /// A real line of a process that named itself `a) b (c`: the name holds spaces and both
    /// parentheses.
    const ODD_STAT: &str = "4242 (a) b (c) S 17 4240 4240 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 \
                            9931 2625536 226 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";

    #[test]
    fn stat_fields_follow_the_last_parenthesis() {
        assert_eq!(parse_threads(ODD_STAT), Some(1));
        assert_eq!(parse_threads("garbage"), None);
        let stat = parse_stat(ODD_STAT).expect("parses");
        assert_eq!(stat.comm, "a) b (c");
        assert_eq!(stat.state, 'S');
        assert_eq!((stat.ppid, stat.pgrp, stat.session), (17, 4240, 4240));
        assert_eq!((stat.utime, stat.stime), (7, 3));
        assert_eq!(stat.minflt, 120);
        assert_eq!(parse_pgrp(ODD_STAT), Some(4240));
        assert!(!stat.is_zombie());
        assert!(!stat.is_kernel_thread());
        // kthreadd: PF_KTHREAD among its flags.
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 1 0 0";
        assert!(parse_stat(kthread).expect("parses").is_kernel_thread());
    }

    #[test]
    fn start_time_is_field_22_after_the_last_parenthesis() {
        assert_eq!(parse_start_time(ODD_STAT), Some(9931));
        assert_eq!(parse_start_time("9 (sh) S 1"), None);
        let me = std::process::id();
        assert!(start_time(me).is_some_and(|t| t > 0));
    }

    #[test]
    fn stat_of_a_zombie_and_of_garbage() {
        let zombie = "9 (sh) Z 1 9 9 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert!(parse_stat(zombie).expect("parses").is_zombie());
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("9 (sh"), None);
        assert_eq!(parse_stat("9 (sh) S x 9 9"), None);
        assert_eq!(parse_stat("9 (sh) S 1 9"), None, "truncated");
    }

    #[test]
    fn status_fields() {
        let status = Status::parse(
            "Name:\tmy (odd) name\nState:\tS (sleeping)\nVmRSS:\t    1234 kB\n\
             VmSwapX:\t9 kB\nGroups:\t4 24 27 \nvoluntary_ctxt_switches:\t17\n",
        );
        assert_eq!(status.field("Name"), Some("my (odd) name"));
        assert_eq!(status.number("VmRSS"), 1234);
        assert_eq!(
            status.number("VmSwap"),
            0,
            "a field's name is matched whole"
        );
        assert_eq!(status.number("voluntary_ctxt_switches"), 17);
        assert_eq!(status.groups(), vec![4, 24, 27]);
        assert_eq!(Status::parse("Groups:\t\n").groups(), Vec::<u32>::new());
        assert_eq!(kib("MemTotal:       16318412 kB\n", "MemTotal"), 16_318_412);
    }

    /// Three mappings of a real `/proc/PID/smaps` (Linux 6.18, fields cut short): code never
    /// written, relocated read-only data (its own copies), and the heap.
    const SMAPS: &str = "7f136f4a2000-7f136f6d6000 r-xp 000a2000 fd:00 1234    /usr/sbin/svcd
Size:               2256 kB
Rss:                1240 kB
Anonymous:             0 kB
7f136f6d6000-7f136f6eb000 r--p 002d6000 fd:00 1234    /opt/my apps/svcd
Rss:                  84 kB
Anonymous:            84 kB
55557b749000-55557b76b000 rw-p 00000000 00:00 0                          [heap]
Rss:                  12 kB
Anonymous:            12 kB
VmFlags: rd wr mr mw me ac sd
";

    #[test]
    fn smaps_gives_each_mapping_its_file_and_own_pages() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 3, "{maps:?}");
        assert_eq!(maps[0].start, 0x7f13_6f4a_2000);
        assert_eq!(maps[0].end, 0x7f13_6f6d_6000);
        assert!(!maps[0].writable);
        assert_eq!(
            maps[0].path.as_deref(),
            Some(std::path::Path::new("/usr/sbin/svcd"))
        );
        assert_eq!((maps[0].rss, maps[0].anonymous), (1240, 0));
        assert_eq!(
            maps[1].path.as_deref(),
            Some(std::path::Path::new("/opt/my apps/svcd"))
        );
        assert_eq!(maps[1].anonymous, 84);
        assert!(maps[2].writable);
        assert_eq!(maps[2].path, None);
        assert_eq!(maps[2].rss, 12);
        let own = own_mappings();
        assert!(
            own.iter().any(|m| m.path.is_some() && !m.writable),
            "{own:?}"
        );
    }

    /// A real `/proc/PID/smaps_rollup` (Linux 6.18): its first line is a mapping's, with colons
    /// in it, not a field.
    const ROLLUP: &str =
        "55889187f000-7fff9dec9000 ---p 00000000 00:00 0                          [rollup]
Rss:                1692 kB
Pss:                 193 kB
Pss_Dirty:           116 kB
Pss_Anon:            116 kB
Pss_File:             77 kB
Pss_Shmem:             0 kB
Shared_Clean:       1536 kB
Shared_Dirty:          0 kB
Private_Clean:        40 kB
Private_Dirty:       116 kB
Referenced:         1692 kB
Anonymous:           116 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  8 kB
SwapPss:               4 kB
Locked:                0 kB
";

    #[test]
    fn smaps_rollup_gives_pss_beside_rss() {
        let parsed = parse_rollup(ROLLUP).expect("parses");
        assert_eq!(
            parsed,
            Rollup {
                rss: 1692,
                pss: 193,
                private_clean: 40,
                private_dirty: 116,
                swap: 8,
            }
        );
        assert_eq!(parse_rollup(""), None);
        assert_eq!(parse_rollup("Name:\tsleep\n"), None, "not a rollup");
        let me = rollup(std::process::id()).expect("own smaps_rollup");
        assert!(me.pss > 0 && me.pss <= me.rss, "{me:?}");
    }

    #[test]
    fn environ_and_links() {
        let env = b"PATH=/bin\0SVC_UNIT=web\0SVC_UNIT_X=no\0\0";
        assert_eq!(environ_lookup(env, "SVC_UNIT"), Some(&b"web"[..]));
        assert_eq!(environ_lookup(env, "SVC"), None);
        assert_eq!(environ_lookup(env, "HOME"), None);
        assert_eq!(parse_socket_link("socket:[31337]"), Some(31337));
        assert_eq!(parse_socket_link("pipe:[31337]"), None);
        assert_eq!(
            parse_pids("12 34\n x 5").collect::<Vec<_>>(),
            vec![12, 34, 5]
        );
    }

    #[test]
    fn reads_the_live_process() {
        let me = std::process::id();
        let stat = stat(me).expect("own stat");
        assert_eq!(stat.ppid, nix::unistd::getppid().as_raw() as u32);
        assert_eq!(stat.pgrp, nix::unistd::getpgrp().as_raw() as u32);
        assert!(status(me).is_some_and(|s| s.number("VmRSS") > 0));
        // statm's resident pages, in bytes: a whole number of pages, and within a few MiB of
        // status's VmRSS read just before (the test's threads allocate meanwhile).
        let vm_rss = status(me).map_or(0, |s| s.number("VmRSS") * 1024);
        let rss = own_rss().expect("own statm");
        assert!(rss > 0 && rss.is_multiple_of(4096), "{rss}");
        assert!(
            rss.abs_diff(vm_rss) < 64 << 20,
            "statm {rss}, status {vm_rss}"
        );
        // A file longer than the first read's room comes whole.
        let maps = read_string(me, "maps").expect("own maps");
        assert!(maps.ends_with('\n') && maps.lines().count() > 3);
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
        assert!(comm(me).is_some_and(|c| !c.is_empty() && !c.ends_with('\n')));
        assert!(fd_count(me).is_some_and(|n| n >= 3));
        assert!(pids().any(|p| p == me));
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn sleep");
        assert!(children(me).contains(&child.id()));
        assert!(children_by_scan(me).contains(&child.id()));
        // The size of /proc/PID/fd (Linux 6.2 on) and a count of its entries agree.
        let listed = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .map(|dir| dir.count())
            .ok();
        assert_eq!(fd_count(child.id()), listed);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(stat_missing(), None);
    }

    fn stat_missing() -> Option<Stat> {
        // Pid 0 has no /proc entry.
        stat(0)
    }

    #[test]
    fn a_pending_sigkill_or_a_zombie_is_dying() {
        let alive = "Name:\tpython3\nState:\tR (running)\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n";
        assert!(!Status::parse(alive).is_dying());
        let killed = alive.replace("ShdPnd:\t0000000000000000", "ShdPnd:\t0000000000000100");
        assert!(Status::parse(killed).is_dying());
        let zombie = alive.replace("R (running)", "Z (zombie)");
        assert!(Status::parse(zombie).is_dying());
    }
}
