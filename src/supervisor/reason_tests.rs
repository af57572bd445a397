//! Typed reasons: every path that sets a state's reason or ends a run gives it the right kind,
//! checked on kinds, not on wording.

use super::deps_tests::checked;
use super::tests::{Harness, SIGTERM, ms, restart};
use super::*;
use crate::unit::{RestartConfig, RestartPolicy, StartLimit};
use std::time::Duration;

fn kind(h: &Harness, id: UnitId) -> ReasonKind {
    h.sup.status(id).reason_kind
}

fn exit_kind(h: &Harness, id: UnitId) -> Option<ReasonKind> {
    h.sup.status(id).last_exit.map(|exit| exit.kind)
}

#[test]
fn a_crash_and_its_restart_have_exit_and_restart_kinds() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Always, ms(100)));
    assert_eq!(kind(&h, id), ReasonKind::NotStarted);
    h.start(id);
    assert_eq!(kind(&h, id), ReasonKind::Operator);
    h.exit(id, ExitStatus::Code(1));
    assert_eq!(
        (h.state(id), kind(&h, id), exit_kind(&h, id)),
        (
            State::Backoff,
            ReasonKind::Restart,
            Some(ReasonKind::Exited)
        )
    );
    h.step();
    assert_eq!(kind(&h, id), ReasonKind::Restart);
    h.spawned(id);
    h.exit(id, ExitStatus::Signal(11));
    assert_eq!(exit_kind(&h, id), Some(ReasonKind::Killed));
}

#[test]
fn a_policy_that_gives_up_says_why_in_kind() {
    let mut h = Harness::new();
    let never = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.start(never);
    h.exit(never, ExitStatus::Code(3));
    assert_eq!(
        (h.state(never), kind(&h, never)),
        (State::Failed, ReasonKind::Exited)
    );

    let limited = h.unit(RestartConfig {
        limit: Some(StartLimit {
            burst: 1,
            interval: Duration::from_secs(60),
        }),
        ..restart(RestartPolicy::Always, ms(100))
    });
    h.start(limited);
    h.exit(limited, ExitStatus::Code(1));
    assert_eq!(
        (h.state(limited), kind(&h, limited)),
        (State::Failed, ReasonKind::StartLimit)
    );

    let unspawnable = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.sup
        .handle_start(h.now, unspawnable, "started by operator");
    h.actions();
    h.sup
        .handle_spawn_failed(h.now, unspawnable, "No such file or directory");
    assert_eq!(kind(&h, unspawnable), ReasonKind::SpawnFailed);
    assert_eq!(exit_kind(&h, unspawnable), Some(ReasonKind::SpawnFailed));
}

#[test]
fn a_stop_that_times_out_ends_the_run_as_stop_timeout() {
    let mut h = Harness::new();
    let id = h.unit(RestartConfig::default());
    h.start(id);
    h.sup.handle_stop(h.now, id, "stopped by operator");
    h.step();
    h.exit(id, ExitStatus::Signal(SIGKILL));
    assert_eq!(
        (kind(&h, id), exit_kind(&h, id)),
        (ReasonKind::Operator, Some(ReasonKind::StopTimeout))
    );
}

#[test]
fn failures_svcd_stops_a_unit_for_keep_their_kind_through_the_exit() {
    type Fail = fn(&mut Harness, UnitId);
    let cases: [(ReasonKind, Fail); 4] = [
        (ReasonKind::HealthCheck, |h, id| {
            h.sup
                .handle_unhealthy(h.now, id, "health check failed: refused")
        }),
        (ReasonKind::MemoryPressure, |h, id| {
            h.sup.handle_restart_for(h.now, id, "host swap pressure")
        }),
        (ReasonKind::MemoryLimit, |h, id| {
            h.sup.handle_memory_sample(h.now, id, 300, 0);
            h.sup.handle_memory_sample(h.now, id, 300, 0);
        }),
        (ReasonKind::Watchdog, |h, _| {
            h.step();
        }),
    ];
    for (expected, fail) in cases {
        let mut h = Harness::new();
        let id = h.unit(restart(RestartPolicy::Never, ms(100)));
        h.configure(id, |c| {
            c.memory.max = Some(200);
            c.checks.watchdog = Some(Duration::from_secs(1));
        });
        h.start(id);
        fail(&mut h, id);
        assert_eq!(h.state(id), State::Stopping, "{expected}");
        assert_eq!(kind(&h, id), expected);
        h.exit(id, ExitStatus::Signal(SIGTERM));
        assert_eq!(
            (h.state(id), kind(&h, id), exit_kind(&h, id)),
            (State::Failed, expected, Some(expected))
        );
    }
}

#[test]
fn a_ready_timeout_has_its_kind() {
    let mut h = Harness::new();
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    h.configure(id, |c| c.checks = checked(ms(500)));
    h.start(id);
    h.step();
    assert_eq!(kind(&h, id), ReasonKind::ReadyTimeout);
}

#[test]
fn dependencies_reload_boot_and_shutdown_have_their_kinds() {
    let mut h = Harness::new();
    let db = h.unit(RestartConfig::default());
    let app = h.unit(RestartConfig::default());
    h.configure(app, |c| c.requires = vec![db]);
    h.sup.handle_start_all(
        h.now,
        &[app],
        Reason::new(ReasonKind::Boot, "started with svcd"),
    );
    assert_eq!(kind(&h, app), ReasonKind::Dependency, "waits for db");
    h.sup.handle_start(
        h.now,
        db,
        Reason::new(ReasonKind::Reload, "started by reload"),
    );
    assert_eq!(kind(&h, db), ReasonKind::Reload);
    h.actions();
    h.spawned(db);
    h.actions();
    assert_eq!(
        kind(&h, app),
        ReasonKind::Boot,
        "released: the start's own reason"
    );
    h.spawned(app);
    h.sup
        .handle_shutdown(h.now, "svcd got SIGTERM", Duration::from_secs(5));
    assert_eq!(
        (kind(&h, app), kind(&h, db)),
        (ReasonKind::Shutdown, ReasonKind::Shutdown)
    );
}
