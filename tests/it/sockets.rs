//! Sockets held by svcd (`listen`): passed as fds 3, 4, ... by the sd_listen_fds protocol,
//! kept across crashes and reloads, and a real HTTP server under load across `kill -9`.

use crate::ready::free_port;
use crate::util::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A unit that reports what it was given, one `key=value` line each, into `out`, then sleeps:
/// its pid, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, and for fds 3, 4: inode and local address.
fn reporter(out: &std::path::Path) -> String {
    format!(
        "exec = [\"python3\", \"-c\", \"\"\"\n\
import os, socket, stat, time\n\
lines = ['pid=%d' % os.getpid()]\n\
for k in ('LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'):\n    lines.append('%s=%s' % (k, os.environ.get(k, '')))\n\
for fd in range(3, 3 + int(os.environ.get('LISTEN_FDS', '0'))):\n    st = os.fstat(fd)\n    s = socket.socket(fileno=os.dup(fd))\n    lines.append('fd%d=%s %d %s' % (fd, stat.S_ISSOCK(st.st_mode), st.st_ino, s.getsockname()))\n\
open('{out}.tmp', 'w').write('\\\\n'.join(lines) + '\\\\n')\n\
os.rename('{out}.tmp', '{out}')\n\
time.sleep(1000)\n\"\"\"]\n",
        out = out.display()
    )
}

/// The report of [`reporter`] once written (and removes it, for the next run's).
fn report(out: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let text = wait_until("the unit's report", DEADLINE, || {
        std::fs::read_to_string(out).ok()
    });
    let _ = std::fs::remove_file(out);
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn held_sockets_are_fds_3_on_with_the_childs_own_listen_pid() {
    let dir = Dir::new();
    let port = free_port();
    let out = dir.path().join("report");
    let sock = dir.path().join("app.sock");
    dir.unit(
        "app",
        &format!(
            "listen = [\"127.0.0.1:{port}\", \"unix:{}\"]\nlisten_mode = \"0600\"\n{}",
            sock.display(),
            reporter(&out)
        ),
    );
    let svcd = dir.start();
    let got = report(&out);
    let pid = svcd.status("app")["pid"].as_u64().expect("a pid");
    assert_eq!(got["pid"], pid.to_string(), "{got:?}");
    assert_eq!(got["LISTEN_PID"], pid.to_string(), "{got:?}");
    assert_eq!(got["LISTEN_FDS"], "2", "{got:?}");
    assert_eq!(
        got["LISTEN_FDNAMES"],
        format!("127.0.0.1_{port}:unix_{}", sock.display()),
        "{got:?}"
    );
    assert!(
        got["fd3"].starts_with("True ") && got["fd3"].ends_with(&format!("('127.0.0.1', {port})")),
        "{got:?}"
    );
    assert!(
        got["fd4"].starts_with("True ") && got["fd4"].ends_with(&sock.display().to_string()),
        "{got:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(&sock)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Not the unit's own: svcd's, so a connection is accepted into the backlog at once.
    TcpStream::connect(("127.0.0.1", port)).expect("the held socket accepts");

    // A crash: the next run gets the very same sockets (same inodes).
    kill(pid as u32, 9);
    let again = report(&out);
    assert_ne!(again["pid"], got["pid"]);
    assert_eq!(again["LISTEN_PID"], again["pid"]);
    assert_eq!(again["fd3"], got["fd3"]);
    assert_eq!(again["fd4"], got["fd4"]);

    // svcd's exit closes them and removes the socket file it made.
    let mut svcd = svcd;
    assert!(svcd.signal_and_wait(15).success());
    assert!(!sock.exists(), "the Unix socket file outlived svcd");
}

#[test]
fn a_reload_rebinds_only_the_changed_addresses_and_removal_closes_them() {
    let dir = Dir::new();
    let (kept, dropped, added) = (free_port(), free_port(), free_port());
    let out = dir.path().join("report");
    let sock = dir.path().join("gone.sock");
    let unit = |ports: [u16; 2], unix: bool| {
        let unix = if unix {
            format!(", \"unix:{}\"", sock.display())
        } else {
            String::new()
        };
        format!(
            "listen = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"{unix}]\n{}",
            ports[0],
            ports[1],
            reporter(&out)
        )
    };
    dir.unit("app", &unit([kept, dropped], true));
    let svcd = dir.start();
    let before = report(&out);
    svcd.dir.unit("app", &unit([kept, added], false));
    svcd.svc_ok(&["reload"], 0);
    let after = report(&out);
    assert_eq!(after["LISTEN_FDS"], "2", "{after:?}");
    assert_eq!(
        after["fd3"], before["fd3"],
        "the unchanged address was bound again"
    );
    assert!(after["fd4"].ends_with(&format!("{added})")), "{after:?}");
    let refused = |port: u16| {
        TcpStream::connect(("127.0.0.1", port))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    };
    assert!(refused(dropped), "the dropped address is still held");
    assert!(
        !sock.exists(),
        "the dropped Unix socket's file is still there"
    );

    std::fs::remove_file(svcd.dir.units().join("app.toml")).expect("remove unit");
    svcd.svc_ok(&["reload"], 0);
    wait_until("the removed unit's sockets closed", DEADLINE, || {
        (refused(kept) && refused(added)).then_some(())
    });
}

#[test]
fn a_bind_conflict_fails_only_that_unit_and_says_why() {
    let dir = Dir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    dir.unit(
        "clash",
        &format!(
            "exec = [\"sleep\", \"1000\"]\nlisten = [\"127.0.0.1:{port}\"]\n[restart]\npolicy = \"never\"\n"
        ),
    );
    dir.unit("other", "exec = [\"sleep\", \"1000\"]\n");
    let svcd = dir.start();
    svcd.wait_for("clash", "failed");
    svcd.wait_for("other", "running");
    let status = svcd.status("clash");
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("cannot listen on 127.0.0.1:{port}")) && reason.contains("in use"),
        "{status}"
    );
    // Once the port is free, a start binds it.
    drop(taken);
    svcd.svc_ok(&["start", "clash"], 0);
}

