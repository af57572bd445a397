//! Every key a unit file may hold, defined once.
//!
//! As ripgrep's `flags/defs.rs` does for its flags, one row per key gives its dotted name, its
//! type as the documentation says it, one line of documentation, the systemd keys it stands for,
//! and how its value is checked and where it goes in the [`Unit`]. Everything else reads this
//! table: the raw stage sorts the file's keys by it ([`super::raw`]), unknown keys get their
//! suggestions from it, validation applies its rows ([`super::validate`]), and a test checks that
//! `man/svc.unit.5` documents exactly these keys.
//!
//! **Adding a key** is one row here (a new table, `[reload]` say, comes with its first key), its
//! field in [`Unit`] and its entry in `man/svc.unit.5`. Rows are applied in the table's order,
//! each to a unit that starts from the defaults; a rule that ties several keys together (a start
//! limit's `burst` and `interval`, one readiness check) is in `cross_checks` of `validate`.

use super::Unit;
use super::check::Check;
use super::probe;
use super::raw::Entry;
use std::sync::OnceLock;

/// One key of a unit file.
pub struct KeyDef {
    pub key: Key,
    /// Dotted from the top of the file: `restart.delay`.
    pub name: &'static str,
    /// Its type, as the documentation says it: `duration`.
    pub kind: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
    /// The systemd keys it stands for, suggested when a unit file uses one of those.
    pub systemd: &'static [&'static str],
    /// Checks the value (an [`super::raw::Issue`] per problem) and writes it into the unit.
    pub apply: fn(&mut Check<'_>, &Entry, &mut Unit),
}

impl KeyDef {
    /// The table the key is in (`restart`), `None` at the top level.
    pub fn table(&self) -> Option<&'static str> {
        self.name.split_once('.').map(|(table, _)| table)
    }

    /// The key without its table: `delay` for `restart.delay`.
    pub fn leaf(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }
}

macro_rules! keys {
    ($(
        $variant:ident $name:literal ($kind:literal) [$($systemd:literal),*]
            $doc:literal
            $apply:expr;
    )*) => {
        /// A key of [`KEYS`], to name it in code; `Key::X as usize` is its row.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key { $($variant),* }

        /// The keys, in the order of the documentation.
        pub const KEYS: &[KeyDef] = &[$(
            KeyDef {
                key: Key::$variant,
                name: $name,
                kind: $kind,
                doc: $doc,
                systemd: &[$($systemd),*],
                apply: $apply,
            },
        )*];
    };
}

