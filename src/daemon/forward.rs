//! Signals passed on: svcd.toml `forward_signals` (a signal svcd receives goes to the units it
//! names), the app's share of them (`svcd -- CMD`), and `svc kill`.

use super::Daemon;
use super::app::{SIGHUP, SIGINT, SIGTERM};
use crate::control::{ErrorKind, Response};
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::task::Poll;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// What svcd passes to the app besides SIGTERM, SIGINT and SIGHUP (handled with svcd's own
/// meaning of them): the signals tini and dumb-init forward that apps act on. Not the job
/// control ones (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT), nor SIGCHLD, nor the faults.
pub const APP_SIGNALS: [i32; 6] = [
    3,  // SIGQUIT
    10, // SIGUSR1
    12, // SIGUSR2
    14, // SIGALRM
    28, // SIGWINCH
    30, // SIGPWR
];

/// Signals `forward_signals` may not name: svcd's own (SIGTERM, SIGINT stop svcd; SIGCHLD is
/// how it reaps) and those no process can catch.
const NOT_FORWARDABLE: [i32; 5] = [SIGINT, SIGTERM, 17, 9, 19];

/// svcd.toml `forward_signals`, parsed: signal number → unit names.
#[derive(Debug, Default)]
pub(super) struct Forwards {
    map: BTreeMap<i32, Vec<String>>,
}

impl Forwards {
    pub(super) fn new(config: &BTreeMap<String, Vec<String>>) -> Result<Forwards, String> {
        let mut map = BTreeMap::new();
        for (name, units) in config {
            let number = crate::signal::parse(name)
                .ok_or_else(|| format!("`{name}` is not a signal (e.g. SIGUSR1)"))?;
            if NOT_FORWARDABLE.contains(&number) {
                return Err(format!(
                    "{} cannot be forwarded: svcd stops (SIGTERM, SIGINT) or reaps (SIGCHLD) on it, or no process can catch it",
                    crate::signal::name(number)
                ));
            }
            for unit in units {
                crate::unit::validate::check_name(unit)
                    .map_err(|why| format!("{name}: `{unit}`: {why}"))?;
            }
            map.entry(number)
                .or_insert_with(Vec::new)
                .extend(units.iter().cloned());
        }
        Ok(Forwards { map })
    }

    pub(super) fn has(&self, signal: i32) -> bool {
        self.map.contains_key(&signal)
    }

    /// The signals [`Receiver`] must catch: the configured ones, and the app's. SIGHUP is
    /// svcd's own (the event loop's), not caught twice.
    pub(super) fn signals(&self, app: bool) -> Vec<i32> {
        let mut signals: Vec<i32> = self.map.keys().copied().collect();
        if app {
            signals.extend(APP_SIGNALS);
        }
        signals.sort_unstable();
        signals.dedup();
        signals.retain(|&s| s != SIGHUP);
        signals
    }
}

/// The signals to forward, as a stream of their numbers.
pub(super) struct Receiver {
    streams: Vec<(i32, Signal)>,
}

impl Receiver {
    pub(super) fn new(signals: Vec<i32>) -> Receiver {
        let mut streams = Vec::new();
        for number in signals {
            match signal(SignalKind::from_raw(number)) {
                Ok(stream) => streams.push((number, stream)),
                Err(e) => {
                    let name = crate::signal::name(number);
                    tracing::warn!("cannot catch {name} to forward it: {e}");
                }
            }
        }
        Receiver { streams }
    }

    /// The signals caught.
    pub(super) fn numbers(&self) -> Vec<i32> {
        self.streams.iter().map(|(number, _)| *number).collect()
    }

    /// The next signal received; pending for ever when there is none to catch.
    pub(super) async fn recv(&mut self) -> Option<i32> {
        std::future::poll_fn(|cx| {
            for (number, stream) in &mut self.streams {
                if let Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return Poll::Ready(Some(*number));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Sends `signal` to the process `pid` only. A process already gone is fine.
pub(super) fn signal_process(pid: u32, signal: i32) -> Result<(), Errno> {
    let signal = nix::sys::signal::Signal::try_from(signal)?;
    let pid = i32::try_from(pid).map_err(|_| Errno::EINVAL)?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Daemon {
    /// A signal [`Receiver`] caught: to the app (its share) and to the units configured.
    pub(super) fn forward_signal(&mut self, signal: i32) {
        if APP_SIGNALS.contains(&signal) {
            self.signal_app(signal);
        }
        self.forward_to_units(signal);
    }

    /// Sends `signal` to the process group of each unit `forward_signals` names for it.
    pub(super) fn forward_to_units(&self, signal: i32) {
        let Some(names) = self.forward.map.get(&signal) else {
            return;
        };
        let signal_name = crate::signal::name(signal);
        for name in names {
            let Some(id) = self.unit_id(name) else {
                tracing::warn!(unit = %name, "forward_signals: no such unit; {signal_name} not forwarded");
                continue;
            };
            let Some(pid) = self.supervisor.status(id).pid else {
                continue;
            };
            match crate::process::signal_group(pid, signal) {
                Ok(()) => tracing::info!(unit = %name, "forwarded {signal_name}"),
                Err(e) => tracing::warn!(unit = %name, "cannot forward {signal_name}: {e}"),
            }
        }
    }

    /// `svc kill`: `signal` to each named unit's process group, or main process (`main`). Every
    /// name is checked first; a unit without a process is an error naming it.
    pub(super) fn kill(&self, names: &[String], signal: &str, main: bool) -> Response {
        let Some(number) = crate::signal::parse(signal) else {
            let message = format!("`{signal}` is not a signal (e.g. SIGTERM, HUP, 10)");
            return Response::error(ErrorKind::BadRequest, message, vec![]);
        };
        let mut targets = Vec::new();
        let mut idle = Vec::new();
        for name in names {
            let Some(id) = self.unit_id(name) else {
                let message = format!("unknown unit: {name}");
                return Response::error(ErrorKind::UnknownUnit, message, vec![name.clone()]);
            };
            match self.supervisor.status(id).pid {
                Some(pid) => targets.push((name, pid)),
                None => idle.push(name.clone()),
            }
        }
        let mut failures = Vec::new();
        for (name, pid) in targets {
            let sent = if main {
                signal_process(pid, number)
            } else {
                crate::process::signal_group(pid, number)
            };
            let signal_name = crate::signal::name(number);
            match sent {
                Ok(()) => tracing::info!(unit = %name, pid, "sent {signal_name} (svc kill)"),
                Err(e) => failures.push(format!("{name}: cannot send {signal_name}: {e}")),
            }
        }
        if !idle.is_empty() {
            failures.push(format!("no process to signal: {}", idle.join(", ")));
        }
        if failures.is_empty() {
            Response::ok(None)
        } else {
            Response::error(ErrorKind::Failed, failures.join("\n"), idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn forward_signals_are_parsed_and_checked() {
        let forwards =
            Forwards::new(&config(&[("SIGUSR1", &["app"]), ("hup", &["proxy"])])).expect("valid");
        assert!(forwards.has(10) && forwards.has(SIGHUP));
        assert_eq!(forwards.signals(false), vec![10]);
        assert!(forwards.signals(true).contains(&28));
        let err = Forwards::new(&config(&[("SIGTERM", &["app"])])).unwrap_err();
        assert!(err.contains("SIGTERM cannot be forwarded"), "{err}");
        let err = Forwards::new(&config(&[("SIGNOPE", &["app"])])).unwrap_err();
        assert!(err.contains("not a signal"), "{err}");
    }
}
