//! The samples one side of a comparison contributes for one metric of one run, and the noise
//! they measure.
//!
//! Each results folder is one sweep: every run in its own fresh worker process. With at least
//! two folders on each side, a side's samples are one value per folder, the median of that
//! process's repetitions, and their spread is the noise between processes (another process,
//! other pages, another minute's neighbours), which is what separates two sweeps of the same
//! build. The repetitions inside one process share all of that, so they are not independent
//! samples of it, and a test over them calls differences between sweeps significant that are
//! only noise.
//! With one folder on a side the noise between processes cannot be estimated: the samples are
//! then the repetitions (of all of a side's folders, pooled), and the comparison says so.

use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics, Statistics};

/// Where a comparison's samples, and so the noise that judges a change, come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSource {
    /// One sample per results folder (per process): the median of its repetitions.
    BetweenProcesses,
    /// Every measured repetition is a sample: one folder on a side, so the noise between
    /// processes cannot be estimated.
    Repetitions,
    /// Against the history (`compare --baseline-history N`): the base's samples are one per
    /// stored result of the run (the median of its repetitions), the candidate's its
    /// repetitions.
    History,
}

impl NoiseSource {
    /// The source for `base_folders` and `candidate_folders` folders: between processes when
    /// each side has at least 2.
    pub fn of(base_folders: usize, candidate_folders: usize) -> Self {
        if base_folders >= 2 && candidate_folders >= 2 {
            NoiseSource::BetweenProcesses
        } else {
            NoiseSource::Repetitions
        }
    }

    /// A side's samples from the repetition values of each of its folders (a folder without
    /// the run or the metric contributes an empty list, and no sample); with the history,
    /// the base's.
    pub fn samples(self, per_folder: &[Vec<f64>]) -> Vec<f64> {
        match self {
            NoiseSource::BetweenProcesses | NoiseSource::History => per_folder
                .iter()
                .filter(|values| !values.is_empty())
                .map(|values| Data::new(values.clone()).median())
                .collect(),
            NoiseSource::Repetitions => per_folder.concat(),
        }
    }
}

/// Mean and spread of one side's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Samples {
    /// Number of samples: folders (processes) or repetitions, after [`NoiseSource`].
    pub n: usize,
    /// Mean, in the metric's unit.
    pub mean: f64,
    /// Sample standard deviation, in the metric's unit; `None` with fewer than 2 samples.
    pub stddev: Option<f64>,
    /// Coefficient of variation, percent: 100 x stddev / mean; `None` with fewer than 2
    /// samples. The noise the verdict is judged against.
    pub cv_pct: Option<f64>,
}

impl Samples {
    /// The mean and spread of `samples`.
    pub fn of(samples: &[f64]) -> Self {
        let mean = samples.mean();
        let stddev = (samples.len() >= 2).then(|| samples.std_dev());
        Samples {
            n: samples.len(),
            mean,
            stddev,
            cv_pct: stddev.map(|sd| 100.0 * sd / mean.abs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_processes_needs_two_folders_on_each_side() {
        assert_eq!(NoiseSource::of(2, 2), NoiseSource::BetweenProcesses);
        assert_eq!(NoiseSource::of(5, 3), NoiseSource::BetweenProcesses);
        assert_eq!(NoiseSource::of(1, 4), NoiseSource::Repetitions);
        assert_eq!(NoiseSource::of(4, 1), NoiseSource::Repetitions);
        assert_eq!(NoiseSource::of(1, 1), NoiseSource::Repetitions);
    }

    #[test]
    fn one_median_per_folder_or_every_repetition() {
        let folders = vec![
            vec![10.0, 11.0, 30.0],
            Vec::new(),
            vec![12.0, 13.0, 14.0, 15.0],
        ];
        assert_eq!(
            NoiseSource::BetweenProcesses.samples(&folders),
            [11.0, 13.5],
            "the outlier 30 does not move its process's value; the empty folder gives none"
        );
        assert_eq!(
            NoiseSource::Repetitions.samples(&folders),
            [10.0, 11.0, 30.0, 12.0, 13.0, 14.0, 15.0]
        );
    }

    #[test]
    fn spread_is_given_as_stddev_and_cv() {
        let s = Samples::of(&[9.0, 10.0, 11.0]);
        assert_eq!((s.n, s.mean, s.stddev), (3, 10.0, Some(1.0)));
        assert!((s.cv_pct.unwrap() - 10.0).abs() < 1e-12, "{s:?}");
        let one = Samples::of(&[4.0]);
        assert_eq!((one.n, one.stddev, one.cv_pct), (1, None, None));
    }
}
