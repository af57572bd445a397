//! Templates: a file `NAME@.toml` is not a unit but a pattern of units; `NAME@INSTANCE` is one,
//! made from it with `%i` in its strings replaced by `INSTANCE` and `SVC_INSTANCE` in its
//! environment. The instances svcd runs are those the template lists in `instances` (systemd's
//! `DefaultInstance=` and `WantedBy=` of `NAME@a.service`, in one key).
//!
//! `%i` is replaced in `exec`, `env`, `workdir`, `description`, `env_file` and `pidfile` only, where an
//! instance's command, directory or files differ; `%%` is a literal `%` there. Any other `%`
//! sequence in those keys of a template is an error, so that a later specifier cannot change
//! the meaning of a file written today.

use super::keys::Key;
use super::raw::{Entry, Issue, Node, RawUnit, Value};

/// The instance `svc check` validates a template with when it lists none.
pub const SAMPLE_INSTANCE: &str = "sample";

/// The keys whose strings may hold `%i`.
pub const KEYS_WITH_INSTANCE: [Key; 12] = [
    Key::Exec,
    Key::Env,
    Key::Workdir,
    Key::Description,
    Key::EnvFile,
    Key::Pidfile,
    Key::ExecStartPre,
    Key::ExecStartPost,
    Key::ExecStop,
    Key::RuntimeDir,
    Key::StateDir,
    Key::LogsDir,
];

/// Whether the unit named `name` (a file's stem) is a template: `worker@`.
pub fn is_template(name: &str) -> bool {
    name.ends_with('@')
}

/// Whether `instance` may name an instance: letters, digits, `_ . -`, not empty.
pub fn check_instance(instance: &str) -> Result<(), String> {
    if !instance.is_empty()
        && instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "`{instance}` is not a valid instance name; use letters, digits, _ . - only"
        ))
    }
}

/// `instances`: instance names, each once; only in a template (an instance's own copy of the
/// template's list is taken as it is).
pub(super) fn instances(entry: &Entry, name: &str, issues: &mut Vec<Issue>) -> Vec<String> {
    if !name.contains('@') {
        issues.push(Issue::at_key(
            entry,
            format!(
                "`instances` is for a template; rename the file to `{name}@.toml` to make one, \
                 or remove the key"
            ),
        ));
        return Vec::new();
    }
    let Value::Array(items) = &entry.node.value else {
        let found = entry.node.value.type_name();
        let message = format!("expected an array of instance names, e.g. [\"a\"], found {found}");
        issues.push(Issue::at_value(entry, &entry.node, message));
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let checked = match &item.value {
            Value::String(instance) => check_instance(instance).map(|()| instance.clone()),
            other => Err(format!(
                "expected an instance name (a string), found {}",
                other.type_name()
            )),
        };
        match checked {
            Ok(instance) if !names.contains(&instance) => names.push(instance),
            Ok(_) => {}
            Err(message) => issues.push(Issue::at_value(entry, item, message)),
        }
    }
    names
}

/// `text` with `%i` replaced by `instance` and `%%` by `%`; another `%` sequence is an error.
pub fn substitute(text: &str, instance: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str(instance),
            Some('%') => out.push('%'),
            other => {
                let seq: String = std::iter::once('%').chain(other).collect();
                return Err(format!(
                    "unknown specifier `{seq}` in a template; use %i for the instance and %% \
                     for a literal %"
                ));
            }
        }
    }
    Ok(out)
}

/// Replaces `%i` in the strings of [`KEYS_WITH_INSTANCE`] of `raw`; a bad `%` sequence is an
/// issue at its string (whose span stays the template's).
pub fn instantiate(raw: &mut RawUnit, instance: &str, issues: &mut Vec<Issue>) {
    for key in KEYS_WITH_INSTANCE {
        if let Some(entry) = raw.get_mut(key) {
            substitute_entry(entry, instance, issues);
        }
    }
}

/// [`substitute_node`] of `entry`'s value: taken out while it is changed, since an issue needs
/// the entry too.
fn substitute_entry(entry: &mut Entry, instance: &str, issues: &mut Vec<Issue>) {
    let placeholder = Node {
        value: Value::Bool(false),
        span: 0..0,
    };
    let mut node = std::mem::replace(&mut entry.node, placeholder);
    substitute_node(entry, &mut node, instance, issues);
    entry.node = node;
}

fn substitute_node(entry: &Entry, node: &mut Node, instance: &str, issues: &mut Vec<Issue>) {
    match &mut node.value {
        Value::String(text) => match substitute(text, instance) {
            Ok(done) => *text = done,
            Err(message) => issues.push(Issue::at_value(entry, node, message)),
        },
        Value::Array(items) => {
            for item in items {
                substitute_node(entry, item, instance, issues);
            }
        }
        Value::Table(entries) => {
            for inner in entries {
                substitute_entry(inner, instance, issues);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_i_is_the_instance_and_percent_percent_a_percent() {
        assert_eq!(substitute("run %i", "a").as_deref(), Ok("run a"));
        assert_eq!(substitute("%i-%i", "b.c").as_deref(), Ok("b.c-b.c"));
        assert_eq!(substitute("100%%", "a").as_deref(), Ok("100%"));
        assert_eq!(substitute("%%i", "a").as_deref(), Ok("%i"));
        assert!(substitute("%n", "a").is_err_and(|m| m.contains("`%n`")));
        assert!(substitute("50%", "a").is_err_and(|m| m.contains("`%`")));
    }

    #[test]
    fn instance_names_are_letters_digits_and_underscore_dot_dash() {
        for good in ["a", "web-1", "x_y.z", "8080"] {
            assert!(check_instance(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "a@b", "%i"] {
            assert!(check_instance(bad).is_err(), "{bad}");
        }
        assert!(is_template("worker@") && !is_template("worker@a") && !is_template("worker"));
    }
}
