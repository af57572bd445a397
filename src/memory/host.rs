//! The host's memory: /proc/meminfo and, where the kernel has it, /proc/pressure/memory (PSI).

use crate::proc::kib as kib_field;

/// One reading of the host's memory, in bytes (PSI in percent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostMemory {
    pub mem_total: u64,
    pub mem_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    /// `some avg10` and `full avg10` of /proc/pressure/memory; `None` without PSI.
    pub psi_some_avg10: Option<f64>,
    pub psi_full_avg10: Option<f64>,
}

impl HostMemory {
    pub fn mem_used(&self) -> u64 {
        self.mem_total.saturating_sub(self.mem_available)
    }

    pub fn swap_used(&self) -> u64 {
        self.swap_total.saturating_sub(self.swap_free)
    }

    /// Reads the host's figures now; what cannot be read is 0 (or `None` for PSI).
    pub fn read() -> HostMemory {
        let meminfo = crate::proc::read_system("meminfo").unwrap_or_default();
        let mut host = parse_meminfo(&meminfo);
        if let Some(pressure) = crate::proc::read_system("pressure/memory") {
            (host.psi_some_avg10, host.psi_full_avg10) = parse_psi(&pressure);
        }
        host
    }
}

/// The kernel's memory pressure file.
pub const PSI_PATH: &str = "/proc/pressure/memory";

/// The four figures of /proc/meminfo that the watch uses.
pub fn parse_meminfo(text: &str) -> HostMemory {
    HostMemory {
        mem_total: kib_field(text, "MemTotal") * 1024,
        mem_available: kib_field(text, "MemAvailable") * 1024,
        swap_total: kib_field(text, "SwapTotal") * 1024,
        swap_free: kib_field(text, "SwapFree") * 1024,
        psi_some_avg10: None,
        psi_full_avg10: None,
    }
}

/// `avg10` of the `some` and `full` lines of a PSI file.
pub fn parse_psi(text: &str) -> (Option<f64>, Option<f64>) {
    let avg10 = |kind: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(kind))
            .and_then(|rest| {
                rest.split_whitespace()
                    .find_map(|field| field.strip_prefix("avg10="))
            })
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    (avg10("some "), avg10("full "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_psi_parse() {
        let meminfo = "MemTotal:         500000 kB\nMemFree:  1 kB\nMemAvailable:     200000 kB\n\
                       SwapCached: 0 kB\nSwapTotal:        1048576 kB\nSwapFree:          524288 kB\n";
        let host = parse_meminfo(meminfo);
        assert_eq!(host.mem_total, 500000 * 1024);
        assert_eq!(host.mem_used(), 300000 * 1024);
        assert_eq!(host.swap_used(), 512 << 20);
        let psi = "some avg10=12.50 avg60=1.00 avg300=0.00 total=1234\n\
                   full avg10=3.25 avg60=0.50 avg300=0.00 total=99\n";
        assert_eq!(parse_psi(psi), (Some(12.5), Some(3.25)));
        assert_eq!(parse_psi(""), (None, None));
    }

    #[test]
    fn this_host_has_memory() {
        assert!(HostMemory::read().mem_total > 0);
    }
}
