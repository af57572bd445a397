//! Regressions of the supervisor and the event loop: spawn failures, restarts, stops, shutdown.

#[allow(unused_imports)]
use crate::util::*;
