//! Statistics over repetitions and over per-token samples.

use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics, Statistics};

/// Mean and spread of one metric over the measured repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1); `None` with fewer than 2 values.
    pub stddev: Option<f64>,
    /// Coefficient of variation, stddev / mean; `None` with fewer than 2 values.
    pub cv: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mean = values.mean();
        let stddev = (values.len() >= 2).then(|| values.std_dev());
        Some(Spread {
            mean,
            stddev,
            cv: stddev.map(|s| if mean != 0.0 { s / mean } else { 0.0 }),
            min: values.min(),
            max: values.max(),
        })
    }
}

/// Distribution of per-step latencies (time per output token).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: usize,
    /// Mean, ms.
    pub mean: f64,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Largest sample, ms.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (linear interpolation between order statistics, statrs'
    /// definition); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut data = Data::new(samples.to_vec());
        Some(Percentiles {
            samples: samples.len(),
            mean: samples.mean(),
            p50: data.percentile(50),
            p90: data.percentile(90),
            p99: data.percentile(99),
            max: samples.max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_known_values() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        assert!((s.stddev.unwrap() - 2.138).abs() < 1e-3);
        assert!((s.cv.unwrap() - 0.4276).abs() < 1e-3);
        assert_eq!((s.min, s.max), (2.0, 9.0));
    }

    #[test]
    fn one_value_has_no_spread() {
        let s = Spread::of(&[3.0]).unwrap();
        assert_eq!((s.mean, s.stddev, s.cv), (3.0, None, None));
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn percentiles_of_one_to_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap();
        assert_eq!(p.samples, 100);
        assert_eq!(p.mean, 50.5);
        assert!((p.p50 - 50.5).abs() < 0.01, "{}", p.p50);
        assert!((p.p90 - 90.4).abs() < 0.5, "{}", p.p90);
        assert!(p.p99 > 98.5 && p.p99 <= 100.0, "{}", p.p99);
        assert_eq!(p.max, 100.0);
    }
}
