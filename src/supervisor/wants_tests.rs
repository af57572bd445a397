//! `wants` against the fake clock: ordering when both start, and nothing more binding.

use super::deps_tests::{checked, signals, spawns};
use super::tests::{Harness, SIGTERM, ms, restart};
use super::*;
use crate::unit::{RestartConfig, RestartPolicy};
use std::time::Duration;

/// chat (ready check, `restart`) ← proxy (wants chat).
fn chat_wanted_by_proxy(restart: RestartConfig) -> (Harness, UnitId, UnitId) {
    let mut h = Harness::new();
    let chat = h.unit(restart);
    let proxy = h.unit(RestartConfig::default());
    h.configure(chat, |c| c.checks = checked(Duration::from_secs(30)));
    h.configure(proxy, |c| c.wants = vec![chat]);
    (h, chat, proxy)
}

/// Boots both and brings them up: chat ready, then proxy running. Returns proxy's pid.
fn both_up(h: &mut Harness, chat: UnitId, proxy: UnitId) -> u32 {
    h.sup.handle_start_all(h.now, &[proxy, chat], "boot");
    assert_eq!(spawns(&h.actions()), vec![chat]);
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    let pid = h.spawned(proxy);
    h.actions();
    pid
}

#[test]
fn a_wanter_starts_once_a_starting_wanted_unit_is_ready() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(RestartConfig::default());
    assert_eq!(h.sup.start_order(), vec![chat, proxy]);
    h.sup.handle_start_all(h.now, &[proxy, chat], "boot");
    assert_eq!(spawns(&h.actions()), vec![chat]);
    assert_eq!(h.state(proxy), State::Starting);
    assert_eq!(h.reason(proxy), "waiting for unit0 (starting)");
    h.spawned(chat);
    h.advance(ms(250));
    assert!(spawns(&h.actions()).is_empty());
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    h.spawned(proxy);
    assert_eq!(h.state(proxy), State::Running);
    assert_eq!(h.reason(proxy), "boot");
}

#[test]
fn a_crash_of_a_wanted_unit_leaves_the_wanter_running() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(restart(RestartPolicy::OnFailure, ms(100)));
    let proxy_pid = both_up(&mut h, chat, proxy);
    let actions = h.exit(chat, ExitStatus::Signal(9));
    assert!(signals(&actions).iter().all(|&(unit, _)| unit != proxy));
    assert_eq!(h.state(chat), State::Backoff);
    assert_eq!(h.state(proxy), State::Running);
    // chat comes back by itself; proxy was never touched.
    assert!(h.step());
    assert_eq!(spawns(&h.actions()), vec![chat]);
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    assert!(spawns(&h.actions()).is_empty());
    assert_eq!(h.state(proxy), State::Running);
    assert_eq!(h.sup.status(proxy).pid, Some(proxy_pid));
    assert_eq!(h.sup.status(proxy).restarts, 0);
}

#[test]
fn stopping_a_wanted_unit_leaves_the_wanter_running() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(RestartConfig::default());
    both_up(&mut h, chat, proxy);
    h.sup.handle_stop(h.now, chat, "stopped by operator");
    assert_eq!(signals(&h.actions()), vec![(chat, SIGTERM)]);
    h.exit(chat, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(chat), State::Inactive);
    assert_eq!(h.state(proxy), State::Running);
}

#[test]
fn a_failed_wanted_unit_does_not_hold_the_wanter_back() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(restart(RestartPolicy::Never, ms(100)));
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    h.actions();
    h.spawned(chat);
    let actions = h.exit(chat, ExitStatus::Code(1));
    assert_eq!(h.state(chat), State::Failed);
    // The failed start released proxy.
    assert_eq!(spawns(&actions), vec![proxy]);
    h.spawned(proxy);
    assert_eq!(h.state(proxy), State::Running);

    // An operator's restart of proxy leaves the failed chat alone and does not wait for it.
    h.sup.handle_stop(h.now, proxy, "stopped by operator");
    h.actions();
    h.exit(proxy, ExitStatus::Signal(SIGTERM));
    h.sup.handle_start_requirements(h.now, proxy);
    h.sup.handle_start(h.now, proxy, "started by operator");
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    assert_eq!(h.state(chat), State::Failed);
}

#[test]
fn a_wanted_unit_not_ready_in_time_releases_the_wanter() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(chat, |c| c.checks = checked(ms(500)));
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    h.actions();
    h.spawned(chat);
    assert!(h.step());
    assert_eq!(h.reason(chat), "not ready within 500ms");
    // The start failed: proxy goes on without waiting for chat's next try.
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    h.exit(chat, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(chat), State::Backoff);
    h.spawned(proxy);
    assert_eq!(h.state(proxy), State::Running);
}

#[test]
fn starting_a_wanter_starts_its_inactive_wanted_units_first() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(RestartConfig::default());
    h.sup.handle_start_requirements(h.now, proxy);
    h.sup.handle_start(h.now, proxy, "started by operator");
    assert_eq!(spawns(&h.actions()), vec![chat]);
    assert_eq!(
        h.sup.status(chat).reason,
        "started as a requirement of unit1"
    );
    assert_eq!(h.reason(proxy), "waiting for unit0 (starting)");
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
}

#[test]
fn a_wanted_unit_blocked_by_its_own_failed_requirement_is_not_waited_for() {
    let mut h = Harness::new();
    let db = h.unit(restart(RestartPolicy::Never, ms(100)));
    let chat = h.unit(RestartConfig::default());
    let proxy = h.unit(RestartConfig::default());
    h.configure(chat, |c| c.requires = vec![db]);
    h.configure(proxy, |c| c.wants = vec![chat]);
    h.start(db);
    h.exit(db, ExitStatus::Code(1));
    assert_eq!(h.state(db), State::Failed);
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    assert_eq!(h.reason(chat), "waiting for unit0 (failed)");
}

#[test]
fn shutdown_stops_the_wanter_before_the_wanted_unit() {
    let (mut h, chat, proxy) = chat_wanted_by_proxy(RestartConfig::default());
    both_up(&mut h, chat, proxy);
    h.sup.handle_stop_all(h.now, "shutdown");
    assert_eq!(signals(&h.actions()), vec![(proxy, SIGTERM)]);
    assert_eq!(h.state(chat), State::Stopping);
    assert_eq!(
        signals(&h.exit(proxy, ExitStatus::Code(0)))[1..],
        [(chat, SIGTERM)]
    );
    h.exit(chat, ExitStatus::Code(0));
    assert_eq!(h.state(chat), State::Inactive);
    assert_eq!(h.state(proxy), State::Inactive);
}
