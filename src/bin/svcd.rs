//! `svcd`: the daemon. See `man svcd`.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use svc::logs::output::Stderr;

/// Supervise the services of the units directories.
#[derive(Debug, Parser)]
#[command(name = "svcd", version)]
struct Args {
    /// Where the unit files are; may be given more than once.
    #[arg(long = "units", value_name = "DIR", default_value = "/etc/svc/units")]
    units: Vec<PathBuf>,
    /// Host-wide settings (optional file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket, logs and state (default /run/svc as root, else $XDG_RUNTIME_DIR/svc).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The control socket (default <state-dir>/svcd.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Behave as init (survive stray signals) even when not PID 1.
    #[arg(long)]
    init: bool,
}

/// A `fatal` unit failed (see `man svcd`); 1 is svcd's own failure, 2 a usage error.
const EXIT_FATAL: u8 = 3;

fn main() -> ExitCode {
    // First: a signal mask inherited from whoever started svcd (SIGCHLD or SIGTERM blocked)
    // would keep svcd from ever reaping or stopping.
    svc::process::unblock_signals();
    let args = Args::parse();
    let level = match std::env::var("SVCD_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    use std::io::IsTerminal;
    // svcd's log must never end it: a stderr nobody reads any more (EPIPE) or a terminal that
    // hung up (EIO) drops the lines instead (as PID 1, svcd's end is the container's).
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| Stderr)
        .log_internal_errors(false)
        .init();
    let state_dir = args
        .state_dir
        .unwrap_or_else(svc::control::client::default_state_dir);
    let options = svc::daemon::Options {
        units_dirs: args.units,
        config: match args.config {
            Some(path) => (path, true),
            None => (PathBuf::from("/etc/svc/svcd.toml"), false),
        },
        socket: args.socket.unwrap_or_else(|| state_dir.join("svcd.sock")),
        state_dir,
        init: args.init || std::process::id() == 1,
    };
    match svc::daemon::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ svc::daemon::DaemonError::Fatal { .. }) => {
            say(&e);
            ExitCode::from(EXIT_FATAL)
        }
        Err(e) => {
            // Each message already carries its cause.
            say(&e);
            ExitCode::FAILURE
        }
    }
}

/// svcd's last words on stderr; not written if stderr fails (`eprintln!` would panic).
fn say(error: &svc::daemon::DaemonError) {
    let _ = writeln!(Stderr, "svcd: {error}");
}
