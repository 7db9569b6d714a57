//! `compare`: baseline results folders against candidate ones, with a noise-aware verdict per
//! run and metric.
//!
//! Each side is one or more results folders of the same scenario, each folder one sweep (every
//! run in a fresh worker process). Runs are matched by their axes (the run id) and instance.
//! For each metric of [`COMPARED`] a side's samples come from [`samples::NoiseSource`]: one per
//! folder (the median of its repetitions) when both sides have at least 2 folders, else the
//! repetitions themselves. The change is the candidate's mean against the base's mean, and
//! Welch's t-test over the samples, its p-value adjusted for the number of tests of the
//! comparison ([`adjust`]), says whether it is significant. A change is a regression (or
//! improvement) only when it is beyond the threshold AND significant ([`verdict::decide`]).
//!
//! With an [`EnginePair`] the two sides are two engines instead of two builds: the base
//! engine's runs of the base folders against the candidate engine's runs of the candidate
//! folders (the same folders, for engines measured in one sweep), matched on every setting
//! but the engine.

pub mod adjust;
pub mod history;
pub mod judge;
pub mod machines;
pub mod matching;
pub mod render;
pub mod samples;
pub mod verdict;
pub mod welch;

use crate::measure::record::RunRecord;
pub use crate::results::metrics::{Direction, Metric};
use crate::results::{Outcome, ResultsDir, SweepRecord};
use crate::schema::SCHEMA_VERSION;
use machines::MachineDifference;
use matching::Key;
pub use samples::{NoiseSource, Samples};
use serde::{Deserialize, Serialize};
pub use verdict::Verdict;

/// What can be wrong with a comparison's input.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// `--threshold` is negative or not a number.
    #[error("--threshold {0}: must be a percentage >= 0, e.g. 5")]
    BadThreshold(f64),
    /// `--alpha` is outside (0, 1).
    #[error("--alpha {0}: must be a significance level between 0 and 1, e.g. 0.05")]
    BadAlpha(f64),
    /// The folders have no measured run in common.
    #[error("{base} and {candidate} have no measured run in common (are they sweeps of the same scenario?)")]
    NoCommonRuns {
        /// The base folders, joined by ", ".
        base: String,
        /// The candidate folders, joined by ", ".
        candidate: String,
    },
    /// Base folders without candidate folders, and no engines to compare in them.
    #[error("no candidate folders: give --candidate DIR... after --base DIR..., or compare two engines of the base folders with --engine-base ENGINE --engine-candidate ENGINE")]
    NoCandidate,
    /// The same engine on the same folders: the runs would be compared with themselves.
    #[error("--engine-base and --engine-candidate are both '{0}' on the same folders: name two engines, or give other candidate folders")]
    SameEngine(String),
    /// An engine compared was not measured in a side's folders.
    #[error("engine '{engine}' has no measured run in the {side} ({dirs}); engines measured there: {found}")]
    EngineAbsent {
        /// The engine asked for.
        engine: String,
        /// The side.
        side: Side,
        /// The side's folders, joined by ", ".
        dirs: String,
        /// The engines the side's folders hold, joined by ", ".
        found: String,
    },
    /// The two engines were never measured on the same configuration.
    #[error("engines '{base}' ({base_dirs}) and '{candidate}' ({candidate_dirs}) were not measured on any common configuration (every setting equal but the engine)")]
    NoCommonConfigurations {
        /// The base engine.
        base: String,
        /// The base folders, joined by ", ".
        base_dirs: String,
        /// The candidate engine.
        candidate: String,
        /// The candidate folders, joined by ", ".
        candidate_dirs: String,
    },
    /// One folder holds runs of several hosts and another of one: which host to compare is
    /// ambiguous.
    #[error("{folder} holds runs of {hosts} hosts and {other} of one; compare merged folders only (matched host by host), or merge the same hosts")]
    MixedHosts {
        /// A multi-host folder.
        folder: String,
        /// How many hosts it holds.
        hosts: usize,
        /// A single-host folder.
        other: String,
    },
}

/// How changes are judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Smallest change of a mean, percent, that counts as a regression or an improvement.
    pub threshold_pct: f64,
    /// Significance level of Welch's t-test: a change is significant when p < alpha.
    pub alpha: f64,
    /// Whether an inconclusive verdict (or too few samples) fails the gate too.
    pub fail_on_inconclusive: bool,
}

impl CompareOptions {
    /// Validated options.
    pub fn new(
        threshold_pct: f64,
        alpha: f64,
        fail_on_inconclusive: bool,
    ) -> Result<Self, CompareError> {
        if !(threshold_pct >= 0.0 && threshold_pct.is_finite()) {
            return Err(CompareError::BadThreshold(threshold_pct));
        }
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(CompareError::BadAlpha(alpha));
        }
        Ok(CompareOptions {
            threshold_pct,
            alpha,
            fail_on_inconclusive,
        })
    }
}

