//! The `svc` command: parse, ask svcd (or check files offline), print, map to exit codes.

mod calendar;
mod complete;
mod health;
mod pretty;
mod render;
mod top;
mod top_keys;
mod top_model;
mod top_view;
mod upgrade;

#[cfg(test)]
mod quick_tests;

use crate::control::client::{self, ClientError};
use crate::control::{Command, ErrorKind, Response};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes DESIGN.md fixes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_RUNNING: u8 = 3;
    pub const UNKNOWN_UNIT: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(name = "svc", version, about = "Control svcd, the service manager")]
pub struct Args {
    /// The control socket (default: $SVC_SOCKET, else <state-dir>/svcd.sock).
    // The text is also `--help`'s, where <state-dir> reads as in svcd's own help.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Give up on svcd's answer after this long (e.g. `30s`); exit 1. Default: $SVC_TIMEOUT,
    /// else 10s; none for `logs -f`, `shutdown`, `wait`, and `start`/`stop`/`restart` waiting
    /// for their units.
    #[arg(long, global = true, value_name = "DUR")]
    timeout: Option<String>,
    /// Print nothing on success of a command that changes something (`start`, `stop`, `restart`
    /// print a line per unit on a terminal; `reload` what changed).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Sub,
}

/// Waiting for an answer of svcd, by default, for the requests that should be answered at once.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for svcd's answer.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// `--timeout`.
    flag: Option<Duration>,
    /// `$SVC_TIMEOUT`, else [`DEFAULT_TIMEOUT`].
    default: Duration,
}

impl Timeouts {
    fn parse(flag: Option<&str>) -> Result<Timeouts, String> {
        let parse = |what: &str, text: &str| {
            crate::unit::duration::parse_duration(text)
                .map(|d| d.max(Duration::from_millis(1)))
                .map_err(|e| format!("{what}: {e}"))
        };
        let flag = flag.map(|text| parse("--timeout", text)).transpose()?;
        let default = match std::env::var("SVC_TIMEOUT") {
            Ok(text) if !text.is_empty() => parse("SVC_TIMEOUT", &text)?,
            _ => DEFAULT_TIMEOUT,
        };
        Ok(Timeouts { flag, default })
    }

    /// For a request svcd answers at once.
    fn quick(&self) -> Option<Duration> {
        Some(self.flag.unwrap_or(self.default))
    }

