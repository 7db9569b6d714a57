//! Welch's unequal-variances t-test: are two means different beyond what the spread of the
//! repetitions explains?

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::Statistics;

/// The outcome of Welch's t-test on two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    /// t statistic: (mean of b - mean of a) / standard error of the difference; infinite when
    /// both samples are constant and their means differ.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value: the probability of a difference at least this large if the means
    /// were equal.
    pub p_value: f64,
}

/// Welch's t-test of `b` against `a`; `None` when either has fewer than 2 values (no variance
/// can be estimated, so no test is possible).
pub fn welch(a: &[f64], b: &[f64]) -> Option<WelchTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (ma, mb) = (a.mean(), b.mean());
    let (sa, sb) = (a.variance() / na, b.variance() / nb);
    let se2 = sa + sb;
    if se2 == 0.0 {
        let differ = ma != mb;
        return Some(WelchTest {
            t: if differ {
                f64::INFINITY.copysign(mb - ma)
            } else {
                0.0
            },
            df: na + nb - 2.0,
            p_value: if differ { 0.0 } else { 1.0 },
        });
    }
    let t = (mb - ma) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0 when both samples vary");
    Some(WelchTest {
        t,
        df,
        p_value: (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_textbook_example() {
        // Computed independently: t and df by the formulas, p by numerical integration of the
        // Student t density.
        let a = [19.1, 20.3, 18.7, 19.9, 20.0];
        let b = [21.0, 22.4, 20.1, 21.8, 23.0];
        let w = welch(&a, &b).unwrap();
        assert!((w.t - 3.4741).abs() < 1e-3, "{w:?}");
        assert!((w.df - 6.4610).abs() < 1e-3, "{w:?}");
        assert!((w.p_value - 0.011756).abs() < 1e-5, "{w:?}");
    }

    #[test]
    fn identical_samples_are_not_different() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(welch(&a, &a).unwrap().p_value, 1.0);
    }

    #[test]
    fn constant_samples_differ_with_certainty() {
        let w = welch(&[2.0, 2.0], &[3.0, 3.0]).unwrap();
        assert_eq!((w.t, w.p_value), (f64::INFINITY, 0.0));
        assert_eq!(welch(&[2.0, 2.0], &[2.0, 2.0]).unwrap().p_value, 1.0);
    }

    #[test]
    fn one_value_allows_no_test() {
        assert!(welch(&[1.0], &[1.0, 2.0]).is_none());
        assert!(welch(&[1.0, 2.0], &[]).is_none());
    }
}