/// Two engines compared on the same configurations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnginePair {
    /// The engine the change is measured from, as results name it (e.g. `tuned`).
    pub base: String,
    /// The engine judged against it (e.g. `llama.cpp`).
    pub candidate: String,
}

/// The metrics compared (of the catalogue, each with per-repetition samples and a better
/// direction), in report order.
pub const COMPARED: [&str; 7] = [
    "prefill_tok_s",
    "decode_tok_s",
    "output_tok_s",
    "ttft_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "e2e_ms",
];

/// One metric of one matched run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricComparison {
    /// The machine the runs ran on, when every folder holds several hosts (merged folders,
    /// matched host by host); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The run id (its axes).
    pub run_id: String,
    /// The instance of a multi-instance run.
    pub instance: Option<usize>,
    /// The metric.
    pub metric: &'static Metric,
    /// Which way it improves.
    pub direction: Direction,
    /// The base's samples.
    pub base: Samples,
    /// The candidate's samples.
    pub candidate: Samples,
    /// (candidate mean - base mean) / base mean, percent.
    pub change_pct: f64,
    /// Welch's t-test p-value over the samples; `None` with fewer than 2 samples on a side.
    pub p_value: Option<f64>,
    /// `p_value` adjusted for the number of tests of the comparison (Benjamini–Hochberg); the
    /// verdict compares it with alpha.
    pub p_adjusted: Option<f64>,
    /// What the change means.
    pub verdict: Verdict,
}

/// One of the two sides compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The baseline.
    Base,
    /// The candidate.
    Candidate,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Base => "base",
            Side::Candidate => "candidate",
        })
    }
}

/// A matched run that failed on one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedRun {
    /// The machine, when both folders hold several hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The run id.
    pub run_id: String,
    /// The instance of a multi-instance run.
    pub instance: Option<usize>,
    /// Where it failed.
    pub side: Side,
    /// The folder it failed in.
    pub dir: String,
    /// Why it failed.
    pub reason: String,
}

/// The comparison of the base's results folders with the candidate's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// Results schema version.
    pub schema_version: u32,
    /// The base's folders.
    pub base_dirs: Vec<String>,
    /// The candidate's folders.
    pub candidate_dirs: Vec<String>,
    /// The engines compared, when the sides are two engines; run ids then leave the engine
    /// out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engines: Option<EnginePair>,
    /// How changes were judged.
    pub options: CompareOptions,
    /// Where the samples, and the noise that judges each change, come from.
    pub noise: NoiseSource,
    /// Every metric of every matched run, in the base's order.
    pub metrics: Vec<MetricComparison>,
    /// Matched runs that failed on a side (a failure of the candidate fails the gate).
    pub failed: Vec<FailedRun>,
    /// Run ids measured in the base only.
    pub only_in_base: Vec<String>,
    /// Run ids measured in the candidate only.
    pub only_in_candidate: Vec<String>,
    /// Properties of the machines that differ.
    pub machine_differences: Vec<MachineDifference>,
    /// Notes a reader needs (noise between processes not estimated, a machine.json that
    /// could not be read).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Number of metrics with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.metrics.iter().filter(|m| m.verdict == verdict).count()
    }

    /// Whether the candidate regressed: a regression, or a run that failed in the candidate.
    pub fn regressed(&self) -> bool {
        self.count(Verdict::Regression) > 0 || self.failed.iter().any(|f| f.side == Side::Candidate)
    }

    /// Number of metrics the comparison could not decide: inconclusive or too few samples.
    pub fn undecided(&self) -> usize {
        self.count(Verdict::Inconclusive) + self.count(Verdict::TooFewSamples)
    }

    /// Whether the gate fails: the candidate regressed, or (with `fail_on_inconclusive`) a
    /// metric is undecided.
    pub fn fails(&self) -> bool {
        self.regressed() || (self.options.fail_on_inconclusive && self.undecided() > 0)
    }
}

/// The note of a comparison whose noise between processes cannot be estimated.
fn repetitions_note(base: usize, candidate: usize) -> String {
    format!(
        "{base} base folder{} and {candidate} candidate folder{}: the noise between processes cannot be estimated (it needs at least 2 folders, i.e. sweeps, per side), so each side's samples are its repetitions, which share one process and are not independent samples of the noise between runs: a difference between two sweeps of the same build may be called significant. Give several folders per side (--base DIR... --candidate DIR...), e.g. from scripts/ci-regression.sh",
        if base == 1 { "" } else { "s" },
        if candidate == 1 { "" } else { "s" },
    )
}

