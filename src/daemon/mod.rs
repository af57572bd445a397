//! The one event loop: signals, exits, requests and timers go into the supervisor; its actions
//! come out and are performed here.
//!
//! Everything runs on one current-thread tokio runtime: no thread per unit, and no wake-up at
//! idle except a due timer (the supervisor's next deadline).

mod init;
mod report;
mod waiter;

use crate::config::{self, Config};
use crate::control::server::{self, Access, Envelope};
use crate::control::{Command, ErrorKind, Response, UnitInfo};
use crate::process;
use crate::supervisor::{Action, State, Supervisor, UnitId};
use crate::unit::{self, Unit, UnitErrors};
use report::Clocks;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use waiter::{Goal, Progress, Waiter};

/// What `svcd` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub units_dirs: Vec<PathBuf>,
    /// The config file, and whether the user named it (then it must exist).
    pub config: (PathBuf, bool),
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// Init duties beyond reaping: survive stray signals (`--init`, or svcd is PID 1).
    pub init: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot read the units directory: {0}")]
    Units(std::io::Error),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("admin_group `{0}` does not exist")]
    AdminGroup(String),
    #[error("cannot create the state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the event loop: {0}")]
    Runtime(std::io::Error),
    /// Not a failure of svcd: a `fatal` unit failed, and svcd stopped every unit because of it.
    #[error("unit `{unit}` failed ({reason}) and is fatal: stopped every unit")]
    Fatal { unit: String, reason: String },
}

/// One name in the units directories: a unit the supervisor runs, or a broken file.
#[derive(Debug)]
enum Entry {
    Unit(UnitId),
    Broken(UnitErrors),
}

struct Daemon {
    supervisor: Supervisor,
    /// By name, sorted; what `list` shows.
    entries: Vec<(String, Entry)>,
    /// Indexed by `UnitId`.
    units: Vec<Unit>,
    /// Main pid → unit, for exits reaped by `waitpid(-1)`.
    pids: HashMap<u32, UnitId>,
    waiters: Vec<Waiter>,
    /// `Some` once a shutdown began: who asked for it, to answer once everything stopped.
    shutdown: Option<Vec<tokio::sync::oneshot::Sender<Response>>>,
    /// When svcd started: the `since` of broken units.
    started: Instant,
    /// A `fatal` unit failed: its name and why; svcd exits non-zero once everything stopped.
    fatal: Option<(String, String)>,
}

