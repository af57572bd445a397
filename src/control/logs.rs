//! The daemon's answer to `logs`: the last lines, then, with `follow`, every new line until the
//! client hangs up.
//!
//! The connection asks the daemon task whether the names are units (so `logs` and `status`
//! agree on what exists), then reads the files and follows the units' logs itself: a follower
//! costs the daemon task nothing but a bounded queue per connection.

use super::protocol::{Command, ErrorKind, LogEvent, LogLine, Response};
use super::server::Envelope;
use crate::logs::{self, FOLLOW_QUEUE, Followed, Registry};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

/// Answers a `logs` request. `Ok(true)`: the answer is complete and the connection may carry
/// another request; `Ok(false)`: the client hung up.
pub async fn answer(
    command: Command,
    daemon: &mpsc::Sender<Envelope>,
    registry: &Registry,
    reader: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> std::io::Result<bool> {
    let Command::Logs {
        names,
        lines,
        follow,
    } = command.clone()
    else {
        return Ok(true);
    };
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
    let (follow_tx, mut follow_rx) = mpsc::channel::<Followed>(FOLLOW_QUEUE);
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
        let end = LogEvent {
            log: None,
            end: true,
        };
        send(write, &end).await?;
        return Ok(true);
    }
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            line = follow_rx.recv() => match line {
                Some(followed) => {
                    let mut skipped = followed.skipped;
                    let batch = &followed.batch;
                    let mut bytes = Vec::new();
                    for text in batch.text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        let mut line = logs::tail::parse(&batch.unit, text);
                        line.skipped = std::mem::take(&mut skipped);
                        serde_json::to_writer(&mut bytes, &event(line)).map_err(std::io::Error::other)?;
                        bytes.push(b'\n');
                    }
                    write.write_all(&bytes).await?;
                }
                None => return Ok(false),
            },
            // Anything from the client, or its hanging up, ends the follow.
            _ = reader.get_mut().read(&mut probe) => return Ok(false),
        }
    }
}

fn event(line: LogLine) -> LogEvent {
    LogEvent {
        log: Some(line),
        end: false,
    }
}

async fn send(write: &mut OwnedWriteHalf, value: &impl Serialize) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}
