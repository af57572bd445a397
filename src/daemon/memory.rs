//! The daemon's side of the memory watch: when to sample, taking the samples, feeding them to
//! the supervisor (per-unit limits) and to the host policy.
//!
//! The sampling timer only exists while it has something to do: a running unit with a limit,
//! or host thresholds in `svcd.toml` and some unit running. An idle svcd without limits never
//! wakes for memory.
//!
//! `status` and `list` answer from the last sample of each unit while it is fresh (younger than
//! one sampling interval), and sample on demand only the units asked for that have none: a
//! `list` of 1,000 units costs one walk of their processes per interval at most, however often
//! it is asked, and a `status` of one unit never walks the others'. A sample older than the
//! interval but younger than [`ANSWER_FROM_SAMPLES_FOR`] still answers, with its age, and is
//! taken again right after the answer: the client does not wait for a reading of /proc and
//! the cgroup, and the next request finds it fresh (#11: `svc status` after an idle second).
//!
//! The host policy's steps for the units (`memory.on_pressure`) and the units' pressure FIFOs
//! are in `host_steps`; the PSI trigger on a unit's own cgroup v2, which tells it of the stalls
//! there, in `unit_psi`.

mod host_steps;
mod unit_psi;

use super::Daemon;
use super::report::Clocks;
use crate::control::HostInfo;
use crate::memory::{
    Candidate, GroupMemory, GroupSampler, HostMemory, HostPolicy, MemorySettings, cgroup,
    hostladder, ladder,
};
use crate::process::CgroupFd;
use crate::supervisor::State;
use crate::supervisor::UnitId;
use crate::unit::Unit;
use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub struct MemoryWatch {
    pub settings: MemorySettings,
    policy: HostPolicy,
    /// Buffers kept between samples.
    sampler: GroupSampler,
    /// When the next sample is due, while sampling is needed.
    next_sample: Option<Instant>,
    /// The host policy's last warning, for `status`: (when, what).
    last_event: Option<(Instant, String)>,
    /// The host's last reading and when it was taken: `status` shows it while it is younger
    /// than the sampling interval, as it shows the units' samples.
    host_last: std::cell::Cell<Option<(Instant, HostMemory)>>,
    /// svcd's own resident set and when it was read, shown as fresh as the host's reading.
    own_rss_last: std::cell::Cell<Option<(Instant, Option<u64>)>>,
    /// The readings a request was answered from while older than one interval, taken again
    /// once it is answered (see [`MemoryWatch::refresh`]): units' samples (unit, main pid),
    /// units' cgroups, and the host's and svcd's own.
    refresh_samples: Vec<(UnitId, u32)>,
    refresh_cgroups: Vec<UnitId>,
    refresh_host: std::cell::Cell<bool>,
    /// The last memory of each sampled group (by its leader, the unit's main pid), and when it
    /// was taken: what `status` and `list` show while it is fresh.
    last: HashMap<u32, (Instant, GroupMemory)>,
    /// Size of `last` after its last pruning: it is pruned again once it has doubled, so that
    /// pruning costs O(1) per entry added, and groups that are gone do not pile up.
    pruned_at: usize,
    /// svcd's cgroup for its units, where it could make one (`memory.cgroups`).
    tree: Option<cgroup::Tree>,
    /// The cgroup of each unit that has run in one, with the OOM kills counted there when its
    /// current run began.
    unit_cgroups: HashMap<UnitId, (cgroup::UnitCgroup, OomCount)>,
    /// The last reading of each unit's cgroup, and when it was taken.
    cgroup_last: HashMap<UnitId, (Instant, cgroup::CgroupMemory)>,
    /// Where a unit's limit crossing is announced (its cgroup's usage threshold fired).
    crossings: Option<tokio::sync::mpsc::UnboundedSender<UnitId>>,
    /// The task waiting on each unit's threshold, aborted when the unit spawns again or goes.
    watchers: HashMap<UnitId, tokio::task::JoinHandle<()>>,
    /// Units whose cgroup said they crossed their limit, while their samples say they are
    /// still over it: sampled every [`CROSSING_FOLLOW_UP`].
    hot: Vec<(UnitId, u32)>,
    /// Where the units' pressure FIFOs go (`memory.on_limit = ["notify", ...]`): svcd's
    /// state directory, once its cgroups are made.
    state_dir: Option<std::path::PathBuf>,
    /// Each unit with ladder steps before its limit: what takes them, and what they did.
    told: HashMap<UnitId, Told>,
    /// The removal of a stopped unit's cgroup v2, retried while its last processes exit.
    removals: HashMap<UnitId, tokio::task::JoinHandle<()>>,
    /// The pressure FIFO of each unit's current run, one whichever key asked for it
    /// (`memory.on_pressure` or `memory.on_limit` with `notify`).
    fifos: HashMap<UnitId, Arc<ladder::PressureFifo>>,
    /// What the host policy's steps (`memory.on_pressure`) did in each unit's current run.
    host_steps: HashMap<UnitId, hostladder::SharedHostSteps>,
    /// cgroup v2: the PSI trigger on each told unit's `memory.pressure` for its run, and what it
    /// told (see `unit_psi`).
    stalls: HashMap<UnitId, unit_psi::Stall>,
}

