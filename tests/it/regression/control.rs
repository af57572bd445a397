//! Regressions of the control socket and the `svc` client: requests, permissions, bounded work.

#[allow(unused_imports)]
use crate::util::*;
