//! Unit logs: capture with stream stamps, the last words of a crash, rotation, `svc logs`.

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn log_text(svcd: &Svcd, name: &str) -> String {
    std::fs::read_to_string(svcd.dir.path().join(format!("state/logs/{name}.log")))
        .unwrap_or_default()
}

/// The `TIME STREAM TEXT` lines the unit `name` printed (not svcd's) as (stream, text).
fn log_lines(svcd: &Svcd, name: &str) -> Vec<(String, String)> {
    log_text(svcd, name)
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let time = parts.next().unwrap_or_default();
            assert!(
                time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                "not an RFC 3339 stamp: {line:?}"
            );
            let stream = parts.next().unwrap_or_default().to_string();
            (stream, parts.next().unwrap_or_default().to_string())
        })
        .filter(|(stream, _)| stream != "svcd")
        .collect()
}

#[test]
fn stdout_and_stderr_are_captured_with_their_stream() {
    let svcd = Dir::new()
        .with(
            "talk",
            "exec = '''sh -c 'echo to out; echo to err >&2; sleep 1000' '''\n",
        )
        .start();
    let lines = wait_until("both lines in the log", DEADLINE, || {
        let lines = log_lines(&svcd, "talk");
        (lines.len() >= 2).then_some(lines)
    });
    assert!(
        lines.contains(&("out".into(), "to out".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("err".into(), "to err".into())),
        "{lines:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let logs = svcd.dir.path().join("state/logs");
    let dir_mode = std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o750);
    let file_mode = std::fs::metadata(logs.join("talk.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(file_mode & 0o007, 0, "logs are not world readable");
    // Still on svcd's stdout, as `name | line`.
    wait_until("lines on svcd's stdout", DEADLINE, || {
        let out = svcd.stdout();
        (out.contains("talk | to out") && out.contains("talk | to err")).then_some(())
    });
}

#[test]
fn the_last_words_of_a_crash_are_in_the_log_and_status() {
    let svcd = Dir::new()
        .with(
            "crash",
            "exec = '''sh -c 'echo starting; echo dying words >&2; exit 1' '''\n\
             [restart]\npolicy = \"never\"\n",
        )
        .start();
    svcd.wait_for("crash", "failed");
    // The exit is published only after the pipes were drained: no waiting for the lines.
    let status = svcd.status("crash");
    let logs: Vec<&str> = status["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no logs in {status}"))
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l.ends_with(" err dying words")),
        "{status}"
    );
    assert!(log_text(&svcd, "crash").contains(" err dying words\n"));
    let human = svcd.svc_ok(&["status", "crash"], 3);
    assert!(human.contains("err dying words"), "{human}");
}

#[test]
fn status_shows_the_last_ten_lines() {
    let svcd = Dir::new()
        .with(
            "count",
            "exec = '''sh -c 'for i in $(seq 1 25); do echo line $i; done; sleep 1000' '''\n",
        )
        .start();
    let status = svcd.wait_status("count", "line 25 in status", |s| {
        s["logs"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|l| l.as_str())
            .is_some_and(|l| l.ends_with("out line 25"))
    });
    let logs = status["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 10, "{status}");
    assert!(
        logs[0].as_str().unwrap().ends_with("out line 16"),
        "{status}"
    );
}

#[test]
fn rotation_bounds_each_file_and_their_number() {
    let svcd = Dir::new()
        .with(
            "flood",
            "exec = '''sh -c 'seq 1 3000; echo done; sleep 1000' '''\n\
             [log]\nmax_size = \"4K\"\nkeep = 2\n",
        )
        .start();
    wait_until("the last line", DEADLINE, || {
        log_text(&svcd, "flood")
            .contains(" out done\n")
            .then_some(())
    });
    let logs = svcd.dir.path().join("state/logs");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["flood.log", "flood.log.1", "flood.log.2"]);
    for name in &names {
        let len = std::fs::metadata(logs.join(name)).unwrap().len();
        assert!(len <= 4096, "{name} is {len} bytes");
    }
    // The newest lines are kept, in order across the files.
    let older = std::fs::read_to_string(logs.join("flood.log.1")).unwrap();
    let last_old: u32 = older
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let newest = log_lines(&svcd, "flood");
    assert_eq!(newest[0].1, (last_old + 1).to_string(), "{newest:?}");
}

