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
    /// Where the unit files are; may be given more than once (default /etc/svc/units; with
    /// `-- CMD`, only if it exists).
    #[arg(long = "units", value_name = "DIR")]
    units: Vec<PathBuf>,
    /// Host-wide settings (optional file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket, logs and state (default /run/svc as root, else $XDG_RUNTIME_DIR/svc, else
    /// /run/svc-UID where /run is writable, else /tmp/svc-UID).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The control socket (default <state-dir>/svcd.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Behave as init (survive stray signals) even when not PID 1.
    #[arg(long)]
    init: bool,
    /// With `-- CMD`: forward signals to CMD's process group, not only to CMD (tini's `-g`).
    #[arg(short = 'g', long, requires = "app")]
    forward_to_group: bool,
    /// Run CMD as the container's app, the fatal unit `app`: svcd exits with its status.
    #[arg(last = true, value_name = "CMD")]
    app: Vec<String>,
}

/// The units directory when `--units` is not given.
const DEFAULT_UNITS: &str = "/etc/svc/units";

fn main() -> ExitCode {
    // First: a signal mask inherited from whoever started svcd (SIGCHLD or SIGTERM blocked)
    // would keep svcd from ever reaping or stopping.
    svc::process::unblock_signals();
    // The fd holder (see `svc::daemon::fdholder`): svcd's binary, doing nothing else.
    let mut raw = std::env::args_os().skip(1);
    if raw.next().is_some_and(|a| a == svc::daemon::fdholder::FLAG) {
        let Some(path) = raw.next() else {
            return ExitCode::from(2);
        };
        return match svc::daemon::fdholder::run(PathBuf::from(path)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    // Before any other descriptor or thread: the low descriptors a spawn hands its child
    // through, so that it need not copy svcd's whole table (see `svc::process::slots`).
    if let Err(e) = svc::process::reserve_spawn_slots() {
        let _ = writeln!(Stderr, "svcd: cannot open /dev/null: {e}");
    }
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
    let app = if args.app.is_empty() {
        None
    } else {
        Some(svc::daemon::AppCommand {
            argv: args.app,
            to_group: args.forward_to_group,
        })
    };
    let mut units_dirs = args.units;
    // An app alone needs no unit files: the default directory only where it exists.
    if units_dirs.is_empty() && (app.is_none() || std::path::Path::new(DEFAULT_UNITS).is_dir()) {
        units_dirs.push(PathBuf::from(DEFAULT_UNITS));
    }
    let options = svc::daemon::Options {
        units_dirs,
        config: match args.config {
            Some(path) => (path, true),
            None => (PathBuf::from("/etc/svc/svcd.toml"), false),
        },
        socket: args.socket.unwrap_or_else(|| state_dir.join("svcd.sock")),
        state_dir,
        init: args.init || std::process::id() == 1,
        app,
    };
    let code = match svc::daemon::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        // A fatal unit (the app) ended: its status is svcd's (see `man svcd`). 1 is svcd's own
        // failure, 2 a usage error.
        Err(e @ svc::daemon::DaemonError::Fatal { code, .. }) => {
            say(&e);
            ExitCode::from(code)
        }
        Err(e) => {
            // Each message already carries its cause.
            say(&e);
            ExitCode::FAILURE
        }
    };
    // The machine's init never exits: it powers the machine off.
    svc::daemon::power_off_if_machine_init();
    code
}

/// svcd's last words on stderr; not written if stderr fails (`eprintln!` would panic).
fn say(error: &svc::daemon::DaemonError) {
    let _ = writeln!(Stderr, "svcd: {error}");
}