/// The ladder steps of a unit's run (`memory.on_limit` with `notify` or `reclaim`).
#[derive(Debug)]
struct Told {
    /// The task that takes the steps at the unit's threshold.
    task: tokio::task::JoinHandle<()>,
    /// What they did in this run.
    steps: ladder::SharedSteps,
    /// How svcd wakes `task` itself.
    poke: Poke,
}

/// The eventfd that wakes a unit's ladder task, which svcd signals when a reading of the
/// unit's cgroup finds its use crossed `threshold` (either way).
#[derive(Debug)]
struct Poke {
    event: OwnedFd,
    threshold: u64,
    /// Whether the last reading was over `threshold`.
    above: bool,
}

/// Samples under its limits in a row after which a unit that crossed its threshold is sampled
/// at the interval again.
const HOT_UNDER_SAMPLES: u32 = 20;

/// The kernel's OOM kills in a unit's cgroup, as far as svcd has told of them.
#[derive(Debug, Clone, Copy, Default)]
struct OomCount {
    /// The count svcd last told of (or found when the run began).
    seen: u64,
    /// A sample found more: told at the next sample if the main process still runs then (a
    /// worker was killed), else by the main process's exit (it was).
    pending: bool,
}

/// How long a reading older than one sampling interval still answers `status` and `list`
/// (and is taken again after the answer); an older one is taken again before it. Where the
/// interval is longer, a reading is fresh for the interval.
pub const ANSWER_FROM_SAMPLES_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// `age` in whole milliseconds, for `status`.
pub fn millis(age: std::time::Duration) -> u64 {
    u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
}

/// What a reading is good for, by its age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Age {
    /// Younger than one sampling interval: it answers.
    Fresh,
    /// Older, but younger than [`ANSWER_FROM_SAMPLES_FOR`]: it answers, and is taken again after.
    Answers,
    /// Too old to answer: taken again first.
    Old,
}

/// A unit's `memory.events` announce a crossing at most this often (cgroup v2).
const V2_CROSSING_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the removal of a stopped unit's cgroup v2 is retried while its processes exit.
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// After a crossing, the next sample comes this soon (or at the interval, if sooner): the
/// second sample over the limit that the restart needs.
const CROSSING_FOLLOW_UP: std::time::Duration = std::time::Duration::from_millis(100);

impl MemoryWatch {
    pub fn new(settings: MemorySettings) -> MemoryWatch {
        MemoryWatch {
            policy: HostPolicy::new(settings.clone()),
            settings,
            sampler: GroupSampler::default(),
            next_sample: None,
            last_event: None,
            host_last: std::cell::Cell::new(None),
            refresh_samples: Vec::new(),
            refresh_cgroups: Vec::new(),
            refresh_host: std::cell::Cell::new(false),
            own_rss_last: std::cell::Cell::new(None),
            last: HashMap::new(),
            pruned_at: 0,
            tree: None,
            unit_cgroups: HashMap::new(),
            cgroup_last: HashMap::new(),
            crossings: None,
            watchers: HashMap::new(),
            hot: Vec::new(),
            state_dir: None,
            told: HashMap::new(),
            removals: HashMap::new(),
            fifos: HashMap::new(),
            host_steps: HashMap::new(),
            stalls: HashMap::new(),
        }
    }

    /// The host's memory for a request at `now`: the last reading while it may answer (see
    /// [`MemoryWatch::age`]), else a new one (#11: `status` answers from samples; reading
    /// meminfo and PSI anew was a sixth of svcd's work per `status`).
    pub fn host(&self, now: Instant) -> HostMemory {
        self.kept(&self.host_last, now, HostMemory::read)
    }

    /// When the host's reading that `status` shows was taken.
    pub fn host_taken(&self) -> Option<Instant> {
        self.host_last.get().map(|(at, _)| at)
    }

    /// svcd's resident set for a request at `now`, as [`MemoryWatch::host`] (four system
    /// calls fewer for each `status`).
    pub fn own_rss(&self, now: Instant) -> Option<u64> {
        self.kept(&self.own_rss_last, now, crate::proc::own_rss)
    }

    /// The reading in `last` while it may answer at `now` (taken again after the answer where
    /// it is older than one interval), else `read`'s, kept in `last`.
    fn kept<T: Copy>(
        &self,
        last: &std::cell::Cell<Option<(Instant, T)>>,
        now: Instant,
        read: impl FnOnce() -> T,
    ) -> T {
        match last.get().map(|(at, value)| (self.age(at, now), value)) {
            Some((Age::Fresh, value)) => value,
            Some((Age::Answers, value)) => {
                self.refresh_host.set(true);
                value
            }
            _ => {
                let value = read();
                last.set(Some((now, value)));
                value
            }
        }
    }

    /// What a reading taken at `at` is good for at `now`.
    fn age(&self, at: Instant, now: Instant) -> Age {
        let age = now.saturating_duration_since(at);
        if age < self.settings.interval {
            Age::Fresh
        } else if age < ANSWER_FROM_SAMPLES_FOR {
            Age::Answers
        } else {
            Age::Old
        }
    }

    /// Whether readings a request was answered from are to be taken again.
    pub fn refresh_due(&self) -> bool {
        !self.refresh_samples.is_empty()
            || !self.refresh_cgroups.is_empty()
            || self.refresh_host.get()
    }

