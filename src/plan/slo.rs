//! The largest batch whose latencies meet the service-level objectives.

use super::MachinePoint;
use serde::{Deserialize, Serialize};

/// Latency objectives; an unset one always holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Largest acceptable time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Largest acceptable time per output token, ms.
    pub tpot_ms: Option<f64>,
}

impl Slo {
    /// Whether any objective is set.
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some()
    }

    /// Whether latencies of `ttft_ms` and `tpot_ms` meet every objective.
    pub fn met_by(&self, ttft_ms: f64, tpot_ms: f64) -> bool {
        self.ttft_ms.is_none_or(|t| ttft_ms <= t) && self.tpot_ms.is_none_or(|t| tpot_ms <= t)
    }
}

/// The point of the largest batch in `1..=max_batch` that meets `slo`; `at(batch)` gives a
/// batch's point, or `None` where there is none (it does not fit, or is outside what was
/// measured), which ends the search.
pub fn largest_batch(
    slo: &Slo,
    max_batch: usize,
    mut at: impl FnMut(usize) -> Option<MachinePoint>,
) -> Option<MachinePoint> {
    let mut best = None;
    for batch in 1..=max_batch {
        let Some(point) = at(batch) else {
            break;
        };
        if slo.met_by(point.ttft_ms, point.tpot_ms) {
            best = Some(point);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(batch: usize) -> MachinePoint {
        let tok_s = batch as f64 * 1000.0 / (10.0 + batch as f64);
        MachinePoint {
            batch,
            ttft_ms: 100.0 * batch as f64,
            tpot_ms: 10.0 + batch as f64,
            tok_s_per_instance: tok_s,
            instances_per_machine: 2,
            tok_s_per_machine: 2.0 * tok_s,
            tok_per_j: None,
        }
    }

    #[test]
    fn finds_the_largest_batch_meeting_both_objectives() {
        let slo = Slo {
            ttft_ms: Some(1000.0),
            tpot_ms: Some(16.0),
        };
        let best = largest_batch(&slo, 64, |b| Some(point(b))).unwrap();
        assert_eq!(best.batch, 6);
        let ttft_only = Slo {
            ttft_ms: Some(1000.0),
            tpot_ms: None,
        };
        assert_eq!(
            largest_batch(&ttft_only, 64, |b| Some(point(b)))
                .unwrap()
                .batch,
            10
        );
    }

    #[test]
    fn stops_where_batches_no_longer_fit_and_may_find_none() {
        let slo = Slo {
            ttft_ms: None,
            tpot_ms: Some(100.0),
        };
        let best = largest_batch(&slo, 64, |b| (b <= 3).then(|| point(b))).unwrap();
        assert_eq!(best.batch, 3);
        let strict = Slo {
            ttft_ms: None,
            tpot_ms: Some(5.0),
        };
        assert!(largest_batch(&strict, 64, |b| Some(point(b))).is_none());
    }
}
