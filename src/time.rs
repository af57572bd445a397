//! Wall-clock time as RFC 3339, without a date crate.