/// A tiny HTTP server on the socket of fd 3 (Python's http.server cannot take one by itself):
/// answers every GET with its pid.
pub(crate) const FD3_SERVER: &str = "exec = [\"python3\", \"-c\", \"\"\"\n\
import http.server, os, socket\n\
class Server(http.server.ThreadingHTTPServer):\n    daemon_threads = False\n    def server_bind(self): pass\n    def server_activate(self): pass\n\
class Handler(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = str(os.getpid()).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\n    def log_message(self, *args): pass\n\
server = Server(('127.0.0.1', 0), Handler, bind_and_activate=False)\n\
server.socket.close()\n\
server.socket = socket.socket(fileno=3)\n\
server.serve_forever()\n\"\"\"]\n";

/// What a load of HTTP requests saw.
#[derive(Debug, Default)]
pub struct Load {
    pub ok: usize,
    /// Connections refused: nobody was listening.
    pub refused: usize,
    /// Accepted, then no full answer (the server died with the request in hand).
    pub failed: usize,
    /// Each successful request's time.
    pub latencies: Vec<Duration>,
    /// What the first failures were (an error, or the start of the answer), for the message.
    pub why: Vec<String>,
}

/// Sends `GET /` to `addr` at about `rate` per second from one thread until `stop`; `served`
/// counts the answers as they come.
pub fn load(
    addr: SocketAddr,
    rate: u32,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Load> {
    std::thread::spawn(move || {
        let mut load = Load::default();
        let gap = Duration::from_secs(1) / rate;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match get(addr) {
                Ok(true) => {
                    load.ok += 1;
                    served.fetch_add(1, Ordering::Relaxed);
                    load.latencies.push(started.elapsed());
                }
                Ok(false) => {
                    load.failed += 1;
                    load.why
                        .push(format!("not a 200 answer after {:?}", started.elapsed()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => load.refused += 1,
                Err(e) => {
                    load.failed += 1;
                    load.why.push(format!("{e} after {:?}", started.elapsed()));
                }
            }
            next += gap;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            } else {
                next = Instant::now();
            }
        }
        load
    })
}

/// One request; `Ok(true)` for a 200 answer.
fn get(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"))
}

#[test]
fn no_connection_is_refused_across_kill_9_of_the_server() {
    let dir = Dir::new();
    let port = free_port();
    dir.unit(
        "web",
        &format!(
            "listen = [\"127.0.0.1:{port}\"]\n{FD3_SERVER}[restart]\npolicy = \"always\"\ndelay = \"0s\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("web", "running");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let load = load(addr, 200, stop.clone(), served.clone());
    for _ in 0..3 {
        let pid = svcd.status("web")["pid"].as_u64().expect("a pid");
        under_load(&served, 40);
        kill(pid as u32, 9);
        svcd.wait_status("web", "a new run", |s| {
            s["pid"].as_u64().is_some_and(|p| p != pid) && s["state"] == "running"
        });
    }
    under_load(&served, 40);
    stop.store(true, Ordering::Relaxed);
    let load = load.join().expect("load thread");
    eprintln!(
        "across 3 kill -9: {load:?}",
        load = (load.ok, load.refused, load.failed)
    );
    assert_eq!(
        load.refused,
        0,
        "{:?}",
        (load.ok, load.refused, load.failed)
    );
    assert!(load.ok > 100, "{:?}", (load.ok, load.refused, load.failed));
}

/// Waits until `count` more requests were served.
pub fn under_load(served: &AtomicUsize, count: usize) {
    let from = served.load(Ordering::Relaxed);
    wait_until("requests served", DEADLINE, || {
        (served.load(Ordering::Relaxed) >= from + count).then_some(())
    });
}

#[test]
fn a_symlink_planted_at_a_unix_socket_path_is_neither_followed_nor_removed() {
    let dir = Dir::new();
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me").expect("write target");
    let sock = dir.path().join("app.sock");
    std::os::unix::fs::symlink(&target, &sock).expect("symlink");
    dir.unit(
        "app",
        &format!(
            "exec = [\"sleep\", \"1000\"]\nlisten = [\"unix:{}\"]\n[restart]\npolicy = \"never\"\n",
            sock.display()
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("app", "failed");
    let status = svcd.status("app");
    let reason = status["last_exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not a socket"), "{status}");
    assert!(std::fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_symlink()));
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep me");
}

/// [`FD3_SERVER`] with the overlap's needs: ready by sd_notify once it serves (a TCP check
/// through the shared socket could be answered by the old run), and on SIGTERM it stops
/// accepting, finishes what it has (its request threads are joined: Python's own
/// ThreadingHTTPServer makes them daemons, which its exit cut off mid-answer, failing one
/// request in eight runs under load), then lingers until `release` exists (so that both runs
/// are seen). It exits 1 at once, never ready, while `broken` exists.
fn overlap_server(release: &std::path::Path, broken: &std::path::Path) -> String {
    format!(
        "exec = [\"python3\", \"-c\", \"\"\"\n\
import http.server, os, signal, socket, threading, time\n\
if os.path.exists('{broken}'):\n    raise SystemExit(1)\n\
class Server(http.server.ThreadingHTTPServer):\n    daemon_threads = False\n    def server_bind(self): pass\n    def server_activate(self): pass\n\
class Handler(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = str(os.getpid()).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\n    def log_message(self, *args): pass\n\
server = Server(('127.0.0.1', 0), Handler, bind_and_activate=False)\n\
server.socket.close()\n\
server.socket = socket.socket(fileno=3)\n\
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())\n\
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
notify.connect(os.environ['NOTIFY_SOCKET'])\n\
notify.send(b'READY=1')\n\
server.serve_forever(poll_interval=0.05)\n\
server.server_close()\n\
while not os.path.exists('{release}'):\n    time.sleep(0.05)\n\
\"\"\"]\n\
[ready]\nnotify = true\ntimeout = \"10s\"\n\
[restart]\noverlap = true\n",
        release = release.display(),
        broken = broken.display()
    )
}

#[test]
fn no_request_fails_across_overlapping_restarts_and_a_failed_one_keeps_the_old_run() {
    let dir = Dir::new();
    let port = free_port();
    let release = dir.path().join("release");
    let broken = dir.path().join("broken");
    dir.unit(
        "web",
        &format!(
            "listen = [\"127.0.0.1:{port}\"]\n{}",
            overlap_server(&release, &broken)
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("web", "ready");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let load = load(addr, 200, stop.clone(), served.clone());
    under_load(&served, 40);

    // Both runs while they overlap: the old one lingers until released.
    let first = svcd.status("web")["pid"].as_u64().expect("a pid");
    svcd.svc_ok(&["restart", "web"], 0);
    let status = svcd.status("web");
    assert_eq!(status["old_pid"].as_u64(), Some(first), "{status}");
    let second = status["pid"].as_u64().expect("a pid");
    assert_ne!(second, first);
    assert!(
        svcd.svc_ok(&["status", "web"], 0)
            .contains(&format!("old run, {first}"))
    );
    std::fs::write(&release, "").expect("release");
    svcd.wait_status("web", "the old run gone", |s| s["old_pid"].is_null());
    under_load(&served, 40);

    for _ in 0..3 {
        svcd.svc_ok(&["restart", "web"], 0);
        under_load(&served, 40);
    }

    // A new run that never becomes ready: the restart fails, the old run serves on.
    let serving = svcd.status("web")["pid"].as_u64().expect("a pid");
    std::fs::write(&broken, "").expect("break");
    let out = svcd.svc(&["restart", "web"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("restart failed"), "{stderr}");
    let status = svcd.status("web");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["pid"].as_u64(), Some(serving), "{status}");
    under_load(&served, 40);

    stop.store(true, Ordering::Relaxed);
    let load = load.join().expect("load thread");
    let seen = (load.ok, load.refused, load.failed);
    eprintln!("across 5 overlapping restarts (one failed): {seen:?}");
    assert_eq!(
        (load.refused, load.failed),
        (0, 0),
        "{seen:?}: {:?}",
        load.why
    );
}
