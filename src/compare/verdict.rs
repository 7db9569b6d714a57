//! The verdict on one metric: a change counts only when it is beyond the threshold AND
//! statistically significant.

use super::Direction;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a change of one metric means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse by more than the threshold, and significant.
    Regression,
    /// Better by more than the threshold, and significant.
    Improvement,
    /// Within the threshold.
    Unchanged,
    /// Beyond the threshold, but the samples vary too much to tell (not significant).
    Inconclusive,
    /// Fewer than 2 samples (folders, or repetitions of one folder) on a side: no test is
    /// possible.
    TooFewSamples,
}

impl Verdict {
    /// The word shown in tables.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
            Verdict::TooFewSamples => "too few samples",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict on a change of `change_pct` percent (candidate mean vs base mean) of a metric
/// improving in `direction`, with the test's `p_value` (`None`: too few samples), for a
/// `threshold_pct` and significance level `alpha`.
pub fn decide(
    direction: Direction,
    change_pct: f64,
    p_value: Option<f64>,
    threshold_pct: f64,
    alpha: f64,
) -> Verdict {
    let Some(p) = p_value else {
        return Verdict::TooFewSamples;
    };
    if change_pct.abs() <= threshold_pct {
        return Verdict::Unchanged;
    }
    if p >= alpha {
        return Verdict::Inconclusive;
    }
    let better = match direction {
        Direction::HigherIsBetter => change_pct > 0.0,
        Direction::LowerIsBetter => change_pct < 0.0,
    };
    if better {
        Verdict::Improvement
    } else {
        Verdict::Regression
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    #[test]
    fn significant_changes_beyond_the_threshold_count_by_direction() {
        assert_eq!(
            decide(HigherIsBetter, -20.0, Some(0.001), 5.0, 0.05),
            Verdict::Regression
        );
        assert_eq!(
            decide(LowerIsBetter, 25.0, Some(0.001), 5.0, 0.05),
            Verdict::Regression
        );
        assert_eq!(
            decide(HigherIsBetter, 20.0, Some(0.001), 5.0, 0.05),
            Verdict::Improvement
        );
        assert_eq!(
            decide(LowerIsBetter, -20.0, Some(0.001), 5.0, 0.05),
            Verdict::Improvement
        );
    }

    #[test]
    fn small_changes_are_unchanged_even_when_significant() {
        assert_eq!(
            decide(HigherIsBetter, -3.0, Some(1e-9), 5.0, 0.05),
            Verdict::Unchanged
        );
        assert_eq!(
            decide(HigherIsBetter, -5.0, Some(1e-9), 5.0, 0.05),
            Verdict::Unchanged
        );
    }

    #[test]
    fn large_changes_without_significance_are_inconclusive() {
        assert_eq!(
            decide(HigherIsBetter, -60.0, Some(0.2), 5.0, 0.05),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn no_test_means_too_few_samples() {
        assert_eq!(
            decide(HigherIsBetter, -60.0, None, 5.0, 0.05),
            Verdict::TooFewSamples
        );
    }
}
