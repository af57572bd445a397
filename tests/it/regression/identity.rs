//! Regressions of users, groups, environment files and what a unit inherits from svcd.

#[allow(unused_imports)]
use crate::util::*;
