//! Scheduled units on real processes and the real clock: `every`, calendar firing, what status
//! and list show, skipping, persistent catch-up, `svc calendar` and `svc check`. Every wait is
//! for a condition (the run count, a state), never a fixed sleep.

use crate::util::*;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn schedule(status: &serde_json::Value) -> &serde_json::Value {
    &status["schedule"]
}

fn runs(status: &serde_json::Value) -> u64 {
    schedule(status)["runs"].as_u64().unwrap_or(0)
}

/// The seconds of an RFC 3339 time (`...:SS.mmmZ`), rounded to the nearest whole second.
fn rounded_seconds(time: &str) -> u64 {
    let secs: f64 = time
        .trim_end_matches('Z')
        .rsplit(':')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not RFC 3339: {time}"));
    (secs.round() as u64) % 60
}

fn calendar(args: &[&str]) -> std::process::Output {
    Command::new(SVC)
        .arg("calendar")
        .args(args)
        .output()
        .expect("svc calendar")
}

#[test]
fn an_every_unit_runs_again_and_again_and_not_at_boot() {
    let svcd = Dir::new()
        .with("tick", "exec = [\"true\"]\n[schedule]\nevery = \"1s\"\n")
        .with("later", "exec = [\"true\"]\n[schedule]\nevery = \"1h\"\n")
        .with(
            "off",
            "exec = [\"true\"]\nenabled = false\n[schedule]\nevery = \"1s\"\n",
        )
        .start();
    let later = svcd.status("later");
    assert_eq!(later["state"], "inactive", "{later}");
    assert_eq!(later["starts"], 0, "not started at boot: {later}");
    let next = schedule(&later)["next_run_secs"].as_f64().unwrap_or(0.0);
    assert!(next > 3500.0 && next <= 3600.0, "{later}");
    let status = svcd.wait_status("tick", "three runs", |s| runs(s) >= 3);
    assert!(
        status["logs"].to_string().contains("started by schedule"),
        "{status}"
    );
    let last = &schedule(&status)["last_run"];
    assert_eq!(last["code"], 0, "{status}");
    // `enabled = false` turns the schedule off: no run in the seconds `tick` ran three times.
    let off = svcd.status("off");
    assert_eq!(off["starts"], 0, "{off}");
    assert!(off["schedule"].is_null(), "{off}");
    // `svc status --check` passes a unit resting between runs.
    svcd.svc_ok(&["status", "--check"], 0);
}

#[test]
fn a_calendar_unit_fires_on_its_seconds() {
    let svcd = Dir::new()
        .with(
            "even",
            "exec = [\"true\"]\n[schedule]\ncalendar = \"*:*:0/2\"\ntimezone = \"UTC\"\n",
        )
        .start();
    let first = svcd.status("even");
    let next = schedule(&first)["next_run"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        rounded_seconds(&next) % 2,
        0,
        "due on an even second: {first}"
    );
    let status = svcd.wait_status("even", "two runs", |s| runs(s) >= 2);
    let start = schedule(&status)["last_run"]["start"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!start.is_empty(), "{status}");
    let next = schedule(&status)["next_run"].as_str().unwrap_or_default();
    assert_eq!(rounded_seconds(next) % 2, 0, "{status}");
}

#[test]
fn status_and_list_show_the_next_run_and_start_runs_it_now() {
    let svcd = Dir::new()
        .with(
            "backup",
            "description = \"nightly backup\"\nexec = [\"true\"]\n\
             [schedule]\ncalendar = [\"yearly\", \"*-*-* 03:00\"]\ntimezone = \"UTC\"\n",
        )
        .with("web", "exec = [\"sleep\", \"1000\"]\n")
        .start();
    svcd.wait_for("web", "running");
    let text = svcd.svc_ok(&["status", "backup"], 3);
    assert!(
        text.contains("Schedule: yearly; *-*-* 03:00 (overlap: skip)"),
        "{text}"
    );
    assert!(text.contains("Next run: "), "{text}");
    assert!(text.contains("Runs: 0 by schedule, 0 skipped"), "{text}");
    let list = svcd.svc_ok(&["list"], 0);
    let header = list.lines().next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "NAME",
            "STATE",
            "PID",
            "RESTARTS",
            "FOR",
            "NEXT",
            "DESCRIPTION"
        ],
        "{list}"
    );
    let backup = list
        .lines()
        .find(|l| l.starts_with("backup"))
        .unwrap_or_default();
    assert!(
        backup.contains('h') && backup.contains("nightly backup"),
        "{list}"
    );
    let web = list
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_default();
    assert!(web.contains(" - "), "no next run for a service: {list}");

    svcd.svc_ok(&["start", "backup", "--no-wait"], 0);
    let status = svcd.wait_status("backup", "the run by hand", |s| {
        s["state"] == "inactive" && s["starts"] == 1
    });
    assert_eq!(
        runs(&status),
        0,
        "a run by hand is not the schedule's: {status}"
    );
    assert!(schedule(&status)["next_run"].is_string(), "{status}");
}

