//! Regressions of unit files: parsing, validation and `svc check`.

#[allow(unused_imports)]
use crate::util::*;