    /// For a request whose answer waits for units, or for ever: only `--timeout` bounds it.
    fn slow(&self) -> Option<Duration> {
        self.flag
    }
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// State, pid, since, restarts, last exit of units (all when none is named).
    Status {
        /// Units to show (default: all).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Print the units as a JSON array, not as text.
        #[arg(long, conflicts_with = "check")]
        json: bool,
        /// Exit 0 when every enabled (or named) unit is running and ready, else 3 with one line
        /// saying which is not: a liveness probe.
        #[arg(long)]
        check: bool,
    },
    /// One line per unit.
    List {
        /// Print the units as a JSON array, not as text.
        #[arg(long)]
        json: bool,
    },
    /// Start units and wait until they run.
    Start {
        /// Units to start.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Answer once asked, without waiting for the units to run.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop units and wait until they are stopped.
    Stop {
        /// Units to stop.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Answer once asked, without waiting for the units to stop.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop then start units, and wait until they run again.
    Restart {
        /// Units to restart.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Answer once asked, without waiting for the units to run again.
        #[arg(long)]
        no_wait: bool,
    },
    /// Validate unit files or directories offline (default: /etc/svc/units).
    Check {
        /// Unit files or directories of them.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show what calendar expressions mean (systemd's OnCalendar syntax): the normalized form
    /// and the next due times of each; exit 1 if one is invalid. Offline, no daemon needed.
    Calendar {
        /// Expressions, each one argument: `svc calendar 'Mon..Fri 09:00' daily`.
        #[arg(required = true, value_name = "EXPR")]
        exprs: Vec<String>,
        /// The zone to read them in (default: the host's local time zone, or `TZ`).
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
        /// How many due times to show of each.
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 3,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        count: u16,
    },
    /// Block until every named unit is in STATE (inactive, starting, running, ready, stopping,
    /// backoff, failed, exited); `--timeout DUR` gives up after DUR (exit 1).
    Wait {
        /// Units to wait for.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// The state to wait for.
        #[arg(long = "for", value_name = "STATE", value_parser = [
            "inactive", "starting", "running", "ready", "stopping", "backoff", "failed",
            "exited",
        ])]
        state: String,
    },
    /// No names: re-read the unit files (start new units, stop removed ones, restart changed
    /// ones whose change reaches the process, update the others in place). With names: ask
    /// those running units to reload their configuration (`reload.signal` / `reload.exec`).
    Reload {
        /// Running units to ask to reload their configuration (none: re-read the unit files).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Stop every unit and end svcd.
    Shutdown,
    /// Re-execute svcd's binary on disk in place (same pid), keeping every unit running; wait
    /// until the new svcd answers.
    Upgrade,
    /// Send a signal to units' process groups (`--main`: to their main process only).
    Kill {
        /// Units to signal.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// SIGHUP, HUP or a number.
        #[arg(short, long, value_name = "SIG", default_value = "SIGTERM")]
        signal: String,
        /// Only the main process, not its whole process group.
        #[arg(long)]
        main: bool,
    },
    /// Every unit's state, restarts, last exit and memory, the host's memory and svcd's own, as
    /// Prometheus text (svc(1) lists the names).
    Metrics,
    /// Print each unit's change of state as it happens (time, unit, old -> new state, pid,
    /// reason), until interrupted or svcd exits.
    Events {
        /// One JSON object a line (`time`, `unit`, `old`, `new`, `pid`, `reason`).
        #[arg(long)]
        json: bool,
    },
    /// A live view of the units (state, since, restarts, CPU, memory, last log line) and of the
    /// host; keys sort, filter, restart, stop, start and show logs (`?` lists them). When
    /// stdout is not a terminal: one plain-text snapshot.
    Top {
        /// Print N plain-text snapshots, one every interval, then exit (on a terminal too).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        batch: Option<u32>,
        /// How often CPU and memory are sampled (e.g. `1s`); `+` and `-` change it live.
        #[arg(short = 'd', long, value_name = "DUR", default_value = "2s")]
        interval: String,
    },
    /// Print a shell's completion script (bash, zsh or fish); unit names are completed from
    /// `svc list`.
    #[command(hide = true)]
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: complete::Shell,
    },
    /// The last lines of units' logs (several units: interleaved by time); `-f` follows.
    Logs {
        /// Units whose logs to print.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// How many of the last lines to print (at most 10000).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: usize,
        /// Then print new lines as they come, across rotations and restarts, until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
}

/// Runs `svc` with `args`; never panics on user input, nor on a closed stdout.
pub fn run(args: Args) -> u8 {
    // Offline: neither the socket nor the timeouts matter.
    if let Sub::Check { paths } = args.command {
        return check(paths);
    }
    if let Sub::Calendar {
        exprs,
        timezone,
        count,
    } = &args.command
    {
        let (out, errors) = calendar::run(exprs, timezone.as_deref(), usize::from(*count));
        if !errors.is_empty() {
            warn(format_args!("{}", errors.trim_end()));
        }
        let code = if errors.is_empty() {
            exit::OK
        } else {
            exit::FAILED
        };
        return print_then(&out, code);
    }
    if let Sub::Completions { shell } = args.command {
        return print_then(&complete::script(shell), exit::OK);
    }
    let socket = client::socket_path(args.socket);
    let timeouts = match Timeouts::parse(args.timeout.as_deref()) {
        Ok(timeouts) => timeouts,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::USAGE;
        }
    };
    let quiet = args.quiet;
    match args.command {
        // Answered above, before the timeouts were parsed.
        Sub::Check { .. } | Sub::Completions { .. } | Sub::Calendar { .. } => exit::USAGE,
        Sub::Status {
            names,
            json: _,
            check: true,
        } => {
            let named = !names.is_empty();
            let response = ask(&socket, Command::Status { names }, timeouts.quick());
            units_output(response, false, |units| match health::check(units, named) {
                Ok(line) => (format!("{line}\n"), exit::OK),
                Err(line) => (format!("{line}\n"), exit::NOT_RUNNING),
            })
        }
        Sub::Status { names, json, .. } => status(&socket, names, json, timeouts),
        Sub::List { json: true } => list_json(&socket, timeouts),
        Sub::List { json } => units_output(
            ask(&socket, Command::List {}, timeouts.quick()),
            json,
            |units| {
                let text = if json {
                    String::new()
                } else {
                    render::list(units)
                };
                (text, exit::OK)
            },
        ),
        Sub::Start { names, no_wait } => {
            let command = Command::Start {
                names,
                wait: !no_wait,
            };
            act(&socket, command, timeouts, quiet)
        }
        Sub::Stop { names, no_wait } => {
            let command = Command::Stop {
                names,
                wait: !no_wait,
            };
            act(&socket, command, timeouts, quiet)
        }
        Sub::Restart { names, no_wait } => {
            let command = Command::Restart {
                names,
                wait: !no_wait,
            };
            act(&socket, command, timeouts, quiet)
        }
        Sub::Reload { names } => act(&socket, Command::Reload { names }, timeouts, quiet),
        Sub::Metrics => match ask(&socket, Command::Metrics {}, timeouts.quick()) {
            Ok(response) => match error_exit(&response) {
                Some(code) => code,
                None => print_then(response.metrics.as_deref().unwrap_or_default(), exit::OK),
            },
            Err(e) => {
                warn(format_args!("svc: {e}"));
                exit::FAILED
            }
        },
        Sub::Events { json } => events(&socket, json, timeouts.slow()),
        Sub::Top { batch, interval } => match crate::unit::duration::parse_duration(&interval) {
            Ok(interval) if interval >= Duration::from_millis(100) => {
                top::run(socket, interval, batch, timeouts)
            }
            Ok(_) => {
                warn(format_args!("svc: --interval must be at least 100ms"));
                exit::USAGE
            }
            Err(e) => {
                warn(format_args!("svc: --interval: {e}"));
                exit::USAGE
            }
        },
        Sub::Shutdown => act(&socket, Command::Shutdown {}, timeouts, quiet),
        Sub::Upgrade => upgrade::upgrade(&socket, timeouts.quick()),
        Sub::Kill {
            names,
            signal,
            main,
        } => {
            if crate::signal::parse(&signal).is_none() {
                warn(format_args!(
                    "svc: `{signal}` is not a signal (e.g. SIGTERM, HUP, 10)"
                ));
                return exit::USAGE;
            }
            let command = Command::Kill {
                names,
                signal,
                main,
            };
            act(&socket, command, timeouts, quiet)
        }
        Sub::Logs {
            names,
            lines,
            follow,
        } => {
            let timeout = if follow {
                timeouts.slow()
            } else {
                timeouts.quick()
            };
            logs(&socket, names, lines, follow, timeout)
        }
        Sub::Wait { names, state } => match ask(
            &socket,
            Command::Wait {
                names: names.clone(),
                state: state.clone(),
            },
            timeouts.slow(),
        ) {
            Err(ClientError::Timeout { .. }) => {
                warn(format_args!(
                    "svc: timed out waiting for {} to be {state}",
                    names.join(", ")
                ));
                exit::FAILED
            }
            other => units_output(other, false, |_| (String::new(), exit::OK)),
        },
    }
}

