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
    List {},
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
    /// No names: re-read the unit files (start new, stop removed, restart changed, update in
    /// place what only svcd reads); an invalid file changes nothing. With names: ask those
    /// running units to reload their configuration (`reload.signal` / `reload.exec`), and
    /// answer once they did or failed to.
    Reload {
        #[serde(default)]
        names: Vec<String>,
    },
    /// Send `signal` (`SIGHUP`, `HUP` or a number) to each unit's process group, or with
    /// `main` to its main process only.
    Kill {
        names: Vec<String>,
        #[serde(default = "default_kill_signal")]
        signal: String,
        #[serde(default)]
        main: bool,
    },
    /// Stop everything, answer, exit.
    Shutdown {},
    /// Answer, then re-execute svcd's binary on disk with the same pid, every unit kept
    /// running (their output pipes passed across the `exec`).
    Upgrade {},
    /// Every unit's state, restarts, last exit and memory, the host's memory and svcd's own,
    /// as Prometheus text in the answer's `metrics`.
    Metrics {},
    /// Every unit's state changes as they happen: after the `ok` answer, `{"event":{...}}` per
    /// change ([`UnitEvent`]) until the client closes the connection or svcd exits; a client
    /// that falls too far behind gets `{"end":true,"message":...}` and is dropped.
    Events {},
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

// The commands without fields are empty struct variants (`List {}`), not unit variants: serde
// ignores any field next to the tag of a unit variant, so `{"cmd":"shutdown","names":["x"]}`
// would shut everything down instead of being refused.

fn default_kill_signal() -> String {
    "SIGTERM".to_string()
}

fn default_log_lines() -> usize {
    10
}

/// Most lines one `logs` request may ask for (`lines`).
pub const MAX_LOG_LINES: usize = 10_000;

/// Most lines one `logs` request may make svcd read from the files: `lines` per named unit.
pub const MAX_LOG_LINES_READ: usize = 50_000;

/// Who may send a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Anyone who can open the socket.
    Read,
    /// Root, svcd's own user, members of the admin group.
    Admin,
}

impl Command {
    /// What the peer needs to send this command: the one place that says it. No wildcard, so a
    /// new command cannot be added without deciding.
    pub fn permission(&self) -> Permission {
        match self {
            Command::Status { .. }
            | Command::List {}
            | Command::Metrics {}
            | Command::Events {}
            | Command::Wait { .. }
            | Command::Logs { .. } => Permission::Read,
            Command::Start { .. }
            | Command::Stop { .. }
            | Command::Restart { .. }
            | Command::Reload { .. }
            | Command::Kill { .. }
            | Command::Shutdown {}
            | Command::Upgrade {} => Permission::Admin,
        }
    }

    /// The unit names the command carries (none for `list`, `shutdown`).
    fn names_mut(&mut self) -> Option<&mut Vec<String>> {
        match self {
            Command::Status { names }
            | Command::Start { names, .. }
            | Command::Stop { names, .. }
            | Command::Restart { names, .. }
            | Command::Wait { names, .. }
            | Command::Kill { names, .. }
            | Command::Logs { names, .. }
            | Command::Reload { names } => Some(names),
            Command::List {}
            | Command::Shutdown {}
            | Command::Upgrade {}
            | Command::Metrics {}
            | Command::Events {} => None,
        }
    }

    /// Bounds the work the command asks for: each name once (in the order first given), and a
    /// `logs` request within [`MAX_LOG_LINES`] and [`MAX_LOG_LINES_READ`].
    fn bound(mut self) -> Result<Command, String> {
        if let Some(names) = self.names_mut() {
            let mut seen = std::collections::HashSet::new();
            names.retain(|name| seen.insert(name.clone()));
        }
        if let Command::Logs { names, lines, .. } = &self {
            if *lines > MAX_LOG_LINES {
                return Err(format!("`lines` is {lines}; at most {MAX_LOG_LINES}"));
            }
            if names.len().saturating_mul(*lines) > MAX_LOG_LINES_READ {
                return Err(format!(
                    "{} units × {lines} lines is more than {MAX_LOG_LINES_READ} lines to read; ask for fewer lines or fewer units",
                    names.len()
                ));
            }
        }
        Ok(self)
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
    pub error: Option<Box<ErrorBody>>,
    /// A line for the user (e.g. what a reload changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The host's memory, in answers to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Box<HostInfo>>,
    /// In answers to `reload` of the unit files: the units it started, stopped, restarted,
    /// and updated in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reloaded: Option<Box<ReloadChanges>>,
    /// In answers to `metrics`: the Prometheus text (svc(1) lists the names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// What a `reload` of the unit files did, unit by unit (names sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadChanges {
    /// New units, started (enabled ones) or just added.
    #[serde(default)]
    pub started: Vec<String>,
    /// New units that are not enabled: known now, not started.
    #[serde(default)]
    pub added: Vec<String>,
    /// Units whose file was removed: stopped and forgotten.
    #[serde(default)]
    pub stopped: Vec<String>,
    /// Changed units that were running, whose change reaches the process: restarted.
    #[serde(default)]
    pub restarted: Vec<String>,
    /// Changed units whose change only svcd reads (or that were not running): new settings
    /// taken in place, the process left alone.
    #[serde(default)]
    pub updated: Vec<String>,
}

/// A unit's last `svc reload NAME` of its current run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadInfo {
    /// When it ended (RFC 3339).
    pub at: String,
    pub ok: bool,
    /// Why it failed, or how it was done (`SIGHUP sent`, `` `cmd` exited 0 ``).
    pub reason: String,
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
    /// svcd's own resident memory, in bytes (`svc top`'s header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svcd_rss: Option<u64>,
    /// How old these figures are, in milliseconds, as a unit's `memory.age_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
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
    /// The peer has too many connections open already (non-root peers are capped, so that
    /// svcd always keeps descriptors for its units and for root).
    Busy,
}

