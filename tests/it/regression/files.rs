//! Regressions of the state directory, the notify socket and the files svcd creates.

#[allow(unused_imports)]
use crate::util::*;
