//! Restart delays and the start limit, as pure functions of the config and history.
