//! One module per subcommand: arguments -> validated library types -> library call -> output.

mod calibrate;
mod compare;
mod merge;
mod model;
mod plan;
mod report;
mod run;
mod slurm;
mod sweep;
mod topology;
mod worker;

use crate::cli::{Cli, Command};
use llamaperf::compare::CompareError;
use llamaperf::engine::UnknownEngine;
use llamaperf::machine::{MachineError, SkipReason};
use llamaperf::measure::spec::SpecError;
use llamaperf::model::dtype::UnknownDtype;
use llamaperf::model::ModelError;
use llamaperf::plan::PlanError;
use llamaperf::report::ReportError;
use llamaperf::results::merge::MergeError;
use llamaperf::results::ResultsError;
use llamaperf::scenario::ScenarioError;
use llamaperf::sweep::slurm::SlurmError;

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Slurm(args) => slurm::slurm(args),
        Command::Merge(args) => merge::merge(args),
        Command::Report(args) => report::report(args),
        Command::Model(cmd) => model::model(cmd),
        Command::Topology(args) => topology::topology(args),
        Command::Worker => worker::worker(),
        Command::Calibrate(args) => calibrate::calibrate(args),
        Command::Compare(args) => compare::compare(args),
        Command::Plan(args) => plan::plan(args),
        Command::CalibrateCompute => calibrate::compute_child(),
    }
}

/// Exit code of a failed command: 130 when interrupted, 2 when the user's input was wrong
/// (a name, a file, a value), 1 when a run itself failed or `compare` found a regression.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<sweep::Interrupted>()) {
        return 130;
    }
    let input_error = err.chain().any(|cause| {
        cause.is::<SpecError>()
            || cause.is::<UnknownDtype>()
            || cause.is::<UnknownEngine>()
            || cause.is::<SkipReason>()
            || cause.is::<ScenarioError>()
            || cause.is::<SlurmError>()
            || cause.is::<slurm::SbatchMissing>()
            || cause
                .downcast_ref::<MergeError>()
                .is_some_and(MergeError::is_input_error)
            || cause.is::<CompareError>()
            || cause.is::<PlanError>()
            || cause
                .downcast_ref::<ResultsError>()
                .is_some_and(ResultsError::is_input_error)
            || cause
                .downcast_ref::<ReportError>()
                .is_some_and(ReportError::is_input_error)
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
