//! The `svc` command: parse, ask svcd (or check files offline), print, map to exit codes.

mod health;
mod render;

use crate::control::client::{self, ClientError};
use crate::control::{Command, ErrorKind, Response};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
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
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// State, pid, since, restarts, last exit of units (all when none is named).
    Status {
        names: Vec<String>,
        #[arg(long, conflicts_with = "check")]
        json: bool,
        /// Exit 0 when every enabled (or named) unit is running and ready, else 3 with one line
        /// saying which is not: a liveness probe.
        #[arg(long)]
        check: bool,
    },
    /// One line per unit.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start units and wait until they run.
    Start {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop units and wait until they are stopped.
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop then start units, and wait until they run again.
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        no_wait: bool,
    },
    /// Validate unit files or directories offline (default: /etc/svc/units).
    Check { paths: Vec<PathBuf> },
    /// Block until every named unit is in STATE (inactive, starting, running, ready, stopping,
    /// backoff, failed).
    Wait {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long = "for", value_name = "STATE")]
        state: String,
        /// Give up after this long (e.g. `10s`); exit 1.
        #[arg(long, value_name = "DUR")]
        timeout: Option<String>,
    },
    /// Re-read the unit files: start new units, stop removed ones, restart changed ones.
    Reload,
    /// Stop every unit and end svcd.
    Shutdown,
    /// The last lines of units' logs (several units: interleaved by time); `-f` follows.
    Logs {
        #[arg(required = true)]
        names: Vec<String>,
        /// How many of the last lines to print (at most 10000).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: usize,
        /// Then print new lines as they come, across rotations and restarts, until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
}

/// Runs `svc` with `args`; never panics on user input.
pub fn run(args: Args) -> ExitCode {
    let socket = client::socket_path(args.socket);
    match args.command {
        Sub::Check { paths } => check(paths),
        Sub::Status {
            names,
            json: _,
            check: true,
        } => {
            let named = !names.is_empty();
            let response = ask(&socket, Command::Status { names }, None);
            units_output(response, false, |units, _| {
                match health::check(units, named) {
                    Ok(line) => {
                        println!("{line}");
                        exit::OK
                    }
                    Err(line) => {
                        println!("{line}");
                        exit::NOT_RUNNING
                    }
                }
            })
        }
        Sub::Status { names, json, .. } => {
            let response = ask(
                &socket,
                Command::Status {
                    names: names.clone(),
                },
                None,
            );
            let host = response.as_ref().ok().and_then(|r| r.host.clone());
            units_output(response, json, |units, print| {
                if print {
                    print!("{}", render::status(units));
                    if let Some(host) = &host {
                        print!("{}", render::host(host));
                    }
                }
                if !names.is_empty() && units.iter().any(|u| u.state != "running") {
                    exit::NOT_RUNNING
                } else {
                    exit::OK
                }
            })
        }
        Sub::List { json } => {
            units_output(ask(&socket, Command::List, None), json, |units, print| {
                if print {
                    print!("{}", render::list(units));
                }
                exit::OK
            })
        }
        Sub::Start { names, no_wait } => act(
            &socket,
            Command::Start {
                names,
                wait: !no_wait,
            },
        ),
        Sub::Stop { names, no_wait } => act(
            &socket,
            Command::Stop {
                names,
                wait: !no_wait,
            },
        ),
        Sub::Restart { names, no_wait } => act(
            &socket,
            Command::Restart {
                names,
                wait: !no_wait,
            },
        ),
        Sub::Reload => act(&socket, Command::Reload),
        Sub::Shutdown => act(&socket, Command::Shutdown),
        Sub::Logs {
            names,
            lines,
            follow,
        } => logs(&socket, names, lines, follow),
        Sub::Wait {
            names,
            state,
            timeout,
        } => {
            let timeout = match timeout
                .as_deref()
                .map(crate::unit::duration::parse_duration)
            {
                None => None,
                Some(Ok(d)) => Some(d.max(Duration::from_millis(1))),
                Some(Err(e)) => {
                    eprintln!("svc: --timeout: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            match ask(
                &socket,
                Command::Wait {
                    names: names.clone(),
                    state: state.clone(),
                },
                timeout,
            ) {
                Err(ClientError::Timeout) => {
                    eprintln!(
                        "svc: timed out waiting for {} to be {state}",
                        names.join(", ")
                    );
                    ExitCode::from(exit::FAILED)
                }
                other => units_output(other, false, |_, _| exit::OK),
            }
        }
    }
}

fn ask(
    socket: &std::path::Path,
    command: Command,
    timeout: Option<Duration>,
) -> Result<Response, ClientError> {
    client::request(socket, command, timeout)
}

/// Prints an answer that lists units (`--json`: the array as is), or its error.
fn units_output(
    response: Result<Response, ClientError>,
    json: bool,
    human: impl FnOnce(&[crate::control::UnitInfo], bool) -> u8,
) -> ExitCode {
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            eprintln!("svc: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    if let Some(code) = error_exit(&response) {
        return ExitCode::from(code);
    }
    let units = response.units.unwrap_or_default();
    if json {
        match serde_json::to_string_pretty(&units) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("svc: {e}");
                return ExitCode::from(exit::FAILED);
            }
        }
    }
    // With `--json` the exit code still follows the human rules, without their output.
    ExitCode::from(human(&units, !json))
}

