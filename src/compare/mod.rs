//! `compare`: a baseline results folder against a candidate one, with a noise-aware verdict per
//! run and metric.
//!
//! Runs are matched by their axes (the run id) and instance. For each metric of [`COMPARED`] the
//! samples are the per-repetition values of the run's record; the change is the candidate's mean
//! against the base's mean, and Welch's t-test over the repetitions, its p-value adjusted for
//! the number of tests of the comparison ([`adjust`]), says whether it is significant. A change
//! is a regression (or improvement) only when it is beyond the threshold AND significant
//! ([`verdict::decide`]).

pub mod adjust;
pub mod machines;
pub mod render;
pub mod verdict;
pub mod welch;

use crate::measure::record::RunRecord;
use crate::results::metrics::metric;
pub use crate::results::metrics::{Direction, Metric};
use crate::results::{Outcome, ResultsDir, SweepRecord};
use crate::schema::SCHEMA_VERSION;
use machines::MachineDifference;
use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;
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
        /// The base folder.
        base: String,
        /// The candidate folder.
        candidate: String,
    },
    /// One folder holds runs of several hosts and the other of one: which host to compare
    /// is ambiguous.
    #[error("{folder} holds runs of {hosts} hosts and the other folder of one; compare two merged folders (matched host by host), or merge the same hosts")]
    MixedHosts {
        /// The multi-host folder.
        folder: String,
        /// How many hosts it holds.
        hosts: usize,
    },
}

/// How changes are judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Smallest change of a mean, percent, that counts as a regression or an improvement.
    pub threshold_pct: f64,
    /// Significance level of Welch's t-test: a change is significant when p < alpha.
    pub alpha: f64,
}

impl CompareOptions {
    /// Validated options.
    pub fn new(threshold_pct: f64, alpha: f64) -> Result<Self, CompareError> {
        if !(threshold_pct >= 0.0 && threshold_pct.is_finite()) {
            return Err(CompareError::BadThreshold(threshold_pct));
        }
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(CompareError::BadAlpha(alpha));
        }
        Ok(CompareOptions {
            threshold_pct,
            alpha,
        })
    }
}

/// Mean and spread of one side's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Samples {
    /// Number of samples (measured repetitions).
    pub n: usize,
    /// Mean, in the metric's unit.
    pub mean: f64,
    /// Sample standard deviation; `None` with fewer than 2 samples.
    pub stddev: Option<f64>,
}

impl Samples {
    fn of(samples: &[f64]) -> Self {
        Samples {
            n: samples.len(),
            mean: samples.mean(),
            stddev: (samples.len() >= 2).then(|| samples.std_dev()),
        }
    }
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
    /// The run id (its axes).
    /// The machine both runs ran on, when both folders hold several hosts (merged folders,
    /// matched host by host); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
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
    /// Welch's t-test p-value; `None` with fewer than 2 repetitions on a side.
    pub p_value: Option<f64>,
    /// `p_value` adjusted for the number of tests of the comparison (Benjamini–Hochberg); the
    /// verdict compares it with alpha.
    pub p_adjusted: Option<f64>,
    /// What the change means.
    pub verdict: Verdict,
}

/// One of the two folders compared.
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
    /// Why it failed.
    pub reason: String,
}

/// The comparison of two results folders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// Results schema version.
    pub schema_version: u32,
    /// The base folder.
    pub base_dir: String,
    /// The candidate folder.
    pub candidate_dir: String,
    /// How changes were judged.
    pub options: CompareOptions,
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
    /// Notes a reader needs (a machine.json that could not be read).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Number of metrics with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.metrics.iter().filter(|m| m.verdict == verdict).count()
    }

    /// Whether the gate fails: a regression, or a run that failed in the candidate.
    pub fn regressed(&self) -> bool {
        self.count(Verdict::Regression) > 0 || self.failed.iter().any(|f| f.side == Side::Candidate)
    }
}

/// What matches a line of one folder with a line of the other: host (when matching host by
/// host), run id and instance.
type Key<'a> = (Option<&'a str>, String, Option<usize>);

/// The lines of a folder that carry a run's own measurement (single runs and each instance;
/// aggregates are left out, their instances are compared), keyed by host (when `by_host`),
/// run id and instance.
fn measured(records: &[SweepRecord], by_host: bool) -> Vec<(&SweepRecord, Key<'_>)> {
    records
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Aggregate { .. }))
        .map(|r| {
            let host = by_host.then(|| r.host.as_deref().unwrap_or_default());
            (r, (host, r.run_id(), r.instance))
        })
        .collect()
}

