//! Requests that answer later: `start`/`stop`/`restart` that wait, and `svc wait`.
//!
//! A waiter names units and a goal; after every change the daemon asks each waiter whether its
//! goal is met, failed, or still pending. Nothing polls: waiters are checked only when the
//! supervisor publishes a change.

use crate::control::Response;
use crate::supervisor::{State, UnitId, UnitStatus};
use tokio::sync::oneshot;

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// `start`: running (which now means ready), or a clear failure.
    Started,
    /// `stop`: inactive or failed.
    Stopped,
    /// `restart`: a run newer than the one at request time, or a clear failure.
    Restarted,
    /// `wait --for STATE`.
    State(State),
    /// `wait --for ready`.
    Ready,
}

/// Where one unit stands against a goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Done,
    Failed(String),
}

impl Goal {
    /// `starts_then` is the unit's spawn count when the request came in.
    pub fn progress(self, status: &UnitStatus, starts_then: u64) -> Progress {
        let why = || {
            let last = status.last_exit.as_ref().map(|e| e.reason.as_str());
            match last {
                Some(last) if !status.reason.is_empty() => format!("{} ({last})", status.reason),
                Some(last) => last.to_string(),
                None => status.reason.clone(),
            }
        };
        match self {
            Goal::Started | Goal::Restarted => {
                let fresh = self == Goal::Started || status.starts > starts_then;
                // A oneshot's start is done once it finished (`exited`, or `inactive` without
                // `remain`).
                let finished = status.reason_kind == crate::supervisor::ReasonKind::Finished;
                match status.state {
                    // An overlapping restart whose new run never became ready: the old serves on.
                    State::Running if self == Goal::Restarted && status.restart_failed => {
                        Progress::Failed(why())
                    }
                    State::Running | State::Exited if fresh => Progress::Done,
                    State::Inactive if fresh && finished => Progress::Done,
                    State::Failed => Progress::Failed(why()),
                    // Held by a failed requirement: nothing will happen until someone acts.
                    State::Starting if status.blocked => Progress::Failed(why()),
                    State::Inactive | State::Backoff if fresh => Progress::Failed(why()),
                    _ => Progress::Pending,
                }
            }
            Goal::Stopped => match status.state {
                State::Inactive | State::Failed => Progress::Done,
                _ => Progress::Pending,
            },
            Goal::State(state) if status.state == state => Progress::Done,
            Goal::Ready if status.state == State::Running && status.ready => Progress::Done,
            Goal::State(_) | Goal::Ready => Progress::Pending,
        }
    }
}

/// A request waiting for its units.
#[derive(Debug)]
pub struct Waiter {
    pub goal: Goal,
    /// (unit, its spawn count at request time, its name).
    pub units: Vec<(UnitId, u64, String)>,
    pub reply: oneshot::Sender<Response>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn status(state: State, starts: u64) -> UnitStatus {
        UnitStatus {
            state,
            ready: state == State::Running,
            blocked: false,
            pid: None,
            since: Instant::now(),
            restarts: 0,
            starts,
            last_exit: None,
            reason: "exited with code 1".into(),
            reason_kind: crate::supervisor::ReasonKind::Exited,
            next_start: None,
            paused: None,
            old_pid: None,
            restart_failed: false,
            schedule: None,
        }
    }

    #[test]
    fn restart_needs_a_new_run() {
        assert_eq!(
            Goal::Restarted.progress(&status(State::Running, 1), 1),
            Progress::Pending
        );
        assert_eq!(
            Goal::Restarted.progress(&status(State::Running, 2), 1),
            Progress::Done
        );
        assert_eq!(
            Goal::Started.progress(&status(State::Running, 1), 1),
            Progress::Done
        );
        assert!(matches!(
            Goal::Started.progress(&status(State::Failed, 1), 0),
            Progress::Failed(_)
        ));
        assert_eq!(
            Goal::Stopped.progress(&status(State::Stopping, 1), 1),
            Progress::Pending
        );
        assert_eq!(
            Goal::Ready.progress(&status(State::Running, 1), 1),
            Progress::Done
        );
    }

    #[test]
    fn a_oneshot_is_started_once_it_finished() {
        assert_eq!(
            Goal::Started.progress(&status(State::Exited, 1), 1),
            Progress::Done
        );
        let mut finished = status(State::Inactive, 2);
        finished.reason_kind = crate::supervisor::ReasonKind::Finished;
        assert_eq!(Goal::Restarted.progress(&finished, 1), Progress::Done);
        assert_eq!(Goal::Restarted.progress(&finished, 2), Progress::Pending);
        // Inactive for another reason: the start did not happen.
        assert!(matches!(
            Goal::Started.progress(&status(State::Inactive, 1), 1),
            Progress::Failed(_)
        ));
    }
}
