//! `svc reload NAME...`: ask running units to reload their configuration, by `reload.signal`
//! (sent to the main process) or `reload.exec` (a command run as the unit's user, with its
//! environment and `MAINPID`, whose exit 0 means reloaded, within `reload.timeout`). A unit
//! that says `RELOADING=1` then `READY=1` on the notify socket has reloaded too.
//!
//! The answer comes once every named unit reloaded or failed to; each unit's last reload of
//! its current run is kept for `status` (`last_reload`).

use super::checks::Message;
use super::report::Clocks;
use super::{Daemon, Entry};
use crate::control::{ErrorKind, ReloadInfo, Response};
use crate::supervisor::{ExitStatus, State, UnitId};
use crate::unit::ReloadMethod;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The last reload of each unit, for `status`.
#[derive(Debug, Default)]
pub struct UnitReloads {
    /// Unit → the run (`starts`) it was reloaded in, and how it went. A reload of an earlier
    /// run is not shown: the process it reloaded is gone.
    last: HashMap<UnitId, (u64, LastReload)>,
}

#[derive(Debug, Clone)]
struct LastReload {
    at: Instant,
    ok: bool,
    reason: String,
}

/// One unit's reload: its outcome so far (`Err`: why it failed).
#[derive(Debug)]
pub struct Outcome {
    name: String,
    result: Result<String, String>,
    /// The unit and run whose `last_reload` it becomes; `None` when the unit could not be
    /// asked (not running, no reload method, invalid file): its status says enough.
    record: Option<(UnitId, u64)>,
}

/// A `reload.exec` command under way.
struct Running {
    unit: UnitId,
    name: String,
    run: u64,
    pid: u32,
    command: String,
    timeout: Duration,
    /// When it is killed: the timeout runs from its spawn.
    deadline: Instant,
    exit: oneshot::Receiver<ExitStatus>,
}

impl UnitReloads {
    /// Forgets unit `id` (its slot is freed, or will be someone else's).
    pub fn forget(&mut self, id: UnitId) {
        self.last.remove(&id);
    }
}

impl Daemon {
    /// `svc reload NAME...`: reloads each running unit; the answer is sent once all are done.
    pub(super) fn reload_units(&mut self, names: &[String], reply: oneshot::Sender<Response>) {
        let found = match self.lookup(names) {
            Ok(found) => found,
            Err(response) => {
                let _ = reply.send(response);
                return;
            }
        };
        let mut done = Vec::new();
        let mut running = Vec::new();
        for index in found {
            let name = self.entries[index].0.clone();
            let id = match &self.entries[index].1 {
                Entry::Unit(id) => *id,
                Entry::Broken(_) => {
                    done.push(Outcome {
                        name,
                        result: Err("its unit file is invalid".to_string()),
                        record: None,
                    });
                    continue;
                }
            };
            let status = self.supervisor.status(id);
            let run = status.starts;
            let outcome = |result: Result<String, String>| Outcome {
                name: name.clone(),
                record: Some((id, run)),
                result,
            };
            let refused = |why: String| Outcome {
                record: None,
                ..outcome(Err(why))
            };
            let main = self.checks.main_pid.get(&id).copied().or(status.pid);
            let (State::Running, Some(main)) = (status.state, main) else {
                // Nothing to reload, and nothing recorded: the unit's status says why.
                done.push(refused(format!("not running ({})", status.state)));
                continue;
            };
            let unit = &self.units[id];
            match unit.reload.method.clone() {
                None => done.push(refused(
                    "has no reload method: set reload.signal or reload.exec in its unit file"
                        .to_string(),
                )),
                Some(ReloadMethod::Signal(signal)) => {
                    let signame = crate::signal::name(signal);
                    let result = if crate::process::signal_pids(&[main], signal) == 1 {
                        Ok(format!("{signame} sent to pid {main}"))
                    } else {
                        Err(format!("cannot send {signame} to pid {main}"))
                    };
                    done.push(outcome(result));
                }
                Some(ReloadMethod::Exec(argv)) => {
                    let mut command = unit.clone();
                    command.argv = argv;
                    command.env.insert("MAINPID".to_string(), main.to_string());
                    let shown = command.argv.join(" ");
                    let timeout = unit.reload.timeout;
                    match self.spawn_beside(&command) {
                        Ok((pid, exit)) => running.push(Running {
                            unit: id,
                            name: name.clone(),
                            run,
                            pid,
                            command: shown,
                            timeout,
                            deadline: Instant::now() + timeout,
                            exit,
                        }),
                        Err(e) => done.push(outcome(Err(format!("cannot run `{shown}`: {e}")))),
                    }
                }
            }
        }
        if running.is_empty() {
            self.finish_reload(done, reply);
            return;
        }
        let Some(tx) = self.checks.sender() else {
            let _ = reply.send(Response::error(
                ErrorKind::ShuttingDown,
                "svcd is stopping",
                vec![],
            ));
            return;
        };
        // The commands run side by side, each within its own deadline; the event loop hears of
        // them all at once.
        tokio::spawn(async move {
            for command in running {
                done.push(wait_command(command).await);
            }
            let _ = tx.send(Message::Reloaded {
                outcomes: done,
                reply,
            });
        });
    }

