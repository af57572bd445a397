//! `type`, `remain` and `pidfile`: how a unit's start completes (systemd's `Type=`,
//! `RemainAfterExit=`, `PIDFile=`), and the rules that tie them to `[ready]`, `[health]` and
//! `[restart]`.
//!
//! Where the meaning differs from systemd's, it is on purpose and documented in svc.unit(5): a
//! oneshot's default restart policy is `never` (as systemd's `Restart=no`, while other units
//! default to `on-failure`), its run has no time bound unless `ready.timeout` is given (as
//! systemd's `TimeoutStartSec=` for oneshot), and a relative `pidfile` is against the unit
//! file's directory (systemd wants an absolute path).

use super::Unit;
use super::keys::Key;
use super::raw::{Entry, Issue, RawUnit, Value};
use super::{RestartPolicy, check::Check};
use std::path::PathBuf;
use std::time::Duration;

/// `type`: when the start of the unit is complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnitType {
    /// Started once spawned (or once its `[ready]` check passes).
    #[default]
    Simple,
    /// Runs to completion: started once it exited 0.
    Oneshot,
    /// Daemonizes: started once the command exited 0 and its main process is known.
    Forking,
    /// Started once it sends `READY=1`: `ready.notify = true`.
    Notify,
}

impl UnitType {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Simple => "simple",
            UnitType::Oneshot => "oneshot",
            UnitType::Forking => "forking",
            UnitType::Notify => "notify",
        }
    }
}

/// `type`, `remain`, `pidfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeConfig {
    pub kind: UnitType,
    /// A oneshot that exited 0 stays `exited` (and satisfies `requires`) until stopped.
    pub remain: bool,
    /// A forking unit's main pid is read from this file once the command exited 0.
    pub pidfile: Option<PathBuf>,
}

/// `type`'s row.
pub(super) fn unit_type(c: &mut Check<'_>, entry: &Entry) -> Option<UnitType> {
    let text = c.string(entry)?;
    let kind = [
        UnitType::Simple,
        UnitType::Oneshot,
        UnitType::Forking,
        UnitType::Notify,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == text);
    if kind.is_none() {
        let message = format!(
            "unknown type \"{text}\"; use \"simple\", \"oneshot\", \"forking\" or \"notify\""
        );
        c.issues.push(Issue::at_value(entry, &entry.node, message));
    }
    kind
}

/// The rules between `type` and the other keys, applied once every key is: `type = "notify"`
/// turns `ready.notify` on, a oneshot gets its own defaults, and what contradicts the type is
/// an issue at the key that does.
pub(super) fn settle(raw: &RawUnit, unit: &mut Unit, issues: &mut Vec<Issue>) {
    let kind = unit.kind.kind;
    let typed = raw.get(Key::Type);
    let notify = raw.get(Key::ReadyNotify);
    let notify_on = notify.is_some_and(|e| e.node.value == Value::Bool(true));
    if let (Some(_), Some(notify)) = (typed, notify)
        && (kind == UnitType::Notify) != notify_on
    {
        let message = format!(
            "`ready.notify = {notify_on}` disagrees with `type = \"{}\"`; `type = \"notify\"` \
             is `ready.notify = true`: keep one of them",
            kind.as_str()
        );
        issues.push(Issue::at_value(notify, &notify.node, message));
    }
    if kind == UnitType::Notify {
        unit.ready.notify = true;
        for key in [Key::ReadyTcp, Key::ReadyHttp, Key::ReadyExec] {
            if let Some(entry) = raw.get(key) {
                issues.push(Issue::at_key(
                    entry,
                    "`type = \"notify\"` waits for READY=1 already; give one ready check, not \
                     several: remove this key or the type",
                ));
            }
        }
    }
    if kind == UnitType::Oneshot {
        oneshot_rules(raw, unit, issues);
    }
    if let Some(entry) = raw.get(Key::Remain)
        && unit.kind.remain
        && kind != UnitType::Oneshot
    {
        issues.push(Issue::at_key(
            entry,
            "`remain` is for `type = \"oneshot\"` (a unit that runs to completion); add the \
             type or remove `remain`",
        ));
    }
    if let Some(entry) = raw.get(Key::Pidfile)
        && kind != UnitType::Forking
    {
        issues.push(Issue::at_key(
            entry,
            "`pidfile` is for `type = \"forking\"` (a command that daemonizes); add the type or \
             remove `pidfile`",
        ));
    }
}

