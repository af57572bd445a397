//! svc: a small service manager. `svcd` supervises the units, `svc` talks to it.
//!
//! # Layout
//!
//! - [`mod@unit`]: unit files, parsed as written (`raw`) then validated into a typed [`unit::Unit`].
//! - [`supervisor`]: the pure per-unit state machine: events in, actions out, time given to it;
//!   its command table in code, a timer slot per kind, typed reasons, a unit's whole config
//!   handed over at once, and indexes (a timer queue, who depends on whom) so that an event's
//!   work does not grow with the number of units.
//! - [`memory`]: per-unit RSS and swap, host memory and pressure, the host swap policy; a
//!   memory cgroup per unit where svcd may make one ([`memory::cgroup`], on cgroup v1 or v2:
//!   [`memory::cgroup2`]), the ladder before a
//!   restart (telling the unit, reclaim), and the host policy's steps ([`memory::hostladder`]).
//! - [`process`]: spawn (with held sockets passed as fds 3, ... and a cgroup joined, or on
//!   cgroup v2 the child born in it by `clone3`; the child shares svcd's descriptor table until
//!   it takes a small one of its own), signal and reap
//!   real processes. The `unsafe` code is here and where a descriptor meets the kernel or
//!   tokio: the PSI trigger ([`memory::psi`]), the cgroup's eventfds ([`memory::cgroup`], waited
//!   on in [`memory::ladder`]), the pressure FIFO ([`memory::ladder`]),
//!   `process_madvise` ([`memory::reclaim`]), the clock watch's timerfd (`daemon::schedule`),
//!   pidfds and descriptors passed across an upgrade or by the fd holder (`daemon::adopt`,
//!   `daemon::fdholder`), the fd holder's wait without its code mapped (inline `madvise` and
//!   `ppoll` system calls, `daemon::light_sleep`), and init mode's handler of fault signals
//!   (`daemon::init`).
//! - [`proc`]: the one reader of `/proc`: stat, status, children, environ, fds, smaps, each
//!   parsed once.
//! - [`logs`]: capture of units' output into rotated log files, the last lines, following.
//! - [`control`]: the control socket's versioned protocol, its server side and its client.
//! - [`daemon`]: the one event loop tying signals, exits, requests and timers to the supervisor;
//!   the state file, re-adoption after svcd's crash and the fd holder (`daemon::adopt`,
//!   `daemon::fdholder`), held sockets (`daemon::sockets`), hooks and unit directories.
//! - [`cli`]: the `svc` command: arguments, output, exit codes.
//! - [`config`]: the daemon's own settings (`svcd.toml`).
//! - [`schedule`]: scheduled units: calendar expressions, time zones, the persistent stamps.
//! - [`signal`]: signal names to numbers and back.
//! - [`time`]: wall-clock formatting (RFC 3339) without a date crate.
//! - [`users`]: users and groups from `/etc/passwd` and `/etc/group`, never through NSS.
//!
//! These docs are for svc's developers (`cargo doc --document-private-items`): a public item's
//! doc may name a private one.
#![allow(rustdoc::private_intra_doc_links)]

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod logs;
pub mod memory;
pub mod proc;
pub mod process;
pub mod schedule;
pub mod signal;
pub mod supervisor;
pub mod time;
pub mod unit;
pub mod users;
