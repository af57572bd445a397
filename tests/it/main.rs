//! Integration tests: the real `svcd` and `svc` binaries on real processes, each test in its own
//! temp dir.

mod adopt;
mod adopt_cgroup;
mod cgroup;
mod container;
mod control;
mod daemons;
mod demo;
mod fdspawn;
mod hooks;
mod hostladder;
mod ladder;
mod logs;
mod manpages;
mod memory;
mod observe;
mod pid1;
mod props;
mod ready;
mod regression;
mod reload;
mod schedule;
mod sockets;
mod spawn;
mod supervise;
mod top;
mod types;
mod units;
mod util;
