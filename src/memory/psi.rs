//! A PSI trigger: the kernel wakes svcd when memory stalls pass a threshold, so pressure is
//! noticed within a second without sampling faster.
//!
//! Writing `some 150000 1000000` to /proc/pressure/memory asks for POLLPRI whenever tasks
//! stalled on memory for 150 ms within a 1 s window. Kernels without PSI, containers where the
//! file is read-only, and unprivileged svcd (which needs 2 s windows on newer kernels) refuse;
//! then there is no trigger, quietly, and the sampling timer is all there is.
//!
//! On cgroup v2 the same kind of trigger is armed on a unit's own `memory.pressure` where the
//! unit is told of memory pressure ([`UNIT_STALL`] within [`UNIT_WINDOW`], systemd's default
//! for its `MEMORY_PRESSURE_WATCH` contract); [`OncePerWindow`] is the rule by which svcd tells
//! the unit of its firings.

use super::host::PSI_PATH;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The trigger, with the trailing NUL the kernel expects (it overwrites the last byte).
const TRIGGER: &[u8] = b"some 150000 1000000\0";

/// A unit's trigger on its cgroup's `memory.pressure`: told when its tasks stall on memory
/// this long within [`UNIT_WINDOW`]. systemd's default (`MemoryPressureThresholdSec=200ms`
/// over a 2 s window), so that an app sees under svcd what it sees under systemd; a 2 s window
/// is also what kernels from 6.5 on ask of an unprivileged trigger (a delegated svcd).
pub const UNIT_STALL: Duration = Duration::from_millis(200);
pub const UNIT_WINDOW: Duration = Duration::from_secs(2);

/// The text of a trigger on `some` stalls of `stall` within `window`, in microseconds, with
/// the trailing NUL (the host's trigger has the same form).
pub fn trigger_text(stall: Duration, window: Duration) -> String {
    format!("some {} {}\0", stall.as_micros(), window.as_micros())
}

/// Opens the pressure file `path` and writes the trigger `text` to it: the kernel keeps the
/// trigger for as long as the file is open. Blocking (the kernel may start its polling thread
/// for the cgroup): off svcd's loop for a unit's trigger. Closing it waits for an RCU grace
/// period in the kernel, so it is closed off the loop too ([`PsiTrigger::into_file`]).
pub fn open_trigger(path: &Path, text: &[u8]) -> std::io::Result<File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)?;
    file.write_all(text)?;
    Ok(file)
}

/// The rule by which a firing trigger tells a unit: at most once per trigger window (the
/// kernel already fires at most once per window; this holds also where a wake-up comes twice).
#[derive(Debug, Clone, Copy)]
pub struct OncePerWindow {
    window: Duration,
    last: Option<Instant>,
}

impl OncePerWindow {
    pub fn new(window: Duration) -> OncePerWindow {
        OncePerWindow { window, last: None }
    }

    /// The trigger fired at `now`: whether the unit is told of it.
    pub fn handle_fired(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.window)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// An armed trigger; dropping it (closing the file) disarms it.
#[derive(Debug)]
pub struct PsiTrigger {
    fd: AsyncFd<File>,
}

impl PsiTrigger {
    /// Arms the trigger, or `None` (logged at debug level) where the kernel does not allow it.
    /// Must run inside the tokio runtime.
    pub fn arm() -> Option<PsiTrigger> {
        match Self::try_arm() {
            Ok(trigger) => {
                tracing::debug!("PSI trigger armed on {PSI_PATH}");
                Some(trigger)
            }
            Err(e) => {
                tracing::debug!("no PSI trigger on {PSI_PATH} ({e}); sampling only");
                None
            }
        }
    }

    fn try_arm() -> std::io::Result<PsiTrigger> {
        PsiTrigger::register(open_trigger(Path::new(PSI_PATH), TRIGGER)?)
    }

    /// The trigger armed in `file` ([`open_trigger`]), watched on the runtime for its firing.
    /// Must run inside the tokio runtime.
    pub fn register(file: File) -> std::io::Result<PsiTrigger> {
        // SAFETY: `file` owns its descriptor, which stays open and the same for as long as the
        // AsyncFd owns `file` (only `into_file` takes it out, which deregisters it first), as
        // `register_with_interest` needs.
        let fd = unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY) }?;
        Ok(PsiTrigger { fd })
    }

    /// The trigger's file, no longer watched: closing it disarms the trigger.
    pub fn into_file(self) -> File {
        self.fd.into_inner()
    }

    /// The trigger's file, e.g. to read the pressure figures from.
    pub fn file(&self) -> &File {
        self.fd.get_ref()
    }

    /// Waits until the trigger fires. An error (which the kernel does not give for a live
    /// trigger) is returned so the caller can drop the trigger instead of spinning.
    pub async fn fired(&self) -> std::io::Result<()> {
        let mut guard = self.fd.ready(Interest::PRIORITY).await?;
        guard.clear_ready();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_units_trigger_has_the_hosts_form_with_systemds_figures() {
        assert_eq!(
            trigger_text(Duration::from_millis(150), Duration::from_secs(1)).as_bytes(),
            TRIGGER
        );
        assert_eq!(
            trigger_text(UNIT_STALL, UNIT_WINDOW),
            "some 200000 2000000\0"
        );
    }

    #[test]
    fn a_unit_is_told_at_most_once_per_trigger_window() {
        let mut rule = OncePerWindow::new(UNIT_WINDOW);
        let t0 = Instant::now();
        assert!(rule.handle_fired(t0));
        assert!(!rule.handle_fired(t0));
        assert!(!rule.handle_fired(t0 + Duration::from_millis(1999)));
        assert!(rule.handle_fired(t0 + UNIT_WINDOW));
        // A window counts from the last telling, not from the first firing.
        assert!(!rule.handle_fired(t0 + Duration::from_millis(3999)));
        assert!(rule.handle_fired(t0 + Duration::from_secs(4)));
    }
}
