//! What the benchmarks read of svcd from /proc, shared by every bench target
//! (`#[path = "proc.rs"] mod proc;`).

// Each bench target compiles this file on its own and uses only part of it.
#![allow(dead_code)]

/// A `/proc/PID/status` field as a number (`VmRSS:` in KiB, `voluntary_ctxt_switches:`); 0 when
/// the process or the field is gone.
pub fn status_field(pid: u32, field: &str) -> u64 {
    file_field(&format!("/proc/{pid}/status"), field)
}

/// `field` of a `Name: value [kB]` file of /proc as a number; 0 when the file or field is gone.
fn file_field(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time of `pid` (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (field(11) + field(12)) as f64 / hz
}

/// A `/proc/PID/smaps_rollup` field in KiB (`Pss:`, `Rss:`): the sum over all of the process's
/// mappings; 0 when the process, the file (kernels before 4.14) or the field is gone. PSS counts
/// each shared page divided by the number of processes mapping it, so a shared `libc.so` costs
/// each process only its share.
pub fn rollup_field(pid: u32, field: &str) -> u64 {
    file_field(&format!("/proc/{pid}/smaps_rollup"), field)
}

/// How `pid`'s executable is linked, from its mappings: "dynamic" when the dynamic loader is
/// mapped, else "static".
pub fn linkage(pid: u32) -> &'static str {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    if maps.lines().any(|l| l.contains("/ld-linux")) {
        "dynamic"
    } else {
        "static"
    }
}
