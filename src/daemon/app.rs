//! svcd as a container's init, tini's job: `svcd -- CMD ARGS...` runs CMD as the fatal unit
//! `app`, passes it the signals svcd receives, and svcd's exit status is the app's.
//!
//! A fatal unit (the app, or any unit with `fatal = true`) that ends for good ends svcd: the
//! other units stop, and svcd exits with the unit's exit code, 128 + the signal number when a
//! signal killed it (as a shell, tini, dumb-init and s6-overlay report it), or
//! [`EXIT_GAVE_UP`] when svcd itself gave up on the unit (start limit, spawn failure, a stop
//! svcd decided on): then there is no status of the app's to pass on.

use super::{Daemon, DaemonError};
use crate::supervisor::{ExitStatus, State, UnitId};
use crate::unit::{self, RestartPolicy, Unit};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

/// svcd's status when a fatal unit failed without a status of its own to pass on.
pub const EXIT_GAVE_UP: u8 = 3;

/// The name of the implicit unit of `svcd -- CMD`.
pub const APP_UNIT: &str = "app";

/// After a forwarded SIGTERM, the last part of `shutdown_timeout`, kept for stopping the other
/// units (and the app, if it did not exit by itself); at least this once the shutdown begins.
const LAST_STEP: Duration = Duration::from_secs(1);

/// `svcd [OPTIONS] -- CMD ARGS...`.
#[derive(Debug, Clone)]
pub struct AppCommand {
    pub argv: Vec<String>,
    /// `-g`: signals go to the app's process group, not only to its main process.
    pub to_group: bool,
}

/// The app while svcd runs.
#[derive(Debug)]
pub(super) struct App {
    pub(super) id: UnitId,
    command: AppCommand,
    /// SIGTERM or SIGINT was forwarded: the whole shutdown must be over by then. The app may
    /// exit by itself until [`LAST_STEP`] before it; then svcd stops everything.
    deadline: Option<Instant>,
}

/// A fatal unit ended for good: what svcd says and exits with once everything stopped.
#[derive(Debug)]
pub(super) struct FatalEnd {
    pub(super) unit: String,
    pub(super) reason: String,
    pub(super) code: u8,
}

/// The status a shell would give for `status`: the code, or 128 + the signal number.
pub fn exit_code(status: ExitStatus) -> u8 {
    match status {
        ExitStatus::Code(code) => (code & 0xff) as u8,
        ExitStatus::Signal(signal) => (128 + (signal & 0x7f)) as u8,
    }
}

/// The units of `dirs`, plus the app's when there is one. A units directory named `app` clashes
/// with the app: an error saying so.
pub(super) fn load_units(
    dirs: &[PathBuf],
    app: Option<&AppCommand>,
) -> Result<unit::Loaded, DaemonError> {
    let mut loaded = unit::load_dirs(dirs).map_err(DaemonError::Units)?;
    if let Some(app) = app {
        add_app(&mut loaded, app).map_err(DaemonError::App)?;
    }
    Ok(loaded)
}

/// Adds the unit of `app` to `loaded` (also on reload, so that a reload keeps it).
pub(super) fn add_app(loaded: &mut unit::Loaded, app: &AppCommand) -> Result<(), String> {
    let taken = loaded.units.iter().any(|u| u.name == APP_UNIT)
        || loaded.broken.iter().any(|b| b.name == APP_UNIT);
    if taken {
        return Err(format!(
            "a unit file named `{APP_UNIT}` is in the units directories, and `svcd -- CMD` runs CMD as the unit `{APP_UNIT}`: rename the file"
        ));
    }
    loaded.units.push(app_unit(&app.argv)?);
    loaded.units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(())
}

/// The unit `app`: CMD, fatal, never restarted, in svcd's working directory.
fn app_unit(argv: &[String]) -> Result<Unit, String> {
    #[derive(serde::Serialize)]
    struct Restart {
        policy: &'static str,
    }
    #[derive(serde::Serialize)]
    struct AppToml<'a> {
        description: &'static str,
        exec: &'a [String],
        fatal: bool,
        restart: Restart,
    }
    let text = toml::to_string(&AppToml {
        description: "the container's app (svcd -- CMD)",
        exec: argv,
        fatal: true,
        restart: Restart { policy: "never" },
    })
    .map_err(|e| e.to_string())?;
    let mut unit = unit::validate::validate(Path::new("app.toml"), &text)
        .map_err(|errors| errors.to_string())?;
    // No directory of its own: the app runs where svcd was started, as tini's does.
    unit.workdir = None;
    Ok(unit)
}

impl Daemon {
    pub(super) fn app_of(&self, command: &AppCommand) -> Option<App> {
        Some(App {
            id: self.unit_id(APP_UNIT)?,
            command: command.clone(),
            deadline: None,
        })
    }

    /// The units directories' units, and the app's (for a reload).
    pub(super) fn load_units(&self) -> Result<unit::Loaded, DaemonError> {
        load_units(&self.units_dirs, self.app.as_ref().map(|app| &app.command))
    }