/// Writes `text` to stdout. A reader that left (`| head -c0`, `| grep -q`: EPIPE) is no error,
/// the rest was not wanted: `Ok(false)` and no message. Any other write error is one.
fn print(text: &str) -> Result<bool, std::io::Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// Prints `text` and gives `code`; on a write error (not EPIPE), says so and gives 1.
///
/// On EPIPE `svc` keeps the exit status of its answer (not 141 as a shell would): `svc status
/// chat | grep -q running` under `set -o pipefail` then means what it says.
fn print_then(text: &str, code: u8) -> u8 {
    match print(text) {
        Ok(_) => code,
        Err(e) => {
            warn(format_args!("svc: writing to stdout: {e}"));
            exit::FAILED
        }
    }
}

/// A line on stderr; a stderr that cannot be written is ignored (never a panic).
fn warn(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `svc status [--json] [NAME...]`: the units' state and the host line; 3 when a named unit is
/// not up.
fn status(socket: &std::path::Path, names: Vec<String>, json: bool, timeouts: Timeouts) -> u8 {
    let named = !names.is_empty();
    let response = ask(socket, Command::Status { names }, timeouts.quick());
    let host = response.as_ref().ok().and_then(|r| r.host.clone());
    units_output(response, json, |units| {
        let mut text = String::new();
        if !json {
            text = render::status(units);
            if let Some(host) = &host {
                text.push_str(&render::host(host));
            }
        }
        let code = if named && units.iter().any(|u| !health::is_up(u)) {
            exit::NOT_RUNNING
        } else {
            exit::OK
        };
        (text, code)
    })
}

/// `svc [--socket PATH] status [NAME...]`, svc's most frequent command (scripts and probes run
/// it in loops), answered without building the parser of every command first: that was a
/// third of the whole command's CPU time. `None` for anything else, which [`Args`] parses.
/// What it does is what `Sub::Status` does for the same words.
pub fn quick_status(argv: &[std::ffi::OsString]) -> Option<u8> {
    let (socket, names) = quick_status_words(argv)?;
    let timeouts = Timeouts::parse(None).ok()?;
    Some(status(&client::socket_path(socket), names, false, timeouts))
}

/// The socket and names of `argv` when it is `svc [--socket PATH] status [NAME...]`; `None`
/// for another command or flag, a name that looks like a flag, an argument that is not UTF-8,
/// a socket given twice or empty (the parser's error says so).
fn quick_status_words(argv: &[std::ffi::OsString]) -> Option<(Option<PathBuf>, Vec<String>)> {
    let mut words = argv.iter().skip(1).map(|word| word.to_str());
    let mut socket = None;
    let names = loop {
        match words.next()?? {
            "status" => break words.collect::<Option<Vec<&str>>>()?,
            _ if socket.is_some() => return None,
            // A path that looks like a flag is the flag to the parser (`--socket -q`).
            "--socket" => socket = Some(words.next()?.filter(|path| !path.starts_with('-'))?),
            word => socket = Some(word.strip_prefix("--socket=")?),
        }
    };
    // An empty path is the parser's error too.
    if socket == Some("") || names.iter().any(|name| name.starts_with('-')) {
        return None;
    }
    let socket = socket.map(PathBuf::from);
    Some((socket, names.into_iter().map(str::to_string).collect()))
}

fn ask(
    socket: &std::path::Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<Response, ClientError> {
    client::request(socket, command, timeout)
}

/// `svc list --json`: the units as svcd sent them, indented as before (not parsed into
/// structs and serialized again); an answer without units (an error) as any other.
fn list_json(socket: &std::path::Path, timeouts: Timeouts) -> u8 {
    #[derive(serde::Deserialize)]
    struct Units<'a> {
        #[serde(borrow, default)]
        units: Option<&'a serde_json::value::RawValue>,
    }
    let answer = match client::request_raw(socket, Command::List {}, timeouts.quick()) {
        Ok(answer) => answer,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::FAILED;
        }
    };
    match serde_json::from_slice::<Units<'_>>(&answer) {
        Ok(Units { units: Some(units) }) => {
            let mut text = pretty::indent(units.get());
            text.push('\n');
            print_then(&text, exit::OK)
        }
        _ => units_output(client::parse_response(&answer), true, |_| {
            (String::new(), exit::OK)
        }),
    }
}

