//! Readiness and health checks: tokio tasks that probe a unit and report their verdict back to
//! the event loop over a channel.
//!
//! One task per unit at most, for the run it was started for: a ready check while the unit is
//! `starting` with a process (it retries with a backoff from a few milliseconds to half a
//! second, never a busy loop, until it passes; the core owns the ready timeout), a health check
//! while it is `running` (every `interval`; `failures` failures in a row are reported once). A
//! task whose run is over is aborted. `exec` checks are spawned by the daemon, not the task, so
//! that their exit is reaped by the one `waitpid(-1)` loop.

use super::Daemon;
use crate::process;
use crate::supervisor::{ExitStatus, State, UnitConfig, UnitId};
use crate::unit::{HttpTarget, Probe, Unit};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// First pause between two failed ready checks; it doubles up to [`READY_MAX_PAUSE`].
const READY_FIRST_PAUSE: Duration = Duration::from_millis(5);
const READY_MAX_PAUSE: Duration = Duration::from_millis(500);

/// What a check task tells the event loop.
#[derive(Debug)]
pub enum Message {
    /// The ready check of run `run` passed.
    Ready { unit: UnitId, run: u64 },
    /// One health check of run `run`: passed, or failed and why. The core counts the
    /// failures in a row.
    Health {
        unit: UnitId,
        run: u64,
        verdict: Result<(), String>,
    },
    /// Run this `exec` check's argv for the unit; answer its pid and a receiver of its exit.
    Exec {
        unit: UnitId,
        argv: Vec<String>,
        reply: oneshot::Sender<Result<(u32, oneshot::Receiver<ExitStatus>), String>>,
    },
    /// The ready check of run `run` reached a listener that is not the unit's: why.
    NotReady { unit: UnitId, run: u64, why: String },
    /// The `reload.exec` commands of a `svc reload NAME` request ended: record, then answer.
    Reloaded {
        outcomes: Vec<super::unit_reload::Outcome>,
        reply: oneshot::Sender<crate::control::Response>,
    },
    /// Look again for the main process of forking unit `unit`'s run `run`.
    FindMain { unit: UnitId, run: u64 },
    /// A datagram on the notify socket, from `pid` (per SO_PASSCRED), with the descriptors
    /// passed with it (closed once it is handled).
    Notify {
        pid: Option<u32>,
        text: Vec<u8>,
        fds: super::notify::PassedFds,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ready,
    Health,
}

/// The check tasks and what they need.
#[derive(Debug, Default)]
pub struct Checks {
    tx: Option<mpsc::UnboundedSender<Message>>,
    tasks: HashMap<UnitId, (Kind, u64, JoinHandle<()>)>,
    /// Pid of a running `exec` check → where its exit goes.
    exec_waits: HashMap<u32, oneshot::Sender<ExitStatus>>,
    /// sd_notify `MAINPID=` per unit: a pid of its tree that speaks for it as its main pid.
    pub main_pid: HashMap<UnitId, u32>,
    /// sd_notify messages from pids of no unit, dropped unheard.
    pub drops: super::notify::Drops,
    /// Forking units whose main process is being looked for.
    pub finders: HashMap<UnitId, super::forking::Finder>,
}

impl Checks {
    pub fn set_sender(&mut self, tx: mpsc::UnboundedSender<Message>) {
        self.tx = Some(tx);
    }

    /// Where tasks send their messages to the event loop (`None` before it runs).
    pub fn sender(&self) -> Option<mpsc::UnboundedSender<Message>> {
        self.tx.clone()
    }

    /// Aborts unit `id`'s check task, so that the next [`Daemon::sync_checks`] starts one with
    /// the unit's settings as they are now (after a reload changed them).
    pub fn restart_task(&mut self, id: UnitId) {
        if let Some((_, _, task)) = self.tasks.remove(&id) {
            task.abort();
        }
    }

    /// Whether `pid` is a running `exec` check.
    pub fn is_exec(&self, pid: u32) -> bool {
        self.exec_waits.contains_key(&pid)
    }

    /// A reaped pid that was an `exec` check: its exit goes to the waiting task. Returns whether
    /// the pid was one.
    pub fn exec_exited(&mut self, pid: u32, status: ExitStatus) -> bool {
        match self.exec_waits.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(status);
                true
            }
            None => false,
        }
    }
}

