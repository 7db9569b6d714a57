//! One line of `runs.jsonl`: the outcome of one run (or one instance of it).

use crate::measure::record::RunRecord;
use crate::measure::stats::Percentiles;
use crate::planning::RunSpec;
use crate::scenario::RunConfig;
use serde::{Deserialize, Serialize};

/// Throughput and latency of K parallel instances of one run taken together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Number of instances.
    pub instances: usize,
    /// Sum over instances of their mean prefill throughput, tokens/s.
    pub prefill_tok_s: f64,
    /// Sum over instances of their mean decode throughput, tokens/s.
    pub decode_tok_s: Option<f64>,
    /// Sum over instances of their mean output throughput, tokens/s.
    pub output_tok_s: f64,
    /// Sum over instances of their mean total throughput, tokens/s.
    pub total_tok_s: f64,
    /// TTFT over all repetitions of all instances, ms.
    pub ttft_ms: Percentiles,
    /// Decode steps over all samples of all instances, ms.
    pub tpot_ms: Option<Percentiles>,
    /// Time all instances were measuring at once (latest start to earliest end), s.
    pub common_window_s: f64,
    /// Time from the earliest start to the latest end, s; close to `common_window_s` when the
    /// start barrier held the instances together.
    pub span_s: f64,
}

impl Aggregate {
    /// Aggregates the records of the instances of one run.
    pub fn of(records: &[RunRecord]) -> Self {
        let sum = |f: fn(&RunRecord) -> f64| records.iter().map(f).sum::<f64>();
        let ttfts: Vec<f64> = records
            .iter()
            .flat_map(|r| r.repetitions.iter().map(|rep| rep.metrics.ttft_ms))
            .collect();
        let steps: Vec<f64> = records
            .iter()
            .flat_map(|r| {
                r.repetitions
                    .iter()
                    .flat_map(|rep| rep.decode_steps_ms.iter().copied())
            })
            .collect();
        let latest_start = records
            .iter()
            .map(|r| r.measure_start_unix_s)
            .fold(f64::MIN, f64::max);
        let earliest_end = records
            .iter()
            .map(|r| r.measure_end_unix_s)
            .fold(f64::MAX, f64::min);
        let earliest_start = records
            .iter()
            .map(|r| r.measure_start_unix_s)
            .fold(f64::MAX, f64::min);
        let latest_end = records
            .iter()
            .map(|r| r.measure_end_unix_s)
            .fold(f64::MIN, f64::max);
        Aggregate {
            instances: records.len(),
            prefill_tok_s: sum(|r| r.summary.prefill_tok_s.mean),
            decode_tok_s: records
                .iter()
                .map(|r| r.summary.decode_tok_s.map(|d| d.mean))
                .sum::<Option<f64>>(),
            output_tok_s: sum(|r| r.summary.output_tok_s.mean),
            total_tok_s: sum(|r| r.summary.total_tok_s.mean),
            ttft_ms: Percentiles::of(&ttfts).expect("every instance has repetitions"),
            tpot_ms: Percentiles::of(&steps),
            common_window_s: (earliest_end - latest_start).max(0.0),
            span_s: latest_end - earliest_start,
        }
    }
}

/// How a run (or one instance of it) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Measured: the worker's record.
    Ok {
        /// The record.
        record: Box<RunRecord>,
    },
    /// The instances of a multi-instance run taken together.
    Aggregate {
        /// The aggregate.
        aggregate: Aggregate,
    },
    /// No measurement: the worker crashed, was killed, timed out, or the model failed.
    Failed {
        /// Why.
        reason: String,
        /// The worker's last stderr lines.
        stderr_tail: Vec<String>,
    },
}

/// One line of `runs.jsonl` (its `status` field, flattened from [`Outcome`], rules out
/// `deny_unknown_fields`; the records inside keep it). Version 2 holds the run once, in its
/// spec; version 1 lines are read by [`super::runs_v1`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// Version of the line's schema ([`crate::schema::RUNS_VERSION`]).
    pub schema_version: u32,
    /// The run's index in the plan.
    pub index: usize,
    /// The machine it ran on (its host name, as in `machine.json`); `None` in folders written
    /// before hosts were recorded, where the folder's `machine.json` names it.
    #[serde(default)]
    pub host: Option<String>,
    /// The instance this line is about; `None` for the run as a whole (the line that completes
    /// a run: its single record, its aggregate, or its failure).
    pub instance: Option<usize>,
    /// What ran: the spec of this line's instance (of the first instance for the run as a
    /// whole), its configuration included.
    pub spec: RunSpec,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl SweepRecord {
    /// The run's id (its axes; see [`RunConfig::id`]).
    pub fn run_id(&self) -> String {
        self.spec.config.id()
    }

    /// The run's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.spec.config
    }

    /// Whether this line completes its run.
    pub fn completes_run(&self) -> bool {
        self.instance.is_none()
    }
}
