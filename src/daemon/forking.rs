//! The main process of a forking unit, found once its start command exited 0
//! ([`Action::FindMainPid`](crate::supervisor::Action::FindMainPid)).
//!
//! With `pidfile`, the pid it names, once it is a live child of svcd: svcd is a child
//! subreaper (or PID 1), so the daemon, whose parent exited, is reparented to svcd, and its exit
//! is reaped by svcd's one `waitpid(-1)` loop like any main process's. Until then (the file is
//! not written yet, it names a process of an earlier run, the intermediate of a double fork
//! still runs) the search goes on, and the core's start deadline (`ready.timeout`) bounds it.
//! Without `pidfile`, the one process the start command left: svcd's children that are no
//! unit's main process and belong to the unit (its `SVC_UNIT` in their environment, or the
//! session or group of the start command). Several → no guess ("set pidfile"); the answer
//! must be the same on two looks in a row, so that the intermediate of a double fork, about
//! to exit, is not taken for the daemon.
//!
//! The search is a few reads of `/proc` and of the pidfile, done on the event loop at a
//! growing pause (a ticker task only wakes it), never a busy loop.

use super::Daemon;
use super::checks::Message;
use crate::proc;
use crate::process;
use crate::supervisor::{State, UnitId};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// First pause between two looks; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// The search for one unit's main process.
#[derive(Debug)]
pub struct Finder {
    /// The unit's run (its `starts`) the search is for: a later run's search is another.
    run: u64,
    /// The start command's pid: its session's and group's id.
    command: u32,
    /// Without pidfile: the candidates of the last look, which the next must confirm.
    last: Option<Vec<u32>>,
    /// Wakes the event loop for the next look; aborted when the search ends.
    ticker: Option<JoinHandle<()>>,
}

impl Drop for Finder {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

/// What one look found.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    Found(u32),
    /// Not yet, and why (shown while `starting`).
    Wait(String),
    /// Never: the start failed, and why.
    Fail(String),
}