#[test]
fn a_run_still_going_makes_the_next_ones_skip() {
    let dir = Dir::new();
    let release = dir.path().join("release");
    let unit = format!(
        "exec = [\"sh\", \"-c\", \"while [ ! -e '{}' ]; do sleep 0.05; done\"]\n\
         [schedule]\nevery = \"1s\"\n",
        release.display()
    );
    let svcd = dir.with("slow", &unit).start();
    let status = svcd.wait_status("slow", "two skipped runs", |s| {
        schedule(s)["skipped"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(runs(&status), 1, "{status}");
    let text = svcd.svc_ok(&["status", "slow"], 0);
    assert!(text.contains("Runs: 1 by schedule, "), "{text}");
    std::fs::write(&release, "").expect("release");
    let done = svcd.wait_status("slow", "the run to end", |s| {
        !s["schedule"]["last_run"].is_null()
    });
    assert_eq!(schedule(&done)["last_run"]["code"], 0, "{done}");
}

#[test]
fn a_persistent_unit_makes_up_a_run_missed_while_svcd_was_down() {
    let dir = Dir::new();
    let stamps = dir.path().join("state/schedule");
    std::fs::create_dir_all(&stamps).expect("stamps dir");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // As an earlier svcd left it: the last run two days ago, so a daily time was missed.
    let two_days_ago = now - 2 * 86_400;
    std::fs::write(stamps.join("prune"), format!("{two_days_ago}\n")).expect("stamp");
    let svcd = dir
        .with(
            "prune",
            "exec = [\"true\"]\n[schedule]\ncalendar = \"daily\"\npersistent = true\n",
        )
        .with(
            "fresh",
            "exec = [\"true\"]\n[schedule]\ncalendar = \"daily\"\npersistent = true\n",
        )
        .start();
    let status = svcd.wait_status("prune", "the missed run", |s| runs(s) == 1);
    assert!(status["schedule"]["next_run_secs"].as_f64().unwrap_or(0.0) > 0.0);
    let stamp = stamps.join("prune");
    let written: u64 = wait_until("the new stamp", DEADLINE, || {
        std::fs::read_to_string(&stamp)
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|&t| t >= now)
    });
    assert!(written <= now + 60, "{written}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stamp)
        .expect("stamp")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // A unit that never ran makes nothing up.
    let fresh = svcd.status("fresh");
    assert_eq!(runs(&fresh), 0, "{fresh}");
    assert_eq!(fresh["starts"], 0, "{fresh}");
}

#[test]
fn svc_calendar_shows_next_times_and_points_at_errors() {
    let out = calendar(&["Mon..Fri 09:00", "--timezone", "UTC", "-n", "5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Mon..Fri 09:00 (UTC)"), "{text}");
    assert!(
        text.contains("normalized: Mon..Fri *-*-* 09:00:00"),
        "{text}"
    );
    let times: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("09:00:00 UTC"))
        .collect();
    assert_eq!(times.len(), 5, "{text}");
    assert!(
        times
            .iter()
            .all(|l| !l.contains("Sat ") && !l.contains("Sun ")),
        "{text}"
    );

    let out = calendar(&["daily", "*-*-* 25:00", "--timezone", "UTC"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("daily (UTC)"),
        "the valid one is shown: {stdout}"
    );
    assert!(
        stderr.contains("column 7: hour 25 is out of range 0..23"),
        "{stderr}"
    );
    assert!(stderr.contains("\n  *-*-* 25:00\n        ^"), "{stderr}");

    let out = calendar(&["daily", "--timezone", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone"));
}

#[test]
fn svc_check_shows_due_times_and_locates_bad_expressions() {
    let dir = Dir::new();
    dir.unit(
        "good",
        "exec = [\"true\"]\n[schedule]\ncalendar = \"Sat,Sun 10:00\"\ntimezone = \"UTC\"\n",
    );
    let out = svc_check(&dir.units().join("good.toml"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("calendar \"Sat,Sun 10:00\" (UTC)"), "{text}");
    assert!(
        text.contains("normalized: Sat,Sun *-*-* 10:00:00"),
        "{text}"
    );
    assert_eq!(text.matches("10:00:00 UTC").count(), 3, "{text}");

    dir.unit(
        "bad",
        "exec = [\"true\"]\n[schedule]\ncalendar = \"Mon..Fri 25:00\"\n",
    );
    let out = svc_check(&dir.units().join("bad.toml"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // `calendar = "` is 12 characters: the hour is at column 13 + 9.
    assert!(text.contains("bad.toml:3:22"), "{text}");
    assert!(text.contains("hour 25 is out of range"), "{text}");

    dir.unit(
        "empty",
        "exec = [\"true\"]\n[schedule]\nrandom_delay = \"1m\"\n",
    );
    let out = svc_check(&dir.units().join("empty.toml"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("needs `calendar` or `every`"), "{text}");
}

#[test]
fn a_reload_adds_a_scheduled_unit_without_starting_it() {
    let dir = Dir::new().with("web", "exec = [\"sleep\", \"1000\"]\n");
    let svcd = dir.start();
    svcd.dir
        .unit("job", "exec = [\"true\"]\n[schedule]\nevery = \"1s\"\n");
    svcd.dir
        .unit("later", "exec = [\"true\"]\n[schedule]\nevery = \"1h\"\n");
    let summary = svcd.svc_ok(&["reload"], 0);
    assert!(summary.contains("added: job, later"), "{summary}");
    let later = svcd.status("later");
    assert_eq!(later["starts"], 0, "{later}");
    let status = svcd.wait_status("job", "its first run", |s| runs(s) >= 1);
    assert!(
        status["logs"].to_string().contains("started by schedule"),
        "{status}"
    );
}
