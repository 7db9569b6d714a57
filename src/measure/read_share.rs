//! Decode's bandwidth as a share of a pure read taken right after each step (`--read-probe`):
//! a measure of how close decode streams to the memory's speed that a shared host's drifting
//! bandwidth does not blur, since each step is set against a read milliseconds later.

use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics};

/// The distribution of decode's share of the read after each step, over every step of every
/// measured repetition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadShare {
    /// Decode steps with their read.
    pub pairs: usize,
    /// Median of the steps' shares: (bytes per step / step time) / the read's GB/s, %.
    pub p50_pct: f64,
    /// 10th percentile of the shares, %.
    pub p10_pct: f64,
    /// 90th percentile of the shares, %.
    pub p90_pct: f64,
    /// Median GB/s (10^9 bytes per second) of the reads.
    pub read_p50_gb_s: f64,
    /// Bytes of each read, over all threads.
    pub read_bytes: u64,
}

impl ReadShare {
    /// The shares of decode steps paired with the read after each, as (step ms, read GB/s);
    /// each step reads `bytes_per_step` bytes (weights and KV cache), each read `read_bytes`;
    /// `None` where no step has a read.
    pub fn of(
        pairs: impl IntoIterator<Item = (f64, f64)>,
        read_bytes: u64,
        bytes_per_step: f64,
    ) -> Option<Self> {
        let (shares, reads): (Vec<f64>, Vec<f64>) = pairs
            .into_iter()
            .map(|(ms, read)| (100.0 * bytes_per_step / (ms / 1e3) / 1e9 / read, read))
            .unzip();
        if shares.is_empty() {
            return None;
        }
        let mut shares = Data::new(shares);
        Some(ReadShare {
            pairs: reads.len(),
            p50_pct: shares.percentile(50),
            p10_pct: shares.percentile(10),
            p90_pct: shares.percentile(90),
            read_p50_gb_s: Data::new(reads).percentile(50),
            read_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_set_against_its_own_read() {
        // 1 GB per step: 100 ms is 10 GB/s, 50 ms is 20 GB/s
        let pairs = [(100.0, 20.0), (50.0, 20.0), (100.0, 10.0)];
        let share = ReadShare::of(pairs, 1 << 28, 1e9).unwrap();
        assert_eq!(share.pairs, 3);
        // shares 50%, 100%, 100%: the slow step's read was slow too
        assert!((share.p50_pct - 100.0).abs() < 1e-9, "{share:?}");
        assert!(share.p10_pct < 100.0 && share.p10_pct >= 50.0, "{share:?}");
        assert!((share.read_p50_gb_s - 20.0).abs() < 1e-9, "{share:?}");
    }

    #[test]
    fn no_reads_no_share() {
        assert_eq!(ReadShare::of([], 1 << 28, 1e9), None);
    }
}
