//! The ladder before a unit's restart for its memory: first the unit is told, then it is
//! restarted (`memory.on_limit`), with the kernel's hard limit above both.
//!
//! Telling the unit follows systemd's memory pressure contract: the unit finds a path in
//! `MEMORY_PRESSURE_WATCH` and polls it. Under systemd on cgroup v2 that is the cgroup's
//! `memory.pressure` (polled for `POLLPRI`, after writing the PSI trigger of
//! `MEMORY_PRESSURE_WRITE`); the contract also allows a FIFO, polled for `POLLIN`, whose data
//! is read and thrown away. cgroup v1 has no per-cgroup pressure file, so svcd makes a FIFO per
//! unit and writes a byte to it when the unit's memory use crosses [`NOTIFY_PERCENT`] of
//! `memory.max` upwards (the cgroup's eventfd threshold; the kernel signals it either way, so
//! the usage is read to tell up from down; cgroup v2 has no such threshold, and svcd signals
//! the eventfd itself when a reading of the cgroup's `memory.current` finds it crossed).
//! Libraries that follow the contract (libsystemd's
//! `sd_event_add_memory_pressure`, GLib's `GMemoryMonitor`) then shed their caches; svcd
//! does not set `MEMORY_PRESSURE_WRITE`, which a FIFO does not use.

use crate::unit::duration::format_size;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The share of `memory.max` at which a unit with `notify` is told.
pub const NOTIFY_PERCENT: u64 = 90;

/// The environment variable naming the file a unit polls for memory pressure.
pub const WATCH_ENV: &str = "MEMORY_PRESSURE_WATCH";

/// `memory.on_limit`: which steps a unit allows as it nears and crosses `memory.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnLimit {
    /// Tell the unit at [`NOTIFY_PERCENT`] of `max` (`"notify"`).
    pub notify: bool,
    /// Page its processes' memory out to swap at the same point, where swap has room for it
    /// (`"reclaim"`, see [`super::reclaim`]).
    pub reclaim: bool,
    /// Restart it once over `max` (after `memory.grace`) (`"restart"`); without it only the
    /// kernel's hard limit above `max` stops it.
    pub restart: bool,
}

impl Default for OnLimit {
    /// Today's behaviour: a restart over the limit, nothing before.
    fn default() -> Self {
        OnLimit {
            notify: false,
            reclaim: false,
            restart: true,
        }
    }
}

impl OnLimit {
    /// From the steps as written, e.g. `["notify", "restart"]`.
    pub fn parse(steps: &[&str]) -> Result<OnLimit, String> {
        let (notify, reclaim, restart) = super::policy::parse_steps("memory.on_limit", steps)?;
        Ok(OnLimit {
            notify,
            reclaim,
            restart,
        })
    }
}

/// The words that name the cause of a telling by the PSI trigger on the unit's own cgroup
/// (cgroup v2), in svcd's log and the unit's status.
pub const PRESSURE_CAUSE: &str = "memory pressure in its cgroup";

/// What the ladder did in a unit's current run, which its status shows: shared between the
/// task that takes the steps and svcd's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    /// Times the unit was told for its use crossing [`NOTIFY_PERCENT`] of `max`, and the last:
    /// when, and its memory use then.
    pub told: u32,
    pub last_told: Option<(Instant, u64)>,
    /// Times it was told of [`PRESSURE_CAUSE`] (its cgroup's PSI trigger fired), and the last:
    /// when, and its memory use then.
    pub pressure_told: u32,
    pub last_pressure_told: Option<(Instant, u64)>,
    /// Times `reclaim` was due, and the last: when, and what it did.
    pub reclaims: u32,
    pub last_reclaim: Option<(Instant, Reclaimed)>,
}

/// What one `reclaim` step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reclaimed {
    /// Paged out: the bytes its resident memory went down by, in how many milliseconds.
    Freed { bytes: u64, millis: u64 },
    /// Not done, and why (e.g. swap has no room for the unit).
    Skipped(String),
}

/// [`Steps`] as the ladder's task and svcd share them.
pub type SharedSteps = Arc<Mutex<Steps>>;

/// Locks `steps`, also after a panic elsewhere (the record stays usable).
pub fn lock(steps: &SharedSteps) -> MutexGuard<'_, Steps> {
    steps.lock().unwrap_or_else(|p| p.into_inner())
}

/// The threshold in bytes at which a unit with limit `max` is told.
pub fn notify_threshold(max: u64) -> u64 {
    max / 100 * NOTIFY_PERCENT + max % 100 * NOTIFY_PERCENT / 100
}

