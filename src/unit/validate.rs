//! Stage two: from the [`RawUnit`] as written to a typed [`Unit`].
//!
//! Checks types and meanings (durations, signals, paths, the env_file), resolves relative paths
//! against the unit file's directory, and turns every [`Issue`] of both stages into a
//! [`UnitError`] with line and column.

use super::duration::{DURATION_FORMS, SIZE_FORMS, parse_duration, parse_size};
use super::envfile::{is_env_name, parse_env_file};
use super::raw::{self, At, Entry, Issue, Node, RawUnit, Value};
use super::{
    LogConfig, MIN_LOG_SIZE, MemoryConfig, NotifyAccess, RestartConfig, RestartPolicy, StartLimit,
    StopConfig, Unit, UnitError, UnitErrors,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    let name = name_of(path);
    let mut issues = Vec::new();
    if let Err(message) = check_name(&name) {
        issues.push(Issue {
            at: At::File,
            key: None,
            message,
        });
    }
    let unit = raw::parse(text, &mut issues).and_then(|raw| typed(&name, path, raw, &mut issues));
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

/// The typed unit; `None` only when `exec` is missing or unusable (the rest is reported in
/// `issues` but defaults are used so that checking goes on).
fn typed(name: &str, path: &Path, raw: RawUnit, issues: &mut Vec<Issue>) -> Option<Unit> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut check = Check { issues };
    let description = raw.description.as_ref().and_then(|e| check.string(e));
    if let (Some(entry), Some(text)) = (&raw.description, &description)
        && text.contains('\n')
    {
        check.value(
            entry,
            "the description must be one line; shorten it or join its lines",
        );
    }
    let shell = raw
        .shell
        .as_ref()
        .and_then(|e| check.boolean(e))
        .unwrap_or(false);
    let argv = check.argv(raw.exec.as_ref(), shell);
    let workdir = raw.workdir.as_ref().and_then(|e| check.path(e, dir));
    let (env_file, mut env) = match &raw.env_file {
        Some(entry) => check.env_file(entry, dir),
        None => (None, BTreeMap::new()),
    };
    if let Some(entry) = &raw.env {
        env.extend(check.env(entry));
    }
    let user = raw.user.as_ref().and_then(|e| check.id(e, "user"));
    let group = raw.group.as_ref().and_then(|e| check.id(e, "group"));
    let umask = raw.umask.as_ref().and_then(|e| check.umask(e));
    let enabled = raw
        .enabled
        .as_ref()
        .and_then(|e| check.boolean(e))
        .unwrap_or(true);
    let fatal = raw
        .fatal
        .as_ref()
        .and_then(|e| check.boolean(e))
        .unwrap_or(false);
    let notify_access = raw
        .notify_access
        .as_ref()
        .and_then(|e| check.notify_access(e))
        .unwrap_or_default();
    let restart = check.restart(&raw.restart);
    let stop = check.stop(&raw.stop);
    let memory = check.memory(&raw.memory);
    let log = check.log(&raw.log);
    let reload = super::reload::validate(&raw.reload, check.issues);
    let requires = super::probe::names(raw.requires.as_ref(), name, check.issues);
    let after = super::probe::names(raw.after.as_ref(), name, check.issues);
    let wants = super::probe::names(raw.wants.as_ref(), name, check.issues);
    let ready = super::probe::ready(&raw.ready, check.issues);
    let health = super::probe::health(&raw.health, check.issues);
    Some(Unit {
        name: name.to_string(),
        path: path.to_path_buf(),
        description,
        argv: argv?,
        workdir,
        env,
        env_file,
        user,
        group,
        umask,
        enabled,
        requires,
        after,
        wants,
        fatal,
        notify_access,
        restart,
        stop,
        memory,
        log,
        ready,
        health,
        reload,
    })
}

/// The checks of single values; each pushes an issue and returns `None` when a value is bad.
struct Check<'a> {
    issues: &'a mut Vec<Issue>,
}

