//! The metric catalogue: every measured quantity of a run that `summary.csv` has a column for,
//! with its unit, which way it improves, a one-line definition and how it is read from a line
//! of `runs.jsonl`. `summary.csv`, `report`, `compare` and `plan` read metrics only through it,
//! and docs/metrics.md's table is [`markdown_table`] (a test holds the two together).

use super::record::Aggregate;
use crate::calibrate::Calibration;
use crate::counters::columns::PhaseColumn;
use crate::counters::derived::Derived;
use crate::counters::PhaseCounts;
use crate::machine::cpu_time::Contention;
use crate::measure::energy::{phase_power, PhasePower};
use crate::measure::generation::Phase as RunPhase;
use crate::measure::record::{RepetitionRecord, RunCounters, RunRecord};
use crate::measure::requests::LoadSummary;
use crate::measure::roofline::Roofline;
use crate::measure::stats::Percentiles;
use crate::planning::RunSpec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::LazyLock;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Throughputs: more is better.
    HigherIsBetter,
    /// Latencies: less is better.
    LowerIsBetter,
}

/// What metrics are read from: one line of `runs.jsonl` that measured something.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A run, or one instance of it; roofline shares need the machine's `calibration`.
    Run {
        /// What the worker ran.
        spec: &'a RunSpec,
        /// The worker's record.
        record: &'a RunRecord,
        /// The calibrated ceilings, when there are some.
        calibration: Option<&'a Calibration>,
    },
    /// Parallel instances taken together.
    Aggregate(&'a Aggregate),
}

/// A phase of the counter columns: the column prefix and where its counters are.
#[derive(Debug, Clone, Copy)]
struct Phase {
    /// `prefill` or `decode`.
    name: &'static str,
    /// Its counts and derived rates in a record.
    of: fn(&RunCounters) -> (&PhaseCounts, &Derived),
}

const PHASES: [Phase; 2] = [
    Phase {
        name: "prefill",
        of: |c| (&c.prefill, &c.prefill_derived),
    },
    Phase {
        name: "decode",
        of: |c| (&c.decode, &c.decode_derived),
    },
];

/// How a metric is read.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// From a run's record; an aggregate has none.
    Record(fn(&RunRecord) -> Option<f64>),
    /// From a run's record, or from an aggregate.
    RecordOrAggregate(fn(&RunRecord) -> Option<f64>, fn(&Aggregate) -> Option<f64>),
    /// From a run's roofline figures; an aggregate has none.
    Roofline(fn(&Roofline) -> Option<f64>),
    /// A counter column of one phase; an aggregate has none.
    Counter(Phase, PhaseColumn),
    /// From the load summary of an `openai` run's record; other records and aggregates have
    /// none.
    Load(fn(&LoadSummary) -> Option<f64>),
    /// From the energy figures of one phase of a run; an aggregate has none.
    Energy(RunPhase, fn(&PhasePower) -> Option<f64>),
}

/// One metric of the catalogue.
pub struct Metric {
    /// The `summary.csv` column, with the unit in the name (`ttft_ms`, `decode_tok_s`).
    pub name: String,
    /// The unit of its values (`ms`, `tok/s`, `GB/s`, `%`, `ratio`, ...).
    pub unit: &'static str,
    /// Which way it improves; `None` for counters, which explain rather than rank.
    pub better: Option<Direction>,
    /// What it is, in one line.
    pub definition: String,
    read: Read,
    sample: Option<fn(&RepetitionRecord) -> Option<f64>>,
}

impl Metric {
    fn new(
        name: &str,
        unit: &'static str,
        better: Option<Direction>,
        definition: &str,
        read: Read,
    ) -> Metric {
        Metric {
            name: name.to_string(),
            unit,
            better,
            definition: definition.to_string(),
            read,
            sample: None,
        }
    }

    /// The same metric, with one value per measured repetition read by `sample`.
    fn per_repetition(self, sample: fn(&RepetitionRecord) -> Option<f64>) -> Metric {
        Metric {
            sample: Some(sample),
            ..self
        }
    }

