//! One module per subcommand: arguments -> validated library types -> library call -> output.

mod calibrate;
mod compare;
mod history;
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

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> crate::error::Result<()> {
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
        Command::History(cmd) => history::history(cmd),
        Command::CalibrateCompute => calibrate::compute_child(),
    }
}