impl Daemon {
    /// Starts, keeps or aborts unit `id`'s check task to match its state.
    pub(super) fn sync_checks(&mut self, id: UnitId) {
        let status = self.supervisor.status(id);
        let unit = &self.units[id];
        let want = match (status.state, status.pid) {
            (State::Starting, Some(_)) => unit.ready.probe.clone().map(|p| (Kind::Ready, p)),
            (State::Running, Some(_)) => unit.health.probe.clone().map(|p| (Kind::Health, p)),
            _ => None,
        };
        if status.pid.is_none() {
            self.checks.main_pid.remove(&id);
        }
        let run = status.starts;
        if let (Some((kind, _)), Some((have, have_run, _))) = (&want, self.checks.tasks.get(&id))
            && kind == have
            && run == *have_run
        {
            return;
        }
        if let Some((_, _, task)) = self.checks.tasks.remove(&id) {
            task.abort();
        }
        let (Some((kind, probe)), Some(tx)) = (want, self.checks.tx.clone()) else {
            return;
        };
        let task = match kind {
            Kind::Ready => {
                let timeout = unit.ready.timeout;
                let main = status.pid;
                match (&probe, main) {
                    // Through a socket svcd holds, any run (or the backlog) answers: the run
                    // is ready once it accepts a connection itself.
                    (Probe::Tcp(addr), Some(main)) if self.sockets.holds(&unit.name, *addr) => {
                        let addr = *addr;
                        tokio::spawn(async move {
                            super::sockets::accepted_by_run(addr, main).await;
                            let _ = tx.send(Message::Ready { unit: id, run });
                        })
                    }
                    _ => tokio::spawn(ready_task(id, run, probe, timeout, main, tx)),
                }
            }
            // Each check runs when the core asks for it ([`Daemon::check_health`]): the
            // interval is the core's timer.
            Kind::Health => return,
        };
        self.checks.tasks.insert(id, (kind, run, task));
    }

    /// Runs unit `id`'s health check once (`Action::CheckHealth`); its verdict comes back as
    /// [`Message::Health`] and is dropped if the run has ended by then.
    pub(super) fn check_health(&mut self, id: UnitId) {
        let run = self.supervisor.status(id).starts;
        let unit = &self.units[id];
        let (Some(probe), Some(tx)) = (unit.health.probe.clone(), self.checks.tx.clone()) else {
            return;
        };
        let timeout = unit.health.timeout;
        let task = tokio::spawn(async move {
            let verdict = attempt(id, &probe, timeout, &tx).await;
            let _ = tx.send(Message::Health {
                unit: id,
                run,
                verdict,
            });
        });
        if let Some((_, _, old)) = self.checks.tasks.insert(id, (Kind::Health, run, task)) {
            old.abort();
        }
    }

    /// A message from a check task or the notify socket.
    pub(super) fn handle_check(&mut self, message: Message) {
        let now = std::time::Instant::now();
        let current = |daemon: &Daemon, unit: UnitId, run: u64| {
            daemon.checks.tasks.get(&unit).is_some_and(|t| t.1 == run)
        };
        match message {
            Message::Ready { unit, run } if current(self, unit, run) => {
                self.checks.tasks.remove(&unit);
                self.supervisor.handle_ready(now, unit);
            }
            Message::Health { unit, run, verdict } if current(self, unit, run) => {
                if let Err(why) = &verdict {
                    tracing::warn!(unit = %self.units[unit].name, "health check failed: {why}");
                }
                let verdict = verdict.as_ref().map(|_| ()).map_err(String::as_str);
                self.supervisor.handle_health_check(now, unit, verdict);
            }
            Message::NotReady { unit, run, why } if current(self, unit, run) => {
                tracing::warn!(unit = %self.units[unit].name, "not ready: {why}");
                self.supervisor.handle_not_ready(now, unit, &why);
            }
            Message::Ready { .. } | Message::Health { .. } | Message::NotReady { .. } => {}
            Message::Exec { unit, argv, reply } => {
                let _ = reply.send(self.spawn_check(unit, argv));
            }
            Message::Reloaded { outcomes, reply } => self.finish_reload(outcomes, reply),
            Message::FindMain { unit, run } => self.find_main_tick(unit, run),
            Message::Notify { pid, text, fds } => {
                self.handle_notify(pid, &text);
                // The answer to `BARRIER=1`: every message before it has been handled.
                drop(fds);
            }
        }
    }

    fn spawn_check(
        &mut self,
        id: UnitId,
        argv: Vec<String>,
    ) -> Result<(u32, oneshot::Receiver<ExitStatus>), String> {
        let mut check = self.units[id].clone();
        check.argv = argv;
        self.spawn_beside(&check)
    }

    /// Runs `command` (a unit's settings with another argv) beside the unit; its exit is
    /// reaped by the event loop and sent to the receiver.
    pub(super) fn spawn_beside(
        &mut self,
        command: &Unit,
    ) -> Result<(u32, oneshot::Receiver<ExitStatus>), String> {
        let spawned = process::spawn(command).map_err(|e| e.to_string())?;
        // A check's output goes to its unit's log, as its own would.
        let log = self.logs.log(&command.name);
        let _capture = crate::logs::capture::Capture::start(log, spawned.stdout, spawned.stderr);
        let (tx, rx) = oneshot::channel();
        self.checks.exec_waits.insert(spawned.pid, tx);
        Ok((spawned.pid, rx))
    }
}