    /// Its value in `source`; `None` where the line has none (never zero in its place).
    pub fn value(&self, source: &Source<'_>) -> Option<f64> {
        match (self.read, source) {
            (Read::Record(f) | Read::RecordOrAggregate(f, _), Source::Run { record, .. }) => {
                f(record)
            }
            (Read::RecordOrAggregate(_, f), Source::Aggregate(a)) => f(a),
            (
                Read::Roofline(f),
                Source::Run {
                    spec,
                    record,
                    calibration,
                },
            ) => f(&Roofline::of(spec, record, *calibration)),
            (Read::Counter(phase, column), Source::Run { record, .. }) => {
                let (counts, derived) = (phase.of)(&record.counters);
                column.read(counts, derived)
            }
            (Read::Load(f), Source::Run { record, .. }) => {
                record.serving.as_ref().and_then(|s| f(&s.summary))
            }
            (Read::Energy(phase, f), Source::Run { spec, record, .. }) => {
                phase_power(spec, record, phase).and_then(|p| f(&p))
            }
            (
                Read::Record(_)
                | Read::Roofline(_)
                | Read::Counter(..)
                | Read::Load(_)
                | Read::Energy(..),
                Source::Aggregate(_),
            ) => None,
        }
    }

    /// One value per measured repetition of `record`; empty when the metric has no
    /// per-repetition values or the run has none (a run generating one token has no decode).
    pub fn samples(&self, record: &RunRecord) -> Vec<f64> {
        self.sample.map_or_else(Vec::new, |f| {
            record.repetitions.iter().filter_map(f).collect()
        })
    }
}

impl fmt::Debug for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metric({})", self.name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for Metric {
    fn eq(&self, other: &Metric) -> bool {
        self.name == other.name
    }
}

/// A metric is written by its name.
impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

/// A metric is read back by its name, which must be in the catalogue.
impl<'de> Deserialize<'de> for &'static Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        find(&name).ok_or_else(|| serde::de::Error::custom(format!("no metric is called '{name}'")))
    }
}

/// The distribution of one repetition's decode steps, ms.
fn tpot_of(r: &RepetitionRecord) -> Option<Percentiles> {
    Percentiles::of(&r.decode_steps_ms)
}

/// The load metrics of engine `openai` runs (empty for the in-process engines).
fn serving_metrics() -> Vec<Metric> {
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};
    let mut all = vec![
        Metric::new(
            "serve_output_tok_s",
            "tok/s",
            Some(Higher),
            "openai runs: output tokens of the completed requests / wall time of the load \
             (first request due to last one ended)",
            Read::Load(|l| Some(l.output_tok_s)),
        ),
        Metric::new(
            "serve_request_s",
            "req/s",
            Some(Higher),
            "openai runs: completed requests / wall time of the load",
            Read::Load(|l| Some(l.request_s)),
        ),
        Metric::new(
            "goodput_req_s",
            "req/s",
            Some(Higher),
            "openai runs with slo_ttft_ms or slo_tpot_ms: completed requests within both \
             objectives / wall time of the load",
            Read::Load(|l| l.goodput_req_s),
        ),
        Metric::new(
            "goodput_pct",
            "%",
            Some(Higher),
            "openai runs with an SLO: requests within both objectives as a share of all \
             requests sent",
            Read::Load(|l| l.goodput_pct),
        ),
        Metric::new(
            "failed_requests",
            "requests",
            Some(Lower),
            "openai runs: requests that failed (HTTP error, timeout, malformed stream, server \
             gone); their reasons are in requests.csv",
            Read::Load(|l| Some(l.failed as f64)),
        ),
    ];
    type Of = fn(&LoadSummary) -> Option<f64>;
    let ttft = "request sent to its first content token";
    let tpot = "(e2e - TTFT) / (output tokens - 1) of a request";
    let e2e = "request sent to the end of its stream";
    let percentiles: [(&str, &str, &str, Of); 9] = [
        ("ttft", "50", ttft, |l| l.ttft_ms.map(|p| p.p50)),
        ("ttft", "90", ttft, |l| l.ttft_ms.map(|p| p.p90)),
        ("ttft", "99", ttft, |l| l.ttft_ms.map(|p| p.p99)),
        ("tpot", "50", tpot, |l| l.tpot_ms.map(|p| p.p50)),
        ("tpot", "90", tpot, |l| l.tpot_ms.map(|p| p.p90)),
        ("tpot", "99", tpot, |l| l.tpot_ms.map(|p| p.p99)),
        ("e2e", "50", e2e, |l| l.e2e_ms.map(|p| p.p50)),
        ("e2e", "90", e2e, |l| l.e2e_ms.map(|p| p.p90)),
        ("e2e", "99", e2e, |l| l.e2e_ms.map(|p| p.p99)),
    ];
    all.extend(percentiles.map(|(name, level, definition, of)| {
        Metric::new(
            &format!("request_{name}_p{level}_ms"),
            "ms",
            Some(Lower),
            &format!("openai runs: {level}th percentile over completed requests of {definition}"),
            Read::Load(of),
        )
    }));
    all
}

