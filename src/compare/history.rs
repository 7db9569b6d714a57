//! `compare --baseline-history N`: a candidate folder judged against the history database.
//!
//! For each run (and instance) the candidate measured, the baseline is the last N stored
//! results of the same run id and instance on the same machine identity (newest first, by the
//! start of their folders' measurements; folders holding a line of the candidate itself are
//! left out). Each stored result is one sample, the median of its repetitions, so a noisy
//! repetition moves nothing; a stored result whose median lies far from the others (modified
//! Z-score above [`OUTLIER_Z`] and at least [`OUTLIER_DISTANCE`] of the median away, as for
//! decode-step outliers in reports) is left out and named in a note, so one noisy sweep
//! cannot spoil the baseline. The candidate's samples are its repetitions. Then the change,
//! Welch's t-test, the adjusted p-values and the verdicts are those of every comparison.

use super::judge::{judge, test_samples};
use super::{CompareOptions, Comparison, FailedRun, NoiseSource, Side, COMPARED};
use crate::report::canvas::number;
use crate::report::outliers::{OUTLIER_DISTANCE, OUTLIER_Z};
use crate::results::history::identity::{machines_of, MachineIdentity};
use crate::results::history::ingest::line_hash;
use crate::results::history::{History, HistoryError};
use crate::results::metrics::metric;
use crate::results::{Outcome, ResultsDir};
use crate::schema::SCHEMA_VERSION;
use statrs::statistics::{Data, OrderStatistics};

fn median(values: &[f64]) -> f64 {
    Data::new(values.to_vec()).median()
}

/// Of the samples of the stored results, the indices kept: all but those far from the others
/// (at least 3 needed to tell).
pub fn kept(samples: &[f64]) -> Vec<usize> {
    let all: Vec<usize> = (0..samples.len()).collect();
    if samples.len() < 3 {
        return all;
    }
    let med = median(samples);
    let deviations: Vec<f64> = samples.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&deviations);
    all.into_iter()
        .filter(|&i| {
            let off = deviations[i];
            mad == 0.0 || 0.6745 * off / mad <= OUTLIER_Z || off < OUTLIER_DISTANCE * med.abs()
        })
        .collect()
}

/// Compares `candidate` with the last `n` stored results of each of its runs in `history`.
pub fn compare_with_history(
    history: &History,
    candidate: &ResultsDir,
    n: usize,
    options: CompareOptions,
) -> Result<Comparison, HistoryError> {
    let machines = machines_of(candidate)?;
    let first_host = machines.keys().next().cloned().unwrap_or_default();
    let exclude: Vec<String> = candidate.records().iter().map(line_hash).collect();
    let dir = candidate.path().display().to_string();
    let mut tests = Vec::new();
    let mut failed = Vec::new();
    let mut notes = Vec::new();
    let mut only_in_candidate: Vec<String> = Vec::new();
    let mut base_dirs: Vec<String> = Vec::new();
    let mut identities: Vec<MachineIdentity> = Vec::new();
    for line in candidate.records() {
        if matches!(line.outcome, Outcome::Aggregate { .. }) {
            continue;
        }
        let host = line.host.clone().unwrap_or_else(|| first_host.clone());
        let Some(info) = machines.get(&host) else {
            continue;
        };
        let identity = MachineIdentity::of(info);
        if !identities.contains(&identity) {
            identities.push(identity.clone());
        }
        let run_id = line.run_id();
        let stored = match history.machine_id(&identity)? {
            Some(machine) => history.baseline(machine, &run_id, line.instance, n, &exclude)?,
            None => Vec::new(),
        };
        if stored.is_empty() {
            if !only_in_candidate.contains(&run_id) {
                only_in_candidate.push(run_id);
            }
            continue;
        }
        for s in &stored {
            let name = format!("{} ({})", s.path, s.label);
            if !base_dirs.contains(&name) {
                base_dirs.push(name);
            }
        }
        if stored.len() < n {
            notes.push(format!(
                "{run_id}: {} of {n} stored results in the history",
                stored.len()
            ));
        }
        let key = (None, run_id.clone(), line.instance);
        let record = match &line.outcome {
            Outcome::Ok { record } => record,
            Outcome::Failed { reason, .. } => {
                failed.push(FailedRun {
                    host: None,
                    run_id,
                    instance: line.instance,
                    side: Side::Candidate,
                    dir: dir.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            Outcome::Aggregate { .. } => continue,
        };
        for m in COMPARED.into_iter().map(metric) {
            let per_result: Vec<(String, f64)> = stored
                .iter()
                .filter_map(|s| {
                    let values = s.samples.get(&m.name).filter(|v| !v.is_empty())?;
                    Some((format!("{} ({})", s.path, s.label), median(values)))
                })
                .collect();
            let samples: Vec<f64> = per_result.iter().map(|p| p.1).collect();
            let keep = kept(&samples);
            if keep.len() < samples.len() {
                let dropped: Vec<String> = (0..samples.len())
                    .filter(|i| !keep.contains(i))
                    .map(|i| format!("{}: {}", per_result[i].0, number(per_result[i].1)))
                    .collect();
                notes.push(format!(
                    "{run_id} {}: stored results left out of the baseline as outliers: {}",
                    m.name,
                    dropped.join(", ")
                ));
            }
            let base: Vec<f64> = keep.iter().map(|&i| samples[i]).collect();
            tests.extend(test_samples(&key, m, &base, &m.samples(record)));
        }
    }
    if tests.is_empty() && failed.is_empty() {
        return Err(HistoryError::NoBaseline {
            db: history.path().to_path_buf(),
            candidate: candidate.path().to_path_buf(),
            machine: identities
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    notes.insert(
        0,
        format!(
            "baseline: the last {n} stored results of each run in {} on the same machine ({}), one sample per result (the median of its repetitions)",
            history.path().display(),
            identities
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    Ok(Comparison {
        schema_version: SCHEMA_VERSION,
        base_dirs,
        candidate_dirs: vec![dir],
        engines: None,
        options,
        noise: NoiseSource::History,
        metrics: judge(tests, &options),
        failed,
        only_in_base: Vec::new(),
        only_in_candidate,
        machine_differences: Vec::new(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_result_is_left_out_and_close_ones_kept() {
        assert_eq!(kept(&[100.0, 101.0, 99.0, 100.5, 60.0]), [0, 1, 2, 3]);
        assert_eq!(kept(&[100.0, 60.0]), [0, 1], "two cannot tell which is off");
        assert_eq!(
            kept(&[100.0, 100.1, 99.9, 104.0]),
            [0, 1, 2, 3],
            "4% off is not an outlier, however steady the others"
        );
        assert_eq!(
            kept(&[5.0, 5.0, 5.0, 9.0]),
            [0, 1, 2, 3],
            "no spread: MAD 0"
        );
    }
}
