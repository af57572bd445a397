//! The daemon's answer to `events`: after `ok`, each unit's change of state as the daemon
//! publishes it, until the client hangs up or svcd exits.

use super::logs::{end, send};
use super::protocol::{LogEvent, UnitEvent};
use super::server::{Peer, watch};
use std::sync::Arc;
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// Sends every change `events` brings. Ends when the client hangs up or sends anything, when
/// svcd drops the queue (it exits), or, with an `end` saying so, when the client fell more
/// than the queue's length behind.
pub async fn follow(
    mut events: Receiver<Arc<UnitEvent>>,
    reader: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut watching = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    let line = LogEvent {
                        log: None,
                        event: Some(UnitEvent::clone(&event)),
                        end: false,
                        message: None,
                    };
                    send(write, &line).await?;
                }
                Err(RecvError::Lagged(missed)) => {
                    let why = format!(
                        "dropped: {missed} changes were missed (svc read too slowly); run `svc events` again"
                    );
                    return send(write, &end(Some(why))).await;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            peer = watch(reader), if watching => match peer {
                Peer::HalfClosed => watching = false,
                Peer::Gone | Peer::Spoke => return Ok(()),
            },
        }
    }
}
