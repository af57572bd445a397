//! `listen`, `listen_backlog`, `listen_mode` and `restart.overlap`: the sockets svcd binds and
//! holds for a unit (passed to it as fds 3, 4, ... by the sd_listen_fds protocol), and whether a
//! planned restart overlaps the old run with the new one.

use super::raw::{Entry, Issue, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// nginx's default backlog (and Node's): what waits in the kernel while the unit is down.
pub const DEFAULT_BACKLOG: u32 = 511;

/// systemd's `SocketMode=` default: any local user may connect, as to a TCP port.
pub const DEFAULT_MODE: u32 = 0o666;

/// One address of `listen`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `"127.0.0.1:3000"`, `"[::1]:3000"`: a TCP stream socket.
    Tcp(SocketAddr),
    /// `"unix:/run/chat/chat.sock"`: a Unix stream socket at an absolute path.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl ListenAddr {
    /// Its name in `LISTEN_FDNAMES`: the address as written (`:` is the list's separator, so
    /// it becomes `_`, as sd_listen_fds_with_names allows no `:` in a name).
    pub fn fd_name(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| if c == ':' || c.is_control() { '_' } else { c })
            .collect()
    }
}

/// The sockets of a unit and how its planned restarts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketsConfig {
    /// `listen`: bound by svcd, in this order as fds 3, 4, ...
    pub listen: Vec<ListenAddr>,
    /// `listen_backlog`: the kernel's queue of connections not yet accepted.
    pub backlog: u32,
    /// `listen_mode`: the mode of the Unix socket files (owned by the unit's user and group).
    pub mode: u32,
    /// `restart.overlap`: a planned restart starts the new run, waits until it is ready, then
    /// stops the old one.
    pub overlap: bool,
}

impl Default for SocketsConfig {
    fn default() -> Self {
        SocketsConfig {
            listen: Vec::new(),
            backlog: DEFAULT_BACKLOG,
            mode: DEFAULT_MODE,
            overlap: false,
        }
    }
}

const FORMS: &str =
    "write \"127.0.0.1:3000\", \"[::1]:3000\" or \"unix:/run/NAME/NAME.sock\" (an absolute path)";

/// One address as written.
pub fn parse_addr(text: &str) -> Result<ListenAddr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "the socket path of \"{text}\" must be absolute; {FORMS}"
            ));
        }
        // sun_path holds 108 bytes with its NUL.
        if path.as_os_str().len() > 107 {
            return Err(format!(
                "the socket path of \"{text}\" is longer than 107 bytes"
            ));
        }
        return Ok(ListenAddr::Unix(path));
    }
    text.parse::<SocketAddr>()
        .map(ListenAddr::Tcp)
        .map_err(|_| format!("invalid listen address \"{text}\"; {FORMS}"))
}

/// `listen`: an array of addresses, each once.
pub(super) fn listen(entry: &Entry, issues: &mut Vec<Issue>) -> Vec<ListenAddr> {
    let Value::Array(items) = &entry.node.value else {
        let found = entry.node.value.type_name();
        let message = format!("expected an array of addresses, found {found}; {FORMS}");
        issues.push(Issue::at_value(entry, &entry.node, message));
        return Vec::new();
    };
    let mut addrs: Vec<ListenAddr> = Vec::new();
    for item in items {
        let Value::String(text) = &item.value else {
            let found = item.value.type_name();
            let message = format!("expected an address (a string), found {found}; {FORMS}");
            issues.push(Issue::at_value(entry, item, message));
            continue;
        };
        match parse_addr(text) {
            Ok(addr) if addrs.contains(&addr) => issues.push(Issue::at_value(
                entry,
                item,
                format!("\"{text}\" is listed twice; remove one"),
            )),
            Ok(addr) => addrs.push(addr),
            Err(message) => issues.push(Issue::at_value(entry, item, message)),
        }
    }
    addrs
}

/// `listen_backlog`: 1 ..= 65535 (the kernel caps it at `net.core.somaxconn`).
pub(super) fn backlog(entry: &Entry, issues: &mut Vec<Issue>) -> Option<u32> {
    match entry.node.value {
        Value::Integer(Some(n)) if (1..=65535).contains(&n) => u32::try_from(n).ok(),
        ref other => {
            let message = match other {
                Value::Integer(_) => "listen_backlog must be between 1 and 65535".to_string(),
                other => format!("expected an integer, found {}", other.type_name()),
            };
            issues.push(Issue::at_value(entry, &entry.node, message));
            None
        }
    }
}

/// `listen_mode`: an octal string, at most `"0777"`.
pub(super) fn mode(entry: &Entry, issues: &mut Vec<Issue>) -> Option<u32> {
    let hint = "write the mode as a quoted octal string, e.g. listen_mode = \"0660\"";
    let parsed = match &entry.node.value {
        Value::String(text) => (1..=4)
            .contains(&text.len())
            .then(|| u32::from_str_radix(text, 8).ok())
            .flatten()
            .filter(|mode| *mode <= 0o777 && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("invalid listen_mode \"{text}\"; {hint}")),
        other => Err(format!(
            "expected an octal string, found {}; {hint}",
            other.type_name()
        )),
    };
    parsed
        .map_err(|message| issues.push(Issue::at_value(entry, &entry.node, message)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_absolute_unix_paths() {
        assert_eq!(
            parse_addr("127.0.0.1:3000"),
            Ok(ListenAddr::Tcp("127.0.0.1:3000".parse().unwrap()))
        );
        assert_eq!(
            parse_addr("[::1]:3000"),
            Ok(ListenAddr::Tcp("[::1]:3000".parse().unwrap()))
        );
        assert_eq!(
            parse_addr("unix:/run/chat.sock"),
            Ok(ListenAddr::Unix("/run/chat.sock".into()))
        );
        assert!(parse_addr("unix:chat.sock").is_err());
        assert!(parse_addr("localhost:3000").is_err());
        assert!(parse_addr("3000").is_err());
        assert!(parse_addr(&format!("unix:/{}", "a".repeat(120))).is_err());
    }

    #[test]
    fn fd_names_hold_no_colon() {
        let addr = parse_addr("[::1]:3000").unwrap();
        assert_eq!(addr.fd_name(), "[__1]_3000");
        assert_eq!(
            parse_addr("unix:/run/a.sock").unwrap().fd_name(),
            "unix_/run/a.sock"
        );
    }
}
