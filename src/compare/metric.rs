//! The metrics `compare` judges, which way is better for each, and their per-repetition samples.

use crate::measure::record::RunRecord;
use crate::measure::stats::Percentiles;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Throughputs: more is better.
    HigherIsBetter,
    /// Latencies: less is better.
    LowerIsBetter,
}

/// A metric compared between two runs, one sample per measured repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Prefill throughput of each repetition, tokens/s.
    PrefillTokS,
    /// Decode throughput of each repetition, tokens/s.
    DecodeTokS,
    /// Generated tokens per second of end-to-end time of each repetition.
    OutputTokS,
    /// Time to first token of each repetition, ms.
    TtftMs,
    /// Median decode step of each repetition, ms.
    TpotP50Ms,
    /// 99th percentile decode step of each repetition, ms.
    TpotP99Ms,
    /// End-to-end latency of each repetition, ms.
    E2eMs,
}

impl Metric {
    /// Every compared metric, in report order.
    pub const ALL: [Metric; 7] = [
        Metric::PrefillTokS,
        Metric::DecodeTokS,
        Metric::OutputTokS,
        Metric::TtftMs,
        Metric::TpotP50Ms,
        Metric::TpotP99Ms,
        Metric::E2eMs,
    ];

    /// The name used in tables, matching the `summary.csv` column.
    pub fn name(self) -> &'static str {
        match self {
            Metric::PrefillTokS => "prefill_tok_s",
            Metric::DecodeTokS => "decode_tok_s",
            Metric::OutputTokS => "output_tok_s",
            Metric::TtftMs => "ttft_ms",
            Metric::TpotP50Ms => "tpot_p50_ms",
            Metric::TpotP99Ms => "tpot_p99_ms",
            Metric::E2eMs => "e2e_ms",
        }
    }

    /// Which way the metric improves.
    pub fn direction(self) -> Direction {
        match self {
            Metric::PrefillTokS | Metric::DecodeTokS | Metric::OutputTokS => {
                Direction::HigherIsBetter
            }
            Metric::TtftMs | Metric::TpotP50Ms | Metric::TpotP99Ms | Metric::E2eMs => {
                Direction::LowerIsBetter
            }
        }
    }

    /// One value per measured repetition of `record`; empty when the run has none of this
    /// metric (a run generating one token has no decode).
    pub fn samples(self, record: &RunRecord) -> Vec<f64> {
        let tpot = |pick: fn(&Percentiles) -> f64| -> Vec<f64> {
            record
                .repetitions
                .iter()
                .filter_map(|r| Percentiles::of(&r.decode_steps_ms).map(|p| pick(&p)))
                .collect()
        };
        let each = |pick: fn(&crate::measure::metrics::RepetitionMetrics) -> Option<f64>| {
            record
                .repetitions
                .iter()
                .filter_map(|r| pick(&r.metrics))
                .collect()
        };
        match self {
            Metric::PrefillTokS => each(|m| Some(m.prefill_tok_s)),
            Metric::DecodeTokS => each(|m| m.decode_tok_s),
            Metric::OutputTokS => each(|m| Some(m.output_tok_s)),
            Metric::TtftMs => each(|m| Some(m.ttft_ms)),
            Metric::TpotP50Ms => tpot(|p| p.p50),
            Metric::TpotP99Ms => tpot(|p| p.p99),
            Metric::E2eMs => each(|m| Some(m.e2e_ms)),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
