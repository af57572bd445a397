//! Integration tests: the real `svcd` and `svc` binaries on real processes, each test in its own
//! temp dir.

mod adopt;
mod container;
mod control;
mod daemons;
mod demo;
mod logs;
mod manpages;
mod memory;
mod observe;
mod pid1;
mod props;
mod ready;
mod regression;
mod reload;
mod supervise;
mod units;
mod util;
