//! The README's demo end to end, with the real node and nginx: the chat server of
//! `contrib/chat/` behind the nginx of `contrib/nginx/`, run by svcd from `units/chat.toml` and
//! `units/proxy.toml` (copies with free ports: the shipped files stay the source of truth).
//! Skipped, with a note saying why, where node or nginx is not installed (CI installs both).

use crate::util::{DEADLINE, Dir, children, kill, svc_check, wait_until};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn chat_behind_nginx_survives_a_crash_reloads_and_stops_in_order() {
    let missing: Vec<&str> = ["node", "nginx"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    if !missing.is_empty() {
        crate::util::skip(&format!(
            "{} not installed (apt-get install nginx nodejs)",
            missing.join(" and ")
        ));
        return;
    }
    let dir = Dir::new();
    let (chat_port, proxy_port) = free_ports();
    write_units(&dir, chat_port, proxy_port);
    let mut svcd = dir.start();
    svcd.wait_for("proxy", "running");
    let chat = svcd.status("chat");
    assert_eq!(chat["state"], "running", "{chat}");
    // `user_if_root`: as root, svcd runs the chat server as www-data; otherwise as itself.
    let chat_uid = chat["pid"]
        .as_u64()
        .and_then(|pid| uid_of(pid).ok())
        .expect("the chat server's uid");
    let expected = if nix::unistd::Uid::effective().is_root() {
        passwd_uid("www-data").expect("www-data in /etc/passwd (Debian has it)")
    } else {
        nix::unistd::Uid::effective().as_raw()
    };
    assert_eq!(chat_uid, expected, "{chat}");
    // proxy wants chat: it was spawned only once chat listened (chat's first line came first).
    let out = svcd.stdout();
    let chat_first = out.find(&format!("chat | open http://127.0.0.1:{proxy_port}/"));
    let proxy_first = out.find("proxy | ");
    assert!(
        chat_first.is_some() && chat_first < proxy_first,
        "svcd's output:\n{out}"
    );

    // The page, through nginx.
    let (status, page) = request(proxy_port, "GET", "/", None).expect("GET / through nginx");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<title>chat</title>"), "{page}");

    // A message posted through nginx reaches a listening event stream, also through nginx.
    let listener = EventStream::open(proxy_port);
    post_and_receive(proxy_port, &listener, "hello through nginx");

    // kill -9 of the chat server: nginx stays (same pid), chat is back, clients get through.
    let proxy_pid = svcd.status("proxy")["pid"].as_u64();
    let chat_pid = chat["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    let killed = Instant::now();
    kill(chat_pid.expect("chat's pid"), 9);
    let downtime = wait_for_health(proxy_port);
    eprintln!(
        "downtime after kill -9 of the chat server: {} ms (until nginx answered /health with 200)",
        downtime.as_millis()
    );
    listener.wait_end();
    let proxy = svcd.status("proxy");
    assert_eq!(proxy["pid"].as_u64(), proxy_pid, "{proxy}");
    assert_eq!(proxy["restarts"], 0, "{proxy}");
    assert_eq!(proxy["state"], "running", "{proxy}");
    let chat = svcd.wait_status("chat", "chat back after kill -9", |s| {
        s["state"] == "running" && s["restarts"] == 1
    });
    assert_ne!(chat["pid"].as_u64(), chat_pid.map(u64::from), "{chat}");
    let listener = EventStream::open(proxy_port);
    post_and_receive(proxy_port, &listener, "hello again");
    let killed_to_back = killed.elapsed();
    assert!(killed_to_back >= downtime);
    // An open stream would hold nginx's graceful stop (and reload) up to its
    // worker_shutdown_timeout.
    listener.close();

    // `svc reload proxy`: SIGHUP to nginx's master, which re-reads its config and replaces its
    // workers; the master stays, and requests still get through.
    let master = u32::try_from(proxy_pid.expect("proxy's pid")).expect("a pid");
    let old_workers = wait_until("nginx's workers", DEADLINE, || {
        Some(children(master)).filter(|w| !w.is_empty())
    });
    let out = svcd.svc_ok(&["reload", "proxy"], 0);
    assert!(out.contains("reloaded proxy: SIGHUP sent"), "{out}");
    let new_workers = wait_until("nginx's new workers", DEADLINE, || {
        let now = children(master);
        (!now.is_empty() && now.iter().all(|w| !old_workers.contains(w))).then_some(now)
    });
    eprintln!("nginx reloaded: workers {old_workers:?} → {new_workers:?}");
    let proxy = svcd.status("proxy");
    assert_eq!(proxy["pid"].as_u64(), proxy_pid, "{proxy}");
    assert_eq!(proxy["last_reload"]["ok"], true, "{proxy}");
    let (status, page) = request(proxy_port, "GET", "/", None).expect("GET / after the reload");
    assert_eq!(status, 200, "{page}");

    // SIGTERM to svcd: nginx is stopped before the chat server is signalled. svcd drains a
    // unit's output when it reaps its exit, before it acts on it: every line of nginx, down to
    // its master's last words, comes before the chat server's answer to its SIGTERM.
    let status = svcd.signal_and_wait(15);
    assert!(status.success(), "svcd: {status}\n{}", svcd.stderr());
    let out = svcd.stdout();
    let proxy_last = out.rfind("proxy | ");
    let chat_signalled = out.find("chat | SIGTERM: ending");
    assert!(
        proxy_last.is_some() && chat_signalled.is_some() && proxy_last < chat_signalled,
        "nginx's last line at {proxy_last:?}, the chat server's SIGTERM at {chat_signalled:?}:\n{out}"
    );
    assert!(out[proxy_last.unwrap_or(0)..].contains("exit"), "{out}");
    let chat_log =
        std::fs::read_to_string(svcd.dir.path().join("state/logs/chat.log")).expect("chat's log");
    assert!(chat_log.contains("closed; exiting"), "{chat_log}");
}

#[test]
fn the_shipped_units_are_valid() {
    let out = svc_check(&Path::new(REPO).join("units"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok: chat") && stdout.contains("ok: proxy"),
        "{stdout}"
    );
}

/// Copies of the shipped units with the test's ports, the repository as workdir, and nginx's
/// config and prefix in the test's dir. Every replacement must apply: a change of the shipped
/// files that this copy no longer matches fails here, not in a confusing way later.
fn write_units(dir: &Dir, chat_port: u16, proxy_port: u16) {
    let chat_addr = format!("127.0.0.1:{chat_port}");
    let proxy_addr = format!("127.0.0.1:{proxy_port}");
    let repo = format!("workdir = {:?}", REPO);
    let chat = shipped("units/chat.toml");
    // As root the server runs as www-data, which may not read the checkout (a clone under
    // /root): it runs from a copy that anyone may read, as a deployment would put it in /srv.
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("contrib/chat")).expect("app dir");
    for file in ["server.js", "index.html"] {
        let from = Path::new(REPO).join("contrib/chat").join(file);
        std::fs::copy(from, app.join("contrib/chat").join(file)).expect("copy the chat server");
    }
    let readable = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path(), readable).expect("chmod the test dir");
    let app_workdir = format!("workdir = {:?}", app.display().to_string());
    let chat = replace(&chat, "127.0.0.1:3000", &chat_addr);
    let chat = replace(&chat, "127.0.0.1:8080", &proxy_addr);
    let chat = replace(&chat, "PORT = \"3000\"", &format!("PORT = \"{chat_port}\""));
    let chat = replace(&chat, "workdir = \"..\"", &app_workdir);
    dir.unit("chat", &chat);

    let conf = shipped("contrib/nginx/nginx.conf");
    let conf = replace(&conf, "127.0.0.1:3000", &chat_addr);
    let conf = replace(&conf, "127.0.0.1:8080", &proxy_addr);
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let prefix = dir.path().join("nginx");
    let proxy = shipped("units/proxy.toml");
    let proxy = replace(&proxy, "127.0.0.1:8080", &proxy_addr);
    let proxy = replace(&proxy, "workdir = \"..\"", &repo);
    let proxy = replace(
        &proxy,
        "\"target/proxy\"",
        &format!("{:?}", prefix.display().to_string()),
    );
    let proxy = replace(
        &proxy,
        "\"contrib/nginx/nginx.conf\"",
        &format!("{:?}", conf_path.display().to_string()),
    );
    dir.unit("proxy", &proxy);
}

/// The real uid of process `pid`, from /proc/PID/status.
fn uid_of(pid: u64) -> Result<u32, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| format!("no Uid line in {status}"))
}

