//! One module per subcommand: arguments -> validated library types -> library call -> output.

mod model;
mod run;
mod topology;
mod worker;

use crate::cli::{Cli, Command};
use llamaperf::engine::UnknownEngine;
use llamaperf::machine::{MachineError, SkipReason};
use llamaperf::measure::spec::SpecError;
use llamaperf::model::dtype::UnknownDtype;
use llamaperf::model::ModelError;

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Model(cmd) => model::model(cmd),
        Command::Topology(args) => topology::topology(args),
        Command::Worker => worker::worker(),
    }
}

/// Exit code of a failed command: 2 when the user's input was wrong (a name, a file, a value),
/// 1 when the run itself failed.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let input_error = err.chain().any(|cause| {
        cause.is::<SpecError>()
            || cause.is::<UnknownDtype>()
            || cause.is::<UnknownEngine>()
            || cause.is::<SkipReason>()
            || cause
                .downcast_ref::<MachineError>()
                .is_some_and(MachineError::is_input_error)
            || cause
                .downcast_ref::<ModelError>()
                .is_some_and(ModelError::is_input_error)
    });
    if input_error {
        2
    } else {
        1
    }
}
