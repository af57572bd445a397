//! The one event loop: signals, exits, requests and timers go into the supervisor; its actions
//! come out and are performed here.
//!
//! Everything runs on one current-thread tokio runtime: no thread per unit, and no wake-up at
//! idle except a due timer (the supervisor's next deadline).

mod adopt;
mod app;
mod checks;
pub mod events;
pub mod fdholder;
mod forking;
mod forward;
mod hooks;
mod init;
pub use init::power_off_if_machine_init;
mod instances;
mod light_sleep;
mod memory;
pub mod metrics;
mod notify;
mod ports;
mod reload;
mod report;
mod requests;
mod schedule;
pub mod sockets;
pub(crate) mod statedir;
mod statefile;
mod unit_reload;
mod waiter;

/// The sd_notify message parser, pure, for the fuzz targets.
pub use notify::parse as parse_notify;

use crate::config::{self, Config};
use crate::control::Response;
use crate::control::server::{self, Access, Envelope};
use crate::logs::{self, capture::Capture};
use crate::process;
use crate::supervisor::{self, Action, Reason, ReasonKind, State, Supervisor, UnitConfig, UnitId};
use crate::unit::{self, Unit, UnitErrors};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use waiter::Waiter;

/// The shortest time between two listings of svcd's children for orphans: a listing costs as
/// much as all the units (about 1 ms at 1,000), so a unit in a crash loop must not pay it per
/// crash. The first signal after a quiet spell is passed on at once, later ones wait at most
/// this long, together.
const ORPHAN_SEARCH_PERIOD: Duration = Duration::from_millis(100);

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
    /// `svcd -- CMD ARGS...`: the container's app, run as the fatal unit `app`.
    pub app: Option<app::AppCommand>,
}

pub use app::AppCommand;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The message names the directory and says what to do.
    #[error(transparent)]
    Units(unit::LoadError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("admin_group `{0}` does not exist")]
    AdminGroup(String),
    #[error(transparent)]
    StateDir(#[from] statedir::StateDirError),
    #[error("cannot listen on {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the event loop: {0}")]
    Runtime(std::io::Error),
    /// Not a failure of svcd: a `fatal` unit ended for good (failed, or exited and will not be
    /// restarted), and svcd stopped every unit because of it; svcd exits with `code`.
    #[error("unit `{unit}` {reason} and is fatal: stopped every unit")]
    Fatal {
        unit: String,
        reason: String,
        /// The unit's exit status (128 + signal number for a signal); 3 when svcd gave up on it
        /// (start limit, spawn failure, a stop svcd decided on).
        code: u8,
    },
    #[error("cannot run the app: {0}")]
    App(String),
    #[error("svcd.toml forward_signals: {0}")]
    Forward(String),
    /// `svc upgrade` could not re-execute svcd; by then its socket was closed, so it exits
    /// (its units run on, and a new svcd adopts them).
    #[error("upgrade failed: {0}")]
    Upgrade(String),
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
    /// Where the unit files are, for reload.
    units_dirs: Vec<PathBuf>,
    /// The sd_notify socket, exported to the units that speak to it.
    notify_path: PathBuf,
    /// Memory samples, the host policy.
    memory: memory::MemoryWatch,
    /// Publishes units' changes to `svc events`.
    events: events::Hub,
    /// Every unit's log, shared with the control connections (`svc logs`).
    logs: logs::Registry,
    /// Main pid → the capture of its output, drained when the exit is reaped.
    captures: HashMap<u32, Capture>,
    /// Readiness and health check tasks, sd_notify state.
    checks: checks::Checks,
    /// A `fatal` unit ended for good: svcd exits with its status once everything stopped.
    fatal: Option<app::FatalEnd>,
    /// `svcd -- CMD`: the app unit, and whether a stop signal was forwarded to it.
    app: Option<app::App>,
    /// svcd.toml `forward_signals`: which units get which signal svcd receives.
    forward: forward::Forwards,
    /// Units removed by a reload whose slots are freed once they are down.
    removed: Vec<UnitId>,
    /// Signals sent to units' groups whose orphans are still to get them (see
    /// [`Daemon::signal_orphans`]): (unit's name, group, signal, continue it too). By name: the
    /// search may come after a reload freed the unit's slot.
    orphan_signals: Vec<(String, u32, i32, bool)>,
    /// When svcd's children were last listed for orphans: at most once per
    /// [`ORPHAN_SEARCH_PERIOD`].
    last_orphan_search: Option<Instant>,
    /// `shutdown_timeout` of svcd.toml: the whole shutdown's budget.
    shutdown_timeout: std::time::Duration,
    /// Each unit's last `svc reload NAME`.
    unit_reloads: unit_reload::UnitReloads,
    /// Pid of a running `exec_start_pre`/`exec_start_post`/`exec_stop` command → its unit.
    hook_pids: HashMap<u32, UnitId>,
    /// Where units' `runtime_dir`, `state_dir`, `logs_dir` go.
    dir_roots: process::dirs::DirRoots,
    /// Instances of templates made by `svc start` (not in their template's `instances`),
    /// forgotten once inactive.
    on_demand: std::collections::BTreeSet<String>,
    /// Scheduled units: the stamps of persistent ones, whether there are any.
    stamps: schedule::Stamps,
    /// The sockets of units with `listen`, held across their runs.
    sockets: sockets::HeldSockets,
    /// The state file, and the units taken back from a previous svcd.
    adoption: adopt::Adoption,
}