fn unique_ids<'a>(lines: impl Iterator<Item = &'a SweepRecord>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in lines {
        let id = r.run_id();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// One metric of one matched run, tested but not yet judged (the verdict needs the p-values
/// of every test of the comparison).
struct Tested {
    host: Option<String>,
    run_id: String,
    instance: Option<usize>,
    metric: &'static Metric,
    direction: Direction,
    base: Samples,
    candidate: Samples,
    p_value: Option<f64>,
}

/// Every metric both records have, tested.
fn test_records(
    (host, run_id, instance): Key,
    base: &RunRecord,
    candidate: &RunRecord,
) -> Vec<Tested> {
    COMPARED
        .into_iter()
        .map(metric)
        .filter_map(|metric| {
            let direction = metric.better?;
            let (b, c) = (metric.samples(base), metric.samples(candidate));
            (!b.is_empty() && !c.is_empty()).then(|| Tested {
                host: host.map(str::to_string),
                run_id: run_id.to_string(),
                instance,
                metric,
                direction,
                base: Samples::of(&b),
                candidate: Samples::of(&c),
                p_value: welch::welch(&b, &c).map(|w| w.p_value),
            })
        })
        .collect()
}

/// Adjusts the p-values of all `tests` together and judges each.
fn judge(tests: Vec<Tested>, options: &CompareOptions) -> Vec<MetricComparison> {
    let raw: Vec<f64> = tests.iter().filter_map(|t| t.p_value).collect();
    let mut adjusted = adjust::benjamini_hochberg(&raw).into_iter();
    tests
        .into_iter()
        .map(|t| {
            let p_adjusted = t.p_value.and_then(|_| adjusted.next());
            let change_pct = 100.0 * (t.candidate.mean - t.base.mean) / t.base.mean;
            let direction = t.direction;
            MetricComparison {
                verdict: verdict::decide(
                    direction,
                    change_pct,
                    p_adjusted,
                    options.threshold_pct,
                    options.alpha,
                ),
                host: t.host,
                run_id: t.run_id,
                instance: t.instance,
                metric: t.metric,
                direction,
                base: t.base,
                candidate: t.candidate,
                change_pct,
                p_value: t.p_value,
                p_adjusted,
            }
        })
        .collect()
}

/// Compares `candidate` against `base`.
pub fn compare(
    base: &ResultsDir,
    candidate: &ResultsDir,
    options: CompareOptions,
) -> Result<Comparison, CompareError> {
    let by_host = match (base.hosts().len(), candidate.hosts().len()) {
        (1, 1) => false,
        (b, c) if b > 1 && c > 1 => true,
        (b, c) => {
            let (folder, hosts) = if b > 1 { (base, b) } else { (candidate, c) };
            return Err(CompareError::MixedHosts {
                folder: folder.path().display().to_string(),
                hosts,
            });
        }
    };
    let base_lines = measured(base.records(), by_host);
    let cand_lines = measured(candidate.records(), by_host);
    let mut tests = Vec::new();
    let mut failed = Vec::new();
    let mut matched = 0;
    for (b, key) in &base_lines {
        let Some((c, _)) = cand_lines.iter().find(|(_, k)| k == key) else {
            continue;
        };
        matched += 1;
        let failure = |r: &SweepRecord, side: Side| match &r.outcome {
            Outcome::Failed { reason, .. } => Some(FailedRun {
                host: key.0.map(str::to_string),
                run_id: r.run_id(),
                instance: r.instance,
                side,
                reason: reason.clone(),
            }),
            _ => None,
        };
        failed.extend(failure(b, Side::Base));
        failed.extend(failure(c, Side::Candidate));
        if let (Outcome::Ok { record: rb }, Outcome::Ok { record: rc }) = (&b.outcome, &c.outcome) {
            tests.extend(test_records(key.clone(), rb, rc));
        }
    }
    if matched == 0 {
        return Err(CompareError::NoCommonRuns {
            base: base.path().display().to_string(),
            candidate: candidate.path().display().to_string(),
        });
    }
    let only = |ours: &[(&SweepRecord, Key)], theirs: &[(&SweepRecord, Key)]| {
        unique_ids(
            ours.iter()
                .filter(|(_, k)| !theirs.iter().any(|(_, t)| (t.0, &t.1) == (k.0, &k.1)))
                .map(|(r, _)| *r),
        )
    };
    let mut notes = Vec::new();
    let machine_differences = match (base.machine(), candidate.machine()) {
        (Ok(b), Ok(c)) => machines::differences(&b, &c),
        (b, c) => {
            notes.extend(
                [b.err(), c.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| format!("machines not compared: {e}")),
            );
            Vec::new()
        }
    };
    Ok(Comparison {
        schema_version: SCHEMA_VERSION,
        base_dir: base.path().display().to_string(),
        candidate_dir: candidate.path().display().to_string(),
        options,
        only_in_base: only(&base_lines, &cand_lines),
        only_in_candidate: only(&cand_lines, &base_lines),
        metrics: judge(tests, &options),
        failed,
        machine_differences,
        notes,
    })
}
