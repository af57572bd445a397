//! The memory watch on real processes: limits restart, oom_score_adj is applied, the host line
//! is shown. swap_max on real swap has a test binary of its own (`tests/swap/`), as it switches
//! a swap file on for the whole host.

use crate::util::*;

#[test]
fn a_unit_over_memory_max_is_restarted_with_the_reason() {
    let dir = Dir::new();
    // svcd's own samples (a cgroup's kernel limit would stop this 100 MB/s leak first, 16M
    // past the limit: that is tests/it/cgroup.rs's).
    std::fs::write(
        dir.path().join("svcd.toml"),
        "[memory]\ninterval = \"100ms\"\ncgroups = \"off\"\n",
    )
    .expect("svcd.toml");
    let exec = serde_json::to_string(&["python3", "-c", &grower(200)]).expect("json");
    dir.unit(
        "leak",
        &format!("exec = {exec}\n[restart]\ndelay = \"0s\"\n[memory]\nmax = \"30M\"\n"),
    );
    let svcd = dir.start();
    let status = svcd.wait_status("leak", "a memory restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let reason = status["last_exit"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(reason.starts_with("memory limit: rss "), "{status}");
    assert!(reason.contains(" > 30M; killed by SIGTERM"), "{status}");
    // The restarted run is watched too: it grows and is restarted again.
    svcd.wait_status("leak", "a second memory restart", |s| {
        s["restarts"].as_u64() >= Some(2)
    });
}

#[test]
fn a_unit_under_its_limit_keeps_running_and_shows_its_memory() {
    let dir = Dir::new();
    fast_sampling(&dir);
    let exec = serde_json::to_string(&["python3", "-c", &grower(10)]).expect("json");
    dir.unit(
        "small",
        &format!("exec = {exec}\n[memory]\nmax = \"200M\"\noom_score_adj = 321\n"),
    );
    let leak = serde_json::to_string(&["python3", "-c", &grower(200)]).expect("json");
    dir.unit("leak", &format!("exec = {leak}\n[memory]\nmax = \"30M\"\n"));
    let svcd = dir.start();
    let status = svcd.wait_status("small", "10M of RSS", |s| {
        s["memory"]["rss"].as_u64() >= Some(10 << 20)
    });
    let pid = status["pid"].as_u64().expect("a pid");
    let adj = svc::proc::oom_score_adj(u32::try_from(pid).expect("a pid"));
    assert_eq!(adj, Some(321));
    // The leaking unit beside it proves samples were taken (on the same timer) since; the
    // small one still runs its first run.
    svcd.wait_status("leak", "a memory restart", |s| {
        s["restarts"].as_u64() >= Some(1)
    });
    let status = svcd.status("small");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["pid"].as_u64(), Some(pid), "{status}");

    let human = svcd.svc_ok(&["status"], 0);
    assert!(human.contains("\nHost: memory "), "{human}");
    assert!(human.contains(" used, swap "), "{human}");
    let json = svcd.svc_ok(&["status", "--json"], 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(value.is_array(), "the JSON stays an array of units: {json}");
}

/// `status` answers from a reading older than the sampling interval (a unit without limits is
/// sampled on no timer), says how old it is, and svcd takes it again once it has answered, so
/// that the client never waits for /proc and the cgroup after an idle pause (#11).
#[test]
fn status_answers_from_an_older_reading_with_its_age_and_takes_it_again_after() {
    let dir = Dir::new();
    fast_sampling(&dir);
    let svcd = dir.with("idle", "exec = [\"sleep\", \"100000\"]\n").start();
    svcd.wait_for("idle", "running");
    // Asked until an answer comes from a reading older than the interval (100 ms).
    let (aged, began) = wait_until(
        "an answer from a reading past the interval",
        DEADLINE,
        || {
            let began = std::time::Instant::now();
            let status = svcd.status("idle");
            let age = status["memory"]["age_ms"].as_u64().expect("memory.age_ms");
            (age >= 100).then_some((age, began))
        },
    );
    assert!(aged < 10_000, "{aged}");
    // That reading was taken again after the answer: a later answer's is younger than the time
    // since the first was asked. Without it, the reading would only grow older until 10 s
    // (then taken before an answer): the wait ends well before.
    wait_until(
        "an answer from the reading taken again",
        std::time::Duration::from_secs(5),
        || {
            let age = svcd.status("idle")["memory"]["age_ms"]
                .as_u64()
                .expect("memory.age_ms");
            (u128::from(age) < began.elapsed().as_millis()).then_some(age)
        },
    );
}