impl Daemon {
    /// The start command `command` of forking unit `id` exited 0: look for its main process
    /// now, and again at growing pauses until found, failed, or the unit moved on.
    pub(super) fn find_main_pid(&mut self, id: UnitId, command: u32) {
        let run = self.supervisor.status(id).starts;
        self.checks.finders.insert(
            id,
            Finder {
                run,
                command,
                last: None,
                ticker: None,
            },
        );
        if self.look_for_main(id) {
            return;
        }
        let Some(tx) = self.checks.sender() else {
            return;
        };
        let ticker = tokio::spawn(async move {
            let mut pause = FIRST_PAUSE;
            loop {
                tokio::time::sleep(pause).await;
                if tx.send(Message::FindMain { unit: id, run }).is_err() {
                    return;
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        });
        if let Some(finder) = self.checks.finders.get_mut(&id) {
            finder.ticker = Some(ticker);
        }
    }

    /// The ticker of unit `id`'s search for run `run` woke the loop.
    pub(super) fn find_main_tick(&mut self, id: UnitId, run: u64) {
        if self.checks.finders.get(&id).is_some_and(|f| f.run == run) {
            self.look_for_main(id);
        }
    }

    /// One look; true once the search is over (found, failed, or no longer wanted).
    fn look_for_main(&mut self, id: UnitId) -> bool {
        let now = Instant::now();
        let status = self.supervisor.status(id);
        let wanted = self
            .checks
            .finders
            .get(&id)
            .filter(|f| f.run == status.starts)
            .filter(|_| status.state == State::Starting && status.pid.is_none());
        let Some(finder) = wanted else {
            self.checks.finders.remove(&id);
            return true;
        };
        let command = finder.command;
        let look = match self.units[id].kind.pidfile.clone() {
            Some(path) => self.look_in_pidfile(id, &path),
            None => self.look_for_single(id, command),
        };
        let name = &self.units[id].name;
        match look {
            Look::Found(pid) => {
                self.checks.finders.remove(&id);
                tracing::info!(unit = %name, pid, "main process found");
                self.pids.insert(pid, id);
                // A ready check begun for the start command would judge by its pid.
                self.checks.restart_task(id);
                self.supervisor.handle_main_pid(now, id, pid);
                true
            }
            Look::Fail(why) => {
                self.checks.finders.remove(&id);
                tracing::warn!(unit = %name, "{why}");
                self.supervisor.handle_main_pid_failed(now, id, &why);
                true
            }
            Look::Wait(why) => {
                self.supervisor.handle_main_pid_note(now, id, &why);
                false
            }
        }
    }

    /// The pid `path` names, once it is a live child of svcd and no other unit's.
    fn look_in_pidfile(&self, id: UnitId, path: &Path) -> Look {
        let shown = path.display();
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Look::Wait(format!("pidfile {shown} is not written yet"));
            }
            Err(e) => return Look::Wait(format!("cannot read pidfile {shown}: {e}")),
        };
        let text = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
        let Some(pid) = text.trim().parse::<u32>().ok().filter(|&pid| pid > 1) else {
            // Maybe half written: the next look reads it again.
            let text = text.trim();
            return Look::Wait(format!("pidfile {shown} holds \"{text}\", not a pid"));
        };
        let me = std::process::id();
        if pid == me {
            return Look::Fail(format!("pidfile {shown} names svcd itself ({pid})"));
        }
        if let Some(&other) = self.pids.get(&pid)
            && other != id
        {
            let other = &self.units[other].name;
            return Look::Fail(format!(
                "pidfile {shown} names pid {pid}, the main process of unit {other}"
            ));
        }
        let alive = proc::stat(pid).filter(|stat| !stat.is_zombie());
        let Some(stat) = alive else {
            return Look::Wait(format!(
                "pidfile {shown} names pid {pid}, which does not run (a stale file?)"
            ));
        };
        if let Some(unit) = proc::environ_var(pid, process::UNIT_ENV)
            && unit != self.units[id].name.as_bytes()
        {
            let unit = String::from_utf8_lossy(&unit);
            return Look::Fail(format!(
                "pidfile {shown} names pid {pid}, a process of unit {unit}"
            ));
        }
        if stat.ppid != me {
            return Look::Wait(format!(
                "pidfile {shown} names pid {pid}, not (yet) a child of svcd: its parent {} \
                 still runs",
                stat.ppid
            ));
        }
        Look::Found(pid)
    }

    /// Without pidfile: the one process the start command left, seen twice in a row.
    fn look_for_single(&mut self, id: UnitId, command: u32) -> Look {
        let name = self.units[id].name.as_bytes();
        let mut candidates: Vec<u32> =
            process::svcd_orphans(|pid| self.pids.contains_key(&pid) || self.checks.is_exec(pid))
                .into_iter()
                .filter(|(pid, unit)| {
                    let Some(stat) = proc::stat(*pid).filter(|stat| !stat.is_zombie()) else {
                        return false;
                    };
                    unit.as_deref() == Some(name) || stat.session == command || stat.pgrp == command
                })
                .map(|(pid, _)| pid)
                .collect();
        candidates.sort_unstable();
        let Some(finder) = self.checks.finders.get_mut(&id) else {
            return Look::Wait(String::new());
        };
        if finder.last.as_ref() != Some(&candidates) {
            finder.last = Some(candidates);
            return Look::Wait("looking for the process the start command left".to_string());
        }
        match candidates.as_slice() {
            [pid] => Look::Found(*pid),
            [] => Look::Fail(
                "the start command exited 0 and left no process: it does not daemonize; use \
                 type = \"simple\" or \"oneshot\""
                    .to_string(),
            ),
            pids => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                Look::Fail(format!(
                    "cannot tell the main process: the start command left {} processes ({}); \
                     set pidfile",
                    pids.len(),
                    list.join(", ")
                ))
            }
        }
    }
}
