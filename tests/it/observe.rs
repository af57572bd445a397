//! `svc metrics`, `svc events`, completions: what an operator sees at a glance.

use crate::util::*;
use std::process::{Command, Stdio};

/// The value of the sample `series` (name with labels, as printed) in `text`.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

/// Runs `promtool check metrics` on `text`; `None` (said on stderr) where promtool is not
/// installed (`.ci/run` installs it).
fn promtool(text: &str) -> Option<std::process::Output> {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED: promtool is not installed; the metrics text was not validated");
        return None;
    };
    let mut stdin = child.stdin.take()?;
    stdin.write_all(text.as_bytes()).expect("write to promtool");
    drop(stdin);
    Some(child.wait_with_output().expect("promtool"))
}

/// Fails unless `promtool check metrics` accepts `text` (where promtool is installed).
fn promtool_accepts(text: &str) {
    if let Some(out) = promtool(text) {
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn metrics_show_each_unit_and_pass_promtool() {
    let svcd = Dir::new()
        .with("web", "exec = [\"sleep\", \"1000\"]\n")
        .with(
            "job",
            "exec = [\"sh\", \"-c\", \"exit 3\"]\n[restart]\npolicy = \"never\"\n",
        )
        .start();
    svcd.wait_for("web", "running");
    svcd.wait_for("job", "failed");
    // Memory is sampled: read in the instant between web's spawn and its exec, it counts 0.
    svcd.wait_status("web", "web's memory counted", |s| {
        s["memory"]["rss"].as_u64().is_some_and(|rss| rss > 0)
    });
    let text = svcd.svc_ok(&["metrics"], 0);
    for (series, value) in [
        ("svc_unit_state{unit=\"web\",state=\"running\"}", "1"),
        ("svc_unit_state{unit=\"web\",state=\"failed\"}", "0"),
        ("svc_unit_state{unit=\"job\",state=\"failed\"}", "1"),
        ("svc_unit_ready{unit=\"web\"}", "1"),
        ("svc_unit_last_exit_code{unit=\"job\"}", "3"),
        ("svc_unit_starts_total{unit=\"web\"}", "1"),
        ("svc_unit_restarts_total{unit=\"job\"}", "0"),
    ] {
        assert_eq!(
            sample(&text, series).as_deref(),
            Some(value),
            "{series} in {text}"
        );
    }
    let rss: u64 = sample(&text, "svc_unit_memory_rss_bytes{unit=\"web\"}")
        .and_then(|v| v.parse().ok())
        .expect("web's rss");
    assert!(rss > 0, "{text}");
    for name in [
        "svc_host_memory_total_bytes",
        "svcd_resident_memory_bytes",
        "svcd_open_fds",
    ] {
        let value: u64 = sample(&text, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"));
        assert!(value > 0, "{name}");
    }
    promtool_accepts(&text);
}

/// `GET path` on `address`: the status line and the body.
fn http_get(address: &str, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to metrics");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

#[test]
fn metrics_are_served_over_http_on_the_configured_address_only_at_slash_metrics() {
    let dir = Dir::new().with("web", "exec = [\"sleep\", \"1000\"]\n");
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("svcd.toml");
    let svcd = dir.start();
    svcd.wait_for("web", "running");
    // Port 0: the kernel picked one; svcd says which.
    let address = wait_until("svcd to say where metrics are", DEADLINE, || {
        let err = svcd.stderr();
        let at = err.find("metrics served on http://")? + "metrics served on http://".len();
        let rest = &err[at..];
        Some(rest[..rest.find("/metrics")?].to_string())
    });
    let (status, body) = http_get(&address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(
        sample(&body, "svc_unit_state{unit=\"web\",state=\"running\"}").as_deref(),
        Some("1"),
        "{body}"
    );
    promtool_accepts(&body);
    let (status, _) = http_get(&address, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(&address, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let (status, _) = http_get(&address, &huge);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    // Still serving after all that.
    let (status, _) = http_get(&address, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// `svc events --json` running on `svcd`, its lines collected as they come.
struct Events {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Events {
    fn start(svcd: &Svcd) -> Events {
        use std::io::BufRead;
        let socket = svcd.dir.path().join("state/svcd.sock");
        let mut child = Command::new(SVC)
            .arg("--socket")
            .arg(&socket)
            .args(["events", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("svc events");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let value = serde_json::from_str(&line).expect("a JSON line");
                sink.lock().expect("lines").push(value);
            }
        });
        Events { child, lines }
    }

    /// [`Events::start`], once it is subscribed: restarts `unit` until a change shows.
    fn subscribed(svcd: &Svcd, unit: &str) -> Events {
        let events = Events::start(svcd);
        wait_until("svc events to see a restart", DEADLINE, || {
            svcd.svc_ok(&["restart", unit], 0);
            (!events.states(unit).is_empty()).then_some(())
        });
        events
    }

    /// The `new` states of `unit`'s events so far.
    fn states(&self, unit: &str) -> Vec<String> {
        let lines = self.lines.lock().expect("lines");
        lines
            .iter()
            .filter(|e| e["unit"] == unit)
            .filter_map(|e| e["new"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_show_a_crash_then_backoff_then_running_in_order() {
    let svcd = Dir::new()
        .with("web", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("web", "running");
    let events = Events::subscribed(&svcd, "web");
    svcd.wait_for("web", "running");
    // The restart's own `running` may reach the reader after status says running: counted
    // before the crash, it is not taken for the crash's (the test once saw only ["running"]).
    let before = wait_until("the restart's running among the events", DEADLINE, || {
        let states = events.states("web");
        (states.last().map(String::as_str) == Some("running")).then_some(states.len())
    });
    let pid = svcd.status("web")["pid"].as_u64().expect("pid") as u32;
    kill(pid, 9);
    let states = wait_until("backoff then running", DEADLINE, || {
        let states = events.states("web")[before..].to_vec();
        states.iter().any(|s| s == "running").then_some(states)
    });
    let backoff = states.iter().position(|s| s == "backoff");
    let running = states.iter().position(|s| s == "running");
    assert!(backoff.is_some() && backoff < running, "{states:?}");
    let lines = events.lines.lock().expect("lines").clone();
    let crash = lines
        .iter()
        .find(|e| e["new"] == "backoff")
        .expect("the backoff event");
    assert_eq!(crash["old"], "running", "{crash}");
    assert!(
        crash["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{crash}"
    );
    assert!(
        !crash["reason"].as_str().unwrap_or_default().is_empty(),
        "{crash}"
    );
}

#[test]
fn events_end_when_svcd_exits() {
    let mut svcd = Dir::new()
        .with("web", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("web", "running");
    let mut events = Events::subscribed(&svcd, "web");
    svcd.signal_and_wait(15);
    let status = wait_until("svc events to end", DEADLINE, || {
        events.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status}");
    // The stop svcd's shutdown made was sent before the end (the reader thread may still be
    // taking the last lines when the command has exited).
    wait_until("the stop among the events", DEADLINE, || {
        events
            .states("web")
            .iter()
            .any(|s| s == "inactive")
            .then_some(())
    });
}

#[test]
fn status_and_metrics_show_a_busy_units_cpu_time() {
    let svcd = Dir::new()
        .with("busy", "exec = [\"sh\", \"-c\", \"while :; do :; done\"]\n")
        .start();
    svcd.wait_for("busy", "running");
    wait_until("busy to have used CPU", DEADLINE, || {
        let cpu = svcd.status("busy")["cpu"].as_f64()?;
        (cpu >= 0.05).then_some(())
    });
    let human = svcd.svc_ok(&["status", "busy"], 0);
    assert!(human.contains("       CPU: "), "{human}");
    let text = svcd.svc_ok(&["metrics"], 0);
    let cpu: f64 = sample(&text, "svc_unit_cpu_seconds_total{unit=\"busy\"}")
        .and_then(|v| v.parse().ok())
        .expect("the cpu sample");
    assert!(cpu >= 0.05, "{text}");
}