    /// The `reload.exec` commands of a request have ended: record them, then answer.
    pub(super) fn finish_reload(
        &mut self,
        outcomes: Vec<Outcome>,
        reply: oneshot::Sender<Response>,
    ) {
        let mut failures = Vec::new();
        let mut lines = Vec::new();
        for outcome in &outcomes {
            match &outcome.result {
                Ok(how) => {
                    tracing::info!(unit = %outcome.name, "reloaded: {how}");
                    lines.push(format!("reloaded {}: {how}", outcome.name));
                }
                Err(why) => {
                    tracing::warn!(unit = %outcome.name, "not reloaded: {why}");
                    failures.push(format!("{}: {why}", outcome.name));
                }
            }
            if let Some((id, run)) = outcome.record {
                self.record_reload(id, run, &outcome.result);
            }
        }
        let response = if failures.is_empty() {
            Response::ok(None).with_message(lines.join("\n"))
        } else {
            Response::error(ErrorKind::Failed, failures.join("\n"), vec![])
        };
        let _ = reply.send(response);
    }

    /// Keeps `result` as unit `id`'s last reload, if the unit still runs run `run`.
    fn record_reload(&mut self, id: UnitId, run: u64, result: &Result<String, String>) {
        if self.supervisor.status(id).starts != run {
            return;
        }
        let (ok, reason) = match result {
            Ok(how) => (true, how.clone()),
            Err(why) => (false, why.clone()),
        };
        let last = LastReload {
            at: Instant::now(),
            ok,
            reason,
        };
        self.unit_reloads.last.insert(id, (run, last));
    }

    /// The unit said `RELOADING=1` then `READY=1` on the notify socket: it has reloaded.
    pub(super) fn note_notify_reload(&mut self, id: UnitId) {
        let run = self.supervisor.status(id).starts;
        let how = Ok("the unit reloaded (RELOADING=1, then READY=1)".to_string());
        tracing::info!(unit = %self.units[id].name, "reloaded: the unit said RELOADING=1, then READY=1");
        self.record_reload(id, run, &how);
    }

    /// Unit `id`'s last reload of its current run, as `status` shows it.
    pub(super) fn last_reload(&self, id: UnitId, clocks: Clocks) -> Option<ReloadInfo> {
        let (run, last) = self.unit_reloads.last.get(&id)?;
        (*run == self.supervisor.status(id).starts).then(|| ReloadInfo {
            at: clocks.format(last.at),
            ok: last.ok,
            reason: last.reason.clone(),
        })
    }
}

/// Waits for one `reload.exec` command, killing its group after its timeout.
async fn wait_command(running: Running) -> Outcome {
    let Running {
        unit,
        name,
        run,
        pid,
        command,
        timeout,
        deadline,
        exit,
    } = running;
    let result = match tokio::time::timeout_at(deadline.into(), exit).await {
        Ok(Ok(status)) if status.is_success() => Ok(format!("`{command}` exited 0")),
        Ok(Ok(status)) => Err(format!("`{command}` {status}")),
        Ok(Err(_)) => Err("svcd is stopping".to_string()),
        Err(_) => {
            let _ = crate::process::signal_group(pid, 9);
            Err(format!(
                "`{command}` did not finish within {} (reload.timeout); killed",
                crate::unit::duration::format_duration(timeout)
            ))
        }
    };
    Outcome {
        name,
        record: Some((unit, run)),
        result,
    }
}