keys! {
    Description "description" ("string") ["Description"]
        "one line shown by `svc status`"
        |c, e, u| u.description = c.description(e);
    Exec "exec" ("array of strings, or string") ["ExecStart"]
        "the command; no shell unless `shell = true`"
        |c, e, u| u.argv = c.argv(e).unwrap_or_default();
    Shell "shell" ("bool") []
        "run `exec` (a string) through /bin/sh -c"
        |c, e, _| { c.boolean(e); };
    Workdir "workdir" ("path") ["WorkingDirectory"]
        "working directory, relative to the unit file's directory"
        |c, e, u| u.workdir = c.path(e, c.dir);
    Env "env" ("table of strings") ["Environment"]
        "extra environment, over env_file's"
        |c, e, u| u.env.extend(c.env(e));
    EnvFile "env_file" ("path") ["EnvironmentFile"]
        "a file of KEY=value lines"
        |c, e, u| {
            let (path, vars) = c.env_file(e, c.dir);
            u.env_file = path;
            // `env` wins over the file, whichever is applied first.
            for (name, value) in vars {
                u.env.entry(name).or_insert(value);
            }
        };
    User "user" ("name or id") ["User"]
        "the user to run as"
        |c, e, u| u.user = c.id(e, "user");
    UserIfRoot "user_if_root" ("name or id") []
        "the user to run as when svcd runs as root; otherwise svcd's own"
        |c, e, u| u.user_if_root = c.id(e, "user");
    Group "group" ("name or id") ["Group"]
        "the group to run as"
        |c, e, u| u.group = c.id(e, "group");
    Umask "umask" ("octal string") ["UMask"]
        "the file mode creation mask"
        |c, e, u| u.umask = c.umask(e);
    Enabled "enabled" ("bool") []
        "start when svcd starts"
        |c, e, u| u.enabled = c.boolean(e).unwrap_or(true);
    Instances "instances" ("array of instance names") ["DefaultInstance"]
        "in a template NAME@.toml: the instances svcd runs"
        |c, e, u| u.instances = super::template::instances(e, c.name, c.issues);
    Requires "requires" ("array of unit names") ["Requires"]
        "start after they are ready; stop before them; go down with them"
        |c, e, u| u.requires = probe::names(Some(e), c.name, c.issues);
    After "after" ("array of unit names") ["After"]
        "ordering only"
        |c, e, u| u.after = probe::names(Some(e), c.name, c.issues);
    Wants "wants" ("array of unit names") ["Wants"]
        "start after them and with them; keep running when they stop"
        |c, e, u| u.wants = probe::names(Some(e), c.name, c.issues);
    Fatal "fatal" ("bool") []
        "when the unit fails, svcd stops everything and exits non-zero"
        |c, e, u| u.fatal = c.boolean(e).unwrap_or(false);
    NotifyAccess "notify_access" ("main | all") ["NotifyAccess"]
        "who may speak for the unit on the sd_notify socket"
        |c, e, u| u.notify_access = c.notify_access(e).unwrap_or_default();
    Type "type" ("simple | oneshot | forking | notify") ["Type"]
        "when the unit's start is complete"
        |c, e, u| set(&mut u.kind.kind, super::kinds::unit_type(c, e));
    Remain "remain" ("bool") ["RemainAfterExit"]
        "a oneshot that exited 0 stays `exited`"
        |c, e, u| u.kind.remain = c.boolean(e).unwrap_or(false);
    Pidfile "pidfile" ("path") ["PIDFile"]
        "where a forking unit writes its main pid"
        |c, e, u| u.kind.pidfile = c.path(e, c.dir);
    SupplementaryGroups "supplementary_groups" ("array of names or ids") ["SupplementaryGroups"]
        "groups added to the user's; needs svcd to run as root"
        |c, e, u| u.supplementary_groups = super::limits::groups(e, c.issues);
    Nice "nice" ("integer -20..19") ["Nice"]
        "the scheduling priority, set before exec"
        |c, e, u| u.nice = super::limits::nice(e, c.issues);
    ExecStartPre "exec_start_pre" ("array of commands") ["ExecStartPre"]
        "run in order before `exec`; a failure fails the start (`-` ignores it)"
        |c, e, u| u.hooks.start_pre = super::hooks::commands(e, c.issues);
    ExecStartPost "exec_start_post" ("array of commands") ["ExecStartPost"]
        "run in order once the unit is ready; running after them"
        |c, e, u| u.hooks.start_post = super::hooks::commands(e, c.issues);
    ExecStop "exec_stop" ("array of commands") ["ExecStop"]
        "run on stop before the stop signal, with MAINPID set"
        |c, e, u| u.hooks.stop = super::hooks::commands(e, c.issues);
    RuntimeDir "runtime_dir" ("name or array of names") ["RuntimeDirectory"]
        "made under the runtime root before the start; removed when the unit stops"
        |c, e, u| u.dirs.runtime.names = super::hooks::dir_names(e, c.issues);
    StateDir "state_dir" ("name or array of names") ["StateDirectory"]
        "made under the state root before the start; kept"
        |c, e, u| u.dirs.state.names = super::hooks::dir_names(e, c.issues);
    LogsDir "logs_dir" ("name or array of names") ["LogsDirectory"]
        "made under the logs root before the start; kept"
        |c, e, u| u.dirs.logs.names = super::hooks::dir_names(e, c.issues);
    RuntimeDirMode "runtime_dir_mode" ("octal string") ["RuntimeDirectoryMode"]
        "mode of the runtime directories (default 0755)"
        |c, e, u| set(&mut u.dirs.runtime.mode, super::hooks::dir_mode(e, c.issues));
    StateDirMode "state_dir_mode" ("octal string") ["StateDirectoryMode"]
        "mode of the state directories (default 0755)"
        |c, e, u| set(&mut u.dirs.state.mode, super::hooks::dir_mode(e, c.issues));
    LogsDirMode "logs_dir_mode" ("octal string") ["LogsDirectoryMode"]
        "mode of the logs directories (default 0755)"
        |c, e, u| set(&mut u.dirs.logs.mode, super::hooks::dir_mode(e, c.issues));
    Listen "listen" ("array of addresses") ["ListenStream"]
        "sockets svcd binds, holds and passes as fds 3, 4, ... (LISTEN_FDS)"
        |c, e, u| u.sockets.listen = super::sockets::listen(e, c.issues);
    ListenBacklog "listen_backlog" ("integer 1..65535") ["Backlog"]
        "connections the kernel queues while the unit is not accepting"
        |c, e, u| set(&mut u.sockets.backlog, super::sockets::backlog(e, c.issues));
    ListenMode "listen_mode" ("octal string") ["SocketMode"]
        "mode of the Unix socket files of `listen`"
        |c, e, u| set(&mut u.sockets.mode, super::sockets::mode(e, c.issues));

    RestartPolicy "restart.policy" ("always | on-failure | never") ["Restart"]
        "which exits are restarted"
        |c, e, u| set(&mut u.restart.policy, c.restart_policy(e));
    RestartDelay "restart.delay" ("duration") ["RestartSec"]
        "delay before the first restart"
        |c, e, u| set(&mut u.restart.delay, c.duration(e));
    RestartMultiplier "restart.multiplier" ("number >= 1") []
        "growth of the delay per consecutive crash"
        |c, e, u| set(&mut u.restart.multiplier, c.multiplier(e));
    RestartMaxDelay "restart.max_delay" ("duration") ["RestartMaxDelaySec"]
        "cap of the delay"
        |c, e, u| set(&mut u.restart.max_delay, c.duration(e));
    RestartResetAfter "restart.reset_after" ("duration") []
        "this long running resets the delay"
        |c, e, u| set(&mut u.restart.reset_after, c.duration(e));
    RestartBurst "restart.burst" ("integer >= 1") ["StartLimitBurst"]
        "more than `burst` starts within `interval` fail the unit"
        |c, e, u| u.restart.limit = c.burst(e).map(|burst| super::StartLimit {
            burst,
            interval: super::validate::DEFAULT_INTERVAL,
        });
    // After `burst`, whose limit it completes.
    RestartInterval "restart.interval" ("duration") ["StartLimitInterval", "StartLimitIntervalSec"]
        "the window of `burst`"
        |c, e, u| match c.positive_duration(e) {
            Some(interval) => {
                if let Some(limit) = &mut u.restart.limit {
                    limit.interval = interval;
                }
            }
            None => u.restart.limit = None,
        };
    RestartOverlap "restart.overlap" ("bool") []
        "planned restarts start the new run and stop the old once the new is ready"
        |c, e, u| u.sockets.overlap = c.boolean(e).unwrap_or(false);

    StopSignal "stop.signal" ("signal name or number") ["KillSignal"]
        "the first signal on stop"
        |c, e, u| set(&mut u.stop.signal, c.signal(e));
    StopTimeout "stop.timeout" ("duration") ["TimeoutStopSec", "TimeoutSec"]
        "then SIGKILL to the whole process group (see `stop.mode`)"
        |c, e, u| set(&mut u.stop.timeout, c.duration(e));
    StopMode "stop.mode" ("group | main | process") ["KillMode"]
        "who gets the stop signal and the SIGKILL"
        |c, e, u| set(&mut u.stop_mode, super::limits::stop_mode(e, c.issues));

    ReadyTcp "ready.tcp" ("address") []
        "ready when a TCP connection to it succeeds"
        ready_probe;
    ReadyHttp "ready.http" ("URL") []
        "ready when a GET of it answers 2xx"
        ready_probe;
    ReadyExec "ready.exec" ("argv, or string") []
        "ready when this command exits 0"
        ready_probe;
    ReadyNotify "ready.notify" ("bool") []
        "ready when the unit sends READY=1 (sd_notify)"
        |c, e, u| u.ready.notify = c.boolean(e).unwrap_or(false);
    ReadyTimeout "ready.timeout" ("duration") ["TimeoutStartSec"]
        "not ready by then: a failed start"
        |c, e, u| set(&mut u.ready.timeout, c.positive_duration(e));

    HealthTcp "health.tcp" ("address") []
        "healthy while a TCP connection to it succeeds"
        health_probe;
    HealthHttp "health.http" ("URL") []
        "healthy while a GET of it answers 2xx"
        health_probe;
    HealthExec "health.exec" ("argv, or string") []
        "healthy while this command exits 0"
        health_probe;
    HealthInterval "health.interval" ("duration") []
        "how often to check"
        |c, e, u| set(&mut u.health.interval, c.positive_duration(e));
    HealthTimeout "health.timeout" ("duration") []
        "how long one check may take"
        |c, e, u| set(&mut u.health.timeout, c.positive_duration(e));
    HealthFailures "health.failures" ("integer 1..1000") []
        "this many failed checks in a row restart the unit"
        |c, e, u| set(&mut u.health.failures, c.failures(e));
    HealthWatchdog "health.watchdog" ("duration") ["WatchdogSec"]
        "no WATCHDOG=1 within this restarts the unit"
        |c, e, u| u.health.watchdog = c.positive_duration(e);

    MemoryMax "memory.max" ("size") ["MemoryMax", "MemoryLimit"]
        "RSS of the unit's processes; over it, a restart"
        |c, e, u| u.memory.max = c.size(e);
    MemorySwapMax "memory.swap_max" ("size") ["MemorySwapMax"]
        "swap of the unit's processes; over it, a restart"
        |c, e, u| u.memory.swap_max = c.size(e);
    MemoryOomScoreAdj "memory.oom_score_adj" ("integer -1000..1000") ["OOMScoreAdjust"]
        "written for the process before exec"
        |c, e, u| u.memory.oom_score_adj = c.oom_score_adj(e);
    MemoryOnPressure "memory.on_pressure" ("restart | none | array of notify, reclaim, restart") []
        "the steps the host swap policy may take for this unit"
        |c, e, u| set(&mut u.memory.on_pressure, c.on_pressure(e));
    MemoryOnLimit "memory.on_limit" ("array of notify, reclaim, restart") []
        "the steps taken as the unit nears and crosses memory.max"
        |c, e, u| set(&mut u.memory.on_limit, c.on_limit(e));
    MemoryGrace "memory.grace" ("duration") []
        "how long the unit may stay over memory.max before its restart"
        |c, e, u| set(&mut u.memory.grace, c.duration(e));

    LimitsNofile "limits.nofile" ("limit") ["LimitNOFILE"]
        "most open files"
        |c, e, u| u.limits.nofile = super::limits::rlimit(e, c.issues);
    LimitsNproc "limits.nproc" ("limit") ["LimitNPROC"]
        "most processes of the unit's user"
        |c, e, u| u.limits.nproc = super::limits::rlimit(e, c.issues);
    LimitsCore "limits.core" ("limit") ["LimitCORE"]
        "largest core file, in bytes"
        |c, e, u| u.limits.core = super::limits::rlimit(e, c.issues);
    LimitsMemlock "limits.memlock" ("limit") ["LimitMEMLOCK"]
        "most locked memory, in bytes"
        |c, e, u| u.limits.memlock = super::limits::rlimit(e, c.issues);

    LogMaxSize "log.max_size" ("size") []
        "rotate the unit's log file before it passes this"
        |c, e, u| u.log.max_size = c.log_max_size(e);
    LogKeep "log.keep" ("integer 0..1000") []
        "how many rotated log files to keep"
        |c, e, u| u.log.keep = c.log_keep(e);

    // `signal` or `exec`, not both: `validate`'s cross checks.
    ReloadSignal "reload.signal" ("signal name or number") []
        "what `svc reload NAME` sends to the main process"
        |c, e, u| {
            if let Some(signal) = c.signal(e) {
                u.reload.method = Some(super::ReloadMethod::Signal(signal));
            }
        };
    ReloadExec "reload.exec" ("argv, or string") ["ExecReload"]
        "what `svc reload NAME` runs, with MAINPID set"
        |c, e, u| {
            if let Some(argv) = super::reload::exec(e, c.issues) {
                u.reload.method = Some(super::ReloadMethod::Exec(argv));
            }
        };
    ReloadTimeout "reload.timeout" ("duration") []
        "how long `reload.exec` may take"
        |c, e, u| set(&mut u.reload.timeout, c.positive_duration(e));

    // `timezone` before `calendar`, whose expressions are read in its zone.
    ScheduleTimezone "schedule.timezone" ("tz name, or UTC") []
        "the zone of `calendar` (default: the host's local time zone)"
        |c, e, u| super::schedule::timezone(e, u, c.issues);
    ScheduleCalendar "schedule.calendar" ("calendar expression, or array of them") ["OnCalendar"]
        "run at these times (systemd's OnCalendar syntax)"
        |c, e, u| super::schedule::calendar(e, u, c.issues);
    ScheduleEvery "schedule.every" ("duration") ["OnUnitActiveSec"]
        "run this long after svcd's start, then after each run's start"
        |c, e, u| {
            if let Some(every) = c.positive_duration(e) {
                u.schedule.get_or_insert_with(Default::default).every = Some(every);
            }
        };
    ScheduleRandomDelay "schedule.random_delay" ("duration") ["RandomizedDelaySec"]
        "put each run off by up to this long"
        |c, e, u| {
            if let Some(delay) = c.duration(e) {
                u.schedule.get_or_insert_with(Default::default).random_delay = delay;
            }
        };
    SchedulePersistent "schedule.persistent" ("bool") ["Persistent"]
        "a calendar time missed while svcd was down runs once at start"
        |c, e, u| {
            if let Some(persistent) = c.boolean(e) {
                u.schedule.get_or_insert_with(Default::default).persistent = persistent;
            }
        };
    ScheduleOverlap "schedule.overlap" ("skip | queue | kill") []
        "what a run still going does to the next due one"
        |c, e, u| super::schedule::overlap(e, u, c.issues);
    ScheduleRetry "schedule.retry" ("bool") []
        "a failed run follows the restart policy instead of waiting for the next time"
        |c, e, u| {
            if let Some(retry) = c.boolean(e) {
                u.schedule.get_or_insert_with(Default::default).retry = retry;
            }
        };
}