/// The failure of a line of `side`'s folder `dir`, if it failed.
fn failure(key: &Key, r: &SweepRecord, side: Side, dir: &ResultsDir) -> Option<FailedRun> {
    match &r.outcome {
        Outcome::Failed { reason, .. } => Some(FailedRun {
            host: key.0.clone(),
            run_id: r.run_id(),
            instance: r.instance,
            side,
            dir: dir.path().display().to_string(),
            reason: reason.clone(),
        }),
        _ => None,
    }
}

/// The measured records of a matched run's `lines` on `side` (folder index, line); the lines
/// that failed go to `failed`.
fn records<'a>(
    key: &Key,
    lines: &[(usize, &'a SweepRecord)],
    folders: &[ResultsDir],
    side: Side,
    failed: &mut Vec<FailedRun>,
) -> Vec<&'a RunRecord> {
    let mut records = Vec::new();
    for &(i, r) in lines {
        failed.extend(failure(key, r, side, &folders[i]));
        if let Outcome::Ok { record } = &r.outcome {
            records.push(record.as_ref());
        }
    }
    records
}

/// The machine properties that differ between the first base folder's machine and each other
/// folder's, each once; a note for each machine.json that cannot be read.
fn machines_of(folders: &[&ResultsDir], notes: &mut Vec<String>) -> Vec<MachineDifference> {
    let mut differences: Vec<MachineDifference> = Vec::new();
    let Some((first, others)) = folders.split_first() else {
        return differences;
    };
    let reference = match first.machine() {
        Ok(machine) => machine,
        Err(e) => {
            notes.push(format!("machines not compared: {e}"));
            return differences;
        }
    };
    for other in others {
        match other.machine() {
            Ok(machine) => {
                for d in machines::differences(&reference, &machine) {
                    if !differences.contains(&d) {
                        differences.push(d);
                    }
                }
            }
            Err(e) => notes.push(format!("machines not compared: {e}")),
        }
    }
    differences
}

fn paths(folders: &[ResultsDir]) -> Vec<String> {
    folders
        .iter()
        .map(|f| f.path().display().to_string())
        .collect()
}

/// An error when a side's folders hold no measured run of `engine`.
fn check_engine(engine: &str, side: Side, folders: &[ResultsDir]) -> Result<(), CompareError> {
    let found = matching::engines(folders);
    if found.iter().any(|e| e == engine) {
        return Ok(());
    }
    Err(CompareError::EngineAbsent {
        engine: engine.to_string(),
        side,
        dirs: paths(folders).join(", "),
        found: if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        },
    })
}

/// Compares the `candidate` folders against the `base` folders (each one sweep of the same
/// scenario); with `engines`, the candidate engine's runs against the base engine's.
pub fn compare(
    base: &[ResultsDir],
    candidate: &[ResultsDir],
    options: CompareOptions,
    engines: Option<&EnginePair>,
) -> Result<Comparison, CompareError> {
    if let Some(pair) = engines {
        if pair.base == pair.candidate && paths(base) == paths(candidate) {
            return Err(CompareError::SameEngine(pair.base.clone()));
        }
        check_engine(&pair.base, Side::Base, base)?;
        check_engine(&pair.candidate, Side::Candidate, candidate)?;
    }
    let all: Vec<&ResultsDir> = base.iter().chain(candidate).collect();
    let matching = matching::match_runs(base, candidate, matching::by_host(&all)?, engines);
    if matching.matched.is_empty() {
        return Err(match engines {
            Some(pair) => CompareError::NoCommonConfigurations {
                base: pair.base.clone(),
                base_dirs: paths(base).join(", "),
                candidate: pair.candidate.clone(),
                candidate_dirs: paths(candidate).join(", "),
            },
            None => CompareError::NoCommonRuns {
                base: paths(base).join(", "),
                candidate: paths(candidate).join(", "),
            },
        });
    }
    let noise = NoiseSource::of(base.len(), candidate.len());
    let mut tests = Vec::new();
    let mut failed = Vec::new();
    for m in &matching.matched {
        let (b, c) = (
            records(&m.key, &m.base, base, Side::Base, &mut failed),
            records(
                &m.key,
                &m.candidate,
                candidate,
                Side::Candidate,
                &mut failed,
            ),
        );
        if !b.is_empty() && !c.is_empty() {
            tests.extend(judge::test_run(&m.key, noise, &b, &c));
        }
    }
    let mut notes = Vec::new();
    if noise == NoiseSource::Repetitions {
        notes.push(repetitions_note(base.len(), candidate.len()));
    }
    let machine_differences = machines_of(&all, &mut notes);
    Ok(Comparison {
        schema_version: SCHEMA_VERSION,
        base_dirs: paths(base),
        candidate_dirs: paths(candidate),
        engines: engines.cloned(),
        options,
        noise,
        metrics: judge::judge(tests, &options),
        failed,
        only_in_base: matching.only_in_base,
        only_in_candidate: matching.only_in_candidate,
        machine_differences,
        notes,
    })
}