/// Energy per token and power of each phase, and decode tokens per joule, where the run's
/// machine has RAPL (see docs/metrics.md for how instances on one package share it).
fn energy_metrics() -> Vec<Metric> {
    type Of = fn(&PhasePower) -> Option<f64>;
    let columns: [(&str, &str, Option<Direction>, &str, Of); 4] = [
        (
            "pkg_j_per_tok",
            "J/tok",
            Some(Direction::LowerIsBetter),
            "RAPL package energy per token",
            |p| Some(p.package_j_per_tok),
        ),
        (
            "dram_j_per_tok",
            "J/tok",
            Some(Direction::LowerIsBetter),
            "RAPL DRAM energy per token (machines with a DRAM zone)",
            |p| p.dram_j_per_tok,
        ),
        (
            "pkg_w",
            "W",
            None,
            "average RAPL package power: package energy / phase time",
            |p| Some(p.package_w),
        ),
        (
            "dram_w",
            "W",
            None,
            "average RAPL DRAM power (machines with a DRAM zone)",
            |p| p.dram_w,
        ),
    ];
    let mut all = Vec::new();
    for (phase, name, tokens) in [
        (
            RunPhase::Prefill,
            "prefill",
            "B x prompt tokens per repetition",
        ),
        (RunPhase::Decode, "decode", "B per decode step"),
    ] {
        all.extend(columns.map(|(column, unit, better, definition, of)| {
            Metric::new(
                &format!("{name}_{column}"),
                unit,
                better,
                &format!(
                    "{name}: {definition}; tokens are {tokens}, over the measured \
                         repetitions; an instance's share of its packages' energy"
                ),
                Read::Energy(phase, of),
            )
        }));
    }
    all.push(Metric::new(
        "decode_tok_per_j",
        "tok/J",
        Some(Direction::HigherIsBetter),
        "decode tokens per joule of package and DRAM energy (package alone without a DRAM \
         zone): 1 / (decode_pkg_j_per_tok + decode_dram_j_per_tok)",
        Read::Energy(RunPhase::Decode, |p| Some(p.tok_per_j())),
    ));
    all
}