/// Writes `value` over the default in `slot`, unless the value was refused.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// `ready.tcp`, `ready.http`, `ready.exec` (at most one of them: `validate`'s cross checks).
fn ready_probe(c: &mut Check<'_>, e: &Entry, u: &mut Unit) {
    u.ready.probe = probe::probe(e, c.issues).or(u.ready.probe.take());
}

/// `health.tcp`, `health.http`, `health.exec`.
fn health_probe(c: &mut Check<'_>, e: &Entry, u: &mut Unit) {
    u.health.probe = probe::probe(e, c.issues).or(u.health.probe.take());
}

/// The row of the key named `name` (dotted), if there is one.
pub fn find(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|def| def.name == name)
}

/// The names of the top level: its keys and its tables, each once, in the table's order.
pub fn top_level() -> &'static [&'static str] {
    // Made once: a file of thousands of unknown keys asks for them once per key.
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = Vec::new();
        for def in KEYS {
            let name = def.table().unwrap_or(def.name);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    })
}

/// Whether `name` is a table of unit files (`restart`), rather than a key or nothing.
pub fn is_table(name: &str) -> bool {
    KEYS.iter().any(|def| def.table() == Some(name))
}

/// The keys of `[table]`, without the table's prefix.
pub fn keys_of(table: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|def| def.table() == Some(table))
        .map(KeyDef::leaf)
        .collect()
}

