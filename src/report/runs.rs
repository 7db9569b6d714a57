//! The measured runs of a results set as the charts see them: axes and metrics of each run.

use super::load::ResultSet;
use crate::measure::roofline::Roofline;
use crate::measure::stats::{Percentiles, Spread};
use crate::planning::plan::PlanStatus;
use crate::results::Outcome;
use crate::scenario::RunConfig;

/// A mean over repetitions and its sample standard deviation (none for one repetition, or for
/// the aggregate of parallel instances, which is a sum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub stddev: Option<f64>,
}

impl From<Spread> for Measured {
    fn from(s: Spread) -> Self {
        Measured {
            mean: s.mean,
            stddev: s.stddev,
        }
    }
}

impl Measured {
    /// A value without spread.
    pub fn exact(mean: f64) -> Self {
        Measured { mean, stddev: None }
    }
}

/// One run that was measured (a single-instance run, or the aggregate of K instances).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    /// The results set it belongs to.
    pub set: String,
    /// The position of that set among those given.
    pub set_index: usize,
    /// Its run id.
    pub run_id: String,
    /// The machine it ran on.
    pub host: String,
    /// Its configuration.
    pub config: RunConfig,
    /// Physical cores it computed on, over all instances.
    pub cores: usize,
    /// Time to first token, ms.
    pub ttft_ms: Measured,
    /// Prefill throughput, tokens/s.
    pub prefill_tok_s: Measured,
    /// Decode throughput, tokens/s (none when one token was generated).
    pub decode_tok_s: Option<Measured>,
    /// Generated tokens per second of end-to-end time.
    pub output_tok_s: Measured,
    /// Decode step latency distribution, ms.
    pub tpot_ms: Option<Percentiles>,
    /// Decode GB/s and prefill GFLOP/s against the calibrated ceilings (single instances only).
    pub roofline: Option<Roofline>,
}

impl RunPoint {
    /// The calibrated read bandwidth the run's decode is held against, GB/s.
    pub fn decode_ceiling_gb_s(&self) -> Option<f64> {
        let r = self.roofline?;
        Some(r.decode_gb_s? * 100.0 / r.decode_pct_roofline?)
    }

    /// The calibrated GEMM rate the run's prefill is held against, GFLOP/s.
    pub fn prefill_ceiling_gflop_s(&self) -> Option<f64> {
        let r = self.roofline?;
        Some(r.prefill_gflop_s * 100.0 / r.prefill_pct_roofline?)
    }
}

/// Physical cores under the PUs a run was planned on (its PU count if the machine's topology
/// does not know them).
fn cores_of(set: &ResultSet, run_id: &str) -> Option<usize> {
    let run = set.plan.runs.iter().find(|r| r.id == run_id)?;
    if !matches!(run.status, PlanStatus::Planned { .. }) {
        return None;
    }
    let pus: Vec<usize> = run
        .status
        .placements()
        .flat_map(|i| i.pus.iter().copied())
        .collect();
    let topology = &set.machine.topology;
    let mut cores: Vec<usize> = pus
        .iter()
        .filter_map(|pu| topology.cores.iter().find(|c| c.pus.contains(pu)))
        .map(|c| c.index)
        .collect();
    cores.sort_unstable();
    cores.dedup();
    Some(if cores.is_empty() {
        pus.len()
    } else {
        cores.len()
    })
}

/// Every measured run of `set`, the `set_index`-th set given, in plan order (per-instance
/// lines and failures left out).
pub fn run_points(set_index: usize, set: &ResultSet) -> Vec<RunPoint> {
    set.records
        .iter()
        .filter(|r| r.completes_run())
        .filter_map(|r| {
            let cores = cores_of(set, &r.run_id).unwrap_or(0);
            let base =
                |ttft_ms, prefill_tok_s, decode_tok_s, output_tok_s, tpot_ms, roofline| RunPoint {
                    set: set.label.clone(),
                    set_index,
                    run_id: r.run_id.clone(),
                    host: r
                        .host
                        .clone()
                        .unwrap_or_else(|| set.machine.hostname.clone()),
                    config: r.config.clone(),
                    cores,
                    ttft_ms,
                    prefill_tok_s,
                    decode_tok_s,
                    output_tok_s,
                    tpot_ms,
                    roofline,
                };
            match &r.outcome {
                Outcome::Ok { record } => {
                    let s = &record.summary;
                    Some(base(
                        s.ttft_ms.into(),
                        s.prefill_tok_s.into(),
                        s.decode_tok_s.map(Measured::from),
                        s.output_tok_s.into(),
                        s.tpot_ms,
                        Some(Roofline::of(record, set.calibration.as_ref())),
                    ))
                }
                Outcome::Aggregate { aggregate: a } => Some(base(
                    Measured::exact(a.ttft_ms.mean),
                    Measured::exact(a.prefill_tok_s),
                    a.decode_tok_s.map(Measured::exact),
                    Measured::exact(a.output_tok_s),
                    a.tpot_ms,
                    None,
                )),
                Outcome::Failed { .. } => None,
            }
        })
        .collect()
}
