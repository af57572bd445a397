//! The indexes of [`super::queue`] against a scan of every unit: the timer queue must give the
//! deadline the scan would, the `settle` set the units the scan would find, and the dependents
//! the units naming each one, after any sequence of events, slot reuse included.

use super::tests::{Harness, ms, restart};
use super::*;
use crate::unit::{RestartConfig, RestartPolicy, StopConfig};
use proptest::prelude::*;

/// What a scan of every unit says the next deadline is (the old `poll_timeout`).
fn scanned_deadline(sup: &Supervisor) -> Option<Instant> {
    let shutdown = sup.shutdown_deadline.filter(|_| !sup.shutdown_fired);
    sup.units
        .iter()
        .filter_map(|unit| unit.timers.next())
        .chain(shutdown)
        .min()
}

/// Every index checked against the records.
fn check_indexes(sup: &Supervisor) {
    assert_eq!(sup.poll_timeout(), scanned_deadline(sup), "next deadline");
    for (id, unit) in sup.units.iter().enumerate() {
        let unsettled = unit.hold.is_some() || unit.is_signal_pending();
        assert_eq!(
            sup.unsettled.contains(&id),
            unsettled,
            "settle set, unit {id}"
        );
        let naming: Vec<UnitId> = (0..sup.units.len())
            .filter(|&other| dependencies(&sup.units[other].config).any(|dep| dep == id))
            .collect();
        assert_eq!(sup.dependents.of(id), naming, "dependents of unit {id}");
    }
}

/// One thing that may happen to a unit (`usize`: which one, modulo the number of slots).
#[derive(Debug, Clone)]
enum Op {
    /// A unit with this many of the optional settings (a ready check, a watchdog, a health
    /// interval, a short stop timeout) and, maybe, a dependency on an existing unit.
    Add {
        settings: u8,
        delay_ms: u64,
        dep: Option<(usize, u8)>,
    },
    Start(usize),
    Stop(usize),
    Restart(usize),
    Exit(usize, i32),
    Ready(usize),
    Watchdog(usize),
    Health(usize, bool),
    Remove(usize),
    /// Time passes by this many ms; the due deadlines fire.
    Advance(u64),
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let unit = 0usize..12;
    prop_oneof![
        3 => (any::<u8>(), 0u64..300, prop::option::of((0usize..12, 0u8..3)))
            .prop_map(|(settings, delay_ms, dep)| Op::Add { settings, delay_ms, dep }),
        3 => unit.clone().prop_map(Op::Start),
        2 => unit.clone().prop_map(Op::Stop),
        1 => unit.clone().prop_map(Op::Restart),
        3 => (unit.clone(), 0i32..3).prop_map(|(id, code)| Op::Exit(id, code)),
        1 => unit.clone().prop_map(Op::Ready),
        1 => unit.clone().prop_map(Op::Watchdog),
        1 => (unit.clone(), any::<bool>()).prop_map(|(id, ok)| Op::Health(id, ok)),
        2 => unit.clone().prop_map(Op::Remove),
        4 => (0u64..2_000).prop_map(Op::Advance),
        1 => Just(Op::Shutdown),
    ]
}

/// Plays the daemon: every spawn succeeds (or, for every seventh, fails), health checks are
/// left to [`Op::Health`].
fn perform(h: &mut Harness, spawns: &mut u32) {
    while let Some(action) = h.sup.poll_action() {
        if let Action::Spawn { unit } = action {
            *spawns += 1;
            if spawns.is_multiple_of(7) {
                h.sup.handle_spawn_failed(h.now, unit, "no such file");
            } else {
                h.spawned(unit);
            }
        }
    }
}

