//! `svc metrics` and svcd.toml `[metrics] listen`: every unit's state, restarts, last exit and
//! memory, the host's memory and pressure, and svcd's own footprint, in the Prometheus text
//! exposition format (version 0.0.4), which Prometheus scrapes and `promtool check metrics`
//! checks.
//!
//! Names and label sets are stable (svc(1) lists them): `svc_unit_*{unit="NAME"}`,
//! `svc_host_*`, `svcd_*`.

use super::Daemon;
use super::report::Clocks;
use crate::control::{HostInfo, UnitInfo};
use std::fmt::Write;

/// Every state a unit can be in: `svc_unit_state` has one sample per state, 1 for the unit's.
const STATES: [&str; 7] = [
    "inactive", "starting", "running", "stopping", "backoff", "failed", "exited",
];

/// svcd's own footprint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Own {
    pub rss: u64,
    pub fds: u64,
}

impl Own {
    /// svcd's resident set and open descriptors, by the one reader of /proc.
    pub fn read() -> Own {
        let me = std::process::id();
        let rss = crate::proc::own_rss().unwrap_or(0);
        let fds = crate::proc::fd_count(me).unwrap_or(0) as u64;
        Own { rss, fds }
    }
}

impl Daemon {
    /// The metrics text for every unit, from one walk of /proc for their memory.
    pub(super) fn metrics(&mut self) -> String {
        let clocks = Clocks::read();
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let units = self.bare_infos(&all, clocks);
        render(&units, &self.host_info(clocks), Own::read())
    }
}

