//! The commands a unit runs around its main command (`exec_start_pre`, `exec_start_post`,
//! `exec_stop`, systemd's `ExecStartPre=` and friends) and the directories svcd makes for it
//! (`runtime_dir`, `state_dir`, `logs_dir`, systemd's `RuntimeDirectory=` and friends).
//!
//! A list of commands is one string (one command), or an array whose items are each a string
//! (one command, split by shell-word rules as `exec` is) or an array of strings (an argv). A
//! command whose program starts with `-` may fail without failing the unit, as in systemd.

use super::raw::{Entry, Issue, Value};

/// `*_dir_mode` when not given.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

/// One hook command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    pub argv: Vec<String>,
    /// Written with a leading `-`: its failure is logged and ignored.
    pub ignore_failure: bool,
}

impl HookCommand {
    /// The command as messages show it: its words joined by spaces.
    pub fn shown(&self) -> String {
        self.argv.join(" ")
    }
}

/// The unit's hook commands, each list run in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HooksConfig {
    /// Before the main command; a failure fails the start.
    pub start_pre: Vec<HookCommand>,
    /// Once the main command is ready; the unit is `running` after them; a failure fails the
    /// start.
    pub start_post: Vec<HookCommand>,
    /// On a stop of a running unit, before the stop signal, with `MAINPID` set.
    pub stop: Vec<HookCommand>,
}

/// One kind of directory svcd makes for the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirConfig {
    /// Relative paths under the kind's root, each component a plain name.
    pub names: Vec<String>,
    /// Mode of the innermost directory of each name.
    pub mode: u32,
}

impl Default for DirConfig {
    fn default() -> Self {
        DirConfig {
            names: Vec::new(),
            mode: DEFAULT_DIR_MODE,
        }
    }
}

/// `runtime_dir`, `state_dir`, `logs_dir` and their modes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirsConfig {
    /// Under the runtime root (`/run`); removed when the unit stops.
    pub runtime: DirConfig,
    /// Under the state root (`/var/lib`); kept.
    pub state: DirConfig,
    /// Under the logs root (`/var/log`); kept.
    pub logs: DirConfig,
}

impl DirsConfig {
    pub fn is_empty(&self) -> bool {
        self.runtime.names.is_empty() && self.state.names.is_empty() && self.logs.names.is_empty()
    }
}

