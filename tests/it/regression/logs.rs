//! Regressions of log capture, log files and svcd's own output.

#[allow(unused_imports)]
use crate::util::*;
