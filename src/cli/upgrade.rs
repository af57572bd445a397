//! `svc upgrade`: ask svcd to re-execute itself in place, then wait until the new svcd answers.

use super::{exit, warn};
use crate::control::{Command, client};
use std::time::{Duration, Instant};

/// Between two attempts to reach the re-executed svcd: it binds its socket again within a
/// few milliseconds of the `exec`.
const RETRY: Duration = Duration::from_millis(10);

/// Sends `upgrade`; once answered, svcd has closed its socket and execs. The new svcd is
/// reached within `timeout` (none: 30 s), or the command fails saying so.
pub fn upgrade(socket: &std::path::Path, timeout: Option<Duration>) -> u8 {
    let response = match client::request(socket, Command::Upgrade {}, timeout) {
        Ok(response) => response,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::FAILED;
        }
    };
    if let Some(error) = &response.error {
        warn(format_args!("svc: {}", error.message));
        return exit::FAILED;
    }
    let deadline = Instant::now() + timeout.unwrap_or(Duration::from_secs(30));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client::request(socket, Command::List {}, Some(left.max(RETRY))) {
            Ok(_) => return exit::OK,
            Err(e) if Instant::now() >= deadline => {
                warn(format_args!(
                    "svc: svcd re-executed but does not answer on {}: {e}",
                    socket.display()
                ));
                return exit::FAILED;
            }
            Err(_) => std::thread::sleep(RETRY),
        }
    }
}
