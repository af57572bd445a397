//! `requires`, `after`, `wants`, `[ready]` and `[health]`: their types and the checks of their
//! values (stage two, beside [`super::validate`]).

use super::raw::{Entry, Issue, Value};
use super::validate::check_name;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `ready.timeout` when none is given.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// `health.interval` when none is given.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// `health.timeout` when none is given.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// `health.failures` when none is given.
pub const DEFAULT_HEALTH_FAILURES: u32 = 3;

/// One check of a unit, run by svcd.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A TCP connect succeeds.
    Tcp(SocketAddr),
    /// An HTTP/1.1 GET answers 2xx.
    Http(HttpTarget),
    /// This argv exits 0 (run with the unit's environment, directory and user).
    Exec(Vec<String>),
}

/// A plain `http://` URL, already split.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    /// For the `Host:` header: the host and port as written.
    pub host: String,
    /// Path and query, at least `/`.
    pub path: String,
    /// The URL as written, for messages.
    pub url: String,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp(addr) => write!(f, "tcp {addr}"),
            Probe::Http(target) => write!(f, "http {}", target.url),
            Probe::Exec(argv) => write!(f, "exec {}", argv.join(" ")),
        }
    }
}

/// `[ready]`: when a started unit counts as ready.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyConfig {
    pub probe: Option<Probe>,
    /// Wait for `READY=1` on the notify socket.
    pub notify: bool,
    /// Not ready by then → a failed start.
    pub timeout: Duration,
}

impl ReadyConfig {
    /// Whether the unit has any readiness check (else it is ready once spawned).
    pub fn is_checked(&self) -> bool {
        self.probe.is_some() || self.notify
    }
}

impl Default for ReadyConfig {
    fn default() -> Self {
        ReadyConfig {
            probe: None,
            notify: false,
            timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// `[health]`: liveness of a running unit.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub probe: Option<Probe>,
    pub interval: Duration,
    /// Of one check.
    pub timeout: Duration,
    /// This many failed checks in a row → restart.
    pub failures: u32,
    /// sd_notify watchdog: no `WATCHDOG=1` within this → restart.
    pub watchdog: Option<Duration>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe: None,
            interval: DEFAULT_HEALTH_INTERVAL,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            failures: DEFAULT_HEALTH_FAILURES,
            watchdog: None,
        }
    }
}

/// `requires` / `after` / `wants`: an array of unit names, not naming the unit itself.
pub fn names(entry: Option<&Entry>, own: &str, issues: &mut Vec<Issue>) -> Vec<String> {
    let Some(entry) = entry else {
        return Vec::new();
    };
    let Value::Array(items) = &entry.node.value else {
        let found = entry.node.value.type_name();
        let message = format!("expected an array of unit names, e.g. [\"chat\"], found {found}");
        issues.push(Issue::at_value(entry, &entry.node, message));
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let Value::String(name) = &item.value else {
            let found = item.value.type_name();
            issues.push(Issue::at_value(
                entry,
                item,
                format!("expected a unit name (a string), found {found}"),
            ));
            continue;
        };
        let name = name.strip_suffix(".toml").unwrap_or(name);
        if let Err(message) = check_name(name) {
            issues.push(Issue::at_value(entry, item, message));
        } else if name == own {
            let message = format!(
                "`{own}` names itself in `{}`; a unit cannot depend on itself, remove it",
                entry.key
            );
            issues.push(Issue::at_value(entry, item, message));
        } else if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// A unit has at most one check of each table: which one answered would be ambiguous.
/// `kinds`: the checks the table has, in any order.
pub(super) fn one_kind(mut kinds: Vec<&Entry>, table: &str, issues: &mut Vec<Issue>) {
    kinds.sort_by_key(|entry| entry.key_span.start);
    if let [first, rest @ ..] = kinds.as_slice() {
        for entry in rest {
            let message = format!(
                "[{table}] has `{}` already; give one check (tcp, http, exec{}), not several",
                first.key,
                if table == "ready" { " or notify" } else { "" }
            );
            issues.push(Issue::at_key(entry, message));
        }
    }
}

fn last(entry: &Entry) -> &str {
    entry.key.rsplit('.').next().unwrap_or_default()
}

fn push(entry: &Entry, issues: &mut Vec<Issue>, message: impl Into<String>) {
    issues.push(Issue::at_value(entry, &entry.node, message));
}

/// `tcp`, `http` or `exec` of `[ready]` or `[health]`.
pub(super) fn probe(entry: &Entry, issues: &mut Vec<Issue>) -> Option<Probe> {
    match (last(entry), &entry.node.value) {
        ("tcp", Value::String(text)) => match socket_addr(text) {
            Ok(addr) => Some(Probe::Tcp(addr)),
            Err(message) => {
                push(entry, issues, message);
                None
            }
        },
        ("http", Value::String(text)) => match http_target(text) {
            Ok(target) => Some(Probe::Http(target)),
            Err(message) => {
                push(entry, issues, message);
                None
            }
        },
        ("exec", Value::String(text)) => match shlex::split(text) {
            Some(argv) if !argv.is_empty() => Some(Probe::Exec(argv)),
            _ => {
                push(
                    entry,
                    issues,
                    "give the check's command, e.g. [\"pg_isready\"]",
                );
                None
            }
        },
        ("exec", Value::Array(items)) => {
            let argv: Vec<String> = items
                .iter()
                .filter_map(|item| match &item.value {
                    Value::String(word) if !word.contains('\0') => Some(word.clone()),
                    _ => None,
                })
                .collect();
            if argv.len() != items.len() || argv.first().is_none_or(String::is_empty) {
                push(entry, issues, "expected a non-empty array of strings");
                return None;
            }
            Some(Probe::Exec(argv))
        }
        (kind, other) => {
            let expected = match kind {
                "tcp" => "an address string such as \"127.0.0.1:3000\"",
                "http" => "a URL string such as \"http://127.0.0.1:3000/health\"",
                _ => "an array of strings or a string",
            };
            push(
                entry,
                issues,
                format!("expected {expected}, found {}", other.type_name()),
            );
            None
        }
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`. No name lookup: svcd does not block on DNS.
fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(format!(
        "`{text}` is not an address svcd can connect to; write IP:PORT, e.g. \"127.0.0.1:3000\" \
         (names other than localhost are not looked up)"
    ))
}

fn http_target(url: &str) -> Result<HttpTarget, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "`{url}` is not a plain http:// URL; svcd checks http://IP:PORT/PATH (no https)"
        ));
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = socket_addr(&with_port).map_err(|e| format!("in `{url}`: {e}"))?;
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{url}` has spaces or control characters in its path"
        ));
    }
    Ok(HttpTarget {
        addr,
        host: host.to_string(),
        path: path.to_string(),
        url: url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_split() {
        let t = http_target("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/health?x=1")
        );
        let t = http_target("http://localhost").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        assert!(http_target("https://127.0.0.1/").is_err());
        assert!(http_target("http://example.com/").is_err());
    }

    #[test]
    fn tcp_addresses() {
        assert!(socket_addr("127.0.0.1:3000").is_ok());
        assert!(socket_addr("[::1]:3000").is_ok());
        assert!(socket_addr("localhost:3000").is_ok());
        assert!(socket_addr("db:5432").is_err());
    }
}
