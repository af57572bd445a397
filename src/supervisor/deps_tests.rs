//! Dependencies, readiness, health and the watchdog against the fake clock.

use super::tests::{Harness, SIGTERM, kill, ms, restart, term};
use super::*;
use crate::unit::{RestartConfig, RestartPolicy};
use std::time::Duration;

pub(super) fn spawns(actions: &[Action]) -> Vec<UnitId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { unit } => Some(*unit),
            _ => None,
        })
        .collect()
}

pub(super) fn signals(actions: &[Action]) -> Vec<(UnitId, i32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { unit, signal, .. } => Some((*unit, *signal)),
            _ => None,
        })
        .collect()
}

pub(super) fn checked(timeout: Duration) -> Checks {
    Checks {
        ready: true,
        ready_timeout: timeout,
        ..Checks::default()
    }
}

/// chat (ready check) ← proxy (requires chat).
fn chat_and_proxy() -> (Harness, UnitId, UnitId) {
    let mut h = Harness::new();
    let chat = h.unit(RestartConfig::default());
    let proxy = h.unit(RestartConfig::default());
    h.configure(chat, |c| c.checks = checked(Duration::from_secs(30)));
    h.configure(proxy, |c| c.requires = vec![chat]);
    (h, chat, proxy)
}

#[test]
fn a_dependent_waits_until_its_requirement_is_ready() {
    let (mut h, chat, proxy) = chat_and_proxy();
    h.sup.handle_start_all(h.now, &[proxy, chat], "boot");
    assert_eq!(spawns(&h.actions()), vec![chat]);
    assert_eq!(h.state(proxy), State::Starting);
    assert_eq!(h.reason(proxy), "waiting for unit0 (starting)");
    assert_eq!(h.sup.status(proxy).pid, None);
    h.spawned(chat);
    h.actions();
    // Spawned but not ready: still starting, nothing for proxy.
    assert_eq!(h.state(chat), State::Starting);
    assert!(!h.sup.status(chat).ready);
    h.advance(ms(250));
    assert!(spawns(&h.actions()).is_empty());
    h.sup.handle_ready(h.now, chat);
    assert_eq!(h.state(chat), State::Running);
    assert!(h.sup.status(chat).ready);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    h.spawned(proxy);
    assert_eq!(h.state(proxy), State::Running);
    assert_eq!(h.reason(proxy), "boot");
}

#[test]
fn not_ready_in_time_is_a_failed_start() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| c.checks = checked(ms(500)));
    let pid = h.start(id);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(500)));
    assert!(h.step());
    assert_eq!(h.elapsed(), ms(500));
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(h.reason(id), "not ready within 500ms");
    assert_eq!(signals(&h.actions()), vec![(id, SIGTERM)]);
    let actions = h.exit(id, ExitStatus::Signal(SIGTERM));
    assert!(actions.contains(&kill(id, pid)));
    assert_eq!(h.state(id), State::Backoff);
    let exit = h.sup.status(id).last_exit.unwrap();
    assert!(
        exit.reason.starts_with("not ready within 500ms"),
        "{}",
        exit.reason
    );
}

#[test]
fn not_ready_with_policy_never_fails() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.configure(id, |c| c.checks = checked(ms(500)));
    h.start(id);
    h.step();
    h.actions();
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Failed);
    assert_eq!(
        h.reason(id),
        "not ready within 500ms; restart policy is never"
    );
}

#[test]
fn a_failed_requirement_blocks_its_dependents() {
    let (mut h, chat, proxy) = chat_and_proxy();
    h.configure(chat, |c| {
        c.restart = restart(RestartPolicy::Never, ms(100));
        c.stop = Default::default();
    });
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    h.actions();
    h.spawned(chat);
    h.exit(chat, ExitStatus::Code(1));
    assert_eq!(h.state(chat), State::Failed);
    assert_eq!(h.state(proxy), State::Starting);
    assert_eq!(h.reason(proxy), "waiting for unit0 (failed)");
    assert!(h.sup.status(proxy).blocked);
    // Starting chat by hand unblocks proxy once chat is ready.
    h.sup.handle_start(h.now, chat, "started by operator");
    assert_eq!(spawns(&h.actions()), vec![chat]);
    assert!(!h.sup.status(proxy).blocked);
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
}

