//! Requests from the control socket: status, commands, and the waiters that answer later.

use super::waiter::{Goal, Progress, Waiter};
use super::{Daemon, Entry, report};
use crate::control::server::Envelope;
use crate::control::{Command, ErrorKind, Response, UnitInfo};
use crate::logs;
use crate::supervisor::{State, UnitId};
use report::Clocks;
use std::time::Instant;

impl Daemon {
    /// The id of the listed unit `name` (not a broken one, not one a reload removed).
    pub(super) fn unit_id(&self, name: &str) -> Option<UnitId> {
        let index = self
            .entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        match self.entries[index].1 {
            Entry::Unit(id) => Some(id),
            Entry::Broken(_) => None,
        }
    }

    /// The entries named, or an `unknown_unit` error naming the ones that do not exist.
    pub(super) fn lookup(&self, names: &[String]) -> Result<Vec<usize>, Response> {
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match self.entries.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Ok(index) => found.push(index),
                Err(_) => unknown.push(name.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(found)
        } else {
            let message = format!("unknown unit: {}", unknown.join(", "));
            Err(Response::error(ErrorKind::UnknownUnit, message, unknown))
        }
    }

    pub(super) fn infos(&mut self, indexes: &[usize]) -> Vec<UnitInfo> {
        let clocks = Clocks::read();
        let mut infos = self.bare_infos(indexes, clocks);
        for (info, &i) in infos.iter_mut().zip(indexes) {
            let Entry::Unit(id) = &self.entries[i].1 else {
                continue;
            };
            if let Some(log) = self.logs.find(&info.name) {
                let log = logs::lock(&log);
                info.logs = log.last_lines();
                info.log_error = log.error();
            }
            info.status_text = self.supervisor.status_text(*id).map(str::to_string);
            info.last_reload = self.last_reload(*id, clocks);
            info.adopted = self.is_adopted(*id, info.pid);
            info.memory.ladder = self
                .memory
                .ladder_steps(*id)
                .map(|steps| report::ladder_info(&steps, clocks));
            info.memory.host_ladder = self
                .memory
                .host_ladder_steps(*id)
                .map(|steps| report::host_ladder_info(&steps, clocks));
        }
        infos
    }

    /// The units' state, exits and memory (one walk of /proc for all; of a unit in a cgroup,
    /// which counts its memory, only its CPU time), without their logs.
    pub(super) fn bare_infos(&mut self, indexes: &[usize], clocks: Clocks) -> Vec<UnitInfo> {
        let running: Vec<(UnitId, u32)> = indexes
            .iter()
            .filter_map(|&i| match &self.entries[i].1 {
                Entry::Unit(id) => Some((*id, self.supervisor.status(*id).pid?)),
                Entry::Broken(_) => None,
            })
            .collect();
        let now = Instant::now();
        let memory = self.memory.memory_of(now, &running);
        indexes
            .iter()
            .map(|&i| match &self.entries[i].1 {
                Entry::Unit(id) => {
                    let status = self.supervisor.status(*id);
                    let mut mem = status
                        .pid
                        .and_then(|p| memory.get(&p).copied())
                        .unwrap_or_default();
                    let counted = match status.pid {
                        Some(_) => self.memory.cgroup_memory_of(*id, now),
                        None => None,
                    };
                    if let Some(counted) = counted {
                        mem.rss = counted.rss;
                        mem.swap = counted.swap;
                    }
                    let mut info = report::unit_info(&self.units[*id], &status, mem, clocks);
                    info.memory.age_ms = status
                        .pid
                        .and_then(|pid| self.memory.memory_age(*id, pid, now))
                        .map(super::memory::millis);
                    if let Some(v2) = self.memory.cgroup_v2(*id) {
                        info.memory.mode = match v2 {
                            false => crate::control::protocol::MemoryMode::Cgroup,
                            true => crate::control::protocol::MemoryMode::Cgroup2,
                        };
                    }
                    info
                }
                Entry::Broken(broken) => report::broken_info(broken, self.started, clocks),
            })
            .collect()
    }

