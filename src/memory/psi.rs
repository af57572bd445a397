//! A PSI trigger: the kernel wakes svcd when memory stalls pass a threshold, so pressure is
//! noticed within a second without sampling faster.
//!
//! Writing `some 150000 1000000` to /proc/pressure/memory asks for POLLPRI whenever tasks
//! stalled on memory for 150 ms within a 1 s window. Kernels without PSI, containers where the
//! file is read-only, and unprivileged svcd (which needs 2 s windows on newer kernels) refuse;
//! then there is no trigger, quietly, and the sampling timer is all there is.

use super::host::PSI_PATH;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The trigger, with the trailing NUL the kernel expects (it overwrites the last byte).
const TRIGGER: &[u8] = b"some 150000 1000000\0";

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
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(PSI_PATH)?;
        file.write_all(TRIGGER)?;
        // SAFETY: `file` owns its descriptor, which stays open and the same for as long as the
        // AsyncFd owns `file` (it is never taken out again), as `register_with_interest` needs.
        let fd = unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY) }?;
        Ok(PsiTrigger { fd })
    }

    /// Waits until the trigger fires. An error (which the kernel does not give for a live
    /// trigger) is returned so the caller can drop the trigger instead of spinning.
    pub async fn fired(&self) -> std::io::Result<()> {
        let mut guard = self.fd.ready(Interest::PRIORITY).await?;
        guard.clear_ready();
        Ok(())
    }
}
