//! An adopted run that svcd stops for a failure (its memory limit) ends as a loss, not an exit
//! svcd reaps (it is not svcd's child after a crash): the failure is still its exit's reason.

use super::adopt_tests::adopted;
use super::tests::{Harness, ms, restart, term};
use super::*;
use crate::unit::RestartPolicy;

const M: u64 = 1 << 20;

#[test]
fn an_adopted_run_stopped_at_its_memory_limit_keeps_the_limit_as_its_exits_reason() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| {
        c.memory = MemoryLimits {
            max: Some(200 * M),
            ..MemoryLimits::default()
        }
    });
    h.sup.handle_adopted(h.now, id, adopted(&h, 4242));
    h.actions();
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    h.sup.handle_memory_sample(h.now, id, 212 * M, 0);
    assert!(h.actions().contains(&term(id, 4242)));
    h.now += ms(5);
    h.sup
        .handle_lost(h.now, id, None, "exited while not a child of svcd");
    h.actions();
    assert_eq!(h.state(id), State::Backoff);
    let last = h.sup.status(id).last_exit.expect("exit recorded");
    assert_eq!(
        last.reason,
        "memory limit: rss 212M > 200M; exited while not a child of svcd"
    );
    assert_eq!(last.kind, ReasonKind::MemoryLimit);
}