/// One unit as `status --json` prints it. Field names are fixed by DESIGN.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// CPU seconds (user + system) of the unit's processes and of the children they reaped.
    #[serde(default)]
    pub cpu: f64,
    #[serde(default)]
    pub description: Option<String>,
    /// Why the unit is in its state.
    #[serde(default)]
    pub reason: String,
    /// What kind of reason `reason` is, for programs (`operator`, `exited`, `start_limit`,
    /// ...; the list is in docs/protocol.md). Stable where `reason`'s words are not.
    #[serde(default)]
    pub reason_kind: String,
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
    /// The last reload of the configuration of this run (`svc reload NAME`, or the unit's own
    /// sd_notify `RELOADING=1` … `READY=1`); null if none.
    #[serde(default)]
    pub last_reload: Option<ReloadInfo>,
    /// Its process was started by a previous svcd and taken back (after svcd's crash or an
    /// upgrade): the same pid, still running.
    #[serde(default)]
    pub adopted: bool,
    /// `restart.overlap`: the old run's main process while it runs beside the new one (`pid`);
    /// null otherwise.
    #[serde(default)]
    pub old_pid: Option<u32>,
    /// A scheduled unit's schedule and runs; absent for a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleInfo>,
}

/// `schedule` of a scheduled unit in `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// Its calendar expressions, as written.
    #[serde(default)]
    pub calendar: Vec<String>,
    /// `every`, as a duration (`12h`).
    #[serde(default)]
    pub every: Option<String>,
    /// When the next run is due (RFC 3339), random delay included; null: never again.
    #[serde(default)]
    pub next_run: Option<String>,
    /// Seconds from the answer to the next run.
    #[serde(default)]
    pub next_run_secs: Option<f64>,
    /// The last finished run; null before the first.
    #[serde(default)]
    pub last_run: Option<RunInfo>,
    /// Runs the schedule started since svcd started.
    #[serde(default)]
    pub runs: u64,
    /// Due runs skipped because the previous one was still going.
    #[serde(default)]
    pub skipped: u64,
    /// A due run waits for the current one to end (`overlap = "queue"`).
    #[serde(default)]
    pub queued: bool,
    /// `skip`, `queue` or `kill`.
    #[serde(default)]
    pub overlap: String,
}

/// One finished run of a scheduled unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// When it started (RFC 3339).
    pub start: String,
    /// How long it ran, in seconds.
    pub duration_secs: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
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

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A unit's change of state, as `events` sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitEvent {
    /// When the new state began (RFC 3339).
    pub time: String,
    pub unit: String,
    /// The state it was in, as last sent (`inactive` before its first change).
    pub old: String,
    pub new: String,
    pub pid: Option<u32>,
    /// Why it is in the new state.
    pub reason: String,
}

