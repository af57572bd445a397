//! The shutdown's total deadline, against the fake clock.

use super::tests::{Harness, SIGTERM, kill, ms};
use super::*;
use crate::unit::{RestartConfig, StopConfig};
use std::time::Duration;

/// a ← b ← c (each requires the one before), stop timeout 30s each, all running.
fn chain() -> (Harness, [UnitId; 3], [u32; 3]) {
    let mut h = Harness::new();
    let stop = StopConfig {
        timeout: Duration::from_secs(30),
        ..StopConfig::default()
    };
    let a = h.add(RestartConfig::default(), stop.clone());
    let b = h.add(RestartConfig::default(), stop.clone());
    let c = h.add(RestartConfig::default(), stop);
    h.configure(b, |c| c.requires = vec![a]);
    h.configure(c, |c| c.requires = vec![b]);
    let pids = [h.start(a), h.start(b), h.start(c)];
    (h, [a, b, c], pids)
}

fn signals(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Signal { .. }))
        .cloned()
        .collect()
}

#[test]
fn stop_timeouts_along_a_chain_do_not_add_up_past_the_shutdown_deadline() {
    let (mut h, [a, b, c], [pa, pb, pc]) = chain();
    h.sup
        .handle_shutdown(h.now, "svcd got SIGTERM", Duration::from_secs(1));
    // c first; a and b wait for their dependents.
    assert_eq!(
        signals(&h.actions()),
        [Action::Signal {
            unit: c,
            pgid: pc,
            signal: SIGTERM
        }]
    );
    assert_eq!(h.sup.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    // Nobody minds SIGTERM: at the shutdown deadline, SIGKILL to all three at once.
    assert!(h.step());
    assert_eq!(h.elapsed(), Duration::from_secs(1));
    let mut killed = signals(&h.actions());
    killed.sort_by_key(|a| match a {
        Action::Signal { unit, .. } => *unit,
        _ => usize::MAX,
    });
    assert_eq!(killed, [kill(a, pa), kill(b, pb), kill(c, pc)]);
    assert_eq!(h.sup.poll_timeout(), None, "the exits end it");
    for id in [c, a, b] {
        h.exit(id, ExitStatus::Signal(9));
    }
    for id in [a, b, c] {
        assert_eq!(h.state(id), State::Inactive);
    }
    let exit = h.sup.status(a).last_exit.expect("an exit");
    assert_eq!(exit.reason, "killed by SIGKILL after stop timeout");
}

#[test]
fn a_stop_that_begins_after_the_shutdown_deadline_kills_at_once() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    // Being spawned when the shutdown begins: no pid to signal yet.
    h.sup.handle_start(h.now, id, "started by operator");
    h.actions();
    h.sup.handle_shutdown(h.now, "svcd got SIGTERM", ms(100));
    assert!(h.step());
    h.actions();
    let pid = h.spawned(id);
    assert_eq!(signals(&h.actions()), [kill(id, pid)]);
    assert_eq!(h.state(id), State::Stopping);
}

#[test]
fn a_quick_shutdown_keeps_each_units_own_timeout_and_no_deadline_after() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.start(id);
    h.sup
        .handle_shutdown(h.now, "svcd got SIGTERM", Duration::from_secs(8));
    // The default stop timeout (10s) is cut to the shutdown's 8s.
    assert_eq!(h.sup.poll_timeout(), Some(h.now + Duration::from_secs(8)));
    h.now += ms(5);
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Inactive);
    // The shutdown deadline still stands (the daemon's own last steps use it).
    assert_eq!(
        h.sup.shutdown_deadline(),
        Some(h.base + Duration::from_secs(8))
    );
}
