//! `svc`: the client. See `man svc`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match svc::cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                svc::cli::exit::USAGE
            } else {
                0
            });
        }
    };
    svc::cli::run(args)
}
