//! The `llamaperf` binary: parse the command line, dispatch, map errors to exit codes.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    llamaperf_os::process::die_on_closed_pipe();
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {}", err.chain());
            ExitCode::from(err.exit_code())
        }
    }
}