    /// Takes again the readings requests were answered from while older than one interval
    /// (svcd calls it once their answers are on their way).
    pub fn refresh(&mut self, now: Instant) {
        let mut units = std::mem::take(&mut self.refresh_samples);
        units.sort_unstable();
        units.dedup();
        if !units.is_empty() {
            self.sample(now, &units);
        }
        let mut cgroups = std::mem::take(&mut self.refresh_cgroups);
        cgroups.sort_unstable();
        cgroups.dedup();
        for id in cgroups {
            self.cgroup_memory(id, now);
        }
        if self.refresh_host.replace(false) {
            self.host_last.set(Some((now, HostMemory::read())));
            self.own_rss_last.set(Some((now, crate::proc::own_rss())));
        }
    }

    /// How old the memory figures `status` shows of unit `id` (main pid `pgid`) are at `now`:
    /// its cgroup's reading where it has one, else its sample.
    pub fn memory_age(&self, id: UnitId, pgid: u32, now: Instant) -> Option<std::time::Duration> {
        let at = match self.cgroup_last.get(&id) {
            Some((at, _)) => *at,
            None => self.last.get(&pgid)?.0,
        };
        Some(now.saturating_duration_since(at))
    }

    /// Where [`MemoryWatch::cgroup_for_spawn`]'s threshold watchers announce crossings.
    pub fn set_crossings(&mut self, sender: tokio::sync::mpsc::UnboundedSender<UnitId>) {
        self.crossings = Some(sender);
    }

    /// Watches unit `id`'s cgroup for its memory use crossing `max`: the kernel signals an
    /// eventfd, a task waiting on it announces the unit. Nothing runs until then.
    fn watch_crossing(&mut self, id: UnitId, cg: &cgroup::UnitCgroup, max: u64) {
        if let Some(old) = self.watchers.remove(&id) {
            old.abort();
        }
        let Some(sender) = self.crossings.clone() else {
            return;
        };
        if cg.is_v2() {
            self.watch_events(id, cg, sender);
            return;
        }
        // Armed off the loop, after the spawn: registering takes the kernel a grace period.
        let cg = cg.clone();
        let task = tokio::spawn(async move {
            let armed = match cgroup::eventfd() {
                Ok(event) => ladder::arm_usage_event(&cg, &event, max)
                    .await
                    .map(|()| event),
                Err(why) => Err(why),
            };
            let event = match armed {
                Ok(event) => event,
                Err(why) => {
                    tracing::debug!("no memory threshold event ({why}): sampling only");
                    return;
                }
            };
            // A use already over the limit when armed made no event.
            if cg.usage().is_some_and(|usage| usage > max) && sender.send(id).is_err() {
                return;
            }
            ladder::each_event(event, move || sender.send(id).is_ok()).await;
        });
        self.watchers.insert(id, task);
    }

    /// cgroup v2: `memory.events` wakes a task on every change of its counters; a new `high`
    /// (the use went over the unit's `memory.max`) or `max` (the kernel's limit) announces a
    /// crossing, at most once per [`V2_CROSSING_QUIET`]: a unit held at `memory.high` makes the
    /// kernel count `high` events for as long as it stays there.
    fn watch_events(
        &mut self,
        id: UnitId,
        cg: &cgroup::UnitCgroup,
        sender: tokio::sync::mpsc::UnboundedSender<UnitId>,
    ) {
        let mut last = crate::memory::cgroup2::Events::read(cg.dir()).unwrap_or_default();
        let mut announced: Option<Instant> = None;
        let task = tokio::spawn(crate::memory::cgroup2::each_event_change(
            cg.dir().to_path_buf(),
            move |events| {
                let crossed = events.crossed_since(&last);
                last = events;
                let quiet = announced.is_none_or(|at| at.elapsed() >= V2_CROSSING_QUIET);
                if crossed && quiet {
                    announced = Some(Instant::now());
                    return sender.send(id).is_ok();
                }
                true
            },
        ));
        self.watchers.insert(id, task);
    }

    /// At a reading of unit `id`'s cgroup: its use read, and its ladder task woken where the
    /// use crossed its threshold either way since the last reading. On cgroup v2, which has no
    /// usage threshold, this is what tells the unit; on v1 it makes sure of what the kernel's
    /// threshold does (see [`ladder::tell_on_crossing`]).
    fn poke_ladder(&mut self, id: UnitId) {
        let Some(told) = self.told.get_mut(&id) else {
            return;
        };
        let Some((cg, _)) = self.unit_cgroups.get(&id) else {
            return;
        };
        let poke = &mut told.poke;
        let above = cg.usage().is_some_and(|usage| usage >= poke.threshold);
        if above != poke.above {
            ladder::wake(&poke.event);
        }
        poke.above = above;
    }

    /// Unit `id`'s memory crossed its threshold: it is sampled every [`CROSSING_FOLLOW_UP`]
    /// from now on while it stays over its limit (see [`MemoryWatch::follow_up`]).
    pub fn crossed(&mut self, id: UnitId) {
        match self.hot.iter_mut().find(|(hot, _)| *hot == id) {
            Some((_, under)) => *under = 0,
            None => self.hot.push((id, 0)),
        }
    }

