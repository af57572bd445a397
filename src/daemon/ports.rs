//! Who listens on a TCP port: `/proc/net/tcp{,6}` gives the listening socket's inode, the
//! `/proc/PID/fd` links give the processes that hold it.
//!
//! For `ready.tcp`: a port that another process already holds makes the unit die with
//! EADDRINUSE while its ready check, connecting to that other process, passes. svcd names the
//! holder ("127.0.0.1:3000 is in use by pid 812 (node)") and only counts a ready check when
//! the listener is the unit's own. A best-effort look, as any `/proc` walk: a process svcd may
//! not read (another user's, without root) is not named.

use crate::proc;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `st` of a listening socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";
/// Bound of the parent walk in [`belongs_to_unit`].
const MAX_DEPTH: usize = 64;

/// The processes holding a socket that listens where `addr` points: (pid, command name), by
/// pid. Empty when nobody listens there, or the holders cannot be read.
pub fn holders(addr: SocketAddr) -> Vec<(u32, String)> {
    let inodes = listening_inodes(addr);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for pid in proc::pids() {
        if proc::socket_inodes(pid)
            .iter()
            .any(|inode| inodes.contains(inode))
        {
            found.push((pid, proc::comm(pid).unwrap_or_default()));
        }
    }
    found
}

/// "127.0.0.1:3000 is in use by pid 812 (node)", or `None` when nobody holds it.
pub fn describe(addr: SocketAddr, holders: &[(u32, String)]) -> Option<String> {
    let names: Vec<String> = holders
        .iter()
        .map(|(pid, comm)| format!("pid {pid} ({comm})"))
        .collect();
    (!names.is_empty()).then(|| format!("{addr} is in use by {}", names.join(", ")))
}

/// Whether `pid` is one of the processes of the unit whose main process is `main`: in its
/// process group, or below it.
pub fn belongs_to_unit(pid: u32, main: u32) -> bool {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if current == main {
            return true;
        }
        let Some(stat) = proc::stat(current) else {
            return false;
        };
        if stat.pgrp == main {
            return true;
        }
        if stat.ppid <= 1 {
            return false;
        }
        current = stat.ppid;
    }
    false
}

/// The inodes of the listening sockets that accept connections to `addr`.
fn listening_inodes(addr: SocketAddr) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for file in ["net/tcp", "net/tcp6"] {
        if let Some(text) = proc::read_system(file) {
            inodes.extend(
                parse_listeners(&text)
                    .into_iter()
                    .filter(|(listen, _)| accepts(*listen, addr))
                    .map(|(_, inode)| inode),
            );
        }
    }
    inodes
}

/// (local address, inode) of every listening socket in a `/proc/net/tcp{,6}` table.
fn parse_listeners(text: &str) -> Vec<(SocketAddr, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let local = parse_address(fields.get(1)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((local, inode))
        })
        .collect()
}

/// `0100007F:0BB8` → 127.0.0.1:3000. The kernel prints the address as 32-bit words in the
/// host's byte order, the port in hex.
pub(super) fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether a socket listening on `listen` takes connections to `target`: same port, and the
/// same address or a wildcard on either side (`::` also takes IPv4 on a dual-stack host).
fn accepts(listen: SocketAddr, target: SocketAddr) -> bool {
    if listen.port() != target.port() {
        return false;
    }
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let (l, t) = (canonical(listen.ip()), canonical(target.ip()));
    l == t || l.is_unspecified() || t.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0BB8 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n";
        let got = parse_listeners(v4);
        assert_eq!(got, [("127.0.0.1:3000".parse().unwrap(), 4242)]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listeners(v6), [("[::1]:8080".parse().unwrap(), 777)]);
        assert!(parse_listeners("header\ngarbage line\n").is_empty());
    }

    #[test]
    fn wildcards_and_mapped_addresses_accept() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        assert!(accepts(a("0.0.0.0:3000"), a("127.0.0.1:3000")));
        assert!(accepts(a("[::]:3000"), a("127.0.0.1:3000")));
        assert!(accepts(a("[::ffff:127.0.0.1]:3000"), a("127.0.0.1:3000")));
        assert!(!accepts(a("127.0.0.1:3001"), a("127.0.0.1:3000")));
        assert!(!accepts(a("10.0.0.1:3000"), a("127.0.0.1:3000")));
    }

    #[test]
    fn finds_the_holder_of_a_real_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = std::process::id();
        let found = holders(addr);
        assert!(found.iter().any(|(pid, _)| *pid == me), "{found:?}");
        let text = describe(addr, &found).expect("a description");
        assert!(
            text.starts_with(&format!("{addr} is in use by pid ")),
            "{text}"
        );
        assert!(belongs_to_unit(me, me));
        drop(listener);
        assert!(holders(addr).is_empty());
    }
}