/// How long svcd waits with nothing to do before it lets go of its code pages.
const TRIM_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs svcd until SIGTERM, SIGINT or `svc shutdown` has stopped every unit.
pub fn run(options: Options) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .on_thread_park(light_sleep::on_park)
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(run_async(options))
}

async fn run_async(mut options: Options) -> Result<(), DaemonError> {
    let config: Config = config::load(&options.config.0, options.config.1)?;
    let admin_group = match &config.admin_group {
        None => None,
        Some(name) => match crate::users::group_by_name(name) {
            Ok(Some(group)) => Some(nix::unistd::Gid::from_raw(group.gid)),
            _ => return Err(DaemonError::AdminGroup(name.clone())),
        },
    };
    let loaded = app::load_units(&options.units_dirs, options.app.as_ref())?;
    if let Err(why) = process::ensure_fd_limit(loaded.units.len()) {
        tracing::warn!("{why}");
    }
    // Locked for as long as this lives: svcd's whole run.
    let state_dir = statedir::prepare(&options.state_dir)?;
    options.socket = statedir::absolute(&options.socket);
    options.state_dir = state_dir.path.clone();
    let notify_path = options.state_dir.join("notify.sock");
    let notify_socket = notify::bind(&notify_path).map_err(|source| DaemonError::Socket {
        path: notify_path.clone(),
        source,
    })?;
    let listener =
        server::bind(&options.socket, admin_group).map_err(|source| DaemonError::Socket {
            path: options.socket.clone(),
            source,
        })?;
    // Handlers go in before the first spawn, so no SIGCHLD is missed.
    let mut sigchld = signal(SignalKind::child()).map_err(DaemonError::Runtime)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Runtime)?;
    let forwards = forward::Forwards::new(&config.forward_signals).map_err(DaemonError::Forward)?;
    let mut forwarded = forward::Receiver::new(forwards.signals(options.app.is_some()));
    // In init mode SIGUSR2 is not svcd's to take (`svc upgrade` is), nor when it is forwarded.
    const SIGUSR2: i32 = 12;
    let mut sigusr2 = match options.init || forwarded.numbers().contains(&SIGUSR2) {
        false => Some(signal(SignalKind::user_defined2()).map_err(DaemonError::Runtime)?),
        true => None,
    };
    init::become_subreaper();
    if options.init {
        init::ignore_stray_signals(&forwarded.numbers());
        init::ignore_sent_faults();
    }

    let (request_tx, mut requests) = mpsc::channel::<Envelope>(64);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let access = Access {
        daemon_uid: nix::unistd::Uid::effective().as_raw(),
        admin_group,
    };
    let registry = logs::Registry::new(
        options.state_dir.join("logs"),
        config.log.settings(),
        !logs::stdout_is_null(),
    );
    if let Some(address) = config.metrics.listen {
        match metrics::bind(address) {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(address);
                tracing::info!(address = %bound, "metrics served on http://{bound}/metrics");
                tokio::spawn(metrics::serve(listener, request_tx.clone()));
            }
            Err(e) => tracing::error!("[metrics] listen = \"{address}\": {e}; metrics not served"),
        }
    }
    let events = events::Hub::new();
    let server = tokio::spawn(server::serve(
        listener,
        request_tx,
        access,
        alive_tx,
        registry.clone(),
        events.subscribe(),
    ));

    let mut daemon = Daemon::new(
        loaded,
        options.units_dirs.clone(),
        notify_path.clone(),
        registry,
    );
    daemon.memory = memory::MemoryWatch::new(config.memory.clone());
    let (crossings_tx, mut crossings) = mpsc::unbounded_channel();
    daemon.memory.set_crossings(crossings_tx);
    daemon.memory.enable_cgroups(&options.state_dir);
    daemon.events = events;
    daemon.shutdown_timeout = config.shutdown_timeout;
    let system = nix::unistd::Uid::effective().is_root()
        && options.state_dir == crate::control::client::default_state_dir();
    daemon.dir_roots = config.directories.roots(system, &options.state_dir);
    daemon.app = options
        .app
        .as_ref()
        .and_then(|command| daemon.app_of(command));
    daemon.forward = forwards;
    // Armed once: the kernel keeps the trigger for as long as the file stays open.
    let mut psi = if config.memory.watches_host() {
        crate::memory::psi::PsiTrigger::arm()
    } else {
        None
    };
    let (check_tx, mut check_rx) = mpsc::unbounded_channel();
    tokio::spawn(notify::serve(notify_socket, check_tx.clone()));
    daemon.checks.set_sender(check_tx);
    daemon.configure_checks();
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
    let (adopted_tx, mut adopted_exits) = mpsc::unbounded_channel();
    daemon.keep_state(&options.state_dir, adopted_tx);
    let adopted = statefile::read(&options.state_dir)
        .map(|saved| daemon.adopt(saved))
        .unwrap_or_default();
    // A scheduled unit runs when due, not at boot; an adopted one runs already.
    let enabled: Vec<UnitId> = (0..daemon.units.len())
        .filter(|&id| {
            daemon.units[id].enabled
                && daemon.units[id].schedule.is_none()
                && !adopted.contains(&id)
        })
        .collect();
    daemon.supervisor.handle_start_all(
        Instant::now(),
        &enabled,
        Reason::new(ReasonKind::Boot, "started with svcd"),
    );
    daemon.set_stamp_dir(options.state_dir.clone());
    daemon.arm_schedules(Instant::now());
    let mut clock = None;
    // Exits of adopted children while no svcd listened for SIGCHLD (an upgrade's `exec`).
    daemon.reap();

    // A second after svcd's last work, the runtime lets go of the code pages it mapped
    // (`light_sleep`): one wake-up after each burst, none while nothing happens.
    let mut trim_due = Some(Instant::now() + TRIM_AFTER);
    loop {
        daemon.perform_actions();
        daemon.note_answering();
        if daemon.is_shut_down() || daemon.adoption.upgrade.is_some() {
            daemon.signal_orphans(Instant::now(), true);
            break;
        }
        let deadline = daemon.supervisor.poll_timeout();
        let orphans_due = daemon.orphans_deadline();
        if daemon.stamps.any && clock.is_none() {
            clock = schedule::ClockWatch::new();
        }
        if let Some(clock) = &mut clock {
            clock.arm();
        }
        let memory_due = daemon.memory_deadline(Instant::now());
        let app_due = daemon.app_deadline();
        tokio::select! {
            _ = sigchld.recv() => daemon.reap(),
            _ = sigterm.recv() => daemon.handle_terminate(app::SIGTERM),
            _ = sigint.recv() => daemon.handle_terminate(app::SIGINT),
            _ = sighup.recv() => daemon.handle_hangup(),
            _ = usr2(&mut sigusr2), if sigusr2.is_some() => daemon.request_upgrade(None),
            Some(pid) = adopted_exits.recv() => daemon.adopted_exited(pid),
            Some(number) = forwarded.recv() => daemon.forward_signal(number),
            _ = sleep_until(app_due), if app_due.is_some() => {
                daemon.app_overdue();
            }
            Some(envelope) = requests.recv() => daemon.handle_request(envelope),
            Some(message) = check_rx.recv() => daemon.handle_check(message),
            _ = sleep_until(deadline), if deadline.is_some() => {
                daemon.supervisor.handle_timeout(Instant::now());
            }
            _ = sleep_until(memory_due), if memory_due.is_some() => daemon.sample_memory(),
            Some(id) = crossings.recv() => daemon.memory_crossed(id),
            // Adopted units' cgroups, a few a turn, after the requests waiting; the yield
            // lets the connections' tasks run in between (a `svc list` queued meanwhile).
            () = tokio::task::yield_now(), if daemon.cgroups_to_take_back() && requests.is_empty() => {
                daemon.take_cgroups_back();
            }
            // Readings answered while older than an interval, taken again once the answers
            // are on their way (the yield lets the connections' tasks write them first).
            () = tokio::task::yield_now(), if daemon.memory.refresh_due() && requests.is_empty() => {
                daemon.memory.refresh(Instant::now());
            }
            // The search itself is the next turn's (`perform_actions`).
            _ = sleep_until(orphans_due), if orphans_due.is_some() => {}
            _ = schedule::clock_fired(clock.as_mut()), if clock.is_some() => daemon.clock_changed(),
            fired = psi_fired(psi.as_ref()), if psi.is_some() => match fired {
                Ok(()) => daemon.sample_memory(),
                Err(e) => {
                    tracing::debug!("PSI trigger failed ({e}); sampling only");
                    psi = None;
                }
            },
            _ = sleep_until(trim_due), if trim_due.is_some() => {
                light_sleep::let_go_at_next_park();
                trim_due = None;
                continue;
            }
        }
        trim_due = Some(Instant::now() + TRIM_AFTER);
    }

    if let Some(reply) = daemon.adoption.upgrade.take() {
        // No new connection from here on: once answered, `svc upgrade` reaches the new svcd.
        server.abort();
        let _ = server.await;
        if let Some(reply) = reply {
            let _ = reply.send(Response::ok(None));
        }
        drop(requests);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), alive_rx.recv()).await;
        drop(state_dir);
        let error = daemon.exec_upgrade();
        return Err(DaemonError::Upgrade(error));
    }
    let _ = std::fs::remove_file(&options.socket);
    let _ = std::fs::remove_file(&notify_path);
    daemon.sockets.release_every();
    for reply in daemon.shutdown.take().unwrap_or_default() {
        let _ = reply.send(Response::ok(None));
    }
    daemon.waiters.clear();
    // `svc events` followers see the end of the queue, and their connections close.
    daemon.events = events::Hub::default();
    // Let the connection tasks write their last answers: wait until the last one is gone (each
    // holds an `alive` sender), but not for a client that keeps its connection open.
    drop(requests);
    server.abort();
    let _ = server.await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), alive_rx.recv()).await;
    // As PID 1, what no unit owns (`docker exec`'d shells, escaped daemons) ends too, within
    // what is left of the shutdown's budget.
    let deadline = daemon
        .supervisor
        .shutdown_deadline()
        .unwrap_or_else(Instant::now);
    daemon.release_holder();
    init::end_remaining_processes(&mut sigchld, deadline).await;
    daemon.memory.remove_cgroups();
    daemon.forget_state();
    tracing::info!("svcd stopped");
    drop(state_dir);
    match daemon.fatal.take() {
        Some(end) => Err(DaemonError::Fatal {
            unit: end.unit,
            reason: end.reason,
            code: end.code,
        }),
        None => Ok(()),
    }
}

