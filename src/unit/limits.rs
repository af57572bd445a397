//! Per-unit process settings applied in the child before exec: resource limits (`[limits]`,
//! systemd's `LimitNOFILE=` and friends), `nice` and `supplementary_groups`.
//!
//! A limit is an integer or `"infinity"`, which sets the soft and the hard limit alike (as
//! systemd's `LimitNOFILE=N` does), or `"SOFT:HARD"` for two different ones.

use super::StopMode;
use super::raw::{Entry, Issue, Value};

/// `RLIM_INFINITY`: no limit.
pub const INFINITY: u64 = u64::MAX;

/// A resource limit: the soft one, which the process may raise up to the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub soft: u64,
    pub hard: u64,
}

/// `[limits]`: each `None` leaves svcd's own limit (inherited) in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `RLIMIT_NOFILE`: open files.
    pub nofile: Option<Rlimit>,
    /// `RLIMIT_NPROC`: processes (threads) of the unit's user.
    pub nproc: Option<Rlimit>,
    /// `RLIMIT_CORE`: core file size, in bytes.
    pub core: Option<Rlimit>,
    /// `RLIMIT_MEMLOCK`: locked memory, in bytes.
    pub memlock: Option<Rlimit>,
}

impl LimitsConfig {
    /// Whether any limit is set (the spawn path then takes its hook).
    pub fn is_empty(&self) -> bool {
        self.nofile.is_none()
            && self.nproc.is_none()
            && self.core.is_none()
            && self.memlock.is_none()
    }
}

const LIMIT_FORMS: &str = "give an integer, \"infinity\", or \"SOFT:HARD\" (e.g. \"1024:65536\")";