fn catalogue_metrics() -> Vec<Metric> {
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};
    use Read::{Record, RecordOrAggregate as Both, Roofline as Roof};
    let mut all = vec![
        Metric::new(
            "ttft_ms",
            "ms",
            Some(Lower),
            "time to first token: prefill start (prompt ids ready) to the first generated \
             token id known, mean over repetitions (an aggregate's: over all instances)",
            Both(|r| Some(r.summary.ttft_ms.mean), |a| Some(a.ttft_ms.mean)),
        )
        .per_repetition(|r| Some(r.metrics.ttft_ms)),
        Metric::new(
            "ttft_cv",
            "ratio",
            Some(Lower),
            "coefficient of variation (stddev / mean) of TTFT over repetitions",
            Record(|r| r.summary.ttft_ms.cv),
        ),
        Metric::new(
            "tpot_mean_ms",
            "ms",
            Some(Lower),
            "time per output token: mean decode step (B tokens and sampling) over all steps \
             of all repetitions",
            Both(
                |r| r.summary.tpot_ms.map(|t| t.mean),
                |a| a.tpot_ms.map(|t| t.mean),
            ),
        ),
        Metric::new(
            "tpot_p50_ms",
            "ms",
            Some(Lower),
            "median decode step",
            Both(
                |r| r.summary.tpot_ms.map(|t| t.p50),
                |a| a.tpot_ms.map(|t| t.p50),
            ),
        )
        .per_repetition(|r| tpot_of(r).map(|p| p.p50)),
        Metric::new(
            "tpot_p90_ms",
            "ms",
            Some(Lower),
            "90th percentile decode step",
            Both(
                |r| r.summary.tpot_ms.map(|t| t.p90),
                |a| a.tpot_ms.map(|t| t.p90),
            ),
        ),
        Metric::new(
            "tpot_p99_ms",
            "ms",
            Some(Lower),
            "99th percentile decode step",
            Both(
                |r| r.summary.tpot_ms.map(|t| t.p99),
                |a| a.tpot_ms.map(|t| t.p99),
            ),
        )
        .per_repetition(|r| tpot_of(r).map(|p| p.p99)),
        Metric::new(
            "tpot_max_ms",
            "ms",
            Some(Lower),
            "slowest decode step",
            Both(
                |r| r.summary.tpot_ms.map(|t| t.max),
                |a| a.tpot_ms.map(|t| t.max),
            ),
        ),
        Metric::new(
            "prefill_tok_s",
            "tok/s",
            Some(Higher),
            "B * prompt_tokens / TTFT, mean over repetitions (an aggregate's: summed over \
             instances)",
            Both(
                |r| Some(r.summary.prefill_tok_s.mean),
                |a| Some(a.prefill_tok_s),
            ),
        )
        .per_repetition(|r| Some(r.metrics.prefill_tok_s)),
        Metric::new(
            "prefill_cv",
            "ratio",
            Some(Lower),
            "coefficient of variation of prefill_tok_s over repetitions",
            Record(|r| r.summary.prefill_tok_s.cv),
        ),
        Metric::new(
            "decode_tok_s",
            "tok/s",
            Some(Higher),
            "B * (gen_tokens - 1) / sum of decode steps, mean over repetitions (an \
             aggregate's: summed over instances)",
            Both(
                |r| r.summary.decode_tok_s.map(|d| d.mean),
                |a| a.decode_tok_s,
            ),
        )
        .per_repetition(|r| r.metrics.decode_tok_s),
        Metric::new(
            "decode_cv",
            "ratio",
            Some(Lower),
            "coefficient of variation of decode_tok_s over repetitions",
            Record(|r| r.summary.decode_tok_s.and_then(|d| d.cv)),
        ),
        Metric::new(
            "e2e_ms",
            "ms",
            Some(Lower),
            "end-to-end latency: TTFT + sum of decode steps, mean over repetitions",
            Record(|r| Some(r.summary.e2e_ms.mean)),
        )
        .per_repetition(|r| Some(r.metrics.e2e_ms)),
        Metric::new(
            "output_tok_s",
            "tok/s",
            Some(Higher),
            "B * gen_tokens / e2e, mean over repetitions (an aggregate's: summed over \
             instances)",
            Both(
                |r| Some(r.summary.output_tok_s.mean),
                |a| Some(a.output_tok_s),
            ),
        )
        .per_repetition(|r| Some(r.metrics.output_tok_s)),
        Metric::new(
            "total_tok_s",
            "tok/s",
            Some(Higher),
            "B * (prompt_tokens + gen_tokens) / e2e, mean over repetitions (an aggregate's: \
             summed over instances)",
            Both(
                |r| Some(r.summary.total_tok_s.mean),
                |a| Some(a.total_tok_s),
            ),
        ),
        Metric::new(
            "load_s",
            "s",
            Some(Lower),
            "reading the weights and building the engine",
            Record(|r| Some(r.load_s)),
        ),
        Metric::new(
            "peak_rss_mb",
            "MB",
            Some(Lower),
            "peak resident memory of the worker (VmHWM, 10^6 bytes)",
            Record(|r| r.peak_rss_mb),
        ),
        Metric::new(
            "decode_gb_s",
            "GB/s",
            Some(Higher),
            "(weight bytes a step reads + KV bytes read per step) / mean decode step",
            Roof(|r| r.decode_gb_s),
        ),
        Metric::new(
            "prefill_gflop_s",
            "GFLOP/s",
            Some(Higher),
            "prefill FLOPs of the model / mean TTFT",
            Roof(|r| Some(r.prefill_gflop_s)),
        ),
        Metric::new(
            "decode_pct_roofline",
            "%",
            Some(Higher),
            "decode_gb_s as a share of the calibrated read bandwidth of the run's placement: of \
             the L3 domains it spans (at most its cores x one core's read), else of its \
             physical cores and SMT state",
            Roof(|r| r.decode_pct_roofline),
        ),
        Metric::new(
            "prefill_pct_roofline",
            "%",
            Some(Higher),
            "prefill_gflop_s as a share of the calibrated GEMM rate of its dtype, physical cores \
             and SMT state (a point flagged below one core counts as cores x the one-core rate)",
            Roof(|r| r.prefill_pct_roofline),
        ),
        Metric::new(
            "prefill_pct_peak",
            "%",
            Some(Higher),
            "prefill_gflop_s as a share of the instruction set's calibrated peak (the hard \
             roof: 8-bit dots for quantized, BF16 dots for bf16, f32 FMA for f32 and f16 \
             weights) at the run's physical cores and SMT state",
            Roof(|r| r.prefill_pct_peak),
        ),
        Metric::new(
            "decode_pct_read",
            "%",
            Some(Higher),
            "with a read probe: median over steps of decode's GB/s as a share of a pure read \
             right after the step",
            Record(|r| r.summary.read_share.map(|s| s.p50_pct)),
        ),
    ];
    for phase in PHASES {
        all.extend(PhaseColumn::ALL.into_iter().map(|column| {
            Metric::new(
                &format!("{}_{}", phase.name, column.name()),
                column.unit(),
                None,
                &format!("{}: {}", phase.name, column.definition()),
                Read::Counter(phase, column),
            )
        }));
    }
    all.push(Metric::new(
        "contention_pct",
        "%",
        Some(Lower),
        "CPU time of the run's CPUs that other tasks and the hypervisor (steal) took while \
         it measured, as a share of those CPUs' time over all repetitions; empty under 1 \
         CPU-second (Linux counts in 10 ms ticks); a run above 5% is flagged contended",
        Record(|r| Contention::total(r.repetitions.iter().filter_map(|rep| rep.contention))?.pct()),
    ));
    all.extend(energy_metrics());
    all.extend(serving_metrics());
    all
}