    /// After a sample at `now` in which `over` says which units are over a limit: the next
    /// sample comes soon while a unit that crossed its threshold stays over (its restart needs
    /// a second sample over); units found under on [`HOT_UNDER_SAMPLES`] samples in a row (the
    /// crossing may come while the memory is still being touched) are let go.
    fn follow_up(&mut self, now: Instant, over: impl Fn(UnitId) -> bool) {
        self.hot.retain_mut(|(id, under)| {
            *under = if over(*id) { 0 } else { *under + 1 };
            *under < HOT_UNDER_SAMPLES
        });
        if !self.hot.is_empty() {
            self.next_sample = Some(now + CROSSING_FOLLOW_UP.min(self.settings.interval));
        }
    }

    /// Makes svcd's cgroup for its units (state dir `state_dir`) where `memory.cgroups` allows
    /// and the host has the memory controller; says in svcd's log which it is.
    pub fn enable_cgroups(&mut self, state_dir: &std::path::Path) {
        // The FIFOs of `memory.on_pressure` need no cgroup.
        self.state_dir = Some(state_dir.to_path_buf());
        if self.settings.cgroups == cgroup::Setting::Off {
            return;
        }
        match cgroup::Tree::create(state_dir) {
            Ok(tree) => {
                tracing::info!(cgroup = %tree.base().display(), "each unit runs in a memory cgroup of its own");
                self.tree = Some(tree);
            }
            Err(why) => tracing::info!(
                "units run without cgroups ({why}); their memory is sampled from /proc"
            ),
        }
    }

    /// For a spawn of `unit` (id `id`): its cgroup for the child to be born in or join, with
    /// the kernel limits of the unit applied; `None` without cgroups, or (with a warning)
    /// when the unit's cgroup cannot be made: it then runs without one.
    pub fn cgroup_for_spawn(&mut self, id: UnitId, unit: &Unit) -> Option<CgroupFd> {
        if let Some(removal) = self.removals.remove(&id) {
            removal.abort();
        }
        let tree = self.tree.as_ref()?;
        // The last run's reading is not this one's.
        self.cgroup_last.remove(&id);
        let made = tree
            .unit(&unit.name, unit.memory.max, unit.memory.swap_max)
            .and_then(|cg| Ok((cg.procs_for_join()?, cg)));
        match made {
            Ok((procs, cg)) => {
                self.watch_cgroup(id, unit, cg, false);
                Some(procs)
            }
            Err(why) => {
                tracing::warn!(unit = %unit.name, "runs without a cgroup: {why}");
                self.unit_cgroups.remove(&id);
                None
            }
        }
    }

    /// For a hook command of unit `id` (`exec_start_pre`, `exec_start_post`, `exec_stop`,
    /// not checks nor `reload.exec`): the unit's cgroup to join, so that what a hook leaves running is the
    /// unit's and ends with it; made now where the unit has none yet (a first
    /// `exec_start_pre`). `None` without cgroups.
    pub fn cgroup_for_hook(&mut self, id: UnitId, unit: &Unit) -> Option<CgroupFd> {
        let Some((cg, _)) = self.unit_cgroups.get(&id) else {
            return self.cgroup_for_spawn(id, unit);
        };
        match cg.procs_for_join() {
            Ok(procs) => Some(procs),
            Err(why) => {
                tracing::warn!(unit = %unit.name, "a hook command runs outside the unit's cgroup: {why}");
                None
            }
        }
    }

    /// For a unit with `notify` or `reclaim` in `memory.on_limit` (id `id`, cgroup `cg`,
    /// limit `max`): its pressure FIFO made anew (`notify`; `adopted`: the one its running
    /// process was given, opened again), and a task that takes those steps
    /// when the cgroup's use crosses [`ladder::NOTIFY_PERCENT`] of `max`. Where that fails,
    /// the unit runs without them (a warning says why).
    fn watch_for_notify(
        &mut self,
        id: UnitId,
        unit: &Unit,
        cg: &cgroup::UnitCgroup,
        max: u64,
        adopted: bool,
    ) {
        if let Some(told) = self.told.remove(&id) {
            told.task.abort();
        }
        let on_limit = unit.memory.on_limit;
        if !on_limit.notify && !on_limit.reclaim {
            return;
        }
        let fifo = if on_limit.notify {
            self.fifo_for(id, unit, adopted)
        } else {
            None
        };
        // Signalled by svcd itself (see `poke_ladder`) and, on v1, by the kernel: a second
        // descriptor of it for svcd.
        let threshold = ladder::notify_threshold(max);
        let made = cgroup::eventfd().and_then(|event| {
            let poke = event
                .try_clone()
                .map_err(|e| format!("cannot duplicate an eventfd: {e}"))?;
            Ok((event, poke))
        });
        let (event, poke) = match made {
            Ok(made) => made,
            Err(why) => {
                tracing::warn!(unit = %unit.name, "no memory.on_limit steps before the limit: {why}");
                return;
            }
        };
        let poke = Poke {
            event: poke,
            threshold,
            above: false,
        };
        let steps = ladder::SharedSteps::default();
        let task = tokio::spawn(ladder::tell_on_crossing(
            unit.name.clone(),
            event,
            cg.clone(),
            max,
            fifo,
            on_limit.reclaim,
            steps.clone(),
        ));
        self.told.insert(id, Told { task, steps, poke });
    }