impl Check<'_> {
    fn value(&mut self, entry: &Entry, message: impl Into<String>) {
        self.issues
            .push(Issue::at_value(entry, &entry.node, message));
    }

    fn wrong_type(&mut self, entry: &Entry, node: &Node, expected: &str) {
        let message = format!("expected {expected}, found {}", node.value.type_name());
        self.issues.push(Issue::at_value(entry, node, message));
    }

    fn string(&mut self, entry: &Entry) -> Option<String> {
        match &entry.node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(entry, &entry.node, "a string");
                None
            }
        }
    }

    fn notify_access(&mut self, entry: &Entry) -> Option<NotifyAccess> {
        match self.string(entry)?.as_str() {
            "main" => Some(NotifyAccess::Main),
            "all" => Some(NotifyAccess::All),
            text => {
                let message = format!("unknown notify_access \"{text}\"; use \"main\" or \"all\"");
                self.value(entry, message);
                None
            }
        }
    }

    fn boolean(&mut self, entry: &Entry) -> Option<bool> {
        match entry.node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(entry, &entry.node, "a boolean (true or false)");
                None
            }
        }
    }

    fn argv(&mut self, exec: Option<&Entry>, shell: bool) -> Option<Vec<String>> {
        let Some(entry) = exec else {
            self.issues.push(Issue {
                at: At::File,
                key: Some("exec".to_string()),
                message: "missing `exec`: every unit needs a command to run, e.g. \
                          exec = [\"node\", \"server.js\"]"
                    .to_string(),
            });
            return None;
        };
        let argv = match (&entry.node.value, shell) {
            (Value::String(command), true) => {
                if command.trim().is_empty() {
                    self.value(entry, "`exec` is empty; give the shell command to run");
                    return None;
                }
                vec!["/bin/sh".to_string(), "-c".to_string(), command.clone()]
            }
            (_, true) => {
                self.value(
                    entry,
                    format!(
                        "with `shell = true`, `exec` must be one string for /bin/sh -c, found {}; \
                         e.g. exec = \"node server.js >> out.log\"",
                        entry.node.value.type_name()
                    ),
                );
                return None;
            }
            (Value::String(command), false) => match shlex::split(command) {
                None => {
                    self.value(
                        entry,
                        "`exec` has an unclosed quote or ends in a backslash; close the quote, \
                         or write exec as an array of strings",
                    );
                    return None;
                }
                Some(words) => words,
            },
            (Value::Array(items), false) => {
                let mut words = Vec::new();
                for item in items {
                    match &item.value {
                        Value::String(word) => words.push(word.clone()),
                        _ => self.wrong_type(entry, item, "a string in the `exec` array"),
                    }
                }
                if words.len() != items.len() {
                    return None;
                }
                words
            }
            _ => {
                self.wrong_type(entry, &entry.node, "an array of strings or a string");
                return None;
            }
        };
        if argv.first().is_none_or(|program| program.is_empty()) {
            self.value(
                entry,
                "`exec` is empty; give the command to run, e.g. exec = [\"node\", \"server.js\"]",
            );
            return None;
        }
        if argv.iter().any(|word| word.contains('\0')) {
            self.value(
                entry,
                "`exec` contains a NUL character, which a command line cannot hold",
            );
            return None;
        }
        Some(argv)
    }

    /// A non-empty path, resolved against `dir` when relative.
    fn path(&mut self, entry: &Entry, dir: &Path) -> Option<PathBuf> {
        let text = self.string(entry)?;
        if text.contains('\0') {
            self.value(entry, "the path contains a NUL character");
            return None;
        }
        if text.is_empty() {
            self.value(
                entry,
                format!("`{}` is empty; give a path or remove the key", entry.key),
            );
            return None;
        }
        Some(dir.join(text))
    }

    fn env(&mut self, entry: &Entry) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Value::Table(vars) = &entry.node.value else {
            self.wrong_type(
                entry,
                &entry.node,
                "a table of strings, e.g. env = { PORT = \"3000\" }",
            );
            return env;
        };
        for var in vars {
            let name = var.key.strip_prefix("env.").unwrap_or(&var.key);
            if !is_env_name(name) {
                self.issues.push(Issue::at_key(
                    var,
                    format!(
                        "`{name}` is not a valid environment variable name; use letters, digits \
                         and _, not starting with a digit"
                    ),
                ));
                continue;
            }
            match &var.node.value {
                Value::String(value) if value.contains('\0') => {
                    self.value(var, "the value contains a NUL character");
                }
                Value::String(value) => {
                    env.insert(name.to_string(), value.clone());
                }
                _ => self.wrong_type(var, &var.node, "a string (quote numbers: PORT = \"3000\")"),
            }
        }
        env
    }

    fn env_file(
        &mut self,
        entry: &Entry,
        dir: &Path,
    ) -> (Option<PathBuf>, BTreeMap<String, String>) {
        let Some(path) = self.path(entry, dir) else {
            return (None, BTreeMap::new());
        };
        let text = match super::envfile::read_env_file(&path) {
            Ok(text) => text,
            Err(error) => {
                self.value(
                    entry,
                    format!("cannot read env_file {}: {error}", path.display()),
                );
                return (Some(path), BTreeMap::new());
            }
        };
        match parse_env_file(&text) {
            Ok(vars) => (Some(path), vars.into_iter().collect()),
            Err(errors) => {
                for error in errors {
                    self.issues.push(Issue {
                        at: At::Elsewhere {
                            path: path.clone(),
                            line: error.line,
                            column: error.column,
                        },
                        key: Some(entry.key.clone()),
                        message: format!("in env_file {}: {}", path.display(), error.message),
                    });
                }
                (Some(path), BTreeMap::new())
            }
        }
    }

    /// `user` / `group`: a name or a numeric id, kept as a string.
    fn id(&mut self, entry: &Entry, what: &str) -> Option<String> {
        match &entry.node.value {
            Value::String(name) if !name.is_empty() && !name.contains('\0') => Some(name.clone()),
            Value::Integer(Some(id)) if u32::try_from(*id).is_ok() => Some(id.to_string()),
            Value::String(_) | Value::Integer(_) => {
                self.value(
                    entry,
                    format!("not a valid {what}; give a {what} name or a numeric id"),
                );
                None
            }
            _ => {
                self.wrong_type(
                    entry,
                    &entry.node,
                    &format!("a {what} name or a numeric id"),
                );
                None
            }
        }
    }

    fn umask(&mut self, entry: &Entry) -> Option<u32> {
        let hint = "write the umask as a quoted octal string, e.g. umask = \"022\" or \"0027\"";
        let Value::String(text) = &entry.node.value else {
            let found = entry.node.value.type_name();
            self.value(
                entry,
                format!("expected an octal string, found {found}; {hint}"),
            );
            return None;
        };
        let mask = (1..=4)
            .contains(&text.len())
            .then(|| u32::from_str_radix(text, 8).ok())
            .flatten()
            .filter(|mask| *mask <= 0o777 && text.bytes().all(|b| b.is_ascii_digit()));
        if mask.is_none() {
            self.value(entry, format!("invalid umask \"{text}\"; {hint}"));
        }
        mask
    }

    fn duration(&mut self, entry: &Entry) -> Option<Duration> {
        match &entry.node.value {
            Value::String(text) => match parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(message) => {
                    self.value(entry, message);
                    None
                }
            },
            other => {
                let found = other.type_name();
                let message = format!(
                    "expected a duration string, found {found}; {DURATION_FORMS} (quote it)"
                );
                self.value(entry, message);
                None
            }
        }
    }

    fn restart(&mut self, raw: &raw::RawRestart) -> RestartConfig {
        let mut config = RestartConfig::default();
        if let Some(entry) = &raw.policy
            && let Some(text) = self.string(entry)
        {
            match text.as_str() {
                "always" => config.policy = RestartPolicy::Always,
                "on-failure" => config.policy = RestartPolicy::OnFailure,
                "never" => config.policy = RestartPolicy::Never,
                _ => self.value(
                    entry,
                    format!("unknown restart policy \"{text}\"; use \"always\", \"on-failure\" or \"never\""),
                ),
            }
        }
        let durations = [
            (&raw.delay, &mut config.delay),
            (&raw.max_delay, &mut config.max_delay),
            (&raw.reset_after, &mut config.reset_after),
        ];
        for (entry, slot) in durations {
            if let Some(value) = entry.as_ref().and_then(|e| self.duration(e)) {
                *slot = value;
            }
        }
        if let Some(entry) = &raw.multiplier {
            let number = match entry.node.value {
                Value::Float(f) => f,
                Value::Integer(i) => i.map(|i| i as f64),
                _ => {
                    self.wrong_type(entry, &entry.node, "a number ≥ 1, e.g. 2 or 1.5");
                    None
                }
            };
            match number {
                Some(n) if n.is_finite() && n >= 1.0 => config.multiplier = n,
                Some(_) => self.value(
                    entry,
                    "the multiplier must be a finite number ≥ 1, e.g. 2 or 1.5",
                ),
                None => {}
            }
        }
        if config.delay > config.max_delay {
            let entry = raw.delay.as_ref().or(raw.max_delay.as_ref());
            if let Some(entry) = entry {
                let message = format!(
                    "restart.delay ({}) is longer than restart.max_delay ({}); lower delay or raise max_delay",
                    super::duration::format_duration(config.delay),
                    super::duration::format_duration(config.max_delay)
                );
                self.value(entry, message);
            }
        }
        config.limit = self.limit(raw);
        config
    }

    /// `burst` alone uses [`DEFAULT_INTERVAL`]; `interval` alone is an error.
    fn limit(&mut self, raw: &raw::RawRestart) -> Option<StartLimit> {
        let burst = raw.burst.as_ref().and_then(|entry| match entry.node.value {
            Value::Integer(Some(n)) if n >= 1 => match u32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.value(entry, "restart.burst is too large");
                    None
                }
            },
            Value::Integer(Some(_)) => {
                self.value(entry, "restart.burst must be at least 1");
                None
            }
            Value::Integer(None) => {
                self.value(entry, "restart.burst is too large");
                None
            }
            _ => {
                self.wrong_type(entry, &entry.node, "an integer ≥ 1");
                None
            }
        });
        let interval = raw.interval.as_ref().and_then(|entry| {
            let interval = self.duration(entry)?;
            if interval.is_zero() {
                self.value(entry, "restart.interval must be longer than 0s");
                return None;
            }
            Some(interval)
        });
        if let (None, Some(entry)) = (&raw.burst, &raw.interval) {
            self.issues.push(Issue::at_key(
                entry,
                "restart.interval needs restart.burst: more than `burst` starts within `interval` \
                 fail the unit; add burst = N or remove interval",
            ));
        }
        let interval = match &raw.interval {
            Some(_) => interval?,
            None => DEFAULT_INTERVAL,
        };
        Some(StartLimit {
            burst: burst?,
            interval,
        })
    }

    fn log(&mut self, raw: &raw::RawLog) -> LogConfig {
        let mut config = LogConfig::default();
        if let Some(entry) = &raw.max_size {
            let size = match &entry.node.value {
                Value::String(text) => match super::duration::parse_size(text) {
                    Ok(size) => Some(size),
                    Err(message) => {
                        self.value(entry, message);
                        None
                    }
                },
                Value::Integer(Some(n)) if *n >= 0 => Some(*n as u64),
                _ => {
                    self.wrong_type(entry, &entry.node, "a size such as \"10M\", or bytes");
                    None
                }
            };
            match size {
                Some(size) if size < MIN_LOG_SIZE => self.value(
                    entry,
                    format!("log.max_size must be at least {MIN_LOG_SIZE} bytes (\"1K\")"),
                ),
                Some(size) => config.max_size = Some(size),
                None => {}
            }
        }
        if let Some(entry) = &raw.keep {
            match entry.node.value {
                Value::Integer(Some(n)) => match u32::try_from(n) {
                    Ok(n) if n <= 1000 => config.keep = Some(n),
                    _ => self.value(entry, "log.keep must be between 0 and 1000"),
                },
                _ => self.wrong_type(entry, &entry.node, "an integer (rotated files kept)"),
            }
        }
        config
    }

    fn stop(&mut self, raw: &raw::RawStop) -> StopConfig {
        let mut config = StopConfig::default();
        if let Some(entry) = &raw.signal {
            let text = match &entry.node.value {
                Value::String(text) => Some(text.clone()),
                Value::Integer(n) => Some(n.map_or_else(|| "?".to_string(), |n| n.to_string())),
                _ => {
                    self.wrong_type(
                        entry,
                        &entry.node,
                        "a signal name such as \"SIGTERM\", or a number",
                    );
                    None
                }
            };
            if let Some(text) = text {
                match crate::signal::parse(&text) {
                    Some(number) => config.signal = number,
                    None => self.value(
                        entry,
                        format!(
                            "unknown signal \"{text}\"; use a name such as \"SIGTERM\", \"SIGINT\", \
                             \"SIGQUIT\" or \"SIGHUP\", or a signal number"
                        ),
                    ),
                }
            }
        }
        if let Some(timeout) = raw.timeout.as_ref().and_then(|e| self.duration(e)) {
            config.timeout = timeout;
        }
        config
    }

    fn size(&mut self, entry: &Entry) -> Option<u64> {
        let parsed = match &entry.node.value {
            Value::String(text) => parse_size(text),
            Value::Integer(Some(n)) => {
                u64::try_from(*n).map_err(|_| "a size cannot be negative".to_string())
            }
            other => Err(format!(
                "expected a size, found {}; {SIZE_FORMS}",
                other.type_name()
            )),
        };
        match parsed {
            Ok(0) => {
                self.value(
                    entry,
                    format!(
                        "`{}` must be more than 0; remove the key for no limit",
                        entry.key
                    ),
                );
                None
            }
            Ok(size) => Some(size),
            Err(message) => {
                self.value(entry, message);
                None
            }
        }
    }

    fn memory(&mut self, raw: &raw::RawMemory) -> MemoryConfig {
        let mut config = MemoryConfig {
            max: raw.max.as_ref().and_then(|e| self.size(e)),
            swap_max: raw.swap_max.as_ref().and_then(|e| self.size(e)),
            ..MemoryConfig::default()
        };
        if let Some(entry) = &raw.oom_score_adj {
            match entry.node.value {
                Value::Integer(Some(n)) if (-1000..=1000).contains(&n) => {
                    config.oom_score_adj = i16::try_from(n).ok();
                }
                Value::Integer(_) => self.value(
                    entry,
                    "memory.oom_score_adj must be between -1000 (never killed by the kernel's \
                     OOM killer) and 1000 (killed first)",
                ),
                _ => self.wrong_type(entry, &entry.node, "an integer from -1000 to 1000"),
            }
        }
        if let Some(entry) = &raw.on_pressure
            && let Some(text) = self.string(entry)
        {
            match text.as_str() {
                "restart" => config.restart_on_pressure = true,
                "none" => config.restart_on_pressure = false,
                _ => self.value(
                    entry,
                    format!("unknown memory.on_pressure \"{text}\"; use \"restart\" or \"none\""),
                ),
            }
        }
        config
    }
}