/// What systemd's key `key` is called here.
pub fn systemd_equivalent(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|def| def.systemd.contains(&key))
        .map(|def| def.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_is_its_own_key() {
        for (row, def) in KEYS.iter().enumerate() {
            assert_eq!(def.key as usize, row, "{}", def.name);
            assert_eq!(find(def.name).map(|d| d.key), Some(def.key));
            assert!(!def.doc.is_empty() && !def.kind.is_empty(), "{}", def.name);
            // A key is a table's key or a top-level one, never both.
            assert!(!is_table(def.name), "{} is a key and a table", def.name);
        }
        let mut systemd: Vec<_> = KEYS.iter().flat_map(|def| def.systemd).collect();
        let count = systemd.len();
        systemd.sort();
        systemd.dedup();
        assert_eq!(
            systemd.len(),
            count,
            "a systemd key stands for one key here"
        );
    }

    /// `(section prefix, key names)` of each `.TP` item under `.SH KEYS` of svc.unit(5): the
    /// bold words of the line after `.TP` (`.BR burst " (integer), " interval " (duration)"`
    /// documents `burst` and `interval`).
    fn documented_keys(man: &str) -> Vec<String> {
        let mut documented = Vec::new();
        let mut in_keys = false;
        let mut prefix = String::new();
        let mut after_tp = false;
        for line in man.lines() {
            if let Some(title) = line.strip_prefix(".SH ") {
                in_keys = title.trim() == "KEYS";
                continue;
            }
            if !in_keys {
                continue;
            }
            if let Some(section) = line.strip_prefix(".SS ") {
                let section = section.trim();
                prefix = match section.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    Some(table) => format!("{table}."),
                    None => String::new(),
                };
                after_tp = false;
            } else if line.trim() == ".TP" {
                after_tp = true;
            } else if after_tp {
                after_tp = false;
                let (macro_name, args) = line.split_once(' ').unwrap_or((line, ""));
                let bold_every = match macro_name {
                    ".B" => 1,
                    ".BR" | ".BI" => 2,
                    _ => continue,
                };
                for word in roff_args(args).iter().step_by(bold_every) {
                    documented.push(format!("{prefix}{word}"));
                }
            }
        }
        documented
    }

    /// The arguments of a roff request line: words, or `"quoted strings"`.
    fn roff_args(args: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut rest = args.trim_start();
        while !rest.is_empty() {
            let (word, tail) = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
                None => rest.split_once(' ').unwrap_or((rest, "")),
            };
            words.push(word.to_string());
            rest = tail.trim_start();
        }
        words
    }

    #[test]
    fn the_man_page_documents_every_key_and_no_other() {
        let man = include_str!("../../man/svc.unit.5");
        let documented = documented_keys(man);
        let missing: Vec<_> = KEYS
            .iter()
            .map(|def| def.name)
            .filter(|name| !documented.iter().any(|d| d == name))
            .collect();
        assert!(
            missing.is_empty(),
            "man/svc.unit.5 does not document {missing:?}: add a .TP item under .SH KEYS \
             (its .SS [TABLE] for a key of a table)"
        );
        let unknown: Vec<_> = documented.iter().filter(|d| find(d).is_none()).collect();
        assert!(
            unknown.is_empty(),
            "man/svc.unit.5 documents {unknown:?}, which the parser refuses"
        );
    }

    #[test]
    fn the_man_page_check_sees_a_missing_key() {
        let man = include_str!("../../man/svc.unit.5");
        let without = man.replace(".BR swap_max \" (size)\"", ".BR other \" (size)\"");
        assert_ne!(without, man, "the man page changed: update this test");
        let documented = documented_keys(&without);
        assert!(!documented.iter().any(|d| d == "memory.swap_max"));
        assert!(documented.iter().any(|d| d == "memory.other"));
        assert!(documented.iter().any(|d| d == "restart.burst"));
        assert!(documented.iter().any(|d| d == "restart.interval"));
        assert!(documented.iter().any(|d| d == "health.exec"));
        assert!(documented.iter().any(|d| d == "group"));
    }
}