/// A unit's pressure FIFO, made by svcd, which keeps it open for reading and writing (so that
/// a write never blocks nor fails for want of a reader, and the unit may open it at any time).
#[derive(Debug)]
pub struct PressureFifo {
    path: PathBuf,
    fd: OwnedFd,
    /// Device and inode of the FIFO made: a later run's FIFO at the same path is not removed
    /// when this one goes.
    id: (u64, u64),
}

impl PressureFifo {
    /// Makes (anew) the FIFO `dir/name`, mode 0600, owned by `owner` (uid, gid) where given:
    /// only the unit's user may open it.
    pub fn create(dir: &Path, name: &str, owner: Option<(u32, u32)>) -> Result<Self, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o711));
        let path = dir.join(name);
        let _ = fs::remove_file(&path);
        nix::unistd::mkfifo(
            &path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(|e| format!("cannot make the FIFO {}: {e}", path.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to uid {uid}: {e}", path.display()))?;
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        Ok(PressureFifo {
            path,
            fd: OwnedFd::from(file),
            id: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells the unit: one byte into the FIFO. A full FIFO (the unit does not read it) already
    /// tells it; nothing more is written.
    pub fn tell(&self) {
        let _ = nix::unistd::write(&self.fd, b"1");
    }

    /// The FIFO `dir/name` a previous svcd made for a unit it left running (after its crash
    /// or an upgrade's `exec`), opened again as [`PressureFifo::create`] opens its own. Not
    /// made anew: the unit polls the one its `MEMORY_PRESSURE_WATCH` named, and a new inode at
    /// that path would never reach it. Anything but a FIFO there is refused (a link is not
    /// followed).
    pub fn reopen(dir: &Path, name: &str) -> Result<Self, String> {
        use std::os::unix::fs::FileTypeExt;
        let path = dir.join(name);
        // Looked at before it is opened: opening a device there could act on it.
        let is_fifo = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_fifo());
        if !is_fifo {
            return Err(format!("{} is not a FIFO", path.display()));
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if !meta.file_type().is_fifo() {
            return Err(format!("{} is not a FIFO", path.display()));
        }
        Ok(PressureFifo {
            path,
            fd: OwnedFd::from(file),
            id: (meta.dev(), meta.ino()),
        })
    }

    /// svcd's descriptor of the FIFO (read and write), for the fd holder to keep a copy of:
    /// while svcd is down, the unit's reader then still has a writer, and sees no hang-up.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

impl Drop for PressureFifo {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Where svcd keeps the pressure FIFOs of its units, below its state directory.
pub fn fifo_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pressure")
}

/// The uid and gid a unit's FIFO belongs to: those of the user it runs as (`run_as`), when
/// svcd runs as root; `None` (svcd's own) otherwise.
pub fn fifo_owner(run_as: Option<&str>) -> Result<Option<(u32, u32)>, String> {
    let Some(name) = run_as.filter(|_| nix::unistd::Uid::effective().is_root()) else {
        return Ok(None);
    };
    match crate::users::user_by_name(name) {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        Ok(None) => Err(format!("no user {name}")),
        Err(e) => Err(format!("cannot look up user {name}: {e}")),
    }
}

/// Waits on `event`, the eventfd that wakes unit `unit`'s ladder, and each time its cgroup
/// `cg`'s use has crossed [`notify_threshold`] of `max` upwards takes the first steps of the
/// ladder: tells the unit through `fifo`, where it has one, and pages its memory out to swap
/// when `reclaim` is set and swap has room; each step goes into `steps`. Runs until aborted or
/// the eventfd fails.
///
/// Two wake `event`: svcd, when a reading of the cgroup finds its use crossed the threshold
/// either way (see `MemoryWatch::poke_ladder`), and on cgroup v1 the kernel's usage threshold,
/// registered on it here. The kernel's alone is not enough: its count includes the pages
/// charged ahead to each CPU's stock, which go back when that stock is drained (by another
/// cgroup's charge on that CPU). A reading just after its signal can then find the use under
/// the threshold, and the kernel, which counts the crossing as done, signals no more; the
/// unit was restarted at its limit untold. [`Crossing`] makes one telling of however many
/// wake-ups announce the same crossing.
pub async fn tell_on_crossing(
    unit: String,
    event: OwnedFd,
    cg: super::cgroup::UnitCgroup,
    max: u64,
    fifo: Option<Arc<PressureFifo>>,
    reclaim: bool,
    steps: SharedSteps,
) {
    let threshold = notify_threshold(max);
    let waker = match event.try_clone() {
        Ok(waker) => waker,
        Err(e) => {
            tracing::warn!(unit = %unit, "no memory.on_limit steps before the limit: cannot duplicate an eventfd: {e}");
            return;
        }
    };
    // Armed after the spawn (v1), or begun (v2): a use already past the threshold made no
    // event, and one wake-up of svcd's own looks at it.
    let armed = {
        let (cg, unit) = (cg.clone(), unit.clone());
        async move {
            if !cg.is_v2()
                && let Err(why) = arm_usage_event(&cg, &waker, threshold).await
            {
                tracing::warn!(unit = %unit, "no memory threshold ({why}): the unit is told at svcd's samples only");
            }
            wake(&waker);
        }
    };
    let mut crossing = Crossing::new(threshold);
    let crossed = move || {
        let usage = cg.usage().unwrap_or(0);
        if !crossing.tells_at(usage) {
            return true;
        }
        if let Some(fifo) = &fifo {
            // Recorded first: a unit that reacts finds it in its status.
            let mut record = lock(&steps);
            record.told += 1;
            record.last_told = Some((Instant::now(), usage));
            drop(record);
            fifo.tell();
            tracing::warn!(
                unit = %unit,
                "memory at {} of its limit ({}): unit told through {WATCH_ENV}",
                format_size(usage),
                format_size(max),
            );
        }
        if reclaim {
            let (unit, cg, steps) = (unit.clone(), cg.clone(), steps.clone());
            // process_madvise over a large unit takes milliseconds: off the event loop.
            tokio::task::spawn_blocking(move || {
                let began = Instant::now();
                if let Some(done) = page_out_unit(&unit, &cg, None) {
                    let mut steps = lock(&steps);
                    steps.reclaims += 1;
                    steps.last_reclaim = Some((began, done));
                }
            });
        }
        true
    };
    tokio::join!(armed, each_event(event, crossed));
}

/// One crossing of a unit's threshold upwards, one telling: the wake-ups of its ladder (the
/// kernel's threshold, svcd's readings, the look after arming) each come with a reading of its
/// use, and only the first reading at or over the threshold since the last one under it tells.
#[derive(Debug)]
pub struct Crossing {
    threshold: u64,
    /// Told since the last reading under the threshold.
    told: bool,
}

impl Crossing {
    pub fn new(threshold: u64) -> Crossing {
        Crossing {
            threshold,
            told: false,
        }
    }

    /// At a wake-up whose reading of the use is `usage`: whether the unit is told now.
    pub fn tells_at(&mut self, usage: u64) -> bool {
        if usage < self.threshold {
            self.told = false;
            return false;
        }
        !std::mem::replace(&mut self.told, true)
    }
}

/// Signals the eventfd `event` once (a ladder's wake-up of svcd's own).
pub fn wake(event: &OwnedFd) {
    let _ = nix::unistd::write(event, &1u64.to_ne_bytes());
}

/// `cg`'s usage threshold at `threshold` bytes (cgroup v1) on the eventfd `event`, registered
/// on the runtime's blocking pool: the kernel waits for an RCU grace period at each
/// registration (12-20 ms on a small VM), which svcd's event loop, and the spawn after it,
/// must not.
pub async fn arm_usage_event(
    cg: &super::cgroup::UnitCgroup,
    event: &OwnedFd,
    threshold: u64,
) -> Result<(), String> {
    let (cg, event) = (
        cg.clone(),
        event
            .try_clone()
            .map_err(|e| format!("cannot duplicate an eventfd: {e}"))?,
    );
    tokio::task::spawn_blocking(move || cg.usage_event_on(&event, threshold))
        .await
        .map_err(|e| format!("the threshold's registration failed: {e}"))?
}

/// `reclaim`: pages unit `unit`'s processes (those of its cgroup `cg`) out to swap, where the
/// host's free swap holds what they use; says in svcd's log what it freed and how long it took,
/// or why it did nothing, for `cause` where another step than the unit's own limit took it (host
/// memory pressure), and returns the same (`None` where the cgroup cannot be read).
pub(crate) fn page_out_unit(
    unit: &str,
    cg: &super::cgroup::UnitCgroup,
    cause: Option<&str>,
) -> Option<Reclaimed> {
    let cause = cause
        .map(|cause| format!(" for {cause}"))
        .unwrap_or_default();
    let before = cg.memory()?;
    let free = super::reclaim::swap_free();
    if free < before.rss {
        let why = format!(
            "{} of swap free, the unit holds {}",
            format_size(free),
            format_size(before.rss)
        );
        tracing::info!(unit = %unit, "no reclaim{cause}: {why}");
        return Some(Reclaimed::Skipped(why));
    }
    let began = std::time::Instant::now();
    // cgroup v2 (Linux 5.19): the kernel reclaims from the cgroup itself.
    if let Some(done) = cg.reclaim(before.rss) {
        if let Err(why) = done {
            tracing::info!(unit = %unit, "no reclaim{cause}: {why}");
            return Some(Reclaimed::Skipped(why));
        }
        return Some(reclaimed(unit, &cause, cg, before, began, before.rss));
    }
    let mut advised = 0;
    for pid in cg.pids() {
        match super::reclaim::page_out(pid) {
            Ok(bytes) => advised += bytes,
            Err(why) => tracing::debug!(unit = %unit, "reclaim: {why}"),
        }
    }
    Some(reclaimed(unit, &cause, cg, before, began, advised))
}

/// What a reclaim of `asked` bytes begun at `began` freed in unit `unit`'s cgroup `cg`, whose
/// memory was `before`; said in svcd's log (`cause`: " for ..." or nothing).
fn reclaimed(
    unit: &str,
    cause: &str,
    cg: &super::cgroup::UnitCgroup,
    before: super::cgroup::CgroupMemory,
    began: Instant,
    advised: u64,
) -> Reclaimed {
    let after = cg.memory().unwrap_or(before);
    let freed = before.rss.saturating_sub(after.rss);
    let millis = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::warn!(
        unit = %unit,
        "reclaimed {} to swap{cause} in {millis}ms (rss {} -> {}, {} asked)",
        format_size(freed),
        format_size(before.rss),
        format_size(after.rss),
        format_size(advised),
    );
    Reclaimed::Freed {
        bytes: freed,
        millis,
    }
}

/// Calls `each` every time the eventfd `event` (a cgroup threshold's) is signalled, until it
/// returns `false` or the eventfd fails.
pub async fn each_event(event: OwnedFd, mut each: impl FnMut() -> bool) {
    // SAFETY: `event` owns its descriptor, which stays open and the same for as long as the
    // AsyncFd owns `event` (it is never taken out again), as `register` needs.
    let Ok(event) = (unsafe { tokio::io::unix::AsyncFd::register(event) }) else {
        return;
    };
    loop {
        let Ok(mut ready) = event.readable().await else {
            return;
        };
        let mut count = [0u8; 8];
        match nix::unistd::read(event.get_ref(), &mut count) {
            Ok(_) => {
                if !each() {
                    return;
                }
            }
            Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_limit_keeps_todays_restart_by_default_and_parses_the_steps() {
        assert_eq!(
            OnLimit::default(),
            OnLimit {
                notify: false,
                reclaim: false,
                restart: true
            }
        );
        let both = OnLimit::parse(&["notify", "restart"]).expect("valid");
        assert!(both.notify && both.restart);
        let told = OnLimit::parse(&["notify"]).expect("valid");
        assert!(told.notify && !told.restart);
        let all = OnLimit::parse(&["notify", "reclaim", "restart"]).expect("valid");
        assert!(all.notify && all.reclaim && all.restart);
        assert!(OnLimit::parse(&["reboot"]).is_err());
    }

    #[test]
    fn one_crossing_is_told_once_however_many_wake_ups_announce_it() {
        let mut crossing = Crossing::new(90);
        // Under: the look after arming, a wake-up for a crossing downwards.
        assert!(!crossing.tells_at(10));
        // The kernel's signal and svcd's reading of the same crossing: one telling.
        assert!(crossing.tells_at(95));
        assert!(!crossing.tells_at(97));
        assert!(!crossing.tells_at(90));
        // Back under, then over again: a new crossing.
        assert!(!crossing.tells_at(80));
        assert!(crossing.tells_at(91));
    }

    #[test]
    fn a_signal_read_under_the_threshold_is_told_at_the_next_reading_over_it() {
        // The kernel signalled with the CPU stocks counted; by the reading they were drained.
        let mut crossing = Crossing::new(90);
        assert!(!crossing.tells_at(89));
        // svcd's next sample finds the use over it: told then, before any restart.
        assert!(crossing.tells_at(100));
    }

    #[test]
    fn the_unit_is_told_at_ninety_percent_of_its_limit() {
        assert_eq!(notify_threshold(100), 90);
        assert_eq!(notify_threshold(64 << 20), (64u64 << 20) * 9 / 10);
        assert_eq!(notify_threshold(u64::MAX), u64::MAX / 100 * 90 + 13);
    }

    #[test]
    fn a_told_unit_reads_a_byte_and_the_fifo_goes_with_its_owner() {
        let dir = std::env::temp_dir().join(format!("svc-ladder-{}", std::process::id()));
        let fifo = PressureFifo::create(&dir, "unit", None).expect("fifo");
        let path = fifo.path().to_path_buf();
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let reader = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .expect("open");
        fifo.tell();
        let mut byte = [0u8; 4];
        let n = nix::unistd::read(&reader, &mut byte).expect("read");
        assert_eq!(n, 1);
        // The next run's FIFO at the same path outlives the last run's.
        let next = PressureFifo::create(&dir, "unit", None).expect("fifo");
        drop(fifo);
        assert!(path.exists());
        drop(next);
        assert!(!path.exists());
        let _ = fs::remove_dir(&dir);
    }
}