#[test]
fn logs_prints_the_last_lines_of_several_units_by_time() {
    let svcd = Dir::new()
        .with(
            "a",
            "exec = '''sh -c 'for i in 1 2 3 4 5; do echo a$i; done; sleep 1000' '''\n",
        )
        .with("b", "exec = '''sh -c 'echo b1 >&2; sleep 1000' '''\n")
        .start();
    wait_until("both logs", DEADLINE, || {
        (log_text(&svcd, "a").contains("a5") && log_text(&svcd, "b").contains("b1")).then_some(())
    });
    let out = svcd.svc_ok(&["logs", "a", "-n", "2"], 0);
    let texts: Vec<&str> = out.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(texts, ["a4", "a5"], "{out}");
    assert!(
        out.lines().all(|l| l.split(' ').nth(1) == Some("out")),
        "{out}"
    );
    let out = svcd.svc_ok(&["logs", "a", "b", "-n", "100"], 0);
    // The units' 6 lines, and svcd's line about each start.
    let svcd_lines = out.lines().filter(|l| l.contains(" svcd running, pid "));
    assert_eq!((out.lines().count(), svcd_lines.count()), (8, 2), "{out}");
    assert!(out.contains(" b err b1\n"), "{out}");
    let times: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "interleaved by time: {out}");
    let out = svcd.svc(&["logs", "a", "nope"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn follow_goes_on_across_rotation_and_restart() {
    let dir = Dir::new();
    let go = dir.path().join("go");
    dir.unit(
        "chatty",
        &format!(
            "exec = '''sh -c 'echo run; while [ ! -e {go} ]; do sleep 0.05; done; seq 1 400; echo batch done; sleep 1000' '''\n\
             [log]\nmax_size = \"1K\"\nkeep = 1\n",
            go = go.display()
        ),
    );
    let svcd = dir.start();
    wait_until("the first line", DEADLINE, || {
        log_text(&svcd, "chatty")
            .contains(" out run\n")
            .then_some(())
    });
    let mut child = Command::new(SVC)
        .arg("--socket")
        .arg(&svcd.socket)
        .args(["logs", "-f", "-n", "1", "chatty"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("svc logs -f");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect = |what: &str| {
        let start = std::time::Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) if line.ends_with(what) => return,
                Ok(_) => continue,
                Err(e) => panic!("no `{what}` from svc logs -f: {e}"),
            }
        }
    };
    expect(" out run");
    std::fs::write(&go, "").unwrap();
    expect(" out 400");
    expect(" out batch done");
    // 400 lines of ~30 bytes went through 1K files: rotated many times.
    assert!(svcd.dir.path().join("state/logs/chatty.log.1").exists());
    std::fs::remove_file(&go).unwrap();
    svcd.svc_ok(&["restart", "chatty"], 0);
    expect(" out run");
    std::fs::write(&go, "").unwrap();
    expect(" out batch done");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_broken_log_dir_is_reported_and_recovered() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    // A file where the log directory should be: nothing can be written.
    std::fs::write(dir.path().join("state/logs"), "in the way").unwrap();
    let go = dir.path().join("go");
    dir.unit(
        "tick",
        &format!(
            "exec = '''sh -c 'echo first; while [ ! -e {go} ]; do sleep 0.05; done; while true; do echo tick; sleep 0.1; done' '''\n",
            go = go.display()
        ),
    );
    let svcd = dir.start();
    // svcd's own line about the start may meet the error before the unit's first line does.
    let status = svcd.wait_status("tick", "a log error and the first line", |s| {
        s["log_error"].is_string()
            && s["logs"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|l| l.as_str().unwrap_or("").ends_with("out first"))
            })
    });
    assert!(
        status["log_error"]
            .as_str()
            .unwrap()
            .contains("cannot create the log directory"),
        "{status}"
    );
    // The ring and svcd's stdout still get the lines; the unit runs on.
    let lines = status["logs"].as_array().cloned().unwrap_or_default();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap_or("").ends_with("out first")),
        "{status}"
    );
    assert_eq!(status["state"], "running");
    let human = svcd.svc_ok(&["status", "tick"], 0);
    assert!(human.contains("Log file: cannot create"), "{human}");
    std::fs::remove_file(svcd.dir.path().join("state/logs")).unwrap();
    std::fs::write(&go, "").unwrap();
    svcd.wait_status("tick", "the log error to clear", |s| {
        s["log_error"].is_null()
    });
    wait_until("ticks in the new log", DEADLINE, || {
        log_text(&svcd, "tick")
            .contains(" out tick\n")
            .then_some(())
    });
    assert!(
        svcd.stderr().contains("is writable again"),
        "{}",
        svcd.stderr()
    );
}