/// One side of a limit: a number or `infinity`.
fn one(text: &str) -> Option<u64> {
    match text.trim() {
        "infinity" => Some(INFINITY),
        number => number
            .parse::<u64>()
            .ok()
            .filter(|n| *n != INFINITY && number.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// `limits.*`: an integer ≥ 0, `"infinity"`, or `"SOFT:HARD"` with soft ≤ hard.
pub(super) fn rlimit(entry: &Entry, issues: &mut Vec<Issue>) -> Option<Rlimit> {
    let parsed = match &entry.node.value {
        Value::Integer(Some(n)) => u64::try_from(*n)
            .ok()
            .map(|n| Rlimit { soft: n, hard: n })
            .ok_or_else(|| format!("a limit cannot be negative; {LIMIT_FORMS}")),
        Value::String(text) => {
            let (soft, hard) = text.split_once(':').unwrap_or((text, text));
            match (one(soft), one(hard)) {
                (Some(soft), Some(hard)) if soft <= hard => Ok(Rlimit { soft, hard }),
                (Some(_), Some(_)) => Err(format!(
                    "the soft limit of \"{text}\" is above its hard limit; the soft one comes \
                     first"
                )),
                _ => Err(format!("invalid limit \"{text}\"; {LIMIT_FORMS}")),
            }
        }
        other => Err(format!(
            "expected a limit, found {}; {LIMIT_FORMS}",
            other.type_name()
        )),
    };
    parsed
        .map_err(|message| issues.push(Issue::at_value(entry, &entry.node, message)))
        .ok()
}

/// `nice`: -20 (most favoured) ..= 19 (least).
pub(super) fn nice(entry: &Entry, issues: &mut Vec<Issue>) -> Option<i8> {
    match entry.node.value {
        Value::Integer(Some(n)) if (-20..=19).contains(&n) => i8::try_from(n).ok(),
        ref other => {
            let message = match other {
                Value::Integer(_) => {
                    "nice must be between -20 (most favoured) and 19 (least)".to_string()
                }
                other => format!(
                    "expected an integer from -20 to 19, found {}",
                    other.type_name()
                ),
            };
            issues.push(Issue::at_value(entry, &entry.node, message));
            None
        }
    }
}

/// `stop.mode`: `group`, `main` or `process`.
pub(super) fn stop_mode(entry: &Entry, issues: &mut Vec<Issue>) -> Option<StopMode> {
    let mode = match &entry.node.value {
        Value::String(text) => match text.as_str() {
            "group" => Ok(StopMode::Group),
            "main" => Ok(StopMode::Main),
            "process" => Ok(StopMode::Process),
            _ => Err(format!(
                "unknown stop.mode \"{text}\"; use \"group\", \"main\" or \"process\""
            )),
        },
        other => Err(format!(
            "expected \"group\", \"main\" or \"process\", found {}",
            other.type_name()
        )),
    };
    mode.map_err(|message| issues.push(Issue::at_value(entry, &entry.node, message)))
        .ok()
}

/// `supplementary_groups`: group names or numeric ids, each kept once, as strings.
pub(super) fn groups(entry: &Entry, issues: &mut Vec<Issue>) -> Vec<String> {
    let Value::Array(items) = &entry.node.value else {
        let found = entry.node.value.type_name();
        let message = format!("expected an array of groups, e.g. [\"adm\", 44], found {found}");
        issues.push(Issue::at_value(entry, &entry.node, message));
        return Vec::new();
    };
    let mut groups: Vec<String> = Vec::new();
    for item in items {
        let group = match &item.value {
            Value::String(name) if !name.is_empty() && !name.contains(['\0', ':']) => name.clone(),
            Value::Integer(Some(id)) if u32::try_from(*id).is_ok() => id.to_string(),
            other => {
                let message = format!(
                    "expected a group name or a numeric id, found {}",
                    match other {
                        Value::String(_) | Value::Integer(_) => "an invalid one",
                        other => other.type_name(),
                    }
                );
                issues.push(Issue::at_value(entry, item, message));
                continue;
            }
        };
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::raw::Node;

    fn entry(value: Value) -> Entry {
        Entry {
            key: "limits.nofile".to_string(),
            key_span: 0..1,
            node: Node { value, span: 0..1 },
        }
    }

    fn limit(value: Value) -> Result<Rlimit, String> {
        let mut issues = Vec::new();
        rlimit(&entry(value), &mut issues).ok_or_else(|| issues[0].message.clone())
    }

    #[test]
    fn a_limit_is_a_number_infinity_or_soft_colon_hard() {
        let same = |n| Ok(Rlimit { soft: n, hard: n });
        assert_eq!(limit(Value::Integer(Some(4096))), same(4096));
        assert_eq!(limit(Value::String("infinity".into())), same(INFINITY));
        assert_eq!(limit(Value::String("0".into())), same(0));
        assert_eq!(
            limit(Value::String("1024:infinity".into())),
            Ok(Rlimit {
                soft: 1024,
                hard: INFINITY
            })
        );
        assert!(limit(Value::String("2:1".into())).is_err_and(|m| m.contains("soft")));
        for bad in ["", "-1", "+5", "1k", "1:2:3", "infinity:1", "unlimited"] {
            assert!(limit(Value::String(bad.into())).is_err(), "{bad}");
        }
        assert!(limit(Value::Integer(Some(-1))).is_err());
        assert!(limit(Value::Bool(true)).is_err());
    }

    #[test]
    fn stop_mode_is_group_main_or_process() {
        let mode = |text: &str| stop_mode(&entry(Value::String(text.into())), &mut Vec::new());
        assert_eq!(mode("group"), Some(StopMode::Group));
        assert_eq!(mode("main"), Some(StopMode::Main));
        assert_eq!(mode("process"), Some(StopMode::Process));
        assert_eq!(mode("mixed"), None);
        let sent_to_main = |mode, signal| crate::process::signals_main_only(mode, signal);
        assert!(!sent_to_main(StopMode::Group, libc::SIGTERM));
        assert!(sent_to_main(StopMode::Main, libc::SIGTERM));
        assert!(!sent_to_main(StopMode::Main, libc::SIGKILL));
        assert!(sent_to_main(StopMode::Process, libc::SIGKILL));
    }

    #[test]
    fn nice_is_minus_20_to_19() {
        let nice_of = |n| nice(&entry(Value::Integer(Some(n))), &mut Vec::new());
        assert_eq!(nice_of(-20), Some(-20));
        assert_eq!(nice_of(19), Some(19));
        assert_eq!(nice_of(20), None);
        assert_eq!(nice_of(-21), None);
    }

    #[test]
    fn supplementary_groups_are_names_or_ids_once_each() {
        let mut issues = Vec::new();
        let items = [
            Value::String("adm".into()),
            Value::Integer(Some(44)),
            Value::String("adm".into()),
            Value::Integer(Some(-1)),
            Value::String("a:b".into()),
        ];
        let array = Value::Array(
            items
                .into_iter()
                .map(|value| Node { value, span: 0..1 })
                .collect(),
        );
        assert_eq!(groups(&entry(array), &mut issues), ["adm", "44"]);
        assert_eq!(issues.len(), 2);
    }
}
