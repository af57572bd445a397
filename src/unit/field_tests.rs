//! Unit files: the field defects of the unit parser, one test each.

use super::tests::{errors, one_error};

#[test]
fn systemd_keys_suggest_their_svc_equivalent_before_the_closest_spelling() {
    // The edit distance alone said "did you mean `restart`?".
    let text = "ExecStart = \"/usr/bin/node server.js\"\n";
    let all = errors(text);
    assert!(
        all.iter()
            .any(|e| e
                == "1:1 ExecStart: unknown key `ExecStart` (a systemd key), did you mean `exec`?"),
        "{all:#?}"
    );
    for (key, ours) in [
        ("User", "`user`"),
        ("WorkingDirectory", "`workdir`"),
        ("Environment", "`env`"),
        ("EnvironmentFile", "`env_file`"),
        ("Restart", "`restart.policy`? (under [restart])"),
        ("RestartSec", "`restart.delay`? (under [restart])"),
        ("TimeoutStopSec", "`stop.timeout`? (under [stop])"),
    ] {
        let text = format!("exec = \"true\"\n{key} = \"x\"\n");
        assert_eq!(
            one_error(&text, &format!("did you mean {ours}")),
            format!("2:1 {key}")
        );
    }
    // A systemd section says so, rather than suggesting a key.
    let text = "exec = \"true\"\n[Service]\nExecStart = \"x\"\n";
    assert_eq!(one_error(text, "systemd section"), "2:2 Service");
    // Not a systemd key: the closest spelling, as before.
    let text = "exec = \"true\"\nuserr = \"x\"\n";
    assert_eq!(one_error(text, "did you mean `user`?"), "2:1 userr");
}

/// A file of `count` unknown keys, each on its own line, about 20 bytes a line.
fn many_unknown_keys(count: usize) -> String {
    let mut text = String::from("exec = \"true\"\n");
    for i in 0..count {
        text.push_str(&format!("wokdir_{i:08} = 1\n"));
    }
    text
}

/// CPU time this thread has used.
fn thread_cpu_time() -> std::time::Duration {
    let clock = nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID;
    let now = nix::time::clock_gettime(clock).expect("the thread's CPU clock");
    std::time::Duration::from(now)
}

#[test]
fn validation_time_is_linear_in_the_number_of_errors() {
    // 420 KB of bad keys took 7.2 s when each error's line was found by rescanning from the
    // start (21 s in a debug build): quadratic. Four times the errors must cost about four
    // times the time, not sixteen. The time is this thread's CPU time, not the wall clock, and
    // a ratio, not a bound: on a machine busy with other builds both the wall clock and the
    // absolute CPU time measured the load.
    let cpu_time_of = |n: usize| {
        let text = many_unknown_keys(n);
        let started = thread_cpu_time();
        let all = errors(&text);
        let elapsed = thread_cpu_time() - started;
        assert_eq!(all.len(), n);
        let last = format!("{}:1 wokdir_{:08}:", n + 1, n - 1);
        assert!(all[n - 1].starts_with(&last), "{}", all[n - 1]);
        elapsed
    };
    let small = cpu_time_of(2_500);
    let large = cpu_time_of(10_000);
    assert!(
        large < small * 8,
        "2,500 errors: {small:?}; 10,000: {large:?} (quadratic would be 16 times)"
    );
}

#[test]
fn a_unit_name_too_long_for_its_rotated_logs_is_refused_naming_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let longest = "a".repeat(super::validate::MAX_NAME_LEN);
    assert!(
        super::tests::load_in(dir.path(), &format!("{longest}.toml"), "exec = \"true\"").is_ok()
    );
    // 250 characters passed, but `NAME.log.1` could never be created: 255 bytes at most.
    let name = "a".repeat(250);
    let path = dir.path().join(format!("{name}.toml"));
    let errors = super::tests::load_in(dir.path(), &format!("{name}.toml"), "exec = \"true\"")
        .expect_err("a 250-byte name");
    assert_eq!(errors.errors.len(), 1);
    let message = errors.errors[0].to_string();
    assert!(
        message.starts_with(&format!("{}:0:0: ", path.display())),
        "{message}"
    );
    assert!(
        message.contains("250 bytes long, more than 200"),
        "{message}"
    );
}
