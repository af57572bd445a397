//! `svcd`: the daemon. See `man svcd`.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Behave as PID 1 even when not PID 1 (not supported yet: refused).
    #[arg(long)]
    init: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = match std::env::var("SVCD_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    if args.init {
        eprintln!("svcd: --init is not supported yet");
        return ExitCode::from(2);
    }
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
    };
    match svc::daemon::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each message already carries its cause.
            eprintln!("svcd: {e}");
            ExitCode::FAILURE
        }
    }
}
