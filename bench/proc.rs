//! What the benchmarks read of svcd from /proc, shared by every bench target
//! (`#[path = "proc.rs"] mod proc;`): thin wrappers over the library's one reader, `svc::proc`.

// Each bench target compiles this file on its own and uses only part of it.
#![allow(dead_code)]

/// A `/proc/PID/status` field as a number (`VmRSS` in KiB, `voluntary_ctxt_switches`); 0 when
/// the process or the field is gone.
pub fn status_field(pid: u32, field: &str) -> u64 {
    svc::proc::status(pid).map_or(0, |status| status.number(field))
}

/// CPU time of `pid` (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Some(stat) = svc::proc::stat(pid) else {
        return 0.0;
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (stat.utime + stat.stime) as f64 / hz
}

/// The page faults `pid` took that read nothing from disk; 0 when it is gone.
pub fn minor_faults(pid: u32) -> u64 {
    svc::proc::stat(pid).map_or(0, |stat| stat.minflt)
}

/// `/proc/PID/smaps_rollup` (RSS, PSS, ...) in KiB; zeros when the process or the file (kernels
/// before 4.14) is gone. PSS counts each shared page divided by the number of processes mapping
/// it, so a shared `libc.so` costs each process only its share.
pub fn rollup(pid: u32) -> svc::proc::Rollup {
    svc::proc::rollup(pid).unwrap_or_default()
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