/// What follows the `ok` answer to `logs`: `{"log":{...}}` per line, `{"end":true}` last; and
/// to `events`: `{"event":{...}}` per change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<UnitEvent>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// With `end` on a followed stream: why svcd ended it (the follower fell too far behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    /// What ended the run, for programs (`exited`, `killed`, `stop_timeout`, `spawn_failed`,
    /// `memory_limit`, `health_check`, ...).
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub rss: u64,
    pub swap: u64,
    /// Where the figures come from, and who enforces the limits: `cgroup` (the unit's own
    /// memory cgroup: the kernel too) or `sampled` (its processes in /proc, svcd alone).
    #[serde(default)]
    pub mode: MemoryMode,
    /// How old `rss` and `swap` are, in milliseconds: svcd answers from its last reading of
    /// the unit while it is younger than 10 s (and one older than its sampling interval is
    /// taken again after the answer); absent where it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// The steps `memory.on_limit` took before the limit in the unit's last run (`notify`,
    /// `reclaim`); absent when none was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderInfo>,
    /// The steps the host policy took for host memory pressure in the unit's last run
    /// (`memory.on_pressure`: `notify`, `reclaim`), with their `cause`; absent when none was
    /// taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ladder: Option<LadderInfo>,
}

/// [`MemoryInfo::ladder`]: what the memory ladder did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderInfo {
    /// Times the unit was told through `MEMORY_PRESSURE_WATCH` (`ladder`: for its use crossing
    /// 90% of `memory.max`).
    pub told: u32,
    /// When it was last told (RFC 3339), and its memory use then (bytes).
    pub last_told: Option<String>,
    pub last_told_bytes: Option<u64>,
    /// `ladder` only, cgroup v2: times the unit was told of memory pressure in its own cgroup
    /// (the PSI trigger on its `memory.pressure` fired), the last time (RFC 3339) and its
    /// memory use then (bytes).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub pressure_told: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pressure_told: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pressure_told_bytes: Option<u64>,
    /// Times `reclaim` was due.
    pub reclaims: u32,
    /// When the last one ran (RFC 3339).
    pub last_reclaim: Option<String>,
    /// Bytes its resident memory went down by, and how long paging it out took; null when
    /// it was skipped.
    pub last_reclaim_freed: Option<u64>,
    pub last_reclaim_ms: Option<u64>,
    /// Why the last reclaim did nothing (e.g. too little swap free).
    pub last_reclaim_skipped: Option<String>,
    /// `host_ladder` only: the host's level and what reached it at the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// [`MemoryInfo::mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    #[default]
    Sampled,
    Cgroup,
    /// A cgroup v2 (`"cgroup2"`; `"cgroup"` is v1's).
    Cgroup2,
}

impl MemoryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryMode::Sampled => "sampled",
            MemoryMode::Cgroup => "cgroup",
            MemoryMode::Cgroup2 => "cgroup2",
        }
    }
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
            reloaded: None,
            metrics: None,
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
            error: Some(Box::new(ErrorBody {
                kind,
                message: message.into(),
                names,
            })),
            host: None,
            reloaded: None,
            metrics: None,
        }
    }
}

/// Parses one request line; a bad line becomes the error response to send back. Strict: unknown
/// fields and fields given twice are errors, names are de-duplicated, `logs` is bounded.
pub fn parse_request(line: &str) -> Result<Request, Response> {
    let bad = |why: String| {
        Response::error(
            ErrorKind::BadRequest,
            format!("malformed request: {why}"),
            vec![],
        )
    };
    // Checked before anything is built from the line: a hostile line costs no allocation.
    serde_json::from_str::<Shape>(line).map_err(|e| bad(e.to_string()))?;
    let version: Version = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    match version.v.as_ref().and_then(serde_json::Value::as_u64) {
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
    let request: Request = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    Ok(Request {
        v: request.v,
        command: request.command.bound().map_err(bad)?,
    })
}

/// Most elements of an array in a request (`names`).
pub const MAX_NAMES: usize = 4096;

/// The version of a request, whatever else it holds.
#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    v: Option<serde_json::Value>,
}

/// Any JSON value, refused when an object has a key twice (a JSON parser keeps the last of
/// them, so `{"cmd":"status","cmd":"shutdown"}` would mean whatever the last one says, and a
/// filter that looked at the first would be fooled), or an array is longer than [`MAX_NAMES`].
struct Shape;

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Shape)
    }
}

