//! Unit files end to end: text on disk → `Unit` or errors with line and column.

use super::*;
use std::fs;
use std::path::Path;
use tempfile::TempDir;

/// Writes `name` with `text` into `dir` and loads it.
pub(super) fn load_in(dir: &Path, name: &str, text: &str) -> Result<Unit, UnitErrors> {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    load_file(&path)
}

pub(super) fn load(text: &str) -> Result<Unit, UnitErrors> {
    let dir = TempDir::new().unwrap();
    load_in(dir.path(), "app.toml", text)
}

/// `line:column key: message` of each error, for compact assertions.
pub(super) fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(unit) => panic!("expected errors, got {unit:?}"),
        Err(errors) => errors
            .errors
            .iter()
            .map(|e| {
                let key = e.key.as_deref().unwrap_or("-");
                format!("{}:{} {key}: {}", e.line, e.column, e.message)
            })
            .collect(),
    }
}

/// The only error's `line:column key`, checking that its message contains `needle`.
pub(super) fn one_error(text: &str, needle: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains(needle),
        "{:?} lacks {needle:?}",
        errors[0]
    );
    let (at, _) = errors[0].split_once(": ").unwrap_or_default();
    at.to_string()
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn every_key_valid() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("app.env"), "TOKEN=secret\nPORT=1\n").unwrap();
    let text = r#"
description = "chat server"
exec = ["node", "server.js", "--port", "3000"]
shell = false
workdir = "../app"
env = { PORT = "3000", NODE_ENV = "production" }
env_file = "app.env"
user = "chat"
group = 1000
umask = "0027"
enabled = false
fatal = true

[restart]
policy = "always"
delay = "0s"
multiplier = 1.5
max_delay = "1m"
reset_after = "2m30s"
burst = 5
interval = "1m"

