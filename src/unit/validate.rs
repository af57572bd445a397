//! Stage two: from the [`RawUnit`] as written to a typed [`Unit`].
//!
//! Applies each key's row of [`super::keys::KEYS`] (whose checks of types and meanings are in
//! [`super::check`]), then the rules that tie keys together, and turns every [`Issue`] of both
//! stages into a [`UnitError`] with line and column.

use super::check::Check;
use super::keys::Key;
use super::raw::{self, At, Entry, Issue, RawUnit, Value};
use super::{
    HealthConfig, LogConfig, MemoryConfig, NotifyAccess, ReadyConfig, RestartConfig, StopConfig,
    Unit, UnitError, UnitErrors,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// `[restart]` `interval` when only `burst` is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The unit's name for the file at `path`: its stem (lossy if not UTF-8; [`check_name`] then
/// refuses it).
pub fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Longest unit name, in bytes: the log file `NAME.log.1000` (the most `log.keep` allows) must
/// still fit a file name of 255 bytes, with room to spare.
pub const MAX_NAME_LEN: usize = 200;

/// Whether `name` may name a unit: `[A-Za-z0-9][A-Za-z0-9_.@-]*`, at most [`MAX_NAME_LEN`]
/// bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))) {
        Err(format!(
            "`{name}` is not a valid unit name (the name is the file's stem); rename the file so \
             the name starts with a letter or digit and holds only letters, digits, _ . @ -"
        ))
    } else if name.len() > MAX_NAME_LEN {
        Err(format!(
            "the unit name is {} bytes long, more than {MAX_NAME_LEN} (its rotated log files \
             NAME.log.N would not fit a file name); rename the file to a shorter name",
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// Validates the text of the unit file at `path`. The name is `path`'s stem; relative paths in
/// the unit resolve against `path`'s directory; the env_file is read now.
pub fn validate(path: &Path, text: &str) -> Result<Unit, UnitErrors> {
    validate_instance(path, text, None)
}

/// [`validate`] of the template at `path` (`worker@.toml`) as its instance `instance`
/// (`worker@a`): `%i` replaced (see [`super::template`]), `SVC_INSTANCE` in the environment.
/// `None`: the file as it is.
pub fn validate_instance(
    path: &Path,
    text: &str,
    instance: Option<&str>,
) -> Result<Unit, UnitErrors> {
    let mut name = name_of(path);
    let mut issues = Vec::new();
    if let Some(instance) = instance {
        name.push_str(instance);
        if let Err(message) = super::template::check_instance(instance) {
            issues.push(Issue {
                at: At::File,
                key: None,
                message,
            });
        }
    }
    if let Err(message) = check_name(&name) {
        issues.push(Issue {
            at: At::File,
            key: None,
            message,
        });
    }
    let unit = raw::parse(text, &mut issues).and_then(|mut raw| {
        if let Some(instance) = instance {
            super::template::instantiate(&mut raw, instance, &mut issues);
        }
        let mut unit = typed(&name, path, raw, &mut issues)?;
        if let Some(instance) = instance {
            unit.env
                .insert("SVC_INSTANCE".to_string(), instance.to_string());
        }
        Some(unit)
    });
    match unit {
        Some(unit) if issues.is_empty() => Ok(unit),
        _ => Err(UnitErrors {
            errors: located(path, text, issues),
            name,
            path: path.to_path_buf(),
        }),
    }
}

/// Issues → errors with line and column, in file order (whole-file ones first, env_file last).
fn located(path: &Path, text: &str, issues: Vec<Issue>) -> Vec<UnitError> {
    let lines = raw::LineIndex::new(text);
    let mut errors: Vec<(u8, UnitError)> = issues
        .into_iter()
        .map(|issue| {
            let (rank, path, line, column) = match issue.at {
                At::File => (0, path.to_path_buf(), 0, 0),
                At::Span(span) => {
                    let (line, column) = lines.line_column(span.start);
                    (1, path.to_path_buf(), line, column)
                }
                At::Elsewhere { path, line, column } => (2, path, line, column),
            };
            let error = UnitError {
                path,
                line,
                column,
                key: issue.key,
                message: issue.message,
            };
            (rank, error)
        })
        .collect();
    errors.sort_by_key(|(rank, e)| (*rank, e.line, e.column));
    errors.into_iter().map(|(_, e)| e).collect()
}

/// The typed unit: each key of the file applied by its row of [`super::keys::KEYS`], over the
/// defaults, then the rules that tie keys together. `None` only when `exec` is missing or
/// unusable (the rest is reported in `issues` but defaults are used so that checking goes on).
fn typed(name: &str, path: &Path, raw: RawUnit, issues: &mut Vec<Issue>) -> Option<Unit> {
    let mut unit = Unit {
        name: name.to_string(),
        path: path.to_path_buf(),
        description: None,
        argv: Vec::new(),
        workdir: None,
        env: BTreeMap::new(),
        env_file: None,
        user: None,
        user_if_root: None,
        group: None,
        umask: None,
        supplementary_groups: Vec::new(),
        nice: None,
        limits: super::LimitsConfig::default(),
        enabled: true,
        instances: Vec::new(),
        requires: Vec::new(),
        after: Vec::new(),
        wants: Vec::new(),
        fatal: false,
        notify_access: NotifyAccess::default(),
        restart: RestartConfig::default(),
        stop: StopConfig::default(),
        stop_mode: super::StopMode::default(),
        ready: ReadyConfig::default(),
        health: HealthConfig::default(),
        memory: MemoryConfig::default(),
        log: LogConfig::default(),
        reload: super::ReloadConfig::default(),
        kind: super::TypeConfig::default(),
        hooks: super::HooksConfig::default(),
        dirs: super::DirsConfig::default(),
        schedule: None,
        sockets: super::SocketsConfig::default(),
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut check = Check::new(issues, dir, name, &raw);
    for (def, entry) in raw.entries() {
        (def.apply)(&mut check, entry, &mut unit);
    }
    cross_checks(&raw, &unit, check.issues);
    super::kinds::settle(&raw, &mut unit, check.issues);
    let schedule_entry = super::keys::KEYS
        .iter()
        .filter(|def| def.table() == Some("schedule"))
        .find_map(|def| raw.get(def.key));
    super::schedule::cross_check(&unit, schedule_entry, check.issues);
    // `exec`'s row leaves `argv` empty when it is missing or unusable (and said why).
    (!unit.argv.is_empty()).then_some(unit)
}

/// The rules that tie several keys together, once every key is applied.
fn cross_checks(raw: &RawUnit, unit: &Unit, issues: &mut Vec<Issue>) {
    if raw.get(Key::Exec).is_none() {
        issues.push(Issue {
            at: At::File,
            key: Some("exec".to_string()),
            message: "missing `exec`: every unit needs a command to run, e.g. \
                      exec = [\"node\", \"server.js\"]"
                .to_string(),
        });
    }
    let restart = &unit.restart;
    if restart.delay > restart.max_delay
        && let Some(entry) = raw.get(Key::RestartDelay).or(raw.get(Key::RestartMaxDelay))
    {
        let message = format!(
            "restart.delay ({}) is longer than restart.max_delay ({}); lower delay or raise max_delay",
            super::duration::format_duration(restart.delay),
            super::duration::format_duration(restart.max_delay)
        );
        issues.push(Issue::at_value(entry, &entry.node, message));
    }
    if let (None, Some(entry)) = (raw.get(Key::RestartBurst), raw.get(Key::RestartInterval)) {
        issues.push(Issue::at_key(
            entry,
            "restart.interval needs restart.burst: more than `burst` starts within `interval` \
             fail the unit; add burst = N or remove interval",
        ));
    }
    if let (Some(_), Some(if_root)) = (raw.get(Key::User), raw.get(Key::UserIfRoot)) {
        issues.push(Issue::at_key(
            if_root,
            "give user or user_if_root, not both: user always applies (and needs svcd to run \
             as root), user_if_root only when svcd runs as root",
        ));
    }
    if let (Some(_), Some(exec)) = (raw.get(Key::ReloadSignal), raw.get(Key::ReloadExec)) {
        issues.push(Issue::at_key(
            exec,
            "give reload.signal or reload.exec, not both; keep the one the program documents",
        ));
    }
    // At most one check per table: which one answered would be ambiguous.
    let notify = raw
        .get(Key::ReadyNotify)
        .filter(|entry| entry.node.value == Value::Bool(true));
    let ready = [Key::ReadyTcp, Key::ReadyHttp, Key::ReadyExec].map(|key| raw.get(key));
    let ready: Vec<&Entry> = ready.into_iter().chain([notify]).flatten().collect();
    super::probe::one_kind(ready, "ready", issues);
    let health = [Key::HealthTcp, Key::HealthHttp, Key::HealthExec].map(|key| raw.get(key));
    super::probe::one_kind(health.into_iter().flatten().collect(), "health", issues);
}