/// start / stop / restart / shutdown: no output on success.
fn act(socket: &std::path::Path, command: Command) -> ExitCode {
    match ask(socket, command, None) {
        Err(e) => {
            eprintln!("svc: {e}");
            ExitCode::from(exit::FAILED)
        }
        Ok(response) => {
            if let Some(message) = &response.message {
                println!("{message}");
            }
            ExitCode::from(error_exit(&response).unwrap_or(exit::OK))
        }
    }
}

/// Prints an error answer and gives its exit code; `None` for a success.
fn error_exit(response: &Response) -> Option<u8> {
    let error = response.error.as_ref()?;
    eprintln!("svc: {}", error.message);
    Some(match error.kind {
        ErrorKind::UnknownUnit => exit::UNKNOWN_UNIT,
        ErrorKind::BadRequest | ErrorKind::UnsupportedVersion => exit::USAGE,
        _ => exit::FAILED,
    })
}

/// `svc logs`: `TIME STREAM TEXT` per line, with `NAME ` before the stream for several units.
fn logs(socket: &std::path::Path, names: Vec<String>, lines: usize, follow: bool) -> ExitCode {
    use std::io::Write;
    let several = names.len() > 1;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut broken_pipe = false;
    let command = Command::Logs {
        names,
        lines,
        follow,
    };
    let result = client::stream(socket, command, |event| {
        let Some(line) = event.log else { return true };
        if line.skipped > 0 {
            eprintln!("svc: {} lines skipped (svc read too slowly)", line.skipped);
        }
        let unit = if several {
            format!("{} ", line.unit)
        } else {
            String::new()
        };
        let written = writeln!(out, "{} {unit}{} {}", line.time, line.stream, line.line)
            .and_then(|()| if follow { out.flush() } else { Ok(()) });
        broken_pipe = written.is_err();
        !broken_pipe
    });
    let _ = out.flush();
    match result {
        Err(e) => {
            eprintln!("svc: {e}");
            ExitCode::from(exit::FAILED)
        }
        Ok(response) => ExitCode::from(error_exit(&response).unwrap_or(exit::OK)),
    }
}

fn check(paths: Vec<PathBuf>) -> ExitCode {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("/etc/svc/units")]
    } else {
        paths
    };
    let mut bad = 0;
    let results = crate::unit::check_paths(&paths);
    for result in &results {
        match result {
            Ok(unit) => {
                // Users and groups are the host's: a unit naming one unknown here would fail
                // to start.
                match crate::process::Credentials::check(
                    unit.user.as_deref(),
                    unit.group.as_deref(),
                ) {
                    Ok(()) => println!("ok: {} ({})", unit.name, unit.path.display()),
                    Err(why) => {
                        bad += 1;
                        eprintln!("{}: {why}", unit.path.display());
                    }
                }
            }
            Err(errors) => {
                bad += 1;
                eprintln!("{errors}");
            }
        }
    }
    if bad > 0 {
        eprintln!("svc: {bad} of {} unit files invalid", results.len());
        ExitCode::from(exit::FAILED)
    } else {
        ExitCode::from(exit::OK)
    }
}