    /// What the ladder did in unit `id`'s current run, if it took any step.
    pub fn ladder_steps(&self, id: UnitId) -> Option<ladder::Steps> {
        let mut steps = self
            .told
            .get(&id)
            .map(|told| ladder::lock(&told.steps).clone())
            .unwrap_or_default();
        self.add_stall_steps(id, &mut steps);
        (steps != ladder::Steps::default()).then_some(steps)
    }

    /// `unit` (id `id`) as spawned: with `MEMORY_PRESSURE_WATCH` naming its FIFO where it is
    /// told of its memory; `None` where it is not (spawned as it is).
    pub fn with_pressure_watch(&self, id: UnitId, unit: &Unit) -> Option<Unit> {
        let fifo = self.fifos.get(&id)?;
        let mut watched = unit.clone();
        watched.env.insert(
            ladder::WATCH_ENV.to_string(),
            fifo.path().to_string_lossy().into_owned(),
        );
        Some(watched)
    }

    /// Whether unit `id` runs in a cgroup (`memory_mode` of status).
    pub fn in_cgroup(&self, id: UnitId) -> bool {
        self.unit_cgroups.contains_key(&id)
    }

    /// Where unit `id` runs in a cgroup: whether a cgroup v2 (`memory_mode` of status).
    pub fn cgroup_v2(&self, id: UnitId) -> Option<bool> {
        self.unit_cgroups.get(&id).map(|(cg, _)| cg.is_v2())
    }

