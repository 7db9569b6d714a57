//! Outliers and warm-up among the decode steps of a run: the modified Z-score of each step
//! (0.6745 x distance from the median / median absolute deviation, Iglewicz and Hoaglin), with
//! a floor on the distance so that a very steady run does not flag steps a few percent off,
//! and how much slower the first step is than the median.

use super::tokens::StepLatencies;
use statrs::statistics::{Data, OrderStatistics};

/// Steps whose modified Z-score exceeds this are outliers (if also [`OUTLIER_DISTANCE`] off).
pub const OUTLIER_Z: f64 = 3.5;

/// An outlier is also at least this fraction of the median away from the median.
pub const OUTLIER_DISTANCE: f64 = 0.2;

/// A first decode step this many times the median or more is reported as warm-up.
pub const WARMUP_RATIO: f64 = 1.5;

/// What stands out among the decode steps of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutliers {
    /// Decode steps over all repetitions.
    pub samples: usize,
    /// Median step, ms.
    pub median_ms: f64,
    /// Steps with a modified Z-score above [`OUTLIER_Z`] and [`OUTLIER_DISTANCE`] off the median.
    pub outliers: usize,
    /// Slowest step, ms.
    pub max_ms: f64,
    /// Mean of the first steps of the repetitions / median step.
    pub first_step_ratio: f64,
}

/// What stands out among the decode steps of one run (or instance) of one results set.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutliers {
    /// The results set.
    pub set: String,
    /// The run.
    pub run_id: String,
    /// The instance, for multi-instance runs.
    pub instance: Option<usize>,
    /// What stands out.
    pub steps: StepOutliers,
}

impl StepOutliers {
    /// Whether anything stands out: outliers, or a slow first step.
    pub fn notable(&self) -> bool {
        self.outliers > 0 || self.first_step_ratio >= WARMUP_RATIO
    }
}

fn median(values: &[f64]) -> f64 {
    Data::new(values.to_vec()).median()
}

/// The outliers of `run`; `None` with fewer than 3 decode steps.
pub fn step_outliers(run: &StepLatencies) -> Option<StepOutliers> {
    let all = run.all();
    if all.len() < 3 {
        return None;
    }
    let med = median(&all);
    let deviations: Vec<f64> = all.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&deviations);
    let outliers = if mad > 0.0 {
        all.iter()
            .filter(|v| {
                let off = (*v - med).abs();
                0.6745 * off / mad > OUTLIER_Z && off >= OUTLIER_DISTANCE * med
            })
            .count()
    } else {
        0
    };
    let firsts: Vec<f64> = run
        .repetitions
        .iter()
        .filter_map(|r| r.first().copied())
        .collect();
    let first = firsts.iter().sum::<f64>() / firsts.len() as f64;
    Some(StepOutliers {
        samples: all.len(),
        median_ms: med,
        outliers,
        max_ms: all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        first_step_ratio: first / med,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_step_is_an_outlier_and_a_slow_first_step_is_warm_up() {
        let run = StepLatencies {
            run_id: "r".into(),
            instance: None,
            label: "r".into(),
            repetitions: vec![
                vec![3.0, 1.0, 1.1, 0.9, 1.0, 1.05],
                vec![1.0, 0.95, 1.0, 9.0, 1.1, 1.0],
            ],
        };
        let o = step_outliers(&run).unwrap();
        assert_eq!(o.samples, 12);
        assert_eq!(o.outliers, 2, "3.0 and 9.0; 1.1 is too close to count");
        assert_eq!(o.max_ms, 9.0);
        assert!(
            (o.first_step_ratio - 2.0).abs() < 0.01,
            "{}",
            o.first_step_ratio
        );
        assert!(o.notable());
    }

    #[test]
    fn identical_steps_have_no_outliers() {
        let run = StepLatencies {
            run_id: "r".into(),
            instance: None,
            label: "r".into(),
            repetitions: vec![vec![1.0; 5]],
        };
        let o = step_outliers(&run).unwrap();
        assert_eq!((o.outliers, o.first_step_ratio), (0, 1.0));
        assert!(!o.notable());
    }
}