/// Share of its CPUs' time, %, that other tasks and steal may take before a run is flagged
/// contended: its numbers then say as much about its neighbours as about the engine.
pub const CONTENDED_PCT: f64 = 5.0;

static CATALOGUE: LazyLock<Vec<Metric>> = LazyLock::new(catalogue_metrics);

/// Every metric, in `summary.csv` column order.
pub fn catalogue() -> &'static [Metric] {
    &CATALOGUE
}

/// The metric called `name`, if the catalogue has one.
pub fn find(name: &str) -> Option<&'static Metric> {
    catalogue().iter().find(|m| m.name == name)
}

/// The metric called `name`, a name the program spells (never one a user gives).
///
/// # Panics
/// When the catalogue has no such metric: a bug, caught by the tests of the caller.
pub fn metric(name: &str) -> &'static Metric {
    find(name).unwrap_or_else(|| panic!("the metric catalogue has no '{name}'"))
}

/// Every metric's value of one line, in catalogue order.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValues(Vec<Option<f64>>);

impl MetricValues {
    /// The values read from `source`.
    pub fn of(source: &Source<'_>) -> Self {
        MetricValues(catalogue().iter().map(|m| m.value(source)).collect())
    }

    /// No values: a run that was skipped or failed.
    pub fn none() -> Self {
        MetricValues(vec![None; catalogue().len()])
    }