/// `name`'s uid in /etc/passwd.
fn passwd_uid(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name)).then(|| fields.get(2)?.parse().ok())?
    })
}

fn shipped(path: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(path)).expect("a shipped file")
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not found in:\n{text}");
    text.replace(from, to)
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &PathBuf) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Two distinct ports that were free a moment ago (bound to port 0 together, read, closed).
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let (first, second) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&first), port(&second))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    Ok(stream)
}

/// One HTTP/1.1 request on its own connection: the status and the whole response.
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = connect(port)?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, response))
}

/// Polls nginx's `/health` (the chat server's, proxied) until it answers 200: the time taken.
fn wait_for_health(port: u16) -> Duration {
    let start = Instant::now();
    loop {
        if matches!(request(port, "GET", "/health", None), Ok((200, _))) {
            return start.elapsed();
        }
        assert!(start.elapsed() < DEADLINE, "chat not back through nginx");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn post_and_receive(port: u16, listener: &EventStream, text: &str) {
    let body = format!("{{\"name\":\"test\",\"text\":{text:?}}}");
    let (status, response) = request(port, "POST", "/messages", Some(&body)).expect("POST");
    assert_eq!(status, 204, "{response}");
    let line = listener.wait_line(&format!("\"text\":{text:?}"));
    assert!(line.starts_with("data: {"), "{line}");
}

/// An open `GET /events`, read line by line by a thread of its own.
struct EventStream {
    lines: Receiver<String>,
    stream: TcpStream,
}

impl EventStream {
    /// Opens the stream and waits until the server sent its first line (`retry: ...`).
    fn open(port: u16) -> EventStream {
        let mut stream = connect(port).expect("connect for /events");
        write!(
            stream,
            "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("GET /events");
        let reader = stream.try_clone().expect("clone the stream");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let events = EventStream { lines, stream };
        events.wait_line("retry: ");
        events
    }

    /// The first line (from now on) that contains `what`.
    fn wait_line(&self, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with `{what}` on the event stream: {e}"),
            }
        }
    }

    /// Waits until the server ended the stream.
    fn wait_end(&self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => panic!("the event stream did not end"),
            }
        }
    }

    fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
