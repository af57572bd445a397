//! The checks of single values (stage two, beside [`super::validate`]): a string, a duration, a
//! signal, an `exec`, an `env_file`... Each pushes an [`Issue`] at the value (or key) and
//! returns `None` when the value is bad. The rows of [`super::keys::KEYS`] call them.

use super::duration::{DURATION_FORMS, SIZE_FORMS, parse_duration, parse_size};
use super::envfile::{is_env_name, parse_env_file};
use super::keys::Key;
use super::raw::{At, Entry, Issue, Node, RawUnit, Value};
use super::{MIN_LOG_SIZE, NotifyAccess, RestartPolicy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the checks of a unit file share: where issues go, and what a value's meaning may
/// depend on.
pub struct Check<'a> {
    pub issues: &'a mut Vec<Issue>,
    /// The unit file's directory, against which relative paths resolve.
    pub dir: &'a Path,
    /// The unit's name, which its dependencies may not name.
    pub name: &'a str,
    /// The whole file, for a key whose meaning depends on another (`exec` on `shell`).
    raw: &'a RawUnit,
}

impl<'a> Check<'a> {
    pub fn new(
        issues: &'a mut Vec<Issue>,
        dir: &'a Path,
        name: &'a str,
        raw: &'a RawUnit,
    ) -> Check<'a> {
        Check {
            issues,
            dir,
            name,
            raw,
        }
    }
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

    pub fn string(&mut self, entry: &Entry) -> Option<String> {
        match &entry.node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(entry, &entry.node, "a string");
                None
            }
        }
    }

    /// `description`: one line.
    pub fn description(&mut self, entry: &Entry) -> Option<String> {
        let text = self.string(entry)?;
        if text.contains('\n') {
            self.value(
                entry,
                "the description must be one line; shorten it or join its lines",
            );
        }
        Some(text)
    }

    pub fn notify_access(&mut self, entry: &Entry) -> Option<NotifyAccess> {
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

    pub fn boolean(&mut self, entry: &Entry) -> Option<bool> {
        match entry.node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(entry, &entry.node, "a boolean (true or false)");
                None
            }
        }
    }

    /// `exec`, read with `shell` (whose own errors are its row's to report).
    pub fn argv(&mut self, entry: &Entry) -> Option<Vec<String>> {
        let shell = self
            .raw
            .get(Key::Shell)
            .is_some_and(|shell| shell.node.value == Value::Bool(true));
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
    pub fn path(&mut self, entry: &Entry, dir: &Path) -> Option<PathBuf> {
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

    pub fn env(&mut self, entry: &Entry) -> BTreeMap<String, String> {
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

    pub fn env_file(
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
    pub fn id(&mut self, entry: &Entry, what: &str) -> Option<String> {
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

    pub fn umask(&mut self, entry: &Entry) -> Option<u32> {
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

    pub fn duration(&mut self, entry: &Entry) -> Option<Duration> {
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

    pub fn restart_policy(&mut self, entry: &Entry) -> Option<RestartPolicy> {
        let text = self.string(entry)?;
        match text.as_str() {
            "always" => Some(RestartPolicy::Always),
            "on-failure" => Some(RestartPolicy::OnFailure),
            "never" => Some(RestartPolicy::Never),
            _ => {
                self.value(
                    entry,
                    format!("unknown restart policy \"{text}\"; use \"always\", \"on-failure\" or \"never\""),
                );
                None
            }
        }
    }

    pub fn multiplier(&mut self, entry: &Entry) -> Option<f64> {
        let number = match entry.node.value {
            Value::Float(f) => f,
            Value::Integer(i) => i.map(|i| i as f64),
            _ => {
                self.wrong_type(entry, &entry.node, "a number ≥ 1, e.g. 2 or 1.5");
                return None;
            }
        };
        match number {
            Some(n) if n.is_finite() && n >= 1.0 => Some(n),
            Some(_) => {
                self.value(
                    entry,
                    "the multiplier must be a finite number ≥ 1, e.g. 2 or 1.5",
                );
                None
            }
            None => None,
        }
    }

    /// `restart.burst`: an integer ≥ 1.
    pub fn burst(&mut self, entry: &Entry) -> Option<u32> {
        match entry.node.value {
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
        }
    }

    /// A duration longer than zero.
    pub fn positive_duration(&mut self, entry: &Entry) -> Option<Duration> {
        let duration = self.duration(entry)?;
        if duration.is_zero() {
            self.value(entry, format!("{} must be longer than 0s", entry.key));
            return None;
        }
        Some(duration)
    }

    pub fn log_max_size(&mut self, entry: &Entry) -> Option<u64> {
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
            Some(size) if size < MIN_LOG_SIZE => {
                self.value(
                    entry,
                    format!("log.max_size must be at least {MIN_LOG_SIZE} bytes (\"1K\")"),
                );
                None
            }
            size => size,
        }
    }

    pub fn log_keep(&mut self, entry: &Entry) -> Option<u32> {
        match entry.node.value {
            Value::Integer(Some(n)) => match u32::try_from(n) {
                Ok(n) if n <= 1000 => Some(n),
                _ => {
                    self.value(entry, "log.keep must be between 0 and 1000");
                    None
                }
            },
            _ => {
                self.wrong_type(entry, &entry.node, "an integer (rotated files kept)");
                None
            }
        }
    }

    /// `stop.signal`: a name or a number.
    pub fn signal(&mut self, entry: &Entry) -> Option<i32> {
        let text = match &entry.node.value {
            Value::String(text) => text.clone(),
            Value::Integer(n) => n.map_or_else(|| "?".to_string(), |n| n.to_string()),
            _ => {
                self.wrong_type(
                    entry,
                    &entry.node,
                    "a signal name such as \"SIGTERM\", or a number",
                );
                return None;
            }
        };
        let number = crate::signal::parse(&text);
        if number.is_none() {
            self.value(
                entry,
                format!(
                    "unknown signal \"{text}\"; use a name such as \"SIGTERM\", \"SIGINT\", \
                     \"SIGQUIT\" or \"SIGHUP\", or a signal number"
                ),
            );
        }
        number
    }

    /// `health.failures`: 1 to 1000.
    pub fn failures(&mut self, entry: &Entry) -> Option<u32> {
        match entry.node.value {
            Value::Integer(Some(n)) if (1..=1000).contains(&n) => u32::try_from(n).ok(),
            _ => {
                self.value(entry, "health.failures must be an integer from 1 to 1000");
                None
            }
        }
    }

    pub fn size(&mut self, entry: &Entry) -> Option<u64> {
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

    pub fn oom_score_adj(&mut self, entry: &Entry) -> Option<i16> {
        match entry.node.value {
            Value::Integer(Some(n)) if (-1000..=1000).contains(&n) => i16::try_from(n).ok(),
            Value::Integer(_) => {
                self.value(
                    entry,
                    "memory.oom_score_adj must be between -1000 (never killed by the kernel's \
                     OOM killer) and 1000 (killed first)",
                );
                None
            }
            _ => {
                self.wrong_type(entry, &entry.node, "an integer from -1000 to 1000");
                None
            }
        }
    }

    /// `memory.on_pressure`: the steps the host policy may take, as an array of them, or
    /// `"restart"` (`["restart"]`) or `"none"` (`[]`).
    pub fn on_pressure(&mut self, entry: &Entry) -> Option<crate::memory::OnPressure> {
        let written = match &entry.node.value {
            Value::String(text) => match text.as_str() {
                "restart" => vec!["restart"],
                "none" => Vec::new(),
                _ => {
                    self.value(
                        entry,
                        format!(
                            "unknown memory.on_pressure \"{text}\"; use \"restart\" or \"none\", \
                             or an array of \"notify\", \"reclaim\" and/or \"restart\""
                        ),
                    );
                    return None;
                }
            },
            Value::Array(_) => self.steps(entry, "memory.on_pressure")?,
            _ => {
                self.wrong_type(
                    entry,
                    &entry.node,
                    "\"restart\", \"none\" or an array such as [\"notify\", \"restart\"]",
                );
                return None;
            }
        };
        match crate::memory::OnPressure::parse(&written) {
            Ok(on_pressure) => Some(on_pressure),
            Err(message) => {
                self.value(entry, message);
                None
            }
        }
    }

    /// The strings of the array `entry` (`key`'s steps); `None`, with an issue for each item
    /// that is not a string, where one is not.
    fn steps<'a>(&mut self, entry: &'a Entry, key: &str) -> Option<Vec<&'a str>> {
        let Value::Array(items) = &entry.node.value else {
            return None;
        };
        let mut steps = Vec::new();
        for item in items {
            match &item.value {
                Value::String(step) => steps.push(step.as_str()),
                _ => self.wrong_type(entry, item, &format!("a string in the `{key}` array")),
            }
        }
        (steps.len() == items.len()).then_some(steps)
    }

    /// `memory.on_limit`: an array of the steps [`crate::memory::ladder::OnLimit`] names.
    pub fn on_limit(&mut self, entry: &Entry) -> Option<crate::memory::ladder::OnLimit> {
        let Value::Array(_) = &entry.node.value else {
            self.wrong_type(
                entry,
                &entry.node,
                "an array such as [\"notify\", \"restart\"]",
            );
            return None;
        };
        let steps = self.steps(entry, "memory.on_limit")?;
        match crate::memory::ladder::OnLimit::parse(&steps) {
            Ok(on_limit) => Some(on_limit),
            Err(message) => {
                self.value(entry, message);
                None
            }
        }
    }
}
