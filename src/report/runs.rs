//! The measured runs of a results set as the charts see them: axes and metrics of each run.

use super::load::ResultSet;
use crate::planning::plan::PlanStatus;
use crate::results::metrics::{MetricValues, Source};
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
    /// Its metrics, as `summary.csv` has them (no roofline figures for an aggregate).
    pub metrics: MetricValues,
}

impl RunPoint {
    /// The value of the metric called `name`, in its unit.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name)
    }

    /// The metric called `name` with the spread its coefficient of variation `cv` implies.
    pub fn measured(&self, name: &str, cv: &str) -> Option<Measured> {
        let mean = self.get(name)?;
        Some(Measured {
            mean,
            stddev: self.get(cv).map(|cv| mean * cv),
        })
    }

    /// Whether it is a single run (or instance) with roofline figures, not an aggregate.
    pub fn has_roofline(&self) -> bool {
        self.get("prefill_gflop_s").is_some()
    }

    /// The calibrated read bandwidth the run's decode is held against, GB/s.
    pub fn decode_ceiling_gb_s(&self) -> Option<f64> {
        Some(self.get("decode_gb_s")? * 100.0 / self.get("decode_pct_roofline")?)
    }

    /// The calibrated GEMM rate the run's prefill is held against, GFLOP/s.
    pub fn prefill_ceiling_gflop_s(&self) -> Option<f64> {
        Some(self.get("prefill_gflop_s")? * 100.0 / self.get("prefill_pct_roofline")?)
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
            let metrics = MetricValues::of(&match &r.outcome {
                Outcome::Ok { record } => Source::Run {
                    spec: &r.spec,
                    record,
                    calibration: set.calibration.as_ref(),
                },
                Outcome::Aggregate { aggregate } => Source::Aggregate(aggregate),
                Outcome::Failed { .. } => return None,
            });
            Some(RunPoint {
                set: set.label.clone(),
                set_index,
                run_id: r.run_id(),
                host: r
                    .host
                    .clone()
                    .unwrap_or_else(|| set.machine.hostname.clone()),
                config: r.config().clone(),
                cores: cores_of(set, &r.run_id()).unwrap_or(0),
                metrics,
            })
        })
        .collect()
}