    /// Unit `id` was stopped: on cgroup v2 its cgroup goes, what is left in it killed at once
    /// (`cgroup.kill`), and removed as soon as the kernel has let its last process go (retried
    /// for [`REMOVAL_WAIT`]; a next start makes it anew and stops the retries).
    pub fn release_cgroup(&mut self, id: UnitId) {
        if !self.unit_cgroups.get(&id).is_some_and(|(cg, _)| cg.is_v2()) {
            return;
        }
        if let Some(task) = self.watchers.remove(&id) {
            task.abort();
        }
        if let Some(told) = self.told.remove(&id) {
            told.task.abort();
        }
        self.end_stalls(id);
        self.cgroup_last.remove(&id);
        let Some((cg, _)) = self.unit_cgroups.remove(&id) else {
            return;
        };
        cg.signal_all(9);
        let dir = cg.dir().to_path_buf();
        let task = tokio::spawn(async move {
            let began = Instant::now();
            while std::fs::remove_dir(&dir).is_err() && began.elapsed() < REMOVAL_WAIT {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
        if let Some(old) = self.removals.insert(id, task) {
            old.abort();
        }
    }

    /// The unit's memory from its cgroup, where it has one, read now (and kept for
    /// [`MemoryWatch::cgroup_memory_of`]).
    pub fn cgroup_memory(&mut self, id: UnitId, now: Instant) -> Option<cgroup::CgroupMemory> {
        let counted = self.unit_cgroups.get(&id)?.0.memory()?;
        self.cgroup_last.insert(id, (now, counted));
        self.poke_ladder(id);
        Some(counted)
    }

    /// [`MemoryWatch::cgroup_memory`] for `status` and `list`: the last reading while it is
    /// fresh (younger than one sampling interval), else read now. A `list` of 1,000 units
    /// would otherwise read 1,000 `memory.stat` files (25 ms of svcd's CPU) every time. A
    /// reading of nothing is not kept: it was taken between a spawn and its `exec`, when the
    /// new process had not touched a page of its own yet, and would show 0 for a second.
    pub fn cgroup_memory_of(&mut self, id: UnitId, now: Instant) -> Option<cgroup::CgroupMemory> {
        if !self.unit_cgroups.contains_key(&id) {
            return None;
        }
        let kept = self
            .cgroup_last
            .get(&id)
            .filter(|(_, counted)| counted.rss > 0)
            .map(|(at, counted)| (self.age(*at, now), *counted));
        match kept {
            Some((Age::Fresh, counted)) => Some(counted),
            Some((Age::Answers, counted)) => {
                self.refresh_cgroups.push(id);
                Some(counted)
            }
            _ => self.cgroup_memory(id, now),
        }
    }

    /// Sends `signal` to every process in unit `id`'s cgroup; how many got it.
    pub fn signal_cgroup(&self, id: UnitId, signal: i32) -> usize {
        self.unit_cgroups
            .get(&id)
            .map_or(0, |(cg, _)| cg.signal_all(signal))
    }

    /// The kernel's OOM kills in unit `id`'s cgroup not told of yet, now told (its main
    /// process exited: they are its exit's reason, or its workers').
    pub fn new_oom_kills(&mut self, id: UnitId) -> u64 {
        let Some((cg, count)) = self.unit_cgroups.get_mut(&id) else {
            return 0;
        };
        let now = cg.oom_kills();
        let new = now.saturating_sub(count.seen);
        *count = OomCount {
            seen: now,
            pending: false,
        };
        new
    }

    /// At a sample, its main process running: the OOM kills in unit `id`'s cgroup that were
    /// already there at the previous sample (so not its main process's, whose exit would have
    /// come in between), now told; 0 until then.
    pub fn worker_oom_kills(&mut self, id: UnitId) -> u64 {
        let Some((cg, count)) = self.unit_cgroups.get_mut(&id) else {
            return 0;
        };
        let now = cg.oom_kills();
        if now <= count.seen {
            return 0;
        }
        if !count.pending {
            count.pending = true;
            return 0;
        }
        let new = now - count.seen;
        *count = OomCount {
            seen: now,
            pending: false,
        };
        new
    }

    /// Unit `id` (named `name`) is gone from the unit files: its cgroup too, once empty.
    pub fn forget_unit(&mut self, id: UnitId, name: &str) {
        self.cgroup_last.remove(&id);
        self.fifos.remove(&id);
        self.host_steps.remove(&id);
        self.stalls.remove(&id);
        self.policy.forget(id);
        if let Some(task) = self.watchers.remove(&id) {
            task.abort();
        }
        if let Some(told) = self.told.remove(&id) {
            told.task.abort();
        }
        if self.unit_cgroups.remove(&id).is_some()
            && let Some(tree) = &self.tree
        {
            tree.remove_unit(name);
        }
    }

    /// svcd's exit: the cgroups it made, those that are empty.
    pub fn remove_cgroups(&mut self) {
        for (_, task) in self.watchers.drain() {
            task.abort();
        }
        for (_, told) in self.told.drain() {
            told.task.abort();
        }
        self.stalls.clear();
        if let Some(tree) = self.tree.take() {
            tree.remove_all();
        }
        self.unit_cgroups.clear();
    }

    /// Keeps `found`, the sample of `pgids` taken at `now` (a group absent from it has no
    /// process left: 0 bytes).
    fn remember(&mut self, now: Instant, pgids: &[u32], found: &HashMap<u32, GroupMemory>) {
        for pgid in pgids {
            let memory = found.get(pgid).copied().unwrap_or_default();
            self.last.insert(*pgid, (now, memory));
        }
        if self.last.len() > 2 * self.pruned_at.max(16) {
            let keep = ANSWER_FROM_SAMPLES_FOR.max(self.settings.interval);
            self.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < keep);
            self.pruned_at = self.last.len();
        }
    }

    /// The memory of `units` (unit, main pid: the leader of its group) for a request at `now`:
    /// from their last sample where it may answer (taken again after the answer where it is
    /// older than one interval), else sampled now (only those).
    pub fn memory_of(
        &mut self,
        now: Instant,
        units: &[(UnitId, u32)],
    ) -> HashMap<u32, GroupMemory> {
        let mut missing = Vec::new();
        for &(id, pgid) in units {
            match self.last.get(&pgid).map(|(at, _)| self.age(*at, now)) {
                Some(Age::Fresh) => {}
                Some(Age::Answers) => self.refresh_samples.push((id, pgid)),
                _ => missing.push((id, pgid)),
            }
        }
        if !missing.is_empty() {
            self.sample(now, &missing);
        }
        units
            .iter()
            .filter_map(|(_, pgid)| Some((*pgid, self.last.get(pgid)?.1)))
            .collect()
    }

    /// Samples the groups of `units` (unit, main pid) now and keeps the sample: of a unit whose
    /// cgroup counts its memory, only the CPU time.
    fn sample(&mut self, now: Instant, units: &[(UnitId, u32)]) -> HashMap<u32, GroupMemory> {
        let pgids: Vec<u32> = units.iter().map(|(_, pgid)| *pgid).collect();
        let in_cgroups: HashSet<u32> = units
            .iter()
            .filter(|(id, _)| self.in_cgroup(*id))
            .map(|(_, pgid)| *pgid)
            .collect();
        let found = self
            .sampler
            .sample_cpu_of(&pgids, |pgid| in_cgroups.contains(&pgid));
        self.remember(now, &pgids, &found);
        found
    }

    /// Whether units run in cgroups of svcd's (`memory.cgroups` and the host allow it).
    pub fn makes_cgroups(&self) -> bool {
        self.tree.is_some()
    }

    /// Unit `id` runs in cgroup `cg` from now on: its kernel limits watched (the threshold at
    /// `memory.max` and the ladder's, `adopted`: a run a previous svcd spawned, whose FIFO is
    /// taken back rather than made), and the OOM kills counted there so far its baseline.
    fn watch_cgroup(&mut self, id: UnitId, unit: &Unit, cg: cgroup::UnitCgroup, adopted: bool) {
        if let Some(max) = unit.memory.max {
            self.watch_crossing(id, &cg, max);
            self.watch_for_notify(id, unit, &cg, max, adopted);
        }
        // After the FIFO is made (or opened again), whichever key asked for it.
        self.watch_stalls(id, unit, &cg);
        let seen = cg.oom_kills();
        let count = OomCount {
            seen,
            pending: false,
        };
        self.unit_cgroups.insert(id, (cg, count));
    }

    /// Takes back the cgroup of unit `id`, adopted as process `pid` from a previous svcd (see
    /// [`cgroup::Tree::take_back`]): from now on it is read, signalled and watched through its
    /// cgroup, and told through its FIFO, as if this svcd had spawned it. Whether it was
    /// (not: it stays sampled from /proc, as without cgroups).
    pub fn take_back_cgroup(&mut self, id: UnitId, unit: &Unit, pid: u32) -> bool {
        let Some(tree) = &self.tree else {
            return false;
        };
        match tree.take_back(&unit.name, pid, unit.memory.max, unit.memory.swap_max) {
            Ok(Some(cg)) => {
                self.cgroup_last.remove(&id);
                self.watch_cgroup(id, unit, cg, true);
                true
            }
            Ok(None) => false,
            Err(why) => {
                tracing::warn!(unit = %unit.name, pid, "its cgroup is not taken back: {why}");
                false
            }
        }
    }

    /// The descriptor of unit `id`'s pressure FIFO, while it has one (`notify`).
    pub fn pressure_fifo_fd(&self, id: UnitId) -> Option<std::os::fd::RawFd> {
        Some(self.fifos.get(&id)?.raw_fd())
    }
}

impl Default for MemoryWatch {
    fn default() -> Self {
        MemoryWatch::new(MemorySettings::default())
    }
}

impl Daemon {
    /// When the next memory sample is due; `None` while nothing needs one.
    ///
    /// Asked on every turn of the event loop: it looks only at the running units (the pid
    /// table), and at none of them when the host is watched.
    pub(super) fn memory_deadline(&mut self, now: Instant) -> Option<Instant> {
        let needed = if self.memory.settings.watches_host() {
            !self.pids.is_empty()
        } else {
            self.pids
                .values()
                .any(|&id| self.units.get(id).is_some_and(|u| u.memory.has_limit()))
        };
        if !needed {
            self.memory.next_sample = None;
            return None;
        }
        let interval = self.memory.settings.interval;
        Some(
            *self
                .memory
                .next_sample
                .get_or_insert_with(|| now + interval),
        )
    }

    /// Unit `id`'s cgroup says its memory use crossed `memory.max`: sample now (a first sample
    /// over the limit) and again [`CROSSING_FOLLOW_UP`] later (the second, which restarts it
    /// if it is still over), instead of up to two intervals later.
    pub(super) fn memory_crossed(&mut self, id: UnitId) {
        if let Some(unit) = self.units.get(id) {
            tracing::debug!(unit = %unit.name, "memory use crossed memory.max: sampling now");
        }
        self.memory.crossed(id);
        self.sample_memory();
    }

    /// Samples every running unit (and the host, if watched) and acts on what it finds.
    pub(super) fn sample_memory(&mut self) {
        let now = Instant::now();
        self.memory.next_sample = Some(now + self.memory.settings.interval);
        let watches_host = self.memory.settings.watches_host();
        let running: Vec<(usize, u32)> = (0..self.units.len())
            .filter_map(|id| self.supervisor.status(id).pid.map(|pid| (id, pid)))
            .filter(|(id, _)| watches_host || self.units[*id].memory.has_limit())
            .collect();
        let samples = self.memory.sample(now, &running);
        let mut candidates = Vec::new();
        let mut over = Vec::new();
        for &(id, pid) in &running {
            let mut sample = samples.get(&pid).copied().unwrap_or_default();
            if let Some(counted) = self.memory.cgroup_memory(id, now) {
                sample.rss = counted.rss;
                sample.swap = counted.swap;
                // A worker the kernel killed at the limit, the main process alive.
                self.note_oom_kills(id, None);
            }
            if self.units[id].memory.has_limit() {
                self.supervisor
                    .handle_memory_sample(now, id, sample.rss, sample.swap);
                let limits = &self.units[id].memory;
                if limits.max.is_some_and(|max| sample.rss > max)
                    || limits.swap_max.is_some_and(|max| sample.swap > max)
                {
                    over.push(id);
                }
            }
            let steps = self.units[id].memory.on_pressure;
            if steps.is_any() && self.supervisor.status(id).state == State::Running {
                candidates.push(Candidate {
                    id,
                    rss: sample.rss,
                    swap: sample.swap,
                    steps,
                });
            }
        }
        self.memory.follow_up(now, |id| over.contains(&id));
        if !watches_host {
            return;
        }
        let host = HostMemory::read();
        self.memory.host_last.set(Some((now, host)));
        let mut verdict = self.memory.policy.handle_sample(now, &host, &candidates);
        if let Some(warning) = verdict.warning.take() {
            tracing::warn!("{warning}");
            self.memory.last_event = Some((now, warning));
        }
        self.take_host_steps(now, &verdict, &candidates);
        if let Some((id, reason)) = verdict.restart {
            tracing::warn!(unit = %self.units[id].name, "restarting: {reason}");
            self.supervisor.handle_restart_for(now, id, &reason);
        }
    }

    /// The host line of `status`.
    pub(super) fn host_info(&self, clocks: Clocks) -> HostInfo {
        let host = self.memory.host(clocks.now);
        HostInfo {
            mem_total: host.mem_total,
            mem_used: host.mem_used(),
            swap_total: host.swap_total,
            swap_used: host.swap_used(),
            pressure_some_avg10: host.psi_some_avg10,
            pressure_full_avg10: host.psi_full_avg10,
            level: self.memory.policy.level().as_str().to_string(),
            last_event: self
                .memory
                .last_event
                .as_ref()
                .map(|(at, what)| format!("{}: {what}", clocks.format(*at))),
            svcd_rss: self.memory.own_rss(clocks.now),
            age_ms: self
                .memory
                .host_taken()
                .map(|at| millis(clocks.now.saturating_duration_since(at))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    /// A `status` or `list` within one sampling interval of the last sample answers from it,
    /// and walks no process (#11: a fresh /proc walk per request cost 23.5 ms of svcd's CPU per
    /// `list` of 1,000 units).
    #[test]
    fn status_shows_the_hosts_last_reading_while_it_is_fresh() {
        let settings = MemorySettings {
            interval: Duration::from_secs(10),
            ..MemorySettings::default()
        };
        let watch = MemoryWatch::new(settings);
        let taken = |watch: &MemoryWatch| watch.host_last.get().map(|(at, _)| at);
        let start = Instant::now();
        let first = watch.host(start);
        assert!(first.mem_total > 0);
        assert_eq!(taken(&watch), Some(start));
        // Within the interval: the same reading, not read again.
        assert_eq!(watch.host(start + Duration::from_secs(9)), first);
        assert_eq!(taken(&watch), Some(start));
        // Past it: read anew.
        let later = start + Duration::from_secs(10);
        watch.host(later);
        assert_eq!(taken(&watch), Some(later));
        // svcd's own RSS alike.
        let own = |watch: &MemoryWatch| watch.own_rss_last.get().map(|(at, _)| at);
        assert!(watch.own_rss(start).is_some_and(|rss| rss > 0));
        watch.own_rss(start + Duration::from_secs(9));
        assert_eq!(own(&watch), Some(start));
        watch.own_rss(later);
        assert_eq!(own(&watch), Some(later));
    }

    /// A watch sampling every `interval`, and a process in a group of its own to sample.
    fn watch_and_group(interval: Duration) -> (MemoryWatch, std::process::Child) {
        let settings = MemorySettings {
            interval,
            ..MemorySettings::default()
        };
        let child = std::process::Command::new("sleep")
            .arg("100")
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        (MemoryWatch::new(settings), child)
    }

    #[test]
    fn requests_answer_from_a_fresh_sample_and_sample_only_what_is_missing() {
        let (mut watch, mut child) = watch_and_group(Duration::from_secs(3600));
        let pgid = child.id();
        let now = Instant::now();
        let first = watch.memory_of(now, &[(0, pgid)]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(first.get(&pgid).is_some_and(|m| m.rss > 0), "{first:?}");
        // The process is gone, but the sample is fresh: the answer comes from it.
        let later = watch.memory_of(now + Duration::from_secs(1), &[(0, pgid)]);
        assert_eq!(later.get(&pgid), first.get(&pgid));
        // Once stale, the group is sampled again: it has no process left.
        let stale = watch.memory_of(now + Duration::from_secs(3600), &[(0, pgid)]);
        assert_eq!(stale.get(&pgid).map(|m| m.rss), Some(0));
    }

    /// A reading older than the interval still answers, and is taken again after the answer
    /// (#11: the client does not wait for /proc after an idle second); one older than
    /// [`ANSWER_FROM_SAMPLES_FOR`] is taken again before it.
    #[test]
    fn a_reading_older_than_the_interval_answers_and_is_taken_again_after() {
        let (mut watch, mut child) = watch_and_group(Duration::from_secs(1));
        let pgid = child.id();
        let now = Instant::now();
        let first = watch.memory_of(now, &[(0, pgid)]);
        let host = watch.host(now);
        assert!(!watch.refresh_due());
        let _ = child.kill();
        let _ = child.wait();
        // Two seconds on: the answer is the old sample, and its age says so.
        let later = now + Duration::from_secs(2);
        assert_eq!(watch.memory_of(later, &[(0, pgid)]), first);
        assert_eq!(watch.host(later), host);
        assert_eq!(
            watch.memory_age(0, pgid, later),
            Some(Duration::from_secs(2))
        );
        assert!(watch.refresh_due());
        // Taken again once answered: the group has no process left now.
        watch.refresh(later);
        assert!(!watch.refresh_due());
        assert_eq!(watch.memory_age(0, pgid, later), Some(Duration::ZERO));
        assert_eq!(watch.host_taken(), Some(later));
        let again = watch.memory_of(later, &[(0, pgid)]);
        assert_eq!(again.get(&pgid).map(|m| m.rss), Some(0));
        // Past ANSWER_FROM_SAMPLES_FOR, a request waits for a new reading, and nothing is left
        // to take after it.
        let old = later + ANSWER_FROM_SAMPLES_FOR;
        watch.memory_of(old, &[(0, pgid)]);
        watch.host(old);
        assert_eq!(watch.memory_age(0, pgid, old), Some(Duration::ZERO));
        assert_eq!(watch.host_taken(), Some(old));
        assert!(!watch.refresh_due());
    }

    /// Groups that are gone do not pile up in the last samples.
    #[test]
    fn stale_samples_are_pruned() {
        let mut watch = MemoryWatch::default();
        let now = Instant::now();
        // Past what may still answer a request.
        let later = now + ANSWER_FROM_SAMPLES_FOR.max(watch.settings.interval);
        let gone: Vec<(UnitId, u32)> = (1..=100).map(|i| (0, u32::MAX - i)).collect();
        watch.memory_of(now, &gone);
        assert_eq!(watch.last.len(), 100);
        let others: Vec<(UnitId, u32)> = (101..=250).map(|i| (0, u32::MAX - i)).collect();
        watch.memory_of(later, &others);
        assert_eq!(watch.last.len(), 150, "only the fresh ones are left");
    }
}