    /// The value of the metric called `name` (see [`metric`]).
    pub fn get(&self, name: &str) -> Option<f64> {
        let index = catalogue()
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("the metric catalogue has no '{name}'"));
        self.0[index]
    }

    /// Each metric with its value, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Metric, Option<f64>)> + '_ {
        catalogue().iter().zip(self.0.iter().copied())
    }

    /// Sets the value of `metric` (one of the catalogue's).
    pub fn set(&mut self, metric: &Metric, value: Option<f64>) {
        if let Some(index) = catalogue().iter().position(|m| m == metric) {
            self.0[index] = value;
        }
    }
}

/// The catalogue as a Markdown table: name | unit | better | definition.
pub fn markdown_table() -> String {
    let mut out = String::from("| name | unit | better | definition |\n|---|---|---|---|\n");
    for m in catalogue() {
        let better = match m.better {
            Some(Direction::HigherIsBetter) => "higher",
            Some(Direction::LowerIsBetter) => "lower",
            None => "none",
        };
        out.push_str(&format!(
            "| `{}` | {} | {better} | {} |\n",
            m.name,
            m.unit.replace('|', "\\|"),
            m.definition.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_carry_their_phase_prefix() {
        let names: Vec<&str> = catalogue().iter().map(|m| m.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let serving = serving_metrics().len();
        let energy = energy_metrics().len();
        assert_eq!(energy, 9);
        assert_eq!(
            names.len(),
            23 + 2 * PhaseColumn::ALL.len() + energy + serving
        );
        assert_eq!(names[22], "prefill_cycles");
        let contention = names.len() - serving - energy - 1;
        assert_eq!(names[contention - 1], "decode_stalled_cycles_backend");
        assert_eq!(names[contention], "contention_pct");
        assert_eq!(names[contention + 1], "prefill_pkg_j_per_tok");
        assert_eq!(names[contention + energy], "decode_tok_per_j");
        assert_eq!(names.last(), Some(&"request_e2e_p99_ms"));
    }

    /// docs/metrics.md holds [`markdown_table`] between its markers; with
    /// `LLAMAPERF_WRITE_METRICS_DOC=1` the test writes it there instead of checking.
    #[test]
    fn metrics_doc_table_is_the_catalogue() {
        const BEGIN: &str = "<!-- metrics:begin -->\n";
        const END: &str = "<!-- metrics:end -->";
        const REGENERATE: &str = "regenerate the table with \
             `LLAMAPERF_WRITE_METRICS_DOC=1 cargo test -p llamaperf --lib metrics_doc`";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} cannot be read ({e}): create it with the lines `{}` and `{END}`, then \
                 {REGENERATE}",
                path.display(),
                BEGIN.trim_end()
            )
        });
        let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
            panic!(
                "{} lacks the lines `{}` and `{END}` around the metrics table: add them, then \
                 {REGENERATE}",
                path.display(),
                BEGIN.trim_end()
            );
        };
        let start = begin + BEGIN.len();
        assert!(
            start <= end,
            "{}: `{END}` comes before the begin marker",
            path.display()
        );
        let table = markdown_table();
        if std::env::var_os("LLAMAPERF_WRITE_METRICS_DOC").is_some_and(|v| v == "1") {
            let written = format!("{}{table}{}", &text[..start], &text[end..]);
            std::fs::write(&path, written).unwrap();
            return;
        }
        assert!(
            text[start..end] == table,
            "the table in {} is not the metric catalogue's: {REGENERATE}",
            path.display()
        );
    }

    #[test]
    fn the_table_has_a_row_per_metric() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), 2 + catalogue().len());
        assert!(table.contains("| `ttft_ms` | ms | lower | time to first token"));
        assert!(table.contains("| `decode_ipc` | instructions/cycle | none | decode: "));
    }
}