#[test]
fn a_stdout_nobody_reads_never_stalls_svcd() {
    // 4 MiB is far more than a pipe holds (64 KiB): a blocking copy to svcd's stdout would
    // stall svcd, the unit with it, and every answer.
    let svcd = Dir::new()
        .with(
            "loud",
            "exec = '''sh -c 'i=0; while [ $i -lt 40000 ]; do echo \"line $i 0123456789012345678901234567890123456789012345678901234567890123456789\"; i=$((i+1)); done; echo done' '''\n[restart]\npolicy = \"never\"\n",
        )
        .start_with_unread_stdout();
    svcd.wait_for("loud", "inactive");
    let status = svcd.status("loud");
    // The unit's last line, before svcd's about its exit.
    let lines = status["logs"].as_array().cloned().unwrap_or_default();
    let last = lines
        .iter()
        .rev()
        .filter_map(|l| l.as_str())
        .find(|l| !l.contains(" svcd "));
    assert!(last.is_some_and(|l| l.ends_with("out done")), "{status}");
    wait_until("svcd's warning about its stdout", DEADLINE, || {
        svcd.stderr()
            .contains("svcd's stdout is not being read")
            .then_some(())
    });
}

/// A flood written in one go is in the files whole: every line stamped, in order, none lost,
/// lines cut across reads joined again, a line longer than a read split at 16 KiB, and the
/// files rotated at line boundaries while it goes on.
#[test]
fn a_flood_is_captured_whole_stamped_and_rotated_at_line_boundaries() {
    const LONG: usize = 200_000;
    const PIECE: usize = 16 * 1024;
    let svcd = Dir::new()
        .with(
            "flood",
            &format!(
                "exec = '''sh -c 'seq 1 100000; head -c {LONG} /dev/zero | tr \"\\\\000\" x; echo; \
                 seq 100001 200000' '''\n[restart]\npolicy = \"never\"\n\
                 [log]\nmax_size = \"1M\"\nkeep = 30\n"
            ),
        )
        .start();
    svcd.wait_for("flood", "inactive");
    let logs = svcd.dir.path().join("state/logs");
    let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_string();
            let index = match name.strip_prefix("flood.log") {
                Some("") => 0,
                Some(rest) => rest.strip_prefix('.')?.parse().ok()?,
                None => return None,
            };
            Some((index, path))
        })
        .collect();
    // Oldest first.
    files.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    assert!(files.len() > 5, "rotated during the flood: {files:?}");
    let mut texts = Vec::new();
    let mut last_stamp = String::new();
    for (_, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.len() <= 1 << 20, "{path:?} is {} bytes", text.len());
        assert!(text.ends_with('\n'), "{path:?} ends in a line cut short");
        for line in text.lines() {
            let mut parts = line.splitn(3, ' ');
            let stamp = parts.next().unwrap_or_default();
            assert!(
                stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
                "not an RFC 3339 stamp: {line:.80}"
            );
            assert!(stamp >= last_stamp.as_str(), "{stamp} after {last_stamp}");
            last_stamp = stamp.to_string();
            if parts.next() == Some("out") {
                texts.push(parts.next().unwrap_or_default().to_string());
            }
        }
    }
    let mut expected: Vec<String> = (1..=100_000).map(|i| i.to_string()).collect();
    let long = "x".repeat(LONG);
    expected.extend(
        long.as_bytes()
            .chunks(PIECE)
            .map(|p| String::from_utf8_lossy(p).into()),
    );
    expected.extend((100_001..=200_000).map(|i| i.to_string()));
    assert_eq!(texts.len(), expected.len(), "lines lost or added");
    if let Some(at) = (0..texts.len()).find(|&at| texts[at] != expected[at]) {
        panic!(
            "line {at}: {:.40} instead of {:.40}",
            texts[at], expected[at]
        );
    }
}