/// One metric family: its `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value, escaped as the format wants (`\\`, `\"`, `\n`).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The metrics text for `units`, `host` and svcd itself.
pub fn render(units: &[UnitInfo], host: &HostInfo, own: Own) -> String {
    let mut out = String::with_capacity(256 + units.len() * 900);
    let names: Vec<String> = units.iter().map(|u| label(&u.name)).collect();
    let per_unit = |out: &mut String,
                    name: &str,
                    kind: &str,
                    help: &str,
                    value: &dyn Fn(&UnitInfo) -> Option<String>| {
        family(out, name, kind, help);
        for (unit, escaped) in units.iter().zip(&names) {
            if let Some(value) = value(unit) {
                let _ = writeln!(out, "{name}{{unit=\"{escaped}\"}} {value}");
            }
        }
    };
    family(
        &mut out,
        "svc_unit_state",
        "gauge",
        "1 for the state the unit is in, 0 for the others.",
    );
    for (unit, escaped) in units.iter().zip(&names) {
        for state in STATES {
            let on = u8::from(unit.state == state);
            let _ = writeln!(
                out,
                "svc_unit_state{{unit=\"{escaped}\",state=\"{state}\"}} {on}"
            );
        }
    }
    per_unit(
        &mut out,
        "svc_unit_ready",
        "gauge",
        "1 when the unit is ready.",
        &|u| Some(u8::from(u.ready).to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_restarts_total",
        "counter",
        "Restarts of the unit by its restart policy since svcd started.",
        &|u| Some(u.restarts.to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_starts_total",
        "counter",
        "Times the unit's process was spawned since svcd started.",
        &|u| Some(u.starts.to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_last_exit_code",
        "gauge",
        "The exit code of the unit's last process (units whose last process exited with one).",
        &|u| u.last_exit.as_ref()?.code.map(|c| c.to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_cpu_seconds_total",
        "counter",
        "CPU time (user + system) of the unit's processes and the children they reaped; starts again with each run.",
        &|u| Some(u.cpu.to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_memory_rss_bytes",
        "gauge",
        "Resident memory of the unit's process group.",
        &|u| Some(u.memory.rss.to_string()),
    );
    per_unit(
        &mut out,
        "svc_unit_memory_swap_bytes",
        "gauge",
        "Swapped-out memory of the unit's process group.",
        &|u| Some(u.memory.swap.to_string()),
    );
    let host_gauges = [
        (
            "svc_host_memory_total_bytes",
            "The host's memory (MemTotal).",
            host.mem_total,
        ),
        (
            "svc_host_memory_used_bytes",
            "The host's used memory (MemTotal - MemAvailable).",
            host.mem_used,
        ),
        (
            "svc_host_swap_total_bytes",
            "The host's swap.",
            host.swap_total,
        ),
        (
            "svc_host_swap_used_bytes",
            "The host's used swap.",
            host.swap_used,
        ),
    ];
    for (name, help, value) in host_gauges {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let pressure = [
        ("some", host.pressure_some_avg10),
        ("full", host.pressure_full_avg10),
    ];
    if pressure.iter().any(|(_, v)| v.is_some()) {
        family(
            &mut out,
            "svc_host_memory_pressure_avg10_percent",
            "gauge",
            "avg10 of /proc/pressure/memory, by kind (some, full); absent without PSI.",
        );
        for (kind, value) in pressure {
            if let Some(value) = value {
                let _ = writeln!(
                    out,
                    "svc_host_memory_pressure_avg10_percent{{kind=\"{kind}\"}} {value}"
                );
            }
        }
    }
    family(
        &mut out,
        "svcd_resident_memory_bytes",
        "gauge",
        "svcd's own resident memory.",
    );
    let _ = writeln!(out, "svcd_resident_memory_bytes {}", own.rss);
    family(
        &mut out,
        "svcd_open_fds",
        "gauge",
        "svcd's open file descriptors.",
    );
    let _ = writeln!(out, "svcd_open_fds {}", own.fds);
    out
}

/// svcd.toml `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve the metrics on HTTP `GET /metrics` at this address (`127.0.0.1:9925`); off
    /// without it. Only this address is bound: loopback unless it says otherwise.
    pub listen: Option<std::net::SocketAddr>,
}

/// Longest HTTP request head read; a longer one gets 431 and the connection is closed.
pub const MAX_HTTP_REQUEST: usize = 8 * 1024;

/// A scraper that takes longer than this to send its request or read the answer is dropped.
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds the metrics address (before svcd drops anything it needs to bind).
pub fn bind(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Serves `GET /metrics` on `listener`, one connection at a time, in this one task: it sleeps
/// in `accept` while nobody scrapes. Every other path is 404, every other method 405.
pub async fn serve(
    listener: tokio::net::TcpListener,
    requests: tokio::sync::mpsc::Sender<crate::control::server::Envelope>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let answer = tokio::time::timeout(HTTP_TIMEOUT, answer(stream, &requests)).await;
        if let Ok(Err(Closed)) = answer {
            return;
        }
    }
}

/// svcd's request channel is gone: it is shutting down.
struct Closed;

async fn answer(
    mut stream: tokio::net::TcpStream,
    requests: &tokio::sync::mpsc::Sender<crate::control::server::Envelope>,
) -> Result<(), Closed> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HTTP_REQUEST {
            let _ = respond(&mut stream, "431 Request Header Fields Too Large", "").await;
            // Read (a bounded part of) what the client still sends, so that closing does not
            // reset the connection before it reads the answer.
            let _ = stream.shutdown().await;
            let mut left = 8 * MAX_HTTP_REQUEST;
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
            return Ok(());
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path != b"/metrics" {
        let _ = respond(&mut stream, "404 Not Found", "not found\n").await;
        return Ok(());
    }
    if method != b"GET" {
        let _ = respond(&mut stream, "405 Method Not Allowed", "GET only\n").await;
        return Ok(());
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let envelope = crate::control::server::Envelope {
        command: crate::control::Command::Metrics {},
        reply,
    };
    if requests.send(envelope).await.is_err() {
        return Err(Closed);
    }
    let Ok(response) = answer.await else {
        return Err(Closed);
    };
    let body = response.metrics.unwrap_or_default();
    let _ = respond(&mut stream, "200 OK", &body).await;
    let _ = stream.shutdown().await;
    Ok(())
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    body: &str,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}
