//! Slots of removed units (freed, then reused), and paused main processes.

use super::tests::{Harness, SIGTERM};
use super::*;
use crate::unit::RestartConfig;

#[test]
fn a_removed_units_slot_is_reused() {
    let mut h = Harness::new();
    let keep = h.unit(RestartConfig::default());
    let gone = h.unit(RestartConfig::default());
    h.configure(keep, |c| c.after = vec![gone]);
    h.start(gone);
    // Still running: its slot cannot go yet.
    assert!(!h.sup.remove_unit(h.now, gone));
    h.sup
        .handle_stop(h.now, gone, "stopped by reload: unit file removed");
    h.actions();
    assert!(!h.sup.remove_unit(h.now, gone), "still stopping");
    h.exit(gone, ExitStatus::Signal(SIGTERM));
    assert!(h.sup.remove_unit(h.now, gone));
    assert!(!h.sup.remove_unit(h.now, gone), "already vacant");
    assert_eq!(h.sup.find("unit1"), None);
    // The next unit takes the slot, fresh.
    let again = h.sup.add_unit(h.now, UnitConfig::named("again"));
    assert_eq!(again, gone);
    assert_eq!(h.sup.len(), 2);
    let status = h.sup.status(again);
    assert_eq!(
        (status.state, status.starts, status.last_exit),
        (State::Inactive, 0, None)
    );
    assert_eq!(h.sup.find("again"), Some(again));
    // The unit that was ordered after the removed one no longer waits for its new tenant.
    h.sup.handle_start(h.now, again, "started by operator");
    h.sup.handle_start(h.now, keep, "started by operator");
    let actions = h.actions();
    assert!(
        actions.contains(&Action::Spawn { unit: keep }),
        "{actions:?}"
    );
}

#[test]
fn a_stopped_main_process_is_paused_until_continued_or_gone() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.start(id);
    h.sup.handle_paused(h.now, id, Some(19));
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    let status = h.sup.status(id);
    assert_eq!((status.state, status.paused), (State::Running, Some(19)));
    h.sup.handle_paused(h.now, id, None);
    assert_eq!(h.actions(), [Action::Publish { unit: id }]);
    assert_eq!(h.sup.status(id).paused, None);
    // Killed while stopped: the next run is not paused.
    h.sup.handle_paused(h.now, id, Some(19));
    h.exit(id, ExitStatus::Signal(9));
    assert_eq!(h.sup.status(id).paused, None);
}
