//! `svc events`: every state change of a unit, as the daemon publishes it, broadcast to the
//! connections that follow them.
//!
//! One bounded queue for all subscribers ([`QUEUE`] changes): a subscriber that falls further
//! behind is told so and dropped, as a `logs -f` follower is. Nobody subscribed: nothing is
//! built or sent.

use super::report::Clocks;
use crate::control::UnitEvent;
use crate::supervisor::UnitStatus;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Changes queued for the slowest subscriber before it is dropped.
pub const QUEUE: usize = 256;

/// What the connections subscribe with: it does not keep the queue open, so the subscribers
/// see its end when the daemon drops its [`Hub`] (svcd exits).
pub type Subscribe = broadcast::WeakSender<Arc<UnitEvent>>;

/// The daemon's end: the queue and each unit's last published state (the `old` of the next).
#[derive(Debug, Default)]
pub struct Hub {
    sender: Option<broadcast::Sender<Arc<UnitEvent>>>,
    last: HashMap<String, &'static str>,
}

impl Hub {
    pub fn new() -> Hub {
        let (sender, _) = broadcast::channel(QUEUE);
        Hub {
            sender: Some(sender),
            last: HashMap::new(),
        }
    }

    /// The handle the connections subscribe with.
    pub fn subscribe(&self) -> Option<Subscribe> {
        self.sender.as_ref().map(broadcast::Sender::downgrade)
    }

    /// Records that `unit` is now as `status` says, and tells the subscribers if its state
    /// changed (or, in the same state, its process did).
    pub fn publish(&mut self, unit: &str, status: &UnitStatus, clocks: Clocks) {
        let new = status.state.as_str();
        let old = self
            .last
            .insert(unit.to_string(), new)
            .unwrap_or("inactive");
        let Some(sender) = &self.sender else { return };
        if sender.receiver_count() == 0 {
            return;
        }
        let event = UnitEvent {
            time: clocks.format(status.since),
            unit: unit.to_string(),
            old: old.to_string(),
            new: new.to_string(),
            pid: status.pid,
            reason: status.reason.clone(),
        };
        let _ = sender.send(Arc::new(event));
    }

    /// Forgets a unit a reload removed.
    pub fn forget(&mut self, unit: &str) {
        self.last.remove(unit);
    }
}
