//! The daemon's answer to `logs`: the last lines, then, with `follow`, every new line until the
//! client hangs up.
//!
//! The connection asks the daemon task whether the names are units (so `logs` and `status`
//! agree on what exists), then reads the files and follows the units' logs itself: a follower
//! costs the daemon task nothing but a bounded queue per connection.

use super::protocol::{Command, ErrorKind, LogEvent, LogLine, Response};
use super::server::{Envelope, Peer, STALL, take_turn, watch};
use crate::logs::{self, Followed, Registry};
use serde::Serialize;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Batches of lines queued for one follower; further ones are skipped (and counted). Each is
/// what one read of a unit's output brought (up to a pipe's worth): kept small, since a
/// follower that does not read holds its queue's batches for as long as it stalls.
const FOLLOW_BATCHES: usize = 8;

/// A follower that missed more lines than this in one go is dropped: it reads far slower than
/// the unit writes, and `logs -f` is no use to it any more.
const MAX_BEHIND: u64 = 10_000;

/// What a `logs` answer uses of its connection.
pub struct Connection<'a> {
    pub daemon: &'a mpsc::Sender<Envelope>,
    pub registry: &'a Registry,
    pub reader: &'a mut BufReader<OwnedReadHalf>,
    pub write: &'a mut OwnedWriteHalf,
    /// The turns of non-root peers' answers (`None` for root): the last lines wait for one.
    pub answers: &'a Option<Arc<Semaphore>>,
}

/// Answers a `logs` request. `Ok(true)`: the answer is complete and the connection may carry
/// another request; `Ok(false)`: the client hung up.
pub async fn answer(command: Command, connection: Connection<'_>) -> std::io::Result<bool> {
    let Connection {
        daemon,
        registry,
        reader,
        write,
        answers,
    } = connection;
    let Command::Logs {
        names,
        lines,
        follow,
    } = command.clone()
    else {
        return Ok(true);
    };
    // The last lines may be MiBs: read and sent in this peer's turn.
    let turn = take_turn(answers).await?;
    let (tx, rx) = oneshot::channel();
    let shutting_down =
        || Response::error(ErrorKind::ShuttingDown, "svcd is shutting down", vec![]);
    let answer = match daemon.send(Envelope { command, reply: tx }).await {
        Err(_) => shutting_down(),
        Ok(()) => rx.await.unwrap_or_else(|_| shutting_down()),
    };
    send(write, &answer).await?;
    if !answer.ok {
        return Ok(true);
    }
    let (follow_tx, mut follow_rx) = mpsc::channel::<Followed>(FOLLOW_BATCHES);
    let mut lists = Vec::new();
    for name in &names {
        let log = registry.log(name);
        // Registering and reading the files happen with no await in between, on svcd's one
        // thread: no line can be written in between, so none is sent twice or missed.
        let mut log = logs::lock(&log);
        if follow {
            log.follow(follow_tx.clone());
        }
        lists.push(logs::tail::last_lines(name, &log.paths(), lines));
    }
    drop(follow_tx);
    for line in logs::tail::interleave(lists, lines) {
        send(write, &event(line)).await?;
    }
    if !follow {
        send(write, &end(None)).await?;
        return Ok(true);
    }
    drop(turn);
    let mut watching = true;
    loop {
        tokio::select! {
            line = follow_rx.recv() => match line {
                Some(followed) => {
                    if followed.skipped > MAX_BEHIND {
                        let why = format!(
                            "svcd stopped following: this reader fell {} lines behind",
                            followed.skipped
                        );
                        let _ = tokio::time::timeout(STALL, send(write, &end(Some(why)))).await;
                        return Ok(false);
                    }
                    match tokio::time::timeout(STALL, forward(write, &followed)).await {
                        Ok(written) => written?,
                        Err(_) => return Ok(false),
                    }
                }
                None => return Ok(false),
            },
            // Anything from the client, or its hanging up, ends the follow; a client that only
            // shut its write side goes on reading.
            peer = watch(reader), if watching => match peer {
                Peer::HalfClosed => watching = false,
                Peer::Gone | Peer::Spoke => return Ok(false),
            },
        }
    }
}

/// Writes a followed batch as the `log` lines the client gets, a few KiB at a time: a reader
/// that does not keep up holds that much in svcd, not the whole batch encoded.
async fn forward(write: &mut OwnedWriteHalf, followed: &Followed) -> std::io::Result<()> {
    const CHUNK: usize = 16 * 1024;
    let mut skipped = followed.skipped;
    let batch = &followed.batch;
    let mut bytes = Vec::with_capacity(CHUNK);
    for text in batch.text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut line = logs::tail::parse(&batch.unit, text);
        line.skipped = std::mem::take(&mut skipped);
        serde_json::to_writer(&mut bytes, &event(line)).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        if bytes.len() >= CHUNK {
            write.write_all(&bytes).await?;
            bytes.clear();
        }
    }
    write.write_all(&bytes).await
}

pub(super) fn end(message: Option<String>) -> LogEvent {
    LogEvent {
        log: None,
        event: None,
        end: true,
        message,
    }
}

fn event(line: LogLine) -> LogEvent {
    LogEvent {
        log: Some(line),
        event: None,
        end: false,
        message: None,
    }
}

/// Writes `value`; a peer that does not take it within [`STALL`] is given up on.
pub(super) async fn send(
    write: &mut OwnedWriteHalf,
    value: &impl Serialize,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    match tokio::time::timeout(STALL, write.write_all(&bytes)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