/// When the next search for orphans may be, after the last one at `last`; `None`: at once.
fn orphan_search_due(last: Option<Instant>) -> Option<Instant> {
    last.and_then(|at| at.checked_add(ORPHAN_SEARCH_PERIOD))
}

async fn usr2(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// The limits the supervisor checks memory samples against.
/// The core's view of a unit just loaded. Its dependencies are left out: they name units that
/// may not have ids yet, and come with [`Daemon::configure_checks`] once all have.
fn unit_config(unit: &Unit) -> UnitConfig {
    UnitConfig::from_unit(unit, |_| None)
}

async fn psi_fired(psi: Option<&crate::memory::psi::PsiTrigger>) -> std::io::Result<()> {
    match psi {
        Some(psi) => psi.fired().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn new(
        loaded: unit::Loaded,
        units_dirs: Vec<PathBuf>,
        notify_path: PathBuf,
        logs: logs::Registry,
    ) -> Daemon {
        let now = Instant::now();
        let mut supervisor = Supervisor::new();
        let mut entries = Vec::new();
        let mut units = Vec::new();
        for mut unit in loaded.units {
            checks::add_notify_env(&mut unit, &notify_path);
            let id = supervisor.add_unit(now, unit_config(&unit));
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
            units_dirs,
            notify_path,
            memory: memory::MemoryWatch::default(),
            events: events::Hub::default(),
            logs,
            captures: HashMap::new(),
            checks: checks::Checks::default(),
            fatal: None,
            app: None,
            forward: forward::Forwards::default(),
            shutdown_timeout: config::DEFAULT_SHUTDOWN_TIMEOUT,
            removed: Vec::new(),
            unit_reloads: unit_reload::UnitReloads::default(),
            orphan_signals: Vec::new(),
            last_orphan_search: None,
            hook_pids: HashMap::new(),
            on_demand: Default::default(),
            dir_roots: process::dirs::DirRoots::defaults(false, std::path::Path::new("/")),
            stamps: schedule::Stamps::default(),
            sockets: sockets::HeldSockets::default(),
            adoption: adopt::Adoption::default(),
        }
    }

    /// Performs what the supervisor asked for, feeding back spawns, until it asks nothing more.
    fn perform_actions(&mut self) {
        // Reacting to changes (a fatal unit's failure, waiters) may ask for more actions.
        while self.perform_queued_actions() {}
        self.drop_idle_instances();
        self.signal_orphans(Instant::now(), false);
        if !self.removed.is_empty() {
            self.free_removed();
        }
        self.save_state_if_changed();
    }

    /// One round of [`Daemon::perform_actions`]; whether anything changed.
    fn perform_queued_actions(&mut self) -> bool {
        let mut changed: Vec<UnitId> = Vec::new();
        while let Some(action) = self.supervisor.poll_action() {
            match action {
                Action::Spawn { unit: id } => self.spawn(id),
                Action::Signal {
                    unit: id,
                    pgid,
                    signal,
                } => self.signal_unit(id, pgid, signal),
                Action::CheckHealth { unit: id } => self.check_health(id),
                Action::FindMainPid { unit: id, command } => self.find_main_pid(id, command),
                Action::RunHook {
                    unit: id,
                    hook,
                    index,
                } => self.run_hook(id, hook, index),
                Action::KillHook { unit: id, pgid } => self.kill_hook(id, pgid),
                Action::RecordRun {
                    unit: id,
                    unix_secs,
                } => self.record_run(id, unix_secs),
                Action::Publish { unit: id } if !changed.contains(&id) => changed.push(id),
                Action::Publish { .. } => {}
            }
        }
        if changed.is_empty() {
            return false;
        }
        // One line per unit and batch, with where it ended up.
        for &id in &changed {
            self.adoption.changed(id);
            self.sync_checks(id);
            let status = self.supervisor.status(id);
            self.after_change(id, status.state);
            if status.state == State::Failed && self.units[id].fatal {
                self.fatal_failed(id, &status.reason);
            }
            let pid = status
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            tracing::info!(unit = %self.units[id].name, state = %status.state, pid = %pid, "{}", status.reason);
            self.events
                .publish(&self.units[id].name, &status, report::Clocks::read());
            self.logs
                .note(&self.units[id].name, &logs::describe(&status));
        }
        self.check_waiters();
        true
    }

    /// Sends `signal` to a unit's group, and to the unit's processes outside it: those below
    /// its main process are found first (see [`process::strays_below`]), the group signalled,
    /// then they are; its orphans get it once this turn's actions are done
    /// ([`Daemon::signal_orphans`]).
    fn signal_unit(&mut self, id: UnitId, pgid: u32, signal: i32) {
        const SIGCONT: i32 = 18;
        let main_alive = self.pids.get(&pgid) == Some(&id);
        if process::signals_main_only(self.units[id].stop_mode, signal) {
            // Only a live main process: its pid may be another's once reaped. Neither its
            // group nor the unit's orphans get this signal.
            if main_alive {
                process::signal_main(pgid, signal);
                if self.supervisor.status(id).paused.is_some() {
                    process::signal_main(pgid, SIGCONT);
                }
            }
            return;
        }
        let status = self.supervisor.status(id);
        let paused = signal != SIGCONT && status.paused.is_some();
        // In a cgroup, every process of the unit is known, and each gets the signal once: the
        // group, its strays and orphans with it (a double fork in a session of its own, a
        // cleared environment). Not while two runs of an overlapping restart share the
        // cgroup: then each run's group is signalled on its own, as without a cgroup.
        let whole_cgroup = self.memory.in_cgroup(id)
            && status.old_pid.is_none()
            && status.pid.is_none_or(|pid| pid == pgid);
        if whole_cgroup {
            let sent = self.memory.signal_cgroup(id, signal);
            if paused {
                self.memory.signal_cgroup(id, SIGCONT);
            }
            let others = sent.saturating_sub(usize::from(main_alive));
            if others > 0 {
                let name = &self.units[id].name;
                let signal = crate::signal::name(signal);
                tracing::info!(unit = %name, "sent {signal} to {others} of its processes besides the main one (its cgroup)");
            }
            return;
        }
        let name = self.units[id].name.clone();
        self.orphan_signals.push((name, pgid, signal, paused));
        let name = &self.units[id].name;
        let strays = if main_alive {
            process::strays_below(pgid)
        } else {
            Vec::new()
        };
        if let Err(e) = process::signal_group(pgid, signal) {
            let signal = crate::signal::name(signal);
            tracing::warn!(unit = %name, pgid, "cannot send {signal}: {e}");
        }
        let sent = process::signal_pids(&strays, signal);
        // A stopped (SIGSTOP) process keeps the stop signal pending until it is continued:
        // continue it, as systemd does, so that it stops now rather than at the SIGKILL.
        if paused {
            let _ = process::signal_group(pgid, SIGCONT);
            process::signal_pids(&strays, SIGCONT);
        }
        if sent > 0 {
            let signal = crate::signal::name(signal);
            tracing::info!(unit = %name, "sent {signal} to {sent} of its processes outside its process group");
        }
    }

    /// Sends the unit signals sent so far to the units' orphans (svcd's children that are no
    /// unit's main process and whose environment names the unit), once
    /// [`Daemon::orphans_deadline`] has come (`now`), or at once if `flush`. svcd's children
    /// are listed once for all of them, and after the turn's spawns: the list holds every
    /// unit's main process, so reading it is the one cost of a signal that grows with the
    /// number of units, paid at most once per [`ORPHAN_SEARCH_PERIOD`].
    fn signal_orphans(&mut self, now: Instant, flush: bool) {
        let early = orphan_search_due(self.last_orphan_search).is_some_and(|at| at > now);
        if self.orphan_signals.is_empty() || (early && !flush) {
            return;
        }
        self.last_orphan_search = Some(now);
        let orphans = process::svcd_orphans(|pid| {
            self.pids.contains_key(&pid) || self.hook_pids.contains_key(&pid)
        });
        for (name, pgid, signal, paused) in std::mem::take(&mut self.orphan_signals) {
            let strays = process::orphans_of(&orphans, &name, pgid);
            let sent = process::signal_pids(&strays, signal);
            if paused {
                process::signal_pids(&strays, 18);
            }
            if sent > 0 {
                let signal = crate::signal::name(signal);
                tracing::info!(unit = %name, "sent {signal} to {sent} of its processes outside its process group");
            }
        }
    }

    /// When the signals waiting for the units' orphans are to be passed on: at once after a
    /// quiet spell, else one [`ORPHAN_SEARCH_PERIOD`] after the last search.
    fn orphans_deadline(&self) -> Option<Instant> {
        if self.orphan_signals.is_empty() {
            return None;
        }
        Some(orphan_search_due(self.last_orphan_search).unwrap_or_else(Instant::now))
    }

    /// A `fatal` unit reached `failed`: stop everything, and exit non-zero once stopped. During
    /// a shutdown already under way there is nothing left to decide.
    fn fatal_failed(&mut self, id: UnitId, reason: &str) {
        if self.shutdown.is_some() || self.fatal.is_some() {
            return;
        }
        let name = self.units[id].name.clone();
        tracing::error!(unit = %name, "fatal unit failed ({reason}): svcd stops every unit and exits with status {}", app::EXIT_GAVE_UP);
        self.fatal = Some(app::FatalEnd {
            unit: name.clone(),
            reason: format!("failed ({reason})"),
            code: app::EXIT_GAVE_UP,
        });
        self.begin_shutdown(&format!("fatal unit `{name}` failed"), None);
    }

    fn spawn(&mut self, id: UnitId) {
        let now = Instant::now();
        let port_note = self.port_in_use(id, None);
        if let Some(note) = &port_note {
            let name = &self.units[id].name;
            tracing::warn!(unit = %name, "{note}: the unit will likely fail to listen");
        }
        if let Err(e) = self.hold_sockets(id) {
            let name = &self.units[id].name;
            tracing::warn!(unit = %name, "{e}");
            self.supervisor.handle_spawn_failed(now, id, &e.to_string());
            return;
        }
        // The run's pressure FIFO for the host's steps (`memory.on_pressure`).
        self.memory.begin_run(id, &self.units[id]);
        let sockets = self.sockets.of(&self.units[id].name);
        let cgroup = self.memory.cgroup_for_spawn(id, &self.units[id]);
        let spawned = match self.start_command(id, None) {
            Ok(command) => {
                // `MEMORY_PRESSURE_WATCH` for a unit that is told before its limit.
                let watched = self.memory.with_pressure_watch(id, &command);
                let command = watched.as_ref().unwrap_or(&command);
                process::spawn_with(command, &sockets, cgroup).map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        match spawned {
            Ok(spawned) => {
                self.pids.insert(spawned.pid, id);
                let log = self.logs.log(&self.units[id].name);
                self.set_log_settings(id, &log);
                self.hold_output(spawned.pid, &spawned.stdout, &spawned.stderr);
                let capture = Capture::start(log, spawned.stdout, spawned.stderr);
                self.captures.insert(spawned.pid, capture);
                self.supervisor.handle_spawned(now, id, spawned.pid);
                if let Some(note) = port_note {
                    self.supervisor.handle_not_ready(now, id, &note);
                }
            }
            Err(e) => self.supervisor.handle_spawn_failed(now, id, &e),
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        for (pid, event) in process::reap() {
            let status = match event {
                process::ChildEvent::Exited(status) => status,
                process::ChildEvent::Stopped(signal) => {
                    if let Some(&id) = self.pids.get(&pid) {
                        self.supervisor.handle_paused(now, id, Some(signal));
                    }
                    continue;
                }
                process::ChildEvent::Continued => {
                    if let Some(&id) = self.pids.get(&pid) {
                        self.supervisor.handle_paused(now, id, None);
                    }
                    continue;
                }
            };
            // Not a main pid: a stray of a unit's group, reaped so it leaves no zombie.
            if let Some(id) = self.pids.remove(&pid) {
                // The last words first: what the unit printed before dying is in its log
                // before its exit is published.
                if let Some(capture) = self.captures.remove(&pid) {
                    capture.drain();
                }
                self.release_output(pid);
                // The old run of an overlapping restart: not the unit's exit.
                if self.supervisor.is_old_run(id, pid) {
                    self.supervisor.handle_exit_of(now, id, pid, status);
                    continue;
                }
                // Died before it was ready: most often because its port was taken.
                let before = self.supervisor.status(id).state;
                // A oneshot's or forking command's exit 0 completes its start: no early death.
                let ends_start = status.is_success()
                    && matches!(
                        self.units[id].kind.kind,
                        unit::UnitType::Oneshot | unit::UnitType::Forking
                    );
                let port_note = (before == State::Starting && !ends_start)
                    .then(|| self.port_in_use(id, Some(pid)))
                    .flatten();
                self.supervisor.handle_exit_of(now, id, pid, status);
                self.note_oom_kills(id, Some(status));
                if matches!(
                    self.supervisor.status(id).state,
                    State::Inactive | State::Failed
                ) {
                    self.memory.release_cgroup(id);
                }
                // The run is over: the PSI trigger on its cgroup goes with it.
                if matches!(
                    self.supervisor.status(id).state,
                    State::Backoff | State::Exited
                ) {
                    self.memory.end_stalls(id);
                }
                self.fatal_exited(id, status, before == State::Stopping);
                if let Some(note) = port_note {
                    tracing::warn!(unit = %self.units[id].name, "exited before it was ready: {note}");
                    self.supervisor.note_last_exit(id, &note);
                }
            } else if !self.hook_exited(now, pid, status) {
                self.checks.exec_exited(pid, status);
            }
        }
    }

    /// For a unit with a `ready.tcp` check: who else holds that port now, in words, if anyone
    /// does (see [`ports`]); `main`: the unit's (last) main process, whose group and
    /// descendants are not "else".
    fn port_in_use(&self, id: UnitId, main: Option<u32>) -> Option<String> {
        let Some(unit::Probe::Tcp(addr)) = &self.units[id].ready.probe else {
            return None;
        };
        // Its sockets are svcd's (`listen`): svcd, the unit's runs and the old run of an
        // overlap hold them, nobody else.
        if !self.sockets.of(&self.units[id].name).is_empty() {
            return None;
        }
        let mut holders = ports::holders(*addr);
        if let Some(main) = main {
            holders.retain(|(pid, _)| !ports::belongs_to_unit(*pid, main));
        }
        ports::describe(*addr, &holders)
    }

    /// Reports the kernel's OOM kills in unit `id`'s cgroup since last looked: as the reason of
    /// the exit `exit` when that was a SIGKILL, else as a line in svcd's and the unit's log (a
    /// worker of the unit was killed).
    pub(super) fn note_oom_kills(&mut self, id: UnitId, exit: Option<supervisor::ExitStatus>) {
        // A main process the OOM killer chose is told of by its exit, when it is reaped.
        let dying = || {
            let pid = self.supervisor.status(id).pid;
            pid.is_none_or(|pid| crate::proc::status(pid).is_none_or(|s| s.is_dying()))
        };
        let kills = match exit {
            Some(_) => self.memory.new_oom_kills(id),
            None if dying() => 0,
            None => self.memory.worker_oom_kills(id),
        };
        if kills == 0 {
            return;
        }
        let unit = &self.units[id];
        let size = unit::duration::format_size;
        let limit = unit
            .memory
            .max
            .map(|max| {
                let hard = crate::memory::cgroup::hard_limit(max);
                format!(
                    " (memory.max {}, the kernel's limit {})",
                    size(max),
                    size(hard)
                )
            })
            .unwrap_or_default();
        let words = format!("killed by the kernel: out of memory{limit}");
        if exit == Some(supervisor::ExitStatus::Signal(9)) {
            tracing::warn!(unit = %unit.name, "{words}");
            self.supervisor.note_oom_kill(id, &words);
        } else {
            let words = format!("the kernel's OOM killer killed {kills} of its processes{limit}");
            tracing::warn!(unit = %unit.name, "{words}");
            self.logs.note(&unit.name, &words);
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
            // The old runs of overlapping restarts, still finishing their requests, too.
            && self
                .pids
                .iter()
                .all(|(&pid, &id)| !self.supervisor.is_old_run(id, pid))
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
        let timeout = self.shutdown_budget();
        self.supervisor
            .handle_shutdown(Instant::now(), reason, timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_searched_for_at_most_once_per_period() {
        let now = Instant::now();
        assert_eq!(orphan_search_due(None), None, "the first search is at once");
        let next = orphan_search_due(Some(now));
        assert_eq!(next, Some(now + ORPHAN_SEARCH_PERIOD));
        assert!(next.is_some_and(|at| at > now + Duration::from_millis(50)));
    }
}