    /// The main process of a fatal unit was reaped (`status`; `stopping`: svcd was stopping
    /// it). When the unit ended by itself and is down for good, svcd stops every unit and will
    /// exit with `status`. The app's status is svcd's also when svcd stopped it (`svc
    /// shutdown`, or it outlived the shutdown budget after a forwarded SIGTERM).
    pub(super) fn fatal_exited(&mut self, id: UnitId, status: ExitStatus, stopping: bool) {
        if !self.units[id].fatal || self.fatal.is_some() {
            return;
        }
        let is_app = self.app.as_ref().is_some_and(|app| app.id == id);
        if stopping || self.shutdown.is_some() {
            if is_app && self.shutdown.is_some() {
                self.fatal = Some(FatalEnd {
                    unit: APP_UNIT.to_string(),
                    reason: format!("ended ({status}) while svcd stopped it"),
                    code: exit_code(status),
                });
            }
            return;
        }
        let state = self.supervisor.status(id).state;
        let restarts = match self.units[id].restart.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !status.is_success(),
            RestartPolicy::Never => false,
        };
        let code = match state {
            State::Inactive => exit_code(status),
            // The policy wanted a restart but the start limit said no.
            State::Failed if restarts => EXIT_GAVE_UP,
            State::Failed => exit_code(status),
            _ => return,
        };
        let name = self.units[id].name.clone();
        let reason = match state {
            State::Failed if restarts => format!("failed ({})", self.supervisor.status(id).reason),
            _ => format!("ended ({status})"),
        };
        tracing::info!(unit = %name, "fatal unit {reason}: svcd stops every unit and exits with status {code}");
        self.fatal = Some(FatalEnd {
            unit: name.clone(),
            reason,
            code,
        });
        self.begin_shutdown(&format!("fatal unit `{name}` ended"), None);
    }

    /// SIGTERM or SIGINT to svcd. With an app running, tini's way: the signal goes to the app,
    /// which may exit by itself within `shutdown_timeout` (its status is then svcd's); the other
    /// units stop after it. Without: stop every unit.
    pub(super) fn handle_terminate(&mut self, signal: i32) {
        self.forward_to_units(signal);
        let now = Instant::now();
        let timeout = self.shutdown_timeout;
        let running = self.app_pid().is_some();
        match &mut self.app {
            Some(app) if running && self.shutdown.is_none() => {
                app.deadline.get_or_insert(now + timeout);
                self.signal_app(signal);
            }
            _ => {
                let name = crate::signal::name(signal);
                self.begin_shutdown(&format!("svcd got {name}"), None);
            }
        }
    }

    /// SIGHUP to svcd: to the app (tini's way) and the units `forward_signals` names, if any;
    /// else a reload.
    pub(super) fn handle_hangup(&mut self) {
        if self.app.is_some() || self.forward.has(SIGHUP) {
            self.signal_app(SIGHUP);
            self.forward_to_units(SIGHUP);
            return;
        }
        match self.reload() {
            Ok((summary, _)) => tracing::info!("SIGHUP: {summary}"),
            Err(why) => tracing::error!("SIGHUP: {why}"),
        }
    }

    /// Until when the app may still exit by itself after a forwarded SIGTERM or SIGINT.
    pub(super) fn app_deadline(&self) -> Option<Instant> {
        if self.shutdown.is_some() {
            return None;
        }
        let end = self.app.as_ref()?.deadline?;
        Some(end.checked_sub(LAST_STEP).unwrap_or(end))
    }

    /// The app did not exit within `shutdown_timeout` of the forwarded signal: stop everything.
    pub(super) fn app_overdue(&mut self) {
        tracing::warn!("the app did not exit within shutdown_timeout of the signal: stopping it");
        self.begin_shutdown("the app did not exit in time", None);
    }

    /// The budget of a shutdown beginning now: `shutdown_timeout`, or what is left of it since a
    /// signal was forwarded to the app (at least [`LAST_STEP`]), so the whole stays within the
    /// container runtime's grace.
    pub(super) fn shutdown_budget(&self) -> Duration {
        match self.app.as_ref().and_then(|app| app.deadline) {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .max(LAST_STEP),
            None => self.shutdown_timeout,
        }
    }

    fn app_pid(&self) -> Option<u32> {
        self.supervisor.status(self.app.as_ref()?.id).pid
    }

    /// Sends `signal` to the app's main process (with `-g`, to its process group), if it runs.
    pub(super) fn signal_app(&self, signal: i32) {
        let (Some(app), Some(pid)) = (&self.app, self.app_pid()) else {
            return;
        };
        let sent = if app.command.to_group {
            crate::process::signal_group(pid, signal)
        } else {
            super::forward::signal_process(pid, signal)
        };
        let name = crate::signal::name(signal);
        match sent {
            Ok(()) => tracing::info!(unit = APP_UNIT, "forwarded {name}"),
            Err(e) => tracing::warn!(unit = APP_UNIT, "cannot forward {name}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_a_shells() {
        assert_eq!(exit_code(ExitStatus::Code(0)), 0);
        assert_eq!(exit_code(ExitStatus::Code(7)), 7);
        assert_eq!(exit_code(ExitStatus::Signal(9)), 137);
        assert_eq!(exit_code(ExitStatus::Signal(15)), 143);
    }

    #[test]
    fn the_app_unit_is_fatal_and_never_restarted() {
        let argv = vec!["python3".to_string(), "-c".into(), "print(\"a'b\")".into()];
        let unit = app_unit(&argv).expect("a valid unit");
        assert_eq!(unit.name, APP_UNIT);
        assert_eq!(unit.argv, argv);
        assert!(unit.fatal);
        assert_eq!(unit.restart.policy, RestartPolicy::Never);
        assert_eq!(unit.workdir, None);
    }
}
