//! The one error of the `llamaperf` binary: every failure a command can meet, and the exit
//! code each means (README, "Exit codes"): 2 for the user's input (a name, a file, a value),
//! 1 for a run that failed, a regression or an incomplete result, 130 for an interruption.
//! A new kind of failure is a new variant, and [`Error::exit_code`] must then say its code.

use llamaperf::calibrate::CalibrationError;
use llamaperf::child::ChildError;
use llamaperf::compare::CompareError;
use llamaperf::engine::{EngineError, UnknownEngine};
use llamaperf::interrupt::Interrupted;
use llamaperf::machine::{MachineError, SkipReason};
use llamaperf::measure::worker::WorkerError;
use llamaperf::model::{ModelError, ModelFileError};
use llamaperf::plan::PlanError;
use llamaperf::planning::{SpecError, Unplannable};
use llamaperf::report::ReportError;
use llamaperf::results::history::HistoryError;
use llamaperf::results::merge::MergeError;
use llamaperf::results::ResultsError;
use llamaperf::scenario::ScenarioError;
use llamaperf::serve::ServeError;
use llamaperf::sweep::slurm::SlurmError;

/// Exit code of a failed run, a regression or an incomplete result.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of wrong input: a name, a file, a value the user gave.
pub const EXIT_INPUT: u8 = 2;
/// Exit code of a sweep stopped by SIGINT/SIGTERM (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What was being done when `source` happened.
    #[error("{what}")]
    Context {
        /// The step, e.g. "reading the base".
        what: String,
        /// What went wrong in it.
        #[source]
        source: Box<Error>,
    },
    /// A scenario file is malformed.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A run's parameters cannot be executed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An engine name that does not exist.
    #[error(transparent)]
    UnknownEngine(#[from] UnknownEngine),
    /// A run cannot be placed on the machine.
    #[error(transparent)]
    Skip(#[from] SkipReason),
    /// A run cannot execute on the machine: its model, counts, placement or memory.
    #[error(transparent)]
    Unplannable(#[from] Unplannable),
    /// The machine's topology, or binding to it.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// A model name, file or cache.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A GGUF file.
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    /// A results folder.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// Merging results folders.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// A report's inputs or drawing.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The history database.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A comparison's inputs or options.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// A capacity plan's inputs.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A Slurm job's parameters.
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    /// Calibrating the machine failed.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    /// A child process (worker, calibration) produced no answer.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// The worker could not measure.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// An `openai` run's server or load failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// An engine failed to load or compute.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Reading or writing a file or a pipe.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Reading or writing JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `sbatch` is not on this machine's PATH.
    #[error("sbatch is not on PATH: run llamaperf slurm --submit on a Slurm login node, or copy {script} there and run sbatch {script}")]
    SbatchMissing {
        /// The job script written.
        script: String,
    },
    /// sbatch refused the script.
    #[error("sbatch {script} failed ({status}): {stderr}")]
    SbatchFailed {
        /// The job script.
        script: String,
        /// How sbatch ended.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// Some runs of a sweep failed; their reasons are in the results.
    #[error("{failed} of {total} runs failed; see {dir}/summary.csv for the reasons")]
    RunsFailed {
        /// Runs that failed.
        failed: usize,
        /// Runs planned.
        total: usize,
        /// The results folder.
        dir: String,
    },
    /// Every run a sweep selected was skipped, so nothing was measured.
    #[error("nothing measured: all {skipped} selected runs were skipped; see {dir}/summary.csv for the reasons")]
    NothingMeasured {
        /// Runs skipped.
        skipped: usize,
        /// The results folder.
        dir: String,
    },
    /// The regression gate failed: the candidate regressed, or (with --fail-on-inconclusive)
    /// a metric is undecided; the details are in the comparison printed.
    #[error("{0}")]
    GateFailed(String),
    /// Some planned runs are in no merged input.
    #[error("{missing} planned run{} missing (listed above); the merged folder {dir} holds the rest", if *.missing == 1 { " is" } else { "s are" })]
    Incomplete {
        /// Runs missing.
        missing: usize,
        /// The merged folder.
        dir: String,
    },
    /// SIGINT/SIGTERM stopped a command before anything was recorded.
    #[error(transparent)]
    Stopped(#[from] Interrupted),
    /// A sweep stopped by a failure (a full disk, a folder it cannot write) after its results
    /// folder existed: what is recorded stays, a resume continues it.
    #[error("{}; {recorded} of {total} runs are recorded in {dir}; continue with: llamaperf sweep --resume {dir}", .cause.chain())]
    Unfinished {
        /// What stopped it.
        cause: Box<Error>,
        /// Runs recorded so far.
        recorded: usize,
        /// Runs planned.
        total: usize,
        /// The results folder.
        dir: String,
    },
    /// The sweep was stopped by SIGINT/SIGTERM.
    #[error("interrupted: {recorded} of {total} runs are recorded in {dir}; continue with: llamaperf sweep --resume {dir}")]
    Interrupted {
        /// Runs recorded so far.
        recorded: usize,
        /// Runs planned.
        total: usize,
        /// The results folder.
        dir: String,
    },
}

impl Error {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        let input = |yes: bool| if yes { EXIT_INPUT } else { EXIT_FAILURE };
        match self {
            Error::Context { source, .. } => source.exit_code(),
            Error::Unfinished { cause, .. } => cause.exit_code(),
            Error::Scenario(_)
            | Error::Spec(_)
            | Error::UnknownEngine(_)
            | Error::Skip(_)
            | Error::Compare(_)
            | Error::Plan(_)
            | Error::Slurm(_)
            | Error::SbatchMissing { .. }
            | Error::NothingMeasured { .. } => EXIT_INPUT,
            Error::Machine(e) => input(e.is_input_error()),
            Error::Unplannable(e) => input(e.is_input_error()),
            Error::Model(ModelError::Interrupted) => EXIT_INTERRUPTED,
            Error::Model(e) => input(e.is_input_error()),
            Error::ModelFile(e) => input(e.is_input_error()),
            Error::Results(e) => input(e.is_input_error()),
            Error::Merge(e) => input(e.is_input_error()),
            Error::History(e) => input(e.is_input_error()),
            Error::Report(e) => input(e.is_input_error()),
            Error::Calibration(CalibrationError::Locked { .. }) => EXIT_INPUT,
            Error::Calibration(_)
            | Error::Child(_)
            | Error::Worker(_)
            | Error::Serve(_)
            | Error::Engine(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::SbatchFailed { .. }
            | Error::RunsFailed { .. }
            | Error::GateFailed(_)
            | Error::Incomplete { .. } => EXIT_FAILURE,
            Error::Interrupted { .. } | Error::Stopped(_) => EXIT_INTERRUPTED,
        }
    }

    /// The error and its causes, outermost first, joined by ": "; a cause that an error
    /// already shows at its end (`{path}: {source}`) is not repeated.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = c.source();
        }
        out
    }
}

/// Context for a failing step, as the CLI names it.
pub trait Context<T> {
    /// Wraps the error in `what` was being done.
    fn context(self, what: &str) -> Result<T, Error>;
    /// Wraps the error in the step `what()` names (computed only on failure).
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Error> {
        self.with_context(|| what.to_string())
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::Context {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}

/// What a command returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_code_and_shows_the_chain() {
        let err: Result<()> = Err(SpecError::Zero { what: "--batch" }).context("planning");
        let err = err.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_INPUT);
        assert_eq!(err.chain(), "planning: --batch must be at least 1, got 0");
        let io: Result<()> =
            Err(std::io::Error::other("disk full")).with_context(|| "writing x".into());
        assert_eq!(io.unwrap_err().exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn an_os_error_shown_by_its_error_is_not_repeated() {
        let denied = std::io::Error::other("permission denied");
        let err: Result<()> =
            Err(ModelFileError::io(std::path::Path::new("/m.gguf"), denied)).context("model tiny");
        assert_eq!(
            err.unwrap_err().chain(),
            "model tiny: /m.gguf: permission denied"
        );
    }
}