/// `exec_start_pre`, `exec_start_post`, `exec_stop`: see the module documentation.
pub(super) fn commands(entry: &Entry, issues: &mut Vec<Issue>) -> Vec<HookCommand> {
    let hint = "expected a command or an array of commands, each a string or an array of \
                strings, e.g. [\"mkdir -p /srv/data\", [\"chown\", \"app\", \"/srv/data\"]]";
    let items: Vec<&super::raw::Node> = match &entry.node.value {
        Value::String(_) => vec![&entry.node],
        Value::Array(items) => items.iter().collect(),
        _ => {
            issues.push(Issue::at_value(entry, &entry.node, hint));
            return Vec::new();
        }
    };
    let all_strings = items
        .iter()
        .all(|item| matches!(item.value, Value::String(_)));
    let mut commands = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let words = match &item.value {
            Value::String(text) => {
                // `["mkdir", "-p", "/x"]` is three commands, not one argv: a lone option
                // (`-p`, `--force`) after the first is that mistake, not a command (`-false`
                // is one: `false`, its failure ignored).
                let option = text.starts_with("--") || (text.starts_with('-') && text.len() == 2);
                if all_strings && index > 0 && option && !text.contains(' ') {
                    issues.push(Issue::at_value(
                        entry,
                        item,
                        format!(
                            "\"{text}\" looks like an argument, but each string here is a whole \
                             command; write one argv as an array in the array, e.g. \
                             [[\"mkdir\", \"-p\", \"/x\"]], or one string, [\"mkdir -p /x\"]"
                        ),
                    ));
                    continue;
                }
                shlex::split(text)
            }
            Value::Array(words) => words
                .iter()
                .map(|word| match &word.value {
                    Value::String(word) => Some(word.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let Some(mut argv) = words else {
            issues.push(Issue::at_value(entry, item, hint));
            continue;
        };
        let ignore_failure = argv.first().is_some_and(|p| p.starts_with('-'));
        if let Some(program) = argv.first_mut().filter(|_| ignore_failure) {
            program.remove(0);
        }
        if argv.first().is_none_or(|p| p.is_empty()) || argv.iter().any(|w| w.contains('\0')) {
            issues.push(Issue::at_value(
                entry,
                item,
                "a command with no program (or a NUL character); give the program to run",
            ));
            continue;
        }
        commands.push(HookCommand {
            argv,
            ignore_failure,
        });
    }
    commands
}

/// `runtime_dir`, `state_dir`, `logs_dir`: a name or an array of names, each a relative path
/// of plain components (no `.`, `..` or empty ones), so that it stays under its root.
pub(super) fn dir_names(entry: &Entry, issues: &mut Vec<Issue>) -> Vec<String> {
    let items: Vec<&super::raw::Node> = match &entry.node.value {
        Value::String(_) => vec![&entry.node],
        Value::Array(items) => items.iter().collect(),
        _ => {
            issues.push(Issue::at_value(
                entry,
                &entry.node,
                "expected a directory name or an array of them, e.g. \"postgresql\"",
            ));
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for item in items {
        let ok = match &item.value {
            Value::String(name) => check_dir_name(name).then(|| name.clone()),
            _ => None,
        };
        match ok {
            Some(name) => names.push(name),
            None => issues.push(Issue::at_value(
                entry,
                item,
                "a directory name is a relative path of plain names (no `.`, `..`, empty \
                 component, leading `/` or NUL), e.g. \"postgresql\" or \"app/cache\"",
            )),
        }
    }
    names
}

/// Whether `name` is a relative path of plain components.
pub fn check_dir_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// `*_dir_mode`: an octal string (`"0750"`), at most `0o7777`.
pub(super) fn dir_mode(entry: &Entry, issues: &mut Vec<Issue>) -> Option<u32> {
    let mode = match &entry.node.value {
        Value::String(text) if (1..=4).contains(&text.len()) => u32::from_str_radix(text, 8)
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit())),
        _ => None,
    };
    if mode.is_none() {
        issues.push(Issue::at_value(
            entry,
            &entry.node,
            "expected the mode as a quoted octal string, e.g. \"0750\"",
        ));
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, load};
    use super::*;

    fn cmd(argv: &[&str], ignore_failure: bool) -> HookCommand {
        HookCommand {
            argv: argv.iter().map(|w| w.to_string()).collect(),
            ignore_failure,
        }
    }

    #[test]
    fn hook_commands_are_read_in_every_form() {
        let unit = load(
            "exec = \"app\"\nexec_start_pre = [\"mkdir -p '/srv/a b'\", [\"-chown\", \"app\", \"/srv\"]]\n\
             exec_start_post = \"-notify-sent\"\nexec_stop = [[\"app\", \"stop\"]]\n",
        )
        .unwrap();
        assert_eq!(
            unit.hooks.start_pre,
            vec![
                cmd(&["mkdir", "-p", "/srv/a b"], false),
                cmd(&["chown", "app", "/srv"], true)
            ]
        );
        assert_eq!(unit.hooks.start_post, vec![cmd(&["notify-sent"], true)]);
        assert_eq!(unit.hooks.stop, vec![cmd(&["app", "stop"], false)]);
        assert_eq!(
            load("exec = \"app\"\n").unwrap().hooks,
            HooksConfig::default()
        );
    }

    #[test]
    fn bad_hook_commands_are_named() {
        let split = errors("exec = \"a\"\nexec_start_pre = [\"mkdir\", \"-p\", \"/x\"]\n");
        assert!(split.iter().any(|e| e.contains("argument")), "{split:?}");
        let ignored = load("exec = \"a\"\nexec_start_pre = [\"true\", \"-false\"]\n").unwrap();
        assert_eq!(ignored.hooks.start_pre[1], cmd(&["false"], true));
        let empty = errors("exec = \"a\"\nexec_stop = [\"-\"]\n");
        assert!(empty.iter().any(|e| e.contains("no program")), "{empty:?}");
        let number = errors("exec = \"a\"\nexec_start_post = 3\n");
        assert!(
            number.iter().any(|e| e.contains("array of commands")),
            "{number:?}"
        );
        let quote = errors("exec = \"a\"\nexec_stop = \"stop 'x\"\n");
        assert!(quote.iter().any(|e| e.contains("exec_stop")), "{quote:?}");
    }

    #[test]
    fn directories_are_read_and_checked() {
        let unit = load(
            "exec = \"a\"\nruntime_dir = \"pg\"\nstate_dir = [\"pg\", \"pg/wal\"]\n\
             logs_dir_mode = \"0750\"\n",
        )
        .unwrap();
        assert_eq!(unit.dirs.runtime.names, ["pg"]);
        assert_eq!(unit.dirs.state.names, ["pg", "pg/wal"]);
        assert_eq!(unit.dirs.state.mode, 0o755);
        assert_eq!(unit.dirs.logs.mode, 0o750);
        for bad in ["\"../etc\"", "\"/etc\"", "\"a//b\"", "\"\"", "\"a/./b\""] {
            let errors = errors(&format!("exec = \"a\"\nstate_dir = {bad}\n"));
            assert!(
                errors.iter().any(|e| e.contains("plain names")),
                "{bad}: {errors:?}"
            );
        }
        let mode = errors("exec = \"a\"\nruntime_dir_mode = 755\n");
        assert!(mode.iter().any(|e| e.contains("octal")), "{mode:?}");
    }

    #[test]
    fn svc_check_warns_of_a_hook_program_this_host_lacks() {
        let unit = load(
            "exec = \"true\"\nexec_start_pre = [\"svc-test-no-such-hook\", \"-svc-test-optional\"]\n\
             exec_stop = \"true\"\n",
        )
        .unwrap();
        let warnings = super::super::host::warnings(&unit);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].key, "exec_start_pre");
        assert!(warnings[0].message.contains("svc-test-no-such-hook"));
    }

    #[test]
    fn template_instances_fill_in_hooks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker@.toml");
        let text = "exec = \"w\"\nexec_start_pre = \"prep %i\"\nruntime_dir = \"worker-%i\"\n";
        let unit = super::super::validate::validate_instance(&path, text, Some("a")).unwrap();
        assert_eq!(unit.hooks.start_pre, vec![cmd(&["prep", "a"], false)]);
        assert_eq!(unit.dirs.runtime.names, ["worker-a"]);
    }
}
