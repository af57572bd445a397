//! One test per defect found in the field, named after what it guards (as ripgrep's
//! `tests/regression.rs`). Each test failed on the code before its fix. The files follow the
//! parts of svc the defects were in.

mod container;
mod control;
mod core;
mod files;
mod hooks;
mod identity;
mod limits;
mod logs;
mod memory;
mod reload;
mod sockets;
mod types;
mod units;
