//! `[reload]`: what `svc reload NAME` does to a running unit: send it a signal (`signal`, e.g.
//! nginx's `SIGHUP`), or run a command (`exec`) with the unit's user and environment and
//! `MAINPID` set, whose exit 0 means reloaded, within `timeout`.

use super::raw::{Entry, Issue, Value};
use std::time::Duration;

/// `reload.timeout` when not given: how long a `reload.exec` command may take.
pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How the unit reloads its configuration, if it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    pub method: Option<ReloadMethod>,
    /// Longest a `reload.exec` command may run; then its group is killed and the reload failed.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMethod {
    /// A signal number, sent to the unit's main process.
    Signal(i32),
    /// A command run beside the unit; exit 0 means reloaded.
    Exec(Vec<String>),
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            method: None,
            timeout: DEFAULT_RELOAD_TIMEOUT,
        }
    }
}

/// `reload.exec`: an argv, an array of strings or one string split by shell-word rules (no
/// shell).
pub(super) fn exec(entry: &Entry, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
    let argv = match &entry.node.value {
        Value::String(text) => shlex::split(text),
        Value::Array(items) => items
            .iter()
            .map(|item| match &item.value {
                Value::String(word) => Some(word.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    match argv {
        Some(argv)
            if argv.first().is_some_and(|p| !p.is_empty())
                && !argv.iter().any(|w| w.contains('\0')) =>
        {
            Some(argv)
        }
        _ => {
            issues.push(Issue::at_value(
                entry,
                &entry.node,
                "expected the reload command, as an array of strings or a string, e.g. \
                 [\"nginx\", \"-s\", \"reload\"]",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, load};
    use super::*;

    #[test]
    fn reload_keys_are_read() {
        let unit = load("exec = \"nginx\"\n[reload]\nsignal = \"SIGHUP\"\n").unwrap();
        assert_eq!(unit.reload.method, Some(ReloadMethod::Signal(1)));
        assert_eq!(unit.reload.timeout, DEFAULT_RELOAD_TIMEOUT);
        let unit = load(
            "exec = \"app\"\nreload.exec = \"kill -USR2 $MAINPID\"\nreload.timeout = \"5s\"\n",
        )
        .unwrap();
        let argv = ["kill", "-USR2", "$MAINPID"].map(String::from).to_vec();
        assert_eq!(unit.reload.method, Some(ReloadMethod::Exec(argv)));
        assert_eq!(unit.reload.timeout, Duration::from_secs(5));
        assert_eq!(
            load("exec = \"app\"\n").unwrap().reload,
            ReloadConfig::default()
        );
    }

    #[test]
    fn bad_reload_keys_are_named() {
        let both = errors("exec = \"a\"\n[reload]\nsignal = \"SIGHUP\"\nexec = [\"b\"]\n");
        assert!(both.iter().any(|e| e.contains("not both")), "{both:?}");
        let bad = errors("exec = \"a\"\n[reload]\nsignal = \"SIGNOPE\"\n");
        assert!(bad.iter().any(|e| e.contains("unknown signal")), "{bad:?}");
        let empty = errors("exec = \"a\"\n[reload]\nexec = []\n");
        assert!(
            empty.iter().any(|e| e.contains("reload command")),
            "{empty:?}"
        );
        let zero = errors("exec = \"a\"\n[reload]\nexec = \"b\"\ntimeout = \"0s\"\n");
        assert!(
            zero.iter().any(|e| e.contains("longer than 0s")),
            "{zero:?}"
        );
        let typo = errors("exec = \"a\"\n[reload]\nsignl = \"SIGHUP\"\n");
        assert!(typo.iter().any(|e| e.contains("reload.signal")), "{typo:?}");
    }
}