    pub(super) fn handle_request(&mut self, envelope: Envelope) {
        let Envelope { command, reply } = envelope;
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let response = match command {
            Command::Status { names } if names.is_empty() => {
                let infos = self.infos(&all);
                self.with_host(Response::ok(Some(infos)))
            }
            Command::Status { names } => match self.lookup(&names) {
                Ok(found) => {
                    let infos = self.infos(&found);
                    self.with_host(Response::ok(Some(infos)))
                }
                Err(response) => response,
            },
            Command::List {} => Response::ok(Some(self.infos(&all))),
            // The connection streams the changes itself, never asking the daemon task.
            Command::Events {} => Response::ok(None),
            Command::Metrics {} => {
                let mut response = Response::ok(None);
                response.metrics = Some(self.metrics());
                response
            }
            Command::Reload { .. } if self.shutdown.is_some() => {
                Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![])
            }
            Command::Reload { names } if names.is_empty() => match self.reload() {
                Ok((summary, changes)) => {
                    tracing::info!("{summary}");
                    let mut response = Response::ok(None).with_message(summary);
                    response.reloaded = Some(Box::new(changes));
                    response
                }
                Err(why) => Response::error(ErrorKind::Failed, why, vec![]),
            },
            Command::Reload { names } => return self.reload_units(&names, reply),
            // The connection streams the lines itself; the daemon says whether the units exist.
            Command::Logs { names, .. } if names.is_empty() => Response::error(
                ErrorKind::BadRequest,
                "logs needs at least one unit name",
                vec![],
            ),
            Command::Logs { names, .. } => match self.lookup(&names) {
                Ok(_) => Response::ok(None),
                Err(response) => response,
            },
            Command::Kill {
                names,
                signal,
                main,
            } => self.kill(&names, &signal, main),
            Command::Shutdown {} => {
                self.begin_shutdown("shutdown requested", Some(reply));
                return;
            }
            Command::Upgrade {} => {
                self.request_upgrade(Some(reply));
                return;
            }
            Command::Start { names, wait } => {
                return self.command(names, wait, Goal::Started, reply);
            }
            Command::Stop { names, wait } => {
                return self.command(names, wait, Goal::Stopped, reply);
            }
            Command::Restart { names, wait } => {
                return self.command(names, wait, Goal::Restarted, reply);
            }
            Command::Wait { names, state } => {
                let goal = match state.as_str() {
                    "ready" => Goal::Ready,
                    other => match State::parse(other) {
                        Some(state) => Goal::State(state),
                        None => {
                            let message = format!(
                                "unknown state `{other}`; expected one of inactive, starting, running, ready, stopping, backoff, failed, exited"
                            );
                            let _ =
                                reply.send(Response::error(ErrorKind::BadRequest, message, vec![]));
                            return;
                        }
                    },
                };
                return self.command(names, true, goal, reply);
            }
        };
        let _ = reply.send(response);
    }

    pub(super) fn with_host(&self, mut response: Response) -> Response {
        response.host = Some(Box::new(self.host_info(Clocks::read())));
        response
    }

    /// start / stop / restart / wait: act on the units, then answer now or once the goal is met.
    pub(super) fn command(
        &mut self,
        names: Vec<String>,
        wait: bool,
        goal: Goal,
        reply: tokio::sync::oneshot::Sender<Response>,
    ) {
        if matches!(goal, Goal::Started | Goal::Restarted)
            && self.shutdown.is_none()
            && let Err(response) = self.instantiate(&names)
        {
            let _ = reply.send(response);
            return;
        }
        let found = match self.lookup(&names) {
            Ok(found) => found,
            Err(response) => {
                let _ = reply.send(response);
                return;
            }
        };
        let mutating = matches!(goal, Goal::Started | Goal::Stopped | Goal::Restarted);
        if mutating && self.shutdown.is_some() && goal != Goal::Stopped {
            let _ = reply.send(Response::error(
                ErrorKind::ShuttingDown,
                "svcd is shutting down",
                vec![],
            ));
            return;
        }
        let mut ids = Vec::new();
        let mut broken = Vec::new();
        for index in found {
            match &self.entries[index].1 {
                Entry::Unit(id) => ids.push((
                    *id,
                    self.supervisor.status(*id).starts,
                    self.entries[index].0.clone(),
                )),
                Entry::Broken(errors) => {
                    broken.push(format!("{}: invalid unit file:\n{errors}", errors.name))
                }
            }
        }
        if !broken.is_empty() && goal != Goal::Stopped {
            let _ = reply.send(Response::error(
                ErrorKind::Failed,
                broken.join("\n"),
                vec![],
            ));
            return;
        }
        let now = Instant::now();
        for (id, _, _) in &ids {
            match goal {
                Goal::Started => {
                    self.supervisor.handle_start_requirements(now, *id);
                    self.supervisor
                        .handle_start(now, *id, "started by operator")
                }
                Goal::Stopped => self.supervisor.handle_stop(now, *id, "stopped by operator"),
                Goal::Restarted => {
                    self.supervisor.handle_start_requirements(now, *id);
                    self.supervisor
                        .handle_restart(now, *id, "restarted by operator")
                }
                Goal::State(_) | Goal::Ready => {}
            }
        }
        if !wait {
            let _ = reply.send(Response::ok(None));
            return;
        }
        self.waiters.push(Waiter {
            goal,
            units: ids,
            reply,
        });
        // Spawns happen in perform_actions, which checks waiters afterwards; a goal already met
        // (e.g. `wait` for a state the unit is in) is answered there too.
        self.perform_actions();
        self.check_waiters();
    }

    /// Answers every waiter whose goal is met or has failed; forgets those whose client left.
    pub(super) fn check_waiters(&mut self) {
        let mut index = 0;
        while index < self.waiters.len() {
            let waiter = &self.waiters[index];
            if waiter.reply.is_closed() {
                self.waiters.swap_remove(index);
                continue;
            }
            let mut pending = false;
            let mut failures = Vec::new();
            for (id, starts, name) in &waiter.units {
                match waiter.goal.progress(&self.supervisor.status(*id), *starts) {
                    Progress::Pending => pending = true,
                    Progress::Done => {}
                    Progress::Failed(why) => failures.push(format!("{name}: {why}")),
                }
            }
            if pending && failures.is_empty() {
                index += 1;
                continue;
            }
            let waiter = self.waiters.swap_remove(index);
            let indexes: Vec<usize> = waiter
                .units
                .iter()
                .filter_map(|(_, _, name)| self.entries.binary_search_by(|(n, _)| n.cmp(name)).ok())
                .collect();
            let response = if failures.is_empty() {
                Response::ok(Some(self.infos(&indexes)))
            } else {
                Response::error(ErrorKind::Failed, failures.join("\n"), vec![])
            };
            let _ = waiter.reply.send(response);
        }
    }
}