[stop]
signal = "SIGQUIT"
timeout = "5s"
"#;
    let unit = load_in(dir.path(), "chat.toml", text).unwrap();
    let env: BTreeMap<String, String> = [
        ("NODE_ENV", "production"),
        ("PORT", "3000"),
        ("TOKEN", "secret"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let expected = Unit {
        name: "chat".to_string(),
        path: dir.path().join("chat.toml"),
        description: Some("chat server".to_string()),
        argv: strings(&["node", "server.js", "--port", "3000"]),
        workdir: Some(dir.path().join("../app")),
        env,
        env_file: Some(dir.path().join("app.env")),
        user: Some("chat".to_string()),
        user_if_root: None,
        group: Some("1000".to_string()),
        umask: Some(0o027),
        supplementary_groups: Vec::new(),
        nice: None,
        limits: super::LimitsConfig::default(),
        enabled: false,
        instances: Vec::new(),
        requires: Vec::new(),
        after: Vec::new(),
        wants: Vec::new(),
        ready: Default::default(),
        health: Default::default(),
        fatal: true,
        notify_access: Default::default(),
        restart: RestartConfig {
            policy: RestartPolicy::Always,
            delay: Duration::ZERO,
            multiplier: 1.5,
            max_delay: Duration::from_secs(60),
            reset_after: Duration::from_secs(150),
            limit: Some(StartLimit {
                burst: 5,
                interval: Duration::from_secs(60),
            }),
        },
        stop: StopConfig {
            signal: 3,
            timeout: Duration::from_secs(5),
        },
        stop_mode: StopMode::default(),
        memory: MemoryConfig::default(),
        log: crate::unit::LogConfig::default(),
        reload: Default::default(),
        kind: Default::default(),
        hooks: Default::default(),
        dirs: Default::default(),
        schedule: None,
        sockets: Default::default(),
    };
    assert_eq!(unit, expected);
}

#[test]
fn log_keys_are_read_and_checked() {
    let unit = load("exec = \"true\"\n[log]\nmax_size = \"2M\"\nkeep = 0\n").unwrap();
    assert_eq!(unit.log.max_size, Some(2 << 20));
    assert_eq!(unit.log.keep, Some(0));
    let unit = load("exec = \"true\"\nlog.max_size = 4096\n").unwrap();
    assert_eq!((unit.log.max_size, unit.log.keep), (Some(4096), None));
    let errors = errors("exec = \"true\"\n[log]\nmax_size = \"10\"\nkeep = -1\nkeepp = 2\n");
    let expected = [
        "3:12 log.max_size: log.max_size must be at least 1024",
        "4:8 log.keep: log.keep must be between 0 and 1000",
        "5:1 log.keepp: unknown key `log.keepp`, did you mean `log.keep`?",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expected) {
        assert!(error.starts_with(prefix), "{error:?} vs {prefix:?}");
    }
}

#[test]
fn defaults_of_a_minimal_unit() {
    let unit = load("exec = [\"sleep\", \"1\"]\n").unwrap();
    assert_eq!(unit.name, "app");
    assert_eq!(unit.argv, strings(&["sleep", "1"]));
    assert_eq!(unit.description, None);
    assert_eq!(unit.workdir, None);
    assert!(unit.env.is_empty());
    assert_eq!((unit.user, unit.group, unit.umask), (None, None, None));
    assert!(unit.enabled);
    assert!(!unit.fatal);
    assert_eq!(unit.restart, RestartConfig::default());
    assert_eq!(unit.stop, StopConfig::default());
}

#[test]
fn design_chat_example_whole() {
    let text = r#"
# units/chat.toml — the unit's name is the file's stem: "chat"
description = "chat server"
exec = ["node", "contrib/chat/server.js"]   # argv; no shell unless the unit asks for one
workdir = ".."                               # relative to the units directory
env = { PORT = "3000" }

[restart]
policy = "on-failure"        # always | on-failure | never
delay = "100ms"              # first delay; grows by `multiplier` each crash, capped at `max_delay`
max_delay = "30s"
reset_after = "60s"          # this long up and healthy resets the backoff
burst = 10                   # more than `burst` starts within `interval` → state "failed"
interval = "5m"

[ready]
tcp = "127.0.0.1:3000"       # or http = "...", notify = true (sd_notify READY=1), exec = [...]
timeout = "30s"

[stop]
signal = "SIGTERM"
timeout = "10s"              # then SIGKILL to the whole process group

[memory]
max = "200M"                 # RSS of the whole process tree; over it → restart, reason recorded
swap_max = "64M"
"#;
    let dir = TempDir::new().unwrap();
    let unit = load_in(dir.path(), "chat.toml", text).unwrap();
    assert_eq!(unit.name, "chat");
    assert!(unit.ready.is_checked());
    assert_eq!(unit.ready.timeout, Duration::from_secs(30));
    assert_eq!(unit.memory.max, Some(200 << 20));
    assert_eq!(unit.memory.swap_max, Some(64 << 20));
    assert_eq!(unit.workdir, Some(dir.path().join("..")));
    assert_eq!(unit.restart.delay, Duration::from_millis(100));
    assert_eq!(
        unit.restart.limit,
        Some(StartLimit {
            burst: 10,
            interval: Duration::from_secs(300)
        })
    );
    assert_eq!(unit.stop.signal, 15);
}

#[test]
fn exec_string_is_split_by_shell_words() {
    let unit = load(r#"exec = "nginx -g 'daemon off;' -c \"/etc/my conf\"""#).unwrap();
    assert_eq!(
        unit.argv,
        strings(&["nginx", "-g", "daemon off;", "-c", "/etc/my conf"])
    );
    let at = one_error("exec = \"echo 'open\"\n", "unclosed quote");
    assert_eq!(at, "1:8 exec");
    assert_eq!(one_error("exec = \"  \"\n", "empty"), "1:8 exec");
    assert_eq!(one_error("exec = []\n", "empty"), "1:8 exec");
    assert_eq!(one_error("exec = [\"\"]\n", "empty"), "1:8 exec");
}

#[test]
fn shell_true_runs_through_bin_sh() {
    let unit = load("shell = true\nexec = \"node server.js >> out.log 2>&1\"\n").unwrap();
    assert_eq!(
        unit.argv,
        strings(&["/bin/sh", "-c", "node server.js >> out.log 2>&1"])
    );
    let at = one_error("shell = true\nexec = [\"a\", \"b\"]\n", "one string");
    assert_eq!(at, "2:8 exec");
}

#[test]
fn missing_exec_is_a_whole_file_error() {
    assert_eq!(
        one_error("description = \"x\"\n", "missing `exec`"),
        "0:0 exec"
    );
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let text = "exec = \"true\"\nwokdir = \"/srv\"\n";
    let errors = errors(text);
    assert_eq!(
        errors,
        vec!["2:1 wokdir: unknown key `wokdir`, did you mean `workdir`?"]
    );
    let text = "exec = \"true\"\n[restart]\npolicy = \"always\"\n  max_dealy = \"1s\"\n";
    assert_eq!(
        one_error(text, "did you mean `restart.max_delay`?"),
        "4:3 restart.max_delay".replace("max_delay", "max_dealy")
    );
    let text = "exec = \"true\"\n[stop]\nsignl = \"TERM\"\n";
    assert_eq!(
        one_error(text, "did you mean `stop.signal`?"),
        "3:1 stop.signl"
    );
    // A key of [restart] written at the top level.
    let text = "exec = \"true\"\npolicy = \"never\"\n";
    assert_eq!(
        one_error(text, "`restart.policy` (under [restart])"),
        "2:1 policy"
    );
    // Nothing close: the known keys are listed.
    let text = "exec = \"true\"\nzzzzzz = 1\n";
    assert_eq!(
        one_error(text, "the known keys are: description"),
        "2:1 zzzzzz"
    );
}

#[test]
fn every_key_of_the_interface_is_known_and_typos_are_not() {
    let text = r#"exec = "true"
requires = ["db"]
after = ["db"]
fatal = true

[ready]
tcp = "127.0.0.1:3000"
timeot = "30s"

[memory]
max = "200M"

[log]
keep = 3
"#;
    let errors = errors(text);
    let expected = ["8:1 ready.timeot: unknown key `ready.timeot`, did you mean `ready.timeout`?"];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expected) {
        assert!(error.starts_with(prefix), "{error:?} vs {prefix:?}");
    }
}

#[test]
fn wrong_types_name_the_key_and_the_expected_type() {
    assert_eq!(
        one_error(
            "exec = 5\n",
            "expected an array of strings or a string, found an integer"
        ),
        "1:8 exec"
    );
    assert_eq!(
        one_error(
            "exec = [\"a\", 2]\n",
            "expected a string in the `exec` array, found an integer"
        ),
        "1:14 exec"
    );
    assert_eq!(
        one_error("exec = \"a\"\nenabled = \"yes\"\n", "expected a boolean"),
        "2:11 enabled"
    );
    assert_eq!(
        one_error("exec = \"a\"\nfatal = 1\n", "expected a boolean"),
        "2:9 fatal"
    );
    assert_eq!(
        one_error("exec = \"a\"\nenv = { PORT = 3000 }\n", "expected a string"),
        "2:16 env.PORT"
    );
    assert_eq!(
        one_error("exec = \"a\"\nrestart = 3\n", "expected a table"),
        "2:11 restart"
    );
    assert_eq!(
        one_error(
            "exec = \"a\"\n[stop]\ntimeout = 10\n",
            "expected a duration string"
        ),
        "3:11 stop.timeout"
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let errors = errors("exec = \"a\"\ndescription = \"unterminated\n");
    assert!(!errors.is_empty());
    assert!(errors[0].starts_with("2:"), "{errors:?}");
    assert!(errors[0].contains("invalid TOML"), "{errors:?}");
    let errors = errors_of_duplicate();
    assert!(errors[0].starts_with("2:1 -: invalid TOML"), "{errors:?}");
}

fn errors_of_duplicate() -> Vec<String> {
    errors("exec = \"a\"\nexec = \"b\"\n")
}

#[test]
fn all_errors_of_a_file_are_reported_in_order() {
    let text = r#"exec = "a"
umask = "999"
[restart]
policy = "sometimes"
delay = "5 s"
multiplier = 0.5
[stop]
signal = "SIGNOPE"
"#;
    let errors = errors(text);
    let at: Vec<&str> = errors
        .iter()
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        at,
        vec!["2:9", "4:10", "5:9", "6:14", "8:10"],
        "{errors:#?}"
    );
}

#[test]
fn bad_unit_name_is_a_whole_file_error() {
    let dir = TempDir::new().unwrap();
    let errors = load_in(dir.path(), "-bad name.toml", "exec = \"a\"\n").unwrap_err();
    assert_eq!(errors.name, "-bad name");
    assert_eq!((errors.errors[0].line, errors.errors[0].column), (0, 0));
    assert!(errors.errors[0].message.contains("not a valid unit name"));
    for good in ["a", "web-1", "getty@tty1", "x_y.z", "9"] {
        assert_eq!(validate::check_name(good), Ok(()), "{good}");
    }
    for bad in ["", ".hidden", "_x", "a b", "a/b", "é"] {
        assert!(validate::check_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn env_file_is_read_and_env_wins() {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("conf")).unwrap();
    let env_text = "# secrets\nexport TOKEN='s3cr3t'\nPORT=1\n\nGREETING=\"hello world\"\n";
    fs::write(dir.path().join("conf/app.env"), env_text).unwrap();
    let text = "exec = \"a\"\nenv_file = \"conf/app.env\"\nenv = { PORT = \"2\" }\n";
    let unit = load_in(dir.path(), "app.toml", text).unwrap();
    assert_eq!(unit.env_file, Some(dir.path().join("conf/app.env")));
    assert_eq!(unit.env["TOKEN"], "s3cr3t");
    assert_eq!(unit.env["PORT"], "2");
    assert_eq!(unit.env["GREETING"], "hello world");
}

#[test]
fn env_file_errors_name_the_file_and_line() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("bad.env"), "OK=1\nnot a pair\n").unwrap();
    let text = "exec = \"a\"\nenv_file = \"bad.env\"\n";
    let errors = load_in(dir.path(), "app.toml", text).unwrap_err();
    let error = &errors.errors[0];
    assert_eq!(error.path, dir.path().join("bad.env"));
    assert_eq!((error.line, error.column), (2, 1));
    assert_eq!(error.key.as_deref(), Some("env_file"));
    assert!(
        error
            .to_string()
            .contains("bad.env:2:1: key `env_file`: in env_file")
    );

    let text = "exec = \"a\"\nenv_file = \"missing.env\"\n";
    let errors = load_in(dir.path(), "app.toml", text).unwrap_err();
    let error = &errors.errors[0];
    assert_eq!(error.path, dir.path().join("app.toml"));
    assert_eq!(
        (error.line, error.column, error.key.as_deref()),
        (2, 12, Some("env_file"))
    );
    assert!(error.message.contains("cannot read env_file"));
}

#[test]
fn env_names_are_checked() {
    let text = "exec = \"a\"\nenv = { \"BAD-NAME\" = \"1\" }\n";
    assert_eq!(
        one_error(text, "not a valid environment variable name"),
        "2:9 env.BAD-NAME"
    );
}

#[test]
fn users_groups_and_umasks() {
    let unit = load("exec = \"a\"\nuser = 0\ngroup = \"www-data\"\numask = \"022\"\n").unwrap();
    assert_eq!(unit.user.as_deref(), Some("0"));
    assert_eq!(unit.group.as_deref(), Some("www-data"));
    assert_eq!(unit.umask, Some(0o022));
    assert_eq!(
        one_error("exec = \"a\"\nuser = -1\n", "numeric id"),
        "2:8 user"
    );
    assert_eq!(
        one_error("exec = \"a\"\ngroup = \"\"\n", "numeric id"),
        "2:9 group"
    );
    for bad in ["\"\"", "\"0o22\"", "\"8\"", "\"01777\"", "\"-22\"", "22"] {
        let text = format!("exec = \"a\"\numask = {bad}\n");
        assert_eq!(one_error(&text, "umask = \"022\""), "2:9 umask", "{bad}");
    }
}

#[test]
fn stop_signals_by_name_or_number() {
    let signal = |value: &str| {
        load(&format!("exec = \"a\"\n[stop]\nsignal = {value}\n")).map(|u| u.stop.signal)
    };
    assert_eq!(signal("\"TERM\""), Ok(15));
    assert_eq!(signal("\"sigint\""), Ok(2));
    assert_eq!(signal("9"), Ok(9));
    let text = "exec = \"a\"\n[stop]\nsignal = \"SIGNOPE\"\n";
    assert_eq!(
        one_error(text, "unknown signal \"SIGNOPE\""),
        "3:10 stop.signal"
    );
    let text = "exec = \"a\"\n[stop]\nsignal = 1000\n";
    assert_eq!(
        one_error(text, "unknown signal \"1000\""),
        "3:10 stop.signal"
    );
}

#[test]
fn restart_limits_and_backoff_checks() {
    let unit = load("exec = \"a\"\n[restart]\nburst = 3\nmultiplier = 3\n").unwrap();
    assert_eq!(
        unit.restart.limit,
        Some(StartLimit {
            burst: 3,
            interval: validate::DEFAULT_INTERVAL
        })
    );
    assert_eq!(unit.restart.multiplier, 3.0);
    let text = "exec = \"a\"\n[restart]\ninterval = \"1m\"\n";
    assert_eq!(
        one_error(text, "needs restart.burst"),
        "3:1 restart.interval"
    );
    let text = "exec = \"a\"\n[restart]\nburst = 0\n";
    assert_eq!(one_error(text, "at least 1"), "3:9 restart.burst");
    let text = "exec = \"a\"\n[restart]\nburst = 2\ninterval = \"0s\"\n";
    assert_eq!(one_error(text, "longer than 0s"), "4:12 restart.interval");
    let text = "exec = \"a\"\n[restart]\ndelay = \"1m\"\nmax_delay = \"30s\"\n";
    assert_eq!(
        one_error(
            text,
            "restart.delay (1m) is longer than restart.max_delay (30s)"
        ),
        "3:9 restart.delay"
    );
    let text = "exec = \"a\"\n[restart]\nmax_delay = \"50ms\"\n";
    assert_eq!(one_error(text, "longer than"), "3:13 restart.max_delay");
    let text = "exec = \"a\"\n[restart]\nmultiplier = 0.9\n";
    assert_eq!(one_error(text, "≥ 1"), "3:14 restart.multiplier");
    let text = "exec = \"a\"\n[restart]\npolicy = \"on_failure\"\n";
    assert_eq!(one_error(text, "\"on-failure\""), "3:10 restart.policy");
}

#[test]
fn description_is_one_line() {
    let text = "exec = \"a\"\ndescription = \"\"\"\ntwo\nlines\"\"\"\n";
    assert_eq!(one_error(text, "one line"), "2:15 description");
}

#[test]
fn workdir_absolute_stays_and_empty_is_refused() {
    let unit = load("exec = \"a\"\nworkdir = \"/srv/app\"\n").unwrap();
    assert_eq!(unit.workdir, Some(std::path::PathBuf::from("/srv/app")));
    let text = "exec = \"a\"\nworkdir = \"\"\n";
    assert_eq!(one_error(text, "`workdir` is empty"), "2:11 workdir");
    let text = "exec = \"a\"\n[restart]\nburst = 5000000000\n";
    assert_eq!(one_error(text, "too large"), "3:9 restart.burst");
}

#[test]
fn tables_written_inline_or_dotted_are_the_same() {
    let unit =
        load("exec = \"a\"\nrestart = { policy = \"never\" }\nstop.timeout = \"1s\"\n").unwrap();
    assert_eq!(unit.restart.policy, RestartPolicy::Never);
    assert_eq!(unit.stop.timeout, Duration::from_secs(1));
    let text = "exec = \"a\"\n[[restart]]\npolicy = \"never\"\n";
    assert_eq!(
        one_error(text, "expected a table, found an array"),
        "2:1 restart"
    );
}

#[test]
fn memory_keys() {
    let unit = load(
        "exec = \"true\"\n[memory]\nmax = \"200M\"\nswap_max = 65536\noom_score_adj = -500\non_pressure = \"restart\"\n",
    )
    .unwrap();
    assert_eq!(
        unit.memory,
        MemoryConfig {
            max: Some(200 << 20),
            swap_max: Some(65536),
            oom_score_adj: Some(-500),
            on_pressure: crate::memory::OnPressure {
                restart: true,
                ..Default::default()
            },
            ..MemoryConfig::default()
        }
    );
    assert!(unit.memory.has_limit());
    let unit = load("exec = \"true\"\n").unwrap();
    assert_eq!(unit.memory, MemoryConfig::default());
    assert!(!unit.memory.has_limit());
    assert_eq!(
        one_error(
            "exec = \"true\"\n[memory]\nmax = \"200 M\"\n",
            "invalid size"
        ),
        "3:7 memory.max"
    );
    assert_eq!(
        one_error("exec = \"true\"\n[memory]\nmax = 0\n", "more than 0"),
        "3:7 memory.max"
    );
    assert_eq!(
        one_error("exec = \"true\"\n[memory]\noom_score_adj = 1001\n", "-1000"),
        "3:17 memory.oom_score_adj"
    );
    assert_eq!(
        one_error(
            "exec = \"true\"\n[memory]\non_pressure = \"kill\"\n",
            "\"restart\" or \"none\""
        ),
        "3:15 memory.on_pressure"
    );
    assert_eq!(
        one_error(
            "exec = \"true\"\n[memory]\nswap_mx = \"1G\"\n",
            "memory.swap_max"
        ),
        "3:1 memory.swap_mx"
    );
    assert_eq!(
        one_error("exec = \"true\"\nswap_max = \"1G\"\n", "under [memory]"),
        "2:1 swap_max"
    );
}

#[test]
fn notify_access_is_main_unless_all() {
    use super::NotifyAccess;
    assert_eq!(
        load("exec = \"a\"\n").unwrap().notify_access,
        NotifyAccess::Main
    );
    let all = load("exec = \"a\"\nnotify_access = \"all\"\n").unwrap();
    assert_eq!(all.notify_access, NotifyAccess::All);
    one_error(
        "exec = \"a\"\nnotify_access = \"group\"\n",
        "use \"main\" or \"all\"",
    );
}

#[test]
fn user_if_root_applies_only_when_svcd_is_root_and_never_with_user() {
    let unit = load("exec = \"a\"\nuser_if_root = \"www-data\"\n").unwrap();
    assert_eq!(unit.run_as(true), Some("www-data"));
    assert_eq!(unit.run_as(false), None);
    let unit = load("exec = \"a\"\nuser = \"chat\"\n").unwrap();
    assert_eq!(
        (unit.run_as(true), unit.run_as(false)),
        (Some("chat"), Some("chat"))
    );
    assert_eq!(
        one_error(
            "exec = \"a\"\nuser = \"chat\"\nuser_if_root = \"www-data\"\n",
            "not both"
        ),
        "3:1 user_if_root"
    );
}
