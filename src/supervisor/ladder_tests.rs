//! `memory.on_limit` and `memory.grace` on the fake clock: a unit told of its memory may come
//! back under its limit before the restart.

use super::tests::{Harness, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

const M: u64 = 1 << 20;

fn limited(h: &mut Harness, grace: std::time::Duration, no_restart: bool) -> UnitId {
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| {
        c.memory = MemoryLimits {
            max: Some(200 * M),
            swap_max: None,
            grace,
            no_restart,
        }
    });
    id
}

#[test]
fn a_unit_over_its_limit_is_restarted_only_once_its_grace_has_passed() {
    let mut h = Harness::new();
    let id = limited(&mut h, ms(1000), false);
    let pid = h.start(id);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    h.now += ms(100);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [], "two samples over, but within the grace");
    h.now += ms(899);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [], "still within the grace");
    h.now += ms(1);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
    assert_eq!(h.reason(id), "memory limit: rss 212M > 200M");
}

#[test]
fn a_unit_back_under_its_limit_within_the_grace_starts_a_new_grace() {
    let mut h = Harness::new();
    let id = limited(&mut h, ms(1000), false);
    let pid = h.start(id);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    h.now += ms(900);
    h.sup.handle_memory_sample(h.now, id, 150 * M, 0);
    h.now += ms(200);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    h.now += ms(100);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [], "the grace counts from the new crossing");
    h.now += ms(900);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert_eq!(h.actions(), [term(id, pid), Action::Publish { unit: id }]);
}

#[test]
fn without_restart_in_on_limit_svcd_never_restarts_for_the_limit() {
    let mut h = Harness::new();
    let id = limited(&mut h, ms(0), true);
    h.start(id);
    for _ in 0..5 {
        h.now += ms(100);
        h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    }
    assert_eq!(h.actions(), []);
    assert_eq!(h.state(id), State::Running);
}