/// A oneshot's exit is its readiness: no ready or health check, no `always` (it would run in
/// a loop), `never` as the default policy and no time bound unless `ready.timeout` is given.
fn oneshot_rules(raw: &RawUnit, unit: &mut Unit, issues: &mut Vec<Issue>) {
    let checks = [
        Key::ReadyTcp,
        Key::ReadyHttp,
        Key::ReadyExec,
        Key::ReadyNotify,
        Key::HealthTcp,
        Key::HealthHttp,
        Key::HealthExec,
        Key::HealthWatchdog,
    ];
    for key in checks {
        let Some(entry) = raw.get(key) else {
            continue;
        };
        if entry.node.value == Value::Bool(false) {
            continue;
        }
        issues.push(Issue::at_key(
            entry,
            format!(
                "a oneshot has no `{}`: its exit 0 is its readiness and it does not run on; \
                 remove the key, or use `type = \"simple\"`",
                entry.key
            ),
        ));
    }
    match raw.get(Key::RestartPolicy) {
        None => unit.restart.policy = RestartPolicy::Never,
        Some(entry) if unit.restart.policy == RestartPolicy::Always => {
            issues.push(Issue::at_value(
                entry,
                &entry.node,
                "a oneshot cannot be restarted `always` (it would run again each time it \
                 finishes); use \"on-failure\" or \"never\"",
            ));
        }
        Some(_) => {}
    }
    if raw.get(Key::ReadyTimeout).is_none() {
        // Too far to arm: no bound, as systemd's TimeoutStartSec= defaults for a oneshot.
        unit.ready.timeout = Duration::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::validate::validate;
    use std::path::Path;

    fn unit(text: &str) -> Result<Unit, Vec<String>> {
        validate(Path::new("/units/prep.toml"), text).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                .collect()
        })
    }

    #[test]
    fn a_oneshot_defaults_to_never_and_no_time_bound() {
        let prep = unit("exec = \"true\"\ntype = \"oneshot\"\nremain = true\n").unwrap();
        assert_eq!(prep.kind.kind, UnitType::Oneshot);
        assert!(prep.kind.remain);
        assert_eq!(prep.restart.policy, RestartPolicy::Never);
        assert_eq!(prep.ready.timeout, Duration::MAX);
        let bounded = unit("exec = \"true\"\ntype = \"oneshot\"\n[ready]\ntimeout = \"5s\"\n");
        assert_eq!(bounded.unwrap().ready.timeout, Duration::from_secs(5));
        let simple = unit("exec = \"true\"\n").unwrap();
        assert_eq!(simple.kind, TypeConfig::default());
        assert_eq!(simple.restart.policy, RestartPolicy::OnFailure);
    }

    #[test]
    fn type_notify_is_ready_notify_and_a_disagreement_is_an_error_at_its_place() {
        let unit_ok = unit("exec = \"x\"\ntype = \"notify\"\n").unwrap();
        assert!(unit_ok.ready.notify);
        assert!(unit("exec = \"x\"\ntype = \"notify\"\n[ready]\nnotify = true\n").is_ok());
        let errors =
            unit("exec = \"x\"\ntype = \"notify\"\n[ready]\nnotify = false\n").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("4:10: `ready.notify = false` disagrees"),
            "{errors:?}"
        );
        let errors = unit("exec = \"x\"\ntype = \"simple\"\n[ready]\nnotify = true\n").unwrap_err();
        assert!(
            errors[0].contains("disagrees with `type = \"simple\"`"),
            "{errors:?}"
        );
    }

    #[test]
    fn what_contradicts_the_type_is_refused() {
        let errors =
            unit("exec = \"x\"\ntype = \"oneshot\"\n[ready]\ntcp = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(
            errors[0].contains("a oneshot has no `ready.tcp`"),
            "{errors:?}"
        );
        let errors =
            unit("exec = \"x\"\ntype = \"oneshot\"\n[restart]\npolicy = \"always\"\n").unwrap_err();
        assert!(
            errors[0].contains("cannot be restarted `always`"),
            "{errors:?}"
        );
        let errors = unit("exec = \"x\"\nremain = true\n").unwrap_err();
        assert!(errors[0].starts_with("2:1: `remain` is for"), "{errors:?}");
        let errors = unit("exec = \"x\"\npidfile = \"x.pid\"\n").unwrap_err();
        assert!(errors[0].contains("`pidfile` is for"), "{errors:?}");
        let errors = unit("exec = \"x\"\ntype = \"daemon\"\n").unwrap_err();
        assert!(errors[0].contains("unknown type \"daemon\""), "{errors:?}");
    }

    #[test]
    fn an_instances_pidfile_has_its_name() {
        let text = "exec = \"redis-server\"\ntype = \"forking\"\npidfile = \"/run/redis-%i.pid\"\n";
        let path = Path::new("/units/redis@.toml");
        let unit = crate::unit::validate::validate_instance(path, text, Some("cache"));
        let pidfile = unit.map(|u| u.kind.pidfile);
        assert_eq!(pidfile, Ok(Some("/run/redis-cache.pid".into())));
    }

    #[test]
    fn a_relative_pidfile_is_against_the_unit_files_directory() {
        let nginx = unit("exec = \"nginx\"\ntype = \"forking\"\npidfile = \"run/nginx.pid\"\n");
        let nginx = nginx.unwrap();
        assert_eq!(nginx.kind.kind, UnitType::Forking);
        assert_eq!(
            nginx.kind.pidfile.as_deref(),
            Some(Path::new("/units/run/nginx.pid"))
        );
    }
}