/// `main`: the unit's main process; a `tcp` check only passes when the listener it reached is
/// held by one of the unit's processes ([`foreign_listener`]).
async fn ready_task(
    unit: UnitId,
    run: u64,
    probe: Probe,
    timeout: Duration,
    main: Option<u32>,
    tx: mpsc::UnboundedSender<Message>,
) {
    let mut pause = READY_FIRST_PAUSE;
    let mut told: Option<String> = None;
    loop {
        match attempt(unit, &probe, timeout, &tx).await {
            Ok(()) => match (&probe, main) {
                (Probe::Tcp(addr), Some(main)) => match foreign_listener(*addr, main) {
                    None => {
                        let _ = tx.send(Message::Ready { unit, run });
                        return;
                    }
                    // Told once per different answer: the event loop need not hear it again.
                    Some(why) if told.as_ref() != Some(&why) => {
                        told = Some(why.clone());
                        let _ = tx.send(Message::NotReady { unit, run, why });
                    }
                    Some(_) => {}
                },
                _ => {
                    let _ = tx.send(Message::Ready { unit, run });
                    return;
                }
            },
            Err(why) => tracing::debug!(unit, "not ready yet: {why}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(READY_MAX_PAUSE);
    }
}

/// Whether the listener at `addr` is someone else's than the unit whose main process is
/// `main`: then why, naming the holders. A listener whose holders svcd cannot see (another
/// user's, svcd not root) counts as the unit's: there is nothing to tell.
fn foreign_listener(addr: std::net::SocketAddr, main: u32) -> Option<String> {
    let holders = super::ports::holders(addr);
    if holders.is_empty()
        || holders
            .iter()
            .any(|(pid, _)| super::ports::belongs_to_unit(*pid, main))
    {
        return None;
    }
    super::ports::describe(addr, &holders).map(|text| format!("{text}, not by this unit"))
}

/// One check; the error says what failed.
async fn attempt(
    unit: UnitId,
    probe: &Probe,
    timeout: Duration,
    tx: &mpsc::UnboundedSender<Message>,
) -> Result<(), String> {
    match probe {
        Probe::Tcp(addr) => match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
            Err(_) => Err(format!("no connection to {addr} within {timeout:?}")),
        },
        Probe::Http(target) => match tokio::time::timeout(timeout, http_get(target)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer from {} within {timeout:?}", target.url)),
        },
        Probe::Exec(argv) => {
            let command = argv.join(" ");
            let (reply, answer) = oneshot::channel();
            let message = Message::Exec {
                unit,
                argv: argv.clone(),
                reply,
            };
            tx.send(message)
                .map_err(|_| "svcd is stopping".to_string())?;
            let (pid, exit) = answer
                .await
                .map_err(|_| "svcd is stopping".to_string())?
                .map_err(|e| format!("`{command}`: {e}"))?;
            match tokio::time::timeout(timeout, exit).await {
                Ok(Ok(status)) if status.is_success() => Ok(()),
                Ok(Ok(status)) => Err(format!("`{command}` {status}")),
                Ok(Err(_)) => Err("svcd is stopping".to_string()),
                Err(_) => {
                    let _ = process::signal_group(pid, 9);
                    Err(format!("`{command}` did not finish within {timeout:?}"))
                }
            }
        }
    }
}

/// A minimal HTTP/1.1 GET: 2xx is a pass, anything else a failure naming the status.
async fn http_get(target: &HttpTarget) -> Result<(), String> {
    let url = &target.url;
    let mut stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: svcd\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send to {url}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let code = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code,
        _ => return Err(format!("{url} did not answer HTTP: {line:?}")),
    };
    if code.len() == 3 && code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("{url} answered {}", line.trim()))
    }
}

impl Daemon {
    /// Hands every unit's whole config to the core, dependencies resolved to ids (after
    /// start-up and after each reload, as ids of new units may be named).
    pub(super) fn configure_checks(&mut self) {
        for id in 0..self.units.len() {
            // By the listed entries, not the supervisor's names: a unit removed by a reload
            // keeps its old id there until it has stopped.
            let config = UnitConfig::from_unit(&self.units[id], |n| self.unit_id(n));
            self.supervisor.update_unit(id, config);
        }
    }
}

/// Adds what sd_notify needs to `unit`'s environment: `NOTIFY_SOCKET` (and `WATCHDOG_USEC`).
/// Done when a unit is loaded, so that a reload compares like with like.
pub(super) fn add_notify_env(unit: &mut Unit, notify_socket: &std::path::Path) {
    if unit.ready.notify || unit.health.watchdog.is_some() {
        let path = notify_socket.to_string_lossy().into_owned();
        unit.env.insert("NOTIFY_SOCKET".to_string(), path);
    }
    if let Some(period) = unit.health.watchdog {
        let usec = period.as_micros().to_string();
        unit.env.insert("WATCHDOG_USEC".to_string(), usec);
    }
}