#[test]
fn stopping_a_requirement_stops_its_dependents_first_and_they_come_back() {
    let (mut h, chat, proxy) = chat_and_proxy();
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    h.actions();
    let chat_pid = h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    h.actions();
    let proxy_pid = h.spawned(proxy);
    h.actions();

    h.sup.handle_stop(h.now, chat, "stopped by operator");
    // Only proxy is signalled; chat waits in stopping.
    assert_eq!(signals(&h.actions()), vec![(proxy, SIGTERM)]);
    assert_eq!(h.state(chat), State::Stopping);
    assert_eq!(h.state(proxy), State::Stopping);
    assert!(
        h.reason(proxy)
            .contains("required unit unit0 is going down")
    );
    let actions = h.exit(proxy, ExitStatus::Signal(SIGTERM));
    assert!(actions.contains(&kill(proxy, proxy_pid)));
    assert!(actions.contains(&term(chat, chat_pid)));
    // proxy waits for chat to come back.
    assert_eq!(h.state(proxy), State::Starting);
    assert_eq!(h.reason(proxy), "waiting for unit0 (stopping)");
    h.exit(chat, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(chat), State::Inactive);
    assert_eq!(h.reason(proxy), "waiting for unit0 (inactive)");

    h.sup.handle_start(h.now, chat, "started by operator");
    h.actions();
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    h.spawned(proxy);
    assert_eq!(h.state(proxy), State::Running);
}

#[test]
fn losing_a_requirement_stops_dependents_until_it_is_ready_again() {
    let (mut h, chat, proxy) = chat_and_proxy();
    h.sup.handle_start_all(h.now, &[chat, proxy], "boot");
    h.actions();
    h.spawned(chat);
    h.sup.handle_ready(h.now, chat);
    h.actions();
    h.spawned(proxy);
    h.actions();
    let actions = h.exit(chat, ExitStatus::Code(1));
    assert_eq!(signals(&actions)[1..], [(proxy, SIGTERM)]);
    assert_eq!(h.state(chat), State::Backoff);
    h.exit(proxy, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(proxy), State::Starting);
    assert_eq!(h.reason(proxy), "waiting for unit0 (backoff)");
    h.step();
    assert_eq!(spawns(&h.actions()), vec![chat]);
    h.spawned(chat);
    assert!(spawns(&h.actions()).is_empty());
    h.sup.handle_ready(h.now, chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
}

#[test]
fn shutdown_stops_in_reverse_dependency_order() {
    // a ← b (requires) ← c (after b): stop c, then b, then a.
    let mut h = Harness::new();
    let a = h.unit(RestartConfig::default());
    let b = h.unit(RestartConfig::default());
    let c = h.unit(RestartConfig::default());
    h.configure(b, |c| c.requires = vec![a]);
    h.configure(c, |c| c.after = vec![b]);
    assert_eq!(h.sup.start_order(), vec![a, b, c]);
    h.sup.handle_start_all(h.now, &[c, b, a], "boot");
    // a is spawned; c starts after b, which waits for a.
    assert_eq!(spawns(&h.actions()), vec![a]);
    h.spawned(a);
    assert_eq!(spawns(&h.actions()), vec![b]);
    h.spawned(b);
    assert_eq!(spawns(&h.actions()), vec![c]);
    h.spawned(c);
    h.actions();

    h.sup.handle_stop_all(h.now, "shutdown");
    assert_eq!(signals(&h.actions()), vec![(c, SIGTERM)]);
    assert_eq!(
        signals(&h.exit(c, ExitStatus::Code(0)))[1..],
        [(b, SIGTERM)]
    );
    assert_eq!(
        signals(&h.exit(b, ExitStatus::Code(0)))[1..],
        [(a, SIGTERM)]
    );
    h.exit(a, ExitStatus::Code(0));
    for id in [a, b, c] {
        assert_eq!(h.state(id), State::Inactive, "{id}");
    }
}

#[test]
fn unhealthy_restarts_with_the_reason() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.start(id);
    h.sup
        .handle_unhealthy(h.now, id, "health check failed: answered 500");
    assert_eq!(h.state(id), State::Stopping);
    h.actions();
    h.exit(id, ExitStatus::Signal(SIGTERM));
    assert_eq!(h.state(id), State::Backoff);
    let exit = h.sup.status(id).last_exit.unwrap();
    assert!(exit.reason.starts_with("health check failed: answered 500"));
    h.step();
    h.spawned(id);
    assert_eq!(h.sup.status(id).restarts, 1);
    assert!(h.reason(id).starts_with("restarted (health check failed"));
}