/// Prints an answer that lists units (`--json`: the array as is; else the text `human` gives),
/// or its error. With `--json` the exit code still follows the human rules (`human` need not
/// render the text then).
fn units_output(
    response: Result<Response, ClientError>,
    json: bool,
    human: impl FnOnce(&[crate::control::UnitInfo]) -> (String, u8),
) -> u8 {
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::FAILED;
        }
    };
    if let Some(code) = error_exit(&response) {
        return code;
    }
    let units = response.units.unwrap_or_default();
    let (text, code) = human(&units);
    if !json {
        return print_then(&text, code);
    }
    match serde_json::to_string_pretty(&units) {
        Ok(text) => print_then(&format!("{text}\n"), code),
        Err(e) => {
            warn(format_args!("svc: {e}"));
            exit::FAILED
        }
    }
}

/// start / stop / restart / reload / shutdown. On success: svcd's message (what a reload did),
/// and on a terminal one line per unit (`started chat`); with `-q`, nothing.
fn act(socket: &std::path::Path, command: Command, timeouts: Timeouts, quiet: bool) -> u8 {
    use std::io::IsTerminal;
    // What to say per unit on a terminal: once done, or (`--no-wait`) once asked.
    let (said, names, waits) = match &command {
        Command::Start { names, wait } => (["started", "starting"], names.clone(), *wait),
        Command::Stop { names, wait } => (["stopped", "stopping"], names.clone(), *wait),
        Command::Restart { names, wait } => (["restarted", "restarting"], names.clone(), *wait),
        // svcd's message says how each unit reloaded.
        Command::Reload { names } => (["", ""], names.clone(), true),
        _ => (["", ""], Vec::new(), true),
    };
    // Waiting for units, or for svcd to stop them all, takes what the units take.
    let timeout = match command {
        Command::Shutdown {} => timeouts.slow(),
        _ if waits && !names.is_empty() => timeouts.slow(),
        _ => timeouts.quick(),
    };
    let response = match ask(socket, command, timeout) {
        Ok(response) => response,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::FAILED;
        }
    };
    if let Some(code) = error_exit(&response) {
        return code;
    }
    if quiet {
        return exit::OK;
    }
    let mut text = String::new();
    if let Some(message) = &response.message {
        text = format!("{message}\n");
    }
    if let Some(changes) = &response.reloaded {
        text.push_str(&render::reload_changes(changes));
    }
    if std::io::stdout().is_terminal() && !said[0].is_empty() {
        let said = if waits { said[0] } else { said[1] };
        for name in &names {
            text.push_str(&format!("{said} {name}\n"));
        }
    }
    print_then(&text, exit::OK)
}

