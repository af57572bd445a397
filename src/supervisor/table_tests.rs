//! Every (phase, command) pair of the command table, played on the fake clock: the unit is
//! brought into the phase, given the command, and followed to where the table says it goes.

use super::deps_tests::checked;
use super::table::{COMMANDS, Command, Outcome, Phase, markdown, outcome};
use super::tests::{Harness, SIGTERM, ms, restart};
use super::*;
use crate::unit::RestartPolicy;

/// A unit brought into `phase`; every action so far drained.
fn unit_in(h: &mut Harness, phase: Phase) -> UnitId {
    let id = h.unit(restart(RestartPolicy::Never, ms(100)));
    match phase {
        Phase::Inactive => {}
        Phase::Failed => {
            h.start(id);
            h.exit(id, ExitStatus::Code(1));
        }
        Phase::Backoff => {
            h.configure(id, |c| c.restart = restart(RestartPolicy::Always, ms(100)));
            h.start(id);
            h.exit(id, ExitStatus::Code(1));
        }
        Phase::Held => {
            let dep = h.unit(restart(RestartPolicy::Never, ms(100)));
            h.configure(id, |c| c.requires = vec![dep]);
            h.sup.handle_start(h.now, id, "started by operator");
        }
        Phase::Spawning => h.sup.handle_start(h.now, id, "started by operator"),
        Phase::SpawningDoomed => {
            h.sup.handle_start(h.now, id, "started by operator");
            h.sup.handle_stop(h.now, id, "stopped by operator");
        }
        Phase::Starting => {
            h.configure(id, |c| c.checks = checked(ms(5000)));
            h.start(id);
        }
        Phase::Running => {
            h.start(id);
        }
        Phase::Stopping => {
            h.start(id);
            h.sup.handle_stop(h.now, id, "stopped by operator");
        }
        Phase::Exited => {
            h.configure(id, |c| {
                c.kind = crate::unit::UnitType::Oneshot;
                c.remain = true;
            });
            h.start(id);
            h.exit(id, ExitStatus::Code(0));
        }
    }
    h.actions();
    assert_eq!(h.sup.units[id].phase(), phase, "set-up of {phase:?}");
    id
}

/// Plays the daemon until the unit rests (no process, no spawn pending); returns how many
/// spawns were asked for on the way.
fn settle(h: &mut Harness, id: UnitId, mut actions: Vec<Action>) -> usize {
    let mut spawns = 0;
    for _ in 0..10 {
        let spawn = actions.contains(&Action::Spawn { unit: id });
        spawns += usize::from(spawn);
        let unit = &h.sup.units[id];
        if spawn && unit.state == State::Starting {
            h.spawned(id);
            actions = h.actions();
        } else if unit.pid.is_some() && unit.state == State::Stopping {
            actions = h.exit(id, ExitStatus::Signal(SIGTERM));
        } else {
            break;
        }
    }
    spawns
}

/// Whether the unit ended up with a process (running, or `starting` for a unit with a
/// readiness check); if not, it must be `inactive`.
fn is_up(h: &Harness, id: UnitId) -> bool {
    let status = h.sup.status(id);
    let up = status.pid.is_some() && matches!(status.state, State::Running | State::Starting);
    assert!(up || status.state == State::Inactive, "{:?}", status.state);
    up
}

fn check(phase: Phase, command: Command) {
    let mut h = Harness::new();
    let id = unit_in(&mut h, phase);
    let before = h.sup.status(id);
    match command {
        Command::Start => h.sup.handle_start(h.now, id, "cmd"),
        Command::Stop => h.sup.handle_stop(h.now, id, "cmd"),
        Command::Restart => h.sup.handle_restart(h.now, id, "cmd"),
    }
    let actions = h.actions();
    let after = h.sup.status(id);
    let what = format!("{command:?} in {phase:?}");
    let had_spawn_pending = matches!(phase, Phase::Spawning | Phase::SpawningDoomed);
    let term = actions.iter().any(
        |a| matches!(a, Action::Signal { unit, signal, .. } if *unit == id && *signal == SIGTERM),
    );
    match outcome(phase, command) {
        Outcome::Nothing => {
            assert_eq!(after, before, "{what}");
            assert!(actions.is_empty(), "{what}: {actions:?}");
        }
        Outcome::Spawn => {
            assert_eq!(after.state, State::Starting, "{what}");
            assert_eq!(after.starts, before.starts + 1, "{what}");
            assert_eq!(
                h.sup.units[id].timers.next(),
                None,
                "{what}: timers cancelled"
            );
        }
        Outcome::ToInactive => {
            assert_eq!(
                (after.state, after.reason.as_str()),
                (State::Inactive, "cmd"),
                "{what}"
            );
            assert_eq!(h.sup.poll_timeout(), None, "{what}");
        }
        Outcome::StopWhenSpawned { then_start } => {
            assert_eq!(after.state, State::Starting, "{what}");
            assert!(
                actions.iter().all(|a| matches!(a, Action::Publish { .. })),
                "{what}"
            );
            // The pending spawn is reported: stopped at once, never shown running.
            h.spawned(id);
            assert_eq!(h.state(id), State::Stopping, "{what}");
            let spawns = settle(&mut h, id, Vec::new());
            let expected = (then_start, usize::from(then_start));
            assert_eq!((is_up(&h, id), spawns), expected, "{what}");
        }
        Outcome::Stop { then_start } => {
            assert_eq!(after.state, State::Stopping, "{what}");
            assert!(term, "{what}: stop signal sent");
            let actions = h.exit(id, ExitStatus::Signal(SIGTERM));
            let spawns = settle(&mut h, id, actions);
            let expected = (then_start, usize::from(then_start));
            assert_eq!((is_up(&h, id), spawns), expected, "{what}");
        }
        Outcome::KeepStopping | Outcome::StartAfterStop => {
            let then_start = outcome(phase, command) == Outcome::StartAfterStop;
            assert_eq!(after.state, before.state, "{what}");
            assert!(!term, "{what}: no second stop signal");
            if had_spawn_pending {
                h.spawned(id);
                h.actions();
            }
            let actions = h.exit(id, ExitStatus::Signal(SIGTERM));
            let spawns = settle(&mut h, id, actions);
            let expected = (then_start, usize::from(then_start));
            assert_eq!((is_up(&h, id), spawns), expected, "{what}");
        }
    }
}

#[test]
fn every_phase_and_command_does_what_the_table_says() {
    for (phase, _) in COMMANDS {
        for command in [Command::Start, Command::Stop, Command::Restart] {
            check(phase, command);
        }
    }
}

#[test]
fn the_documented_table_is_the_one_in_code() {
    let docs: String = include_str!("mod.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! "))
        .filter(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        docs,
        markdown(),
        "regenerate the table in mod.rs from table::markdown()"
    );
}