#[test]
fn the_watchdog_restarts_a_silent_unit() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::OnFailure, ms(100)));
    h.configure(id, |c| {
        c.checks = Checks {
            watchdog: Some(Duration::from_secs(1)),
            ..Checks::default()
        }
    });
    h.start(id);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + Duration::from_secs(1)));
    h.now += ms(800);
    h.sup.handle_watchdog(h.now, id);
    assert_eq!(h.sup.poll_timeout(), Some(h.base + ms(1800)));
    assert!(h.step());
    assert_eq!(h.elapsed(), ms(1800));
    assert_eq!(h.state(id), State::Stopping);
    assert_eq!(h.reason(id), "watchdog: no WATCHDOG=1 within 1s");
}

#[test]
fn reloading_is_running_but_not_ready() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.configure(id, |c| c.checks = checked(Duration::from_secs(5)));
    h.start(id);
    h.sup.handle_ready(h.now, id);
    h.sup.handle_reloading(h.now, id);
    assert_eq!(h.state(id), State::Running);
    assert!(!h.sup.status(id).ready);
    h.sup.handle_ready(h.now, id);
    assert!(h.sup.status(id).ready);
    // No deadline while running without a watchdog: idle stays idle.
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn starting_a_unit_starts_its_inactive_requirements_first() {
    let mut h = Harness::new();
    let db = h.unit(RestartConfig::default());
    let chat = h.unit(RestartConfig::default());
    let proxy = h.unit(RestartConfig::default());
    h.configure(chat, |c| c.requires = vec![db]);
    h.configure(proxy, |c| c.requires = vec![chat]);
    h.sup.handle_start_requirements(h.now, proxy);
    h.sup.handle_start(h.now, proxy, "started by operator");
    // db first (nothing to wait for), chat and proxy held until what they require runs.
    assert_eq!(spawns(&h.actions()), vec![db]);
    assert_eq!(h.reason(chat), "waiting for unit0 (starting)");
    h.spawned(db);
    assert_eq!(spawns(&h.actions()), vec![chat]);
    h.spawned(chat);
    assert_eq!(spawns(&h.actions()), vec![proxy]);
    assert_eq!(h.sup.status(db).reason, "started as a requirement of unit2");
}

#[test]
fn a_failed_requirement_is_not_started_by_its_dependent() {
    let mut h = Harness::new();
    let db = h.unit(restart(RestartPolicy::Never, ms(100)));
    let app = h.unit(RestartConfig::default());
    h.configure(app, |c| c.requires = vec![db]);
    h.start(db);
    h.exit(db, ExitStatus::Code(7));
    assert_eq!(h.state(db), State::Failed);
    h.sup.handle_start_requirements(h.now, app);
    h.sup.handle_start(h.now, app, "started by operator");
    assert!(spawns(&h.actions()).is_empty());
    assert_eq!(h.state(db), State::Failed);
    assert_eq!(h.reason(app), "waiting for unit0 (failed)");
}