/// Prints an error answer and gives its exit code; `None` for a success.
fn error_exit(response: &Response) -> Option<u8> {
    let error = response.error.as_ref()?;
    warn(format_args!("svc: {}", error.message));
    Some(match error.kind {
        ErrorKind::UnknownUnit => exit::UNKNOWN_UNIT,
        ErrorKind::BadRequest | ErrorKind::UnsupportedVersion => exit::USAGE,
        _ => exit::FAILED,
    })
}

/// `svc logs`: `TIME STREAM TEXT` per line, with `NAME ` before the stream for several units.
fn logs(
    socket: &std::path::Path,
    names: Vec<String>,
    lines: usize,
    follow: bool,
    timeout: Option<Duration>,
) -> u8 {
    use std::io::Write;
    let several = names.len() > 1;
    // On a terminal, a unit's escape sequences are shown, not run (as journalctl does); a pipe
    // gets the lines as the unit wrote them.
    let escape = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write_error = None;
    let command = Command::Logs {
        names,
        lines,
        follow,
    };
    let result = client::stream(socket, command, timeout, |event| {
        let Some(line) = event.log else { return true };
        if line.skipped > 0 {
            warn(format_args!(
                "svc: {} lines skipped (svc read too slowly)",
                line.skipped
            ));
        }
        let unit = if several {
            format!("{} ", line.unit)
        } else {
            String::new()
        };
        let text = if escape {
            crate::logs::escape_controls(&line.line)
        } else {
            std::borrow::Cow::Borrowed(line.line.as_str())
        };
        let written = writeln!(out, "{} {unit}{} {text}", line.time, line.stream)
            .and_then(|()| if follow { out.flush() } else { Ok(()) });
        match written {
            Ok(()) => true,
            Err(e) => {
                write_error = Some(e);
                false
            }
        }
    });
    if write_error.is_none() {
        write_error = out.flush().err();
    }
    drop(out);
    if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        warn(format_args!("svc: writing to stdout: {e}"));
        return exit::FAILED;
    }
    stream_end(result, follow)
}

