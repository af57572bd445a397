//! Integration tests: the real `svcd` and `svc` binaries on real processes, each test in its own
//! temp dir.

mod control;
mod pid1;
mod supervise;
mod units;
mod util;