/// Runs svcd until SIGTERM, SIGINT or `svc shutdown` has stopped every unit.
pub fn run(options: Options) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: Options) -> Result<(), DaemonError> {
    let config: Config = config::load(&options.config.0, options.config.1)?;
    let admin_group = match &config.admin_group {
        None => None,
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(group)) => Some(group.gid),
            _ => return Err(DaemonError::AdminGroup(name.clone())),
        },
    };
    let loaded = unit::load_dirs(&options.units_dirs).map_err(DaemonError::Units)?;
    create_state_dir(&options.state_dir)?;
    let listener = server::bind(&options.socket).map_err(|source| DaemonError::Socket {
        path: options.socket.clone(),
        source,
    })?;
    // Handlers go in before the first spawn, so no SIGCHLD is missed.
    let mut sigchld = signal(SignalKind::child()).map_err(DaemonError::Runtime)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Runtime)?;
    init::become_subreaper();
    if options.init {
        init::ignore_stray_signals();
    }

    let (request_tx, mut requests) = mpsc::channel::<Envelope>(64);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let access = Access {
        daemon_uid: nix::unistd::Uid::effective().as_raw(),
        admin_group,
    };
    tokio::spawn(server::serve(listener, request_tx, access, alive_tx));

    let mut daemon = Daemon::new(loaded);
    tracing::info!(
        units = daemon.units.len(),
        broken = daemon.entries.len() - daemon.units.len(),
        socket = %options.socket.display(),
        "svcd started"
    );
    for (name, entry) in &daemon.entries {
        if let Entry::Broken(errors) = entry {
            tracing::error!(unit = %name, "not started, its unit file is invalid:\n{errors}");
        }
    }
    let now = Instant::now();
    for id in 0..daemon.units.len() {
        if daemon.units[id].enabled {
            daemon.supervisor.handle_start(now, id, "started with svcd");
        }
    }

    loop {
        daemon.perform_actions();
        if daemon.is_shut_down() {
            break;
        }
        let deadline = daemon.supervisor.poll_timeout();
        tokio::select! {
            _ = sigchld.recv() => daemon.reap(),
            _ = sigterm.recv() => daemon.begin_shutdown("svcd got SIGTERM", None),
            _ = sigint.recv() => daemon.begin_shutdown("svcd got SIGINT", None),
            _ = sighup.recv() => tracing::warn!("SIGHUP: reload is not supported yet; nothing changed"),
            Some(envelope) = requests.recv() => daemon.handle_request(envelope),
            _ = sleep_until(deadline), if deadline.is_some() => {
                daemon.supervisor.handle_timeout(Instant::now());
            }
        }
    }

    let _ = std::fs::remove_file(&options.socket);
    for reply in daemon.shutdown.take().unwrap_or_default() {
        let _ = reply.send(Response::ok(None));
    }
    daemon.waiters.clear();
    // Let the connection tasks write their last answers: wait until the last one is gone (each
    // holds an `alive` sender), but not for a client that keeps its connection open.
    drop(requests);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), alive_rx.recv()).await;
    tracing::info!("svcd stopped");
    match daemon.fatal.take() {
        Some((unit, reason)) => Err(DaemonError::Fatal { unit, reason }),
        None => Ok(()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

fn create_state_dir(path: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(source) => Err(DaemonError::StateDir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Daemon {
    fn new(loaded: unit::Loaded) -> Daemon {
        let now = Instant::now();
        let mut supervisor = Supervisor::new();
        let mut entries = Vec::new();
        let mut units = Vec::new();
        for unit in loaded.units {
            let id = supervisor.add_unit(now, &unit.name, unit.restart.clone(), unit.stop.clone());
            entries.push((unit.name.clone(), Entry::Unit(id)));
            units.push(unit);
        }
        for broken in loaded.broken {
            entries.push((broken.name.clone(), Entry::Broken(broken)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Daemon {
            supervisor,
            entries,
            units,
            pids: HashMap::new(),
            waiters: Vec::new(),
            shutdown: None,
            started: now,
            fatal: None,
        }
    }

    /// Performs what the supervisor asked for, feeding back spawns, until it asks nothing more.
    fn perform_actions(&mut self) {
        let mut changed = false;
        while let Some(action) = self.supervisor.poll_action() {
            match action {
                Action::Spawn { unit: id } => self.spawn(id),
                Action::Signal {
                    unit: id,
                    pgid,
                    signal,
                } => {
                    if let Err(e) = process::signal_group(pgid, signal) {
                        tracing::warn!(unit = %self.units[id].name, pgid, "cannot send {}: {e}", crate::signal::name(signal));
                    }
                    self.signal_strays(id, pgid, signal);
                }
                Action::Publish { unit: id } => {
                    changed = true;
                    let status = self.supervisor.status(id);
                    tracing::info!(unit = %self.units[id].name, state = %status.state, pid = ?status.pid, "{}", status.reason);
                    if status.state == State::Failed && self.units[id].fatal {
                        self.fatal_failed(id, &status.reason);
                    }
                }
            }
        }
        if changed {
            self.check_waiters();
        }
    }

    /// The signal that went to a unit's group also goes to the unit's processes outside it.
    fn signal_strays(&self, id: UnitId, pgid: u32, signal: i32) {
        let name = &self.units[id].name;
        let main_alive = self.pids.get(&pgid) == Some(&id);
        let mains: std::collections::HashSet<u32> = self.pids.keys().copied().collect();
        let sent = process::signal_strays(name, pgid, main_alive, &mains, signal);
        if sent > 0 {
            let signal = crate::signal::name(signal);
            tracing::info!(unit = %name, "sent {signal} to {sent} of its processes outside its process group");
        }
    }

    /// A `fatal` unit reached `failed`: stop everything, and exit non-zero once stopped. During
    /// a shutdown already under way there is nothing left to decide.
    fn fatal_failed(&mut self, id: UnitId, reason: &str) {
        if self.shutdown.is_some() || self.fatal.is_some() {
            return;
        }
        let name = self.units[id].name.clone();
        tracing::error!(unit = %name, "fatal unit failed ({reason}): svcd stops every unit and exits with status 3");
        self.fatal = Some((name.clone(), reason.to_string()));
        self.begin_shutdown(&format!("fatal unit `{name}` failed"), None);
    }

    fn spawn(&mut self, id: UnitId) {
        let now = Instant::now();
        match process::spawn(&self.units[id]) {
            Ok(spawned) => {
                self.pids.insert(spawned.pid, id);
                tokio::spawn(process::forward_output(
                    self.units[id].name.clone(),
                    spawned.output,
                ));
                self.supervisor.handle_spawned(now, id, spawned.pid);
            }
            Err(e) => self.supervisor.handle_spawn_failed(now, id, &e.to_string()),
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        for (pid, status) in process::reap() {
            // Not a main pid: a stray of a unit's group, reaped so it leaves no zombie.
            if let Some(id) = self.pids.remove(&pid) {
                self.supervisor.handle_exit(now, id, status);
            }
        }
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.is_some()
            && (0..self.units.len()).all(|id| {
                matches!(
                    self.supervisor.status(id).state,
                    State::Inactive | State::Failed
                )
            })
    }

    fn begin_shutdown(
        &mut self,
        reason: &str,
        reply: Option<tokio::sync::oneshot::Sender<Response>>,
    ) {
        if self.shutdown.is_none() {
            tracing::info!("{reason}: stopping every unit");
        }
        self.shutdown.get_or_insert_with(Vec::new).extend(reply);
        let now = Instant::now();
        for id in 0..self.units.len() {
            self.supervisor.handle_stop(now, id, reason);
        }
    }

    /// The entries named, or an `unknown_unit` error naming the ones that do not exist.
    fn lookup(&self, names: &[String]) -> Result<Vec<usize>, Response> {
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

    fn infos(&self, indexes: &[usize]) -> Vec<UnitInfo> {
        let clocks = Clocks::read();
        let pgids: Vec<u32> = indexes
            .iter()
            .filter_map(|&i| match &self.entries[i].1 {
                Entry::Unit(id) => self.supervisor.status(*id).pid,
                Entry::Broken(_) => None,
            })
            .collect();
        let memory = process::group_memory(&pgids);
        indexes
            .iter()
            .map(|&i| match &self.entries[i].1 {
                Entry::Unit(id) => {
                    let status = self.supervisor.status(*id);
                    let mem = status
                        .pid
                        .and_then(|p| memory.get(&p).copied())
                        .unwrap_or_default();
                    report::unit_info(&self.units[*id], &status, mem, clocks)
                }
                Entry::Broken(broken) => report::broken_info(broken, self.started, clocks),
            })
            .collect()
    }

    fn handle_request(&mut self, envelope: Envelope) {
        let Envelope { command, reply } = envelope;
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let response = match command {
            Command::Status { names } if names.is_empty() => Response::ok(Some(self.infos(&all))),
            Command::Status { names } => match self.lookup(&names) {
                Ok(found) => Response::ok(Some(self.infos(&found))),
                Err(response) => response,
            },
            Command::List => Response::ok(Some(self.infos(&all))),
            Command::Shutdown => {
                self.begin_shutdown("shutdown requested", Some(reply));
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
                                "unknown state `{other}`; expected one of inactive, starting, running, ready, stopping, backoff, failed"
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

    /// start / stop / restart / wait: act on the units, then answer now or once the goal is met.
    fn command(
        &mut self,
        names: Vec<String>,
        wait: bool,
        goal: Goal,
        reply: tokio::sync::oneshot::Sender<Response>,
    ) {
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
                Goal::Started => self
                    .supervisor
                    .handle_start(now, *id, "started by operator"),
                Goal::Stopped => self.supervisor.handle_stop(now, *id, "stopped by operator"),
                Goal::Restarted => {
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
    fn check_waiters(&mut self) {
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