/// The exit code of a streamed answer (`logs`, `events`), saying why it ended where that is
/// news. `follow`: it was meant to last, so svcd closing it is its shutdown, not an error.
fn stream_end(result: Result<(Response, client::StreamEnd), ClientError>, follow: bool) -> u8 {
    let (response, end) = match result {
        Ok(answer) => answer,
        Err(e) => {
            warn(format_args!("svc: {e}"));
            return exit::FAILED;
        }
    };
    if let Some(code) = error_exit(&response) {
        return code;
    }
    match end {
        client::StreamEnd::End(Some(why)) => {
            warn(format_args!("svc: {why}"));
            exit::FAILED
        }
        client::StreamEnd::Closed if follow => {
            warn(format_args!("svcd shut down"));
            exit::OK
        }
        client::StreamEnd::Closed => {
            warn(format_args!("svc: {}", ClientError::Closed));
            exit::FAILED
        }
        client::StreamEnd::End(None) | client::StreamEnd::Stopped => exit::OK,
    }
}

/// `svc events`: `TIME UNIT OLD -> NEW pid PID: REASON` per change, or `--json` lines.
fn events(socket: &std::path::Path, json: bool, timeout: Option<Duration>) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    let result = client::stream(socket, Command::Events {}, timeout, |event| {
        let Some(event) = event.event else {
            return true;
        };
        let line = if json {
            serde_json::to_string(&event).unwrap_or_default()
        } else {
            let pid = event.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
            format!(
                "{} {} {} -> {} pid {pid}: {}",
                event.time, event.unit, event.old, event.new, event.reason
            )
        };
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => true,
            Err(e) => {
                write_error = Some(e);
                false
            }
        }
    });
    drop(out);
    if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        warn(format_args!("svc: writing to stdout: {e}"));
        return exit::FAILED;
    }
    stream_end(result, true)
}

fn check(paths: Vec<PathBuf>) -> u8 {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("/etc/svc/units")]
    } else {
        paths
    };
    // A path that is not there is said so, not counted as an invalid unit file.
    let (paths, missing): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .into_iter()
        .partition(|path| std::fs::symlink_metadata(path).is_ok());
    for path in &missing {
        warn(format_args!(
            "svc: {}: no such file or directory",
            path.display()
        ));
    }
    let mut bad = 0;
    let mut text = String::new();
    let results = if paths.is_empty() {
        Vec::new()
    } else {
        crate::unit::check_paths(&paths)
    };
    for result in &results {
        match result {
            Ok(unit) => {
                // Users and groups are the host's: a unit naming one unknown here would fail
                // to start.
                // `user_if_root` is checked as `user` is: svcd may run as root where this
                // file is deployed.
                match crate::process::Credentials::check(
                    unit.user.as_deref().or(unit.user_if_root.as_deref()),
                    unit.group.as_deref(),
                    &unit.supplementary_groups,
                ) {
                    Ok(()) => {
                        text.push_str(&format!("ok: {} ({})\n", unit.name, unit.path.display()));
                        if let Some(schedule) = &unit.schedule {
                            text.push_str(&calendar::check_lines(schedule));
                        }
                        // Warnings only: the file may be meant for another host.
                        for warning in crate::unit::host::warnings(unit) {
                            warn(format_args!("{warning}"));
                        }
                    }
                    Err(why) => {
                        bad += 1;
                        warn(format_args!("{}: {why}", unit.path.display()));
                    }
                }
            }
            Err(errors) => {
                bad += 1;
                warn(format_args!("{errors}"));
            }
        }
    }
    if bad > 0 {
        warn(format_args!(
            "svc: {bad} of {} unit files invalid",
            results.len()
        ));
    }
    let code = if bad > 0 || !missing.is_empty() {
        exit::FAILED
    } else {
        exit::OK
    };
    print_then(&text, code)
}
