//! The wire format: one JSON object per line each way, a request then its response.
//!
//! Every request carries `v`, the protocol version; a daemon answers a version it does not speak
//! with an `unsupported_version` error instead of guessing.

use serde::{Deserialize, Serialize};

/// The version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request: `{"v":1,"cmd":"status","names":["chat"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Units by name; empty: all.
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    List,
    Start {
        names: Vec<String>,
        /// Answer only once every unit is running (or failed to).
        #[serde(default)]
        wait: bool,
    },
    Stop {
        names: Vec<String>,
        #[serde(default)]
        wait: bool,
    },
    Restart {
        names: Vec<String>,
        #[serde(default)]
        wait: bool,
    },
    /// Answer once every unit is in `state` (`ready` is also accepted). The daemon answers when
    /// it happens; the client never polls.
    Wait {
        names: Vec<String>,
        state: String,
    },
    /// Re-read the unit files: start new, stop removed, restart changed. An invalid file
    /// changes nothing.
    Reload,
    /// Stop everything, answer, exit.
    Shutdown,
    /// The last `lines` lines of the units' logs, interleaved by time, each as a [`LogEvent`]
    /// after the `ok` answer; then `{"end":true}`, or with `follow`, every new line as it comes
    /// until the client closes the connection.
    Logs {
        names: Vec<String>,
        #[serde(default = "default_log_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
    },
}

fn default_log_lines() -> usize {
    10
}

impl Command {
    /// Whether the command changes something, so needs an admin peer.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Command::Start { .. }
                | Command::Stop { .. }
                | Command::Restart { .. }
                | Command::Shutdown
        )
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<UnitInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// A line for the user (e.g. what a reload changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The host's memory, in answers to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Box<HostInfo>>,
}

/// The host's memory and pressure, as `status` shows it in one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Bytes; used memory is MemTotal − MemAvailable.
    pub mem_total: u64,
    pub mem_used: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    /// `avg10` of /proc/pressure/memory, in percent; null where the kernel has no PSI.
    pub pressure_some_avg10: Option<f64>,
    pub pressure_full_avg10: Option<f64>,
    /// The host swap policy's level: `ok`, `warn` or `critical`.
    pub level: String,
    /// The last warning of the host policy, with its time (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: ErrorKind,
    pub message: String,
    /// The units concerned (e.g. the unknown names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, or not a request this version knows.
    BadRequest,
    UnsupportedVersion,
    UnknownUnit,
    /// The peer may read but not change.
    PermissionDenied,
    /// The command ran but a unit did not get where it was asked to (start failed, broken unit).
    Failed,
    ShuttingDown,
}

/// One unit as `status --json` prints it. Field names are fixed by DESIGN.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    pub state: String,
    pub ready: bool,
    pub pid: Option<u32>,
    /// RFC 3339.
    pub since: String,
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    pub memory: MemoryInfo,
    #[serde(default)]
    pub description: Option<String>,
    /// Why the unit is in its state.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub enabled: bool,
    /// The argv (not the environment: secrets stay put).
    #[serde(default)]
    pub command: Vec<String>,
    /// In `backoff`: when the next start is due (RFC 3339).
    #[serde(default)]
    pub next_start: Option<String>,
    /// Spawns since svcd started.
    #[serde(default)]
    pub starts: u64,
    /// A broken unit file: every error, `file:line:column: key ...: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Seconds the unit has been in its state, as the daemon saw it when answering.
    #[serde(default)]
    pub since_secs: f64,
    /// The unit's own words about itself: its last sd_notify `STATUS=` of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// The last lines the unit printed (at most 10), oldest first, as in its log file:
    /// `TIME STREAM TEXT`.
    #[serde(default)]
    pub logs: Vec<String>,
    /// Why the unit's log file cannot be written, while it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    /// Its main process is stopped (SIGSTOP, SIGTSTP, ...): `state` stays `running`.
    #[serde(default)]
    pub paused: bool,
    /// The signal that stopped it, while `paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
}

/// One line of a unit's log, as `logs` sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub unit: String,
    /// RFC 3339, UTC, with milliseconds.
    pub time: String,
    /// `out` or `err`.
    pub stream: String,
    pub line: String,
    /// Lines left out just before this one because the client read too slowly (`follow`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What follows the `ok` answer to `logs`: `{"log":{...}}` per line, `{"end":true}` last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogLine>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
}

/// `{"code": 1, "at": ..., "reason": ...}` or `{"signal": "SIGKILL", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub rss: u64,
    pub swap: u64,
}

impl Response {
    pub fn ok(units: Option<Vec<UnitInfo>>) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: true,
            units,
            error: None,
            message: None,
            host: None,
        }
    }

    pub fn with_message(mut self, message: String) -> Response {
        self.message = Some(message);
        self
    }

    pub fn error(kind: ErrorKind, message: impl Into<String>, names: Vec<String>) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            units: None,
            message: None,
            error: Some(ErrorBody {
                kind,
                message: message.into(),
                names,
            }),
            host: None,
        }
    }
}

/// Parses one request line; a bad line becomes the error response to send back.
pub fn parse_request(line: &str) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        Response::error(
            ErrorKind::BadRequest,
            format!("malformed request: {e}"),
            vec![],
        )
    })?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(Response::error(
                ErrorKind::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this svcd speaks {PROTOCOL_VERSION}"
                ),
                vec![],
            ));
        }
        None => {
            return Err(Response::error(
                ErrorKind::BadRequest,
                "malformed request: missing the protocol version `v`",
                vec![],
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| {
        Response::error(
            ErrorKind::BadRequest,
            format!("malformed request: {e}"),
            vec![],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let req = Request {
            v: 1,
            command: Command::Start {
                names: vec!["chat".into()],
                wait: true,
            },
        };
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"cmd":"start","names":["chat"],"wait":true}"#
        );
        assert_eq!(parse_request(&line), Ok(req));
    }

    #[test]
    fn bad_requests_get_error_responses() {
        for (line, kind) in [
            ("not json", ErrorKind::BadRequest),
            (r#"{"cmd":"list"}"#, ErrorKind::BadRequest),
            (r#"{"v":9,"cmd":"list"}"#, ErrorKind::UnsupportedVersion),
            (r#"{"v":1,"cmd":"explode"}"#, ErrorKind::BadRequest),
            (r#"{"v":1,"cmd":"start"}"#, ErrorKind::BadRequest),
            (
                r#"{"v":1,"cmd":"start","names":"chat"}"#,
                ErrorKind::BadRequest,
            ),
        ] {
            let err = parse_request(line).expect_err(line);
            assert_eq!(err.error.map(|e| e.kind), Some(kind), "{line}");
        }
    }
}