impl<'de> serde::de::Visitor<'de> for Shape {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        let mut count = 0;
        while seq.next_element::<Shape>()?.is_some() {
            count += 1;
            if count > MAX_NAMES {
                return Err(serde::de::Error::custom(format!(
                    "more than {MAX_NAMES} names"
                )));
            }
        }
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "field `{key}` given twice"
                )));
            }
            map.next_value::<Shape>()?;
        }
        Ok(self)
    }
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
    fn kill_defaults_to_sigterm_on_the_group_and_needs_an_admin() {
        let request = parse_request(r#"{"v":1,"cmd":"kill","names":["app","app"]}"#);
        let expected = Command::Kill {
            names: vec!["app".into()],
            signal: "SIGTERM".into(),
            main: false,
        };
        assert_eq!(request.map(|r| r.command), Ok(expected.clone()));
        assert_eq!(expected.permission(), Permission::Admin);
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

    /// Every command, with a field it does not have: refused, never acted on.
    #[test]
    fn unknown_fields_are_refused_for_every_command() {
        for (cmd, fields) in [
            (r#""cmd":"status""#, &["names"][..]),
            (r#""cmd":"list""#, &[]),
            (r#""cmd":"start","names":["a"]"#, &["names", "wait"]),
            (r#""cmd":"stop","names":["a"]"#, &["names", "wait"]),
            (r#""cmd":"restart","names":["a"]"#, &["names", "wait"]),
            (
                r#""cmd":"wait","names":["a"],"state":"running""#,
                &["names", "state"],
            ),
            (r#""cmd":"reload""#, &["names"]),
            (r#""cmd":"shutdown""#, &[]),
            (
                r#""cmd":"logs","names":["a"]"#,
                &["names", "lines", "follow"],
            ),
        ] {
            let good = format!(r#"{{"v":1,{cmd}}}"#);
            assert!(parse_request(&good).is_ok(), "{good}");
            for (key, value) in [("bogus", "1"), ("names", r#"["hello"]"#), ("wait", "true")] {
                if fields.contains(&key) {
                    continue;
                }
                let line = format!(r#"{{"v":1,{cmd},"{key}":{value}}}"#);
                let err = parse_request(&line).expect_err(&line);
                assert_eq!(
                    err.error.map(|e| e.kind),
                    Some(ErrorKind::BadRequest),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        for line in [
            r#"{"v":1,"cmd":"status","cmd":"shutdown"}"#,
            r#"{"v":1,"v":1,"cmd":"list"}"#,
            r#"{"v":1,"cmd":"stop","names":["a"],"names":["b"]}"#,
            r#"{"v":1,"cmd":"logs","names":["a"],"lines":1,"lines":2}"#,
        ] {
            let err = parse_request(line).expect_err(line);
            let error = err.error.expect("an error");
            assert_eq!(error.kind, ErrorKind::BadRequest, "{line}");
            assert!(error.message.contains("twice"), "{line}: {}", error.message);
        }
    }

    #[test]
    fn names_are_deduplicated_and_logs_bounded() {
        let names = vec!["chat"; 300].join(r#"",""#);
        let line = format!(r#"{{"v":1,"cmd":"status","names":["{names}","b","chat"]}}"#);
        let request = parse_request(&line).expect("status");
        assert_eq!(
            request.command,
            Command::Status {
                names: vec!["chat".into(), "b".into()]
            }
        );
        let line = format!(r#"{{"v":1,"cmd":"logs","names":["{names}"],"lines":10000}}"#);
        assert!(parse_request(&line).is_ok());
        let names = vec!["a"; MAX_NAMES + 1].join(r#"",""#);
        let line = format!(r#"{{"v":1,"cmd":"status","names":["{names}"]}}"#);
        assert!(parse_request(&line).is_err());
        for line in [
            r#"{"v":1,"cmd":"logs","names":["a"],"lines":10001}"#,
            r#"{"v":1,"cmd":"logs","names":["a","b","c","d","e","f"],"lines":10000}"#,
        ] {
            let err = parse_request(line).expect_err(line);
            assert_eq!(err.error.map(|e| e.kind), Some(ErrorKind::BadRequest));
        }
    }

    #[test]
    fn read_only_commands_are_exactly_the_ones_that_change_nothing() {
        let read = |line: &str| parse_request(line).expect(line).command.permission();
        assert_eq!(read(r#"{"v":1,"cmd":"status"}"#), Permission::Read);
        assert_eq!(read(r#"{"v":1,"cmd":"list"}"#), Permission::Read);
        assert_eq!(read(r#"{"v":1,"cmd":"metrics"}"#), Permission::Read);
        assert_eq!(
            read(r#"{"v":1,"cmd":"wait","names":["a"],"state":"running"}"#),
            Permission::Read
        );
        assert_eq!(
            read(r#"{"v":1,"cmd":"logs","names":["a"]}"#),
            Permission::Read
        );
        assert_eq!(read(r#"{"v":1,"cmd":"reload"}"#), Permission::Admin);
        assert_eq!(read(r#"{"v":1,"cmd":"shutdown"}"#), Permission::Admin);
        for cmd in ["start", "stop", "restart"] {
            let line = format!(r#"{{"v":1,"cmd":"{cmd}","names":["a"]}}"#);
            assert_eq!(read(&line), Permission::Admin, "{cmd}");
        }
    }
}
