//! `[schedule]`: the keys of a scheduled unit, checked here and turned into a
//! [`ScheduleConfig`]. Zones are loaded as the file is read (as an `env_file` is), so a bad
//! `timezone` is an error with its line and column, not a surprise at the first run.

use super::Unit;
use super::raw::{Entry, Issue, Node, Value};
use crate::schedule::{Calendar, Overlap, ScheduleConfig, zone};
use std::sync::Arc;

fn config(unit: &mut Unit) -> &mut ScheduleConfig {
    unit.schedule.get_or_insert_with(ScheduleConfig::default)
}

/// `schedule.timezone` (applied before `calendar`, whose zone it is).
pub(super) fn timezone(entry: &Entry, unit: &mut Unit, issues: &mut Vec<Issue>) {
    let Value::String(name) = &entry.node.value else {
        let found = entry.node.value.type_name();
        let message = format!("expected a time zone name like \"Europe/Berlin\", found {found}");
        issues.push(Issue::at_value(entry, &entry.node, message));
        return;
    };
    match zone::load(Some(name)) {
        Ok(zone) => {
            let config = config(unit);
            config.timezone = Some(name.clone());
            config.zone = Arc::new(zone);
        }
        Err(error) => issues.push(Issue::at_value(entry, &entry.node, error.to_string())),
    }
}

/// `schedule.calendar`: one expression or an array of them.
pub(super) fn calendar(entry: &Entry, unit: &mut Unit, issues: &mut Vec<Issue>) {
    let nodes: Vec<&Node> = match &entry.node.value {
        Value::String(_) => vec![&entry.node],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        other => {
            let message = format!(
                "expected a calendar expression or an array of them, found {}; \
                 e.g. calendar = \"Mon..Fri 09:00\"",
                if matches!(other, Value::Array(_)) {
                    "an empty array"
                } else {
                    other.type_name()
                }
            );
            issues.push(Issue::at_value(entry, &entry.node, message));
            return;
        }
    };
    let config = config(unit);
    if config.timezone.is_none() {
        match zone::load(None) {
            Ok(zone) => config.zone = Arc::new(zone),
            Err(error) => {
                let message = format!("the host's time zone: {error}; set schedule.timezone");
                issues.push(Issue::at_key(entry, message));
                return;
            }
        }
    }
    for node in nodes {
        let Value::String(text) = &node.value else {
            let message = format!(
                "expected a calendar expression, found {}",
                node.value.type_name()
            );
            issues.push(Issue::at_value(entry, node, message));
            continue;
        };
        match Calendar::parse(text) {
            Ok(cal) => {
                let zone = match cal.zone.as_deref() {
                    None => Arc::clone(&config.zone),
                    Some(name) => match zone::load(Some(name)) {
                        Ok(zone) => Arc::new(zone),
                        Err(error) => {
                            issues.push(Issue::at_value(entry, node, error.to_string()));
                            continue;
                        }
                    },
                };
                config.calendars.push((cal, zone));
            }
            Err(error) => {
                // Point at the character inside the string (past its opening quote), when the
                // string is written as it reads (no escapes).
                let mut at = node.clone();
                if at.span.len() == text.len() + 2 {
                    let start = at.span.start + 1 + error.offset;
                    at.span = start..start + 1;
                }
                let message = format!(
                    "bad calendar expression \"{text}\": {}; see `man svc.unit`, or try \
                     `svc calendar EXPR`",
                    error.message
                );
                issues.push(Issue::at_value(entry, &at, message));
            }
        }
    }
}

pub(super) fn overlap(entry: &Entry, unit: &mut Unit, issues: &mut Vec<Issue>) {
    let parsed = match &entry.node.value {
        Value::String(text) => Overlap::parse(text),
        _ => None,
    };
    match parsed {
        Some(overlap) => config(unit).overlap = overlap,
        None => issues.push(Issue::at_value(
            entry,
            &entry.node,
            "schedule.overlap must be \"skip\", \"queue\" or \"kill\"",
        )),
    }
}

/// The rule tying `[schedule]` together: it needs something to be due by.
pub(super) fn cross_check(unit: &Unit, table: Option<&Entry>, issues: &mut Vec<Issue>) {
    let Some(config) = &unit.schedule else { return };
    if config.calendars.is_empty()
        && config.every.is_none()
        && let Some(entry) = table
    {
        issues.push(Issue::at_key(
            entry,
            "[schedule] needs `calendar` or `every`: when should the unit run? \
             e.g. calendar = \"daily\" or every = \"12h\"",
        ));
    }
}
