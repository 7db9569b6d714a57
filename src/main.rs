//! The `llamaperf` binary: parse the command line, dispatch, map errors to exit codes.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A closed pipe ends the commands that only print (`compare A B | head -3`) quietly, as it
    // ends `cat`. Those that drive child processes keep SIGPIPE ignored: a worker that dies
    // before it reads its request must be a failed run, not the end of the sweep.
    if !cli.command.drives_children() {
        llamaperf_os::process::die_on_closed_pipe();
    }
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {}", err.chain());
            // A signal stops a loop with the first error it meets; the exit code says why.
            if llamaperf::interrupt::requested() {
                ExitCode::from(error::EXIT_INTERRUPTED)
            } else {
                ExitCode::from(err.exit_code())
            }
        }
    }
}