fn apply(h: &mut Harness, op: Op) {
    let slots = h.sup.len();
    let pick = |i: usize| (slots > 0).then(|| i % slots);
    match op {
        Op::Add {
            settings,
            delay_ms,
            dep,
        } => {
            let mut config = UnitConfig {
                restart: restart(RestartPolicy::Always, ms(delay_ms)),
                stop: StopConfig {
                    timeout: if settings & 8 != 0 { ms(50) } else { ms(1_000) },
                    ..StopConfig::default()
                },
                ..UnitConfig::named(&format!("u{slots}"))
            };
            config.checks.ready = settings & 1 != 0;
            config.checks.ready_timeout = ms(500);
            config.checks.watchdog = (settings & 2 != 0).then(|| ms(700));
            config.checks.health_interval = (settings & 4 != 0).then(|| ms(400));
            if let Some((target, kind)) = dep
                && let Some(target) = pick(target)
                && !h.sup.name(target).is_empty()
            {
                match kind {
                    0 => config.requires.push(target),
                    1 => config.after.push(target),
                    _ => config.wants.push(target),
                }
            }
            h.sup.add_unit(h.now, config);
        }
        Op::Start(i) => {
            if let Some(id) = pick(i) {
                h.sup.handle_start(h.now, id, "started by operator");
            }
        }
        Op::Stop(i) => {
            if let Some(id) = pick(i) {
                h.sup.handle_stop(h.now, id, "stopped by operator");
            }
        }
        Op::Restart(i) => {
            if let Some(id) = pick(i) {
                h.sup.handle_restart(h.now, id, "restarted by operator");
            }
        }
        Op::Exit(i, code) => {
            if let Some(id) = pick(i)
                && h.sup.status(id).pid.is_some()
            {
                h.sup.handle_exit(h.now, id, ExitStatus::Code(code));
            }
        }
        Op::Ready(i) => {
            if let Some(id) = pick(i) {
                h.sup.handle_ready(h.now, id);
            }
        }
        Op::Watchdog(i) => {
            if let Some(id) = pick(i) {
                h.sup.handle_watchdog(h.now, id);
            }
        }
        Op::Health(i, ok) => {
            if let Some(id) = pick(i) {
                let verdict = if ok { Ok(()) } else { Err("refused") };
                h.sup.handle_health_check(h.now, id, verdict);
            }
        }
        Op::Remove(i) => {
            if let Some(id) = pick(i) {
                h.sup.remove_unit(h.now, id);
            }
        }
        Op::Advance(by) => {
            // Not to each deadline in turn: several units may be due in one call.
            h.now += ms(by);
            h.sup.handle_timeout(h.now);
        }
        Op::Shutdown => h.sup.handle_shutdown(h.now, "shutdown", ms(3_000)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_indexes_agree_with_a_scan_of_every_unit(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        let mut spawns = 0;
        for op in ops {
            apply(&mut h, op);
            perform(&mut h, &mut spawns);
            check_indexes(&h.sup);
        }
        // Whatever is left runs down to the end without a deadline in the past.
        for _ in 0..1_000 {
            perform(&mut h, &mut spawns);
            check_indexes(&h.sup);
            if !h.step() {
                break;
            }
        }
    }
}

#[test]
fn poll_timeout_stays_right_across_slot_reuse() {
    let mut h = Harness::new();
    let gone = h.unit(restart(RestartPolicy::Always, ms(500)));
    let other = h.unit(restart(RestartPolicy::Always, ms(900)));
    h.start(gone);
    h.start(other);
    // Both in backoff: `gone` due at 500ms, `other` at 900ms.
    h.exit(gone, ExitStatus::Code(1));
    h.exit(other, ExitStatus::Code(1));
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(500)));
    // `gone` is stopped (its backoff forgotten) and removed; a new unit takes its slot.
    h.sup
        .handle_stop(h.now, gone, "stopped by reload: unit file removed");
    assert!(h.sup.remove_unit(h.now, gone));
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(900)));
    let mut config = UnitConfig::named("tenant");
    config.checks.ready = true;
    config.checks.ready_timeout = ms(2_000);
    let tenant = h.sup.add_unit(h.now, config);
    assert_eq!(tenant, gone);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(900)));
    h.sup.handle_start(h.now, tenant, "started by operator");
    h.actions();
    h.spawned(tenant);
    h.actions();
    // The removed unit's 500ms is not the tenant's: nothing fires before 900ms.
    assert!(h.step());
    assert_eq!(h.now, h.base + ms(900));
    assert_eq!(h.state(tenant), State::Starting);
    assert_eq!(h.state(other), State::Starting);
    assert!(h.actions().contains(&Action::Spawn { unit: other }));
    h.spawned(other);
    // The tenant's ready timeout is what is left.
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(2_000)));
    assert!(h.step());
    assert_eq!(h.state(tenant), State::Stopping);
    // Removed again, and the slot reused by an idle unit: no deadline remains of either.
    h.sup.handle_stop(h.now, other, "stopped by operator");
    h.exit(tenant, ExitStatus::Signal(9));
    h.sup.handle_stop(h.now, tenant, "stopped by operator");
    assert_eq!(h.state(tenant), State::Inactive);
    assert!(h.sup.remove_unit(h.now, tenant));
    h.sup.add_unit(h.now, UnitConfig::named("idle"));
    let other_pid = h.sup.status(other).pid;
    assert!(other_pid.is_some());
    assert_eq!(h.sup.poll_timeout(), h.sup.units[other].timers.next());
    check_indexes(&h.sup);
}

#[test]
fn a_removed_wanted_units_slot_is_not_wanted_by_its_next_tenant() {
    let mut h = Harness::new();
    let wanted = h.unit(RestartConfig::default());
    let wanter = h.unit(RestartConfig::default());
    h.configure(wanter, |c| c.wants = vec![wanted]);
    assert!(h.sup.remove_unit(h.now, wanted));
    let tenant = h.sup.add_unit(h.now, UnitConfig::named("tenant"));
    assert_eq!(tenant, wanted);
    assert!(h.sup.config(wanter).wants.is_empty());
    // Starting the wanter pulls in nothing: the tenant was never wanted.
    h.sup.handle_start_requirements(h.now, wanter);
    assert_eq!(h.state(tenant), State::Inactive);
}
