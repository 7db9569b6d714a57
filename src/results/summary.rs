//! `summary.csv`: one row per run (per instance and aggregate for multi-instance runs),
//! skipped runs included, statistics and status in columns whose names carry units.

use super::record::{Outcome, SweepRecord};
use crate::calibrate::Calibration;
use crate::counters::CounterKind;
use crate::measure::roofline::Roofline;
use crate::planning::plan::{Plan, PlanStatus};
use crate::scenario::RunConfig;
use crate::schema::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};

/// Coefficient of variation above which a run is flagged as noisy.
pub const NOISY_CV: f64 = 0.05;

/// One row of `summary.csv`; empty cells are values the run does not have (never zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Results schema version.
    pub schema_version: u32,
    /// Run id.
    pub run_id: String,
    /// The machine (host name) the run ran on, or was skipped on; empty in files written
    /// before hosts were recorded.
    #[serde(default)]
    pub host: String,
    /// Instance number, empty for the run as a whole.
    pub instance: Option<usize>,
    /// ok, aggregate, failed or skipped.
    pub status: String,
    /// Why a run failed or was skipped.
    pub reason: String,
    /// Model.
    pub model: String,
    /// Data type (empty for GGUF files).
    pub dtype: String,
    /// Engine.
    pub engine: String,
    /// Batch.
    pub batch: usize,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub gen_tokens: usize,
    /// Cores request.
    pub cores: String,
    /// SMT.
    pub smt: String,
    /// Placement.
    pub placement: String,
    /// Memory policy.
    pub memory: String,
    /// NPS requirement.
    pub nps: String,
    /// Instances.
    pub instances: usize,
    /// Compute threads of the instance.
    pub threads: Option<usize>,
    /// Measured repetitions.
    pub repetitions: usize,
    /// TTFT mean, ms.
    pub ttft_ms: Option<f64>,
    /// TTFT coefficient of variation.
    pub ttft_cv: Option<f64>,
    /// TPOT mean, ms.
    pub tpot_mean_ms: Option<f64>,
    /// TPOT median, ms.
    pub tpot_p50_ms: Option<f64>,
    /// TPOT 90th percentile, ms.
    pub tpot_p90_ms: Option<f64>,
    /// TPOT 99th percentile, ms.
    pub tpot_p99_ms: Option<f64>,
    /// TPOT maximum, ms.
    pub tpot_max_ms: Option<f64>,
    /// Prefill throughput, tokens/s.
    pub prefill_tok_s: Option<f64>,
    /// Prefill throughput CV.
    pub prefill_cv: Option<f64>,
    /// Decode throughput, tokens/s.
    pub decode_tok_s: Option<f64>,
    /// Decode throughput CV.
    pub decode_cv: Option<f64>,
    /// End-to-end latency, ms.
    pub e2e_ms: Option<f64>,
    /// Output tokens per second of e2e.
    pub output_tok_s: Option<f64>,
    /// All tokens per second of e2e.
    pub total_tok_s: Option<f64>,
    /// Model load time, s.
    pub load_s: Option<f64>,
    /// Peak resident memory, MB.
    pub peak_rss_mb: Option<f64>,
    /// Whether a CV exceeds [`NOISY_CV`].
    pub noisy: Option<bool>,
    /// Decode bytes streamed per second (weights + KV cache), GB/s.
    pub decode_gb_s: Option<f64>,
    /// Prefill FLOP rate, GFLOP/s.
    pub prefill_gflop_s: Option<f64>,
    /// `decode_gb_s` as % of the calibrated read bandwidth.
    pub decode_pct_roofline: Option<f64>,
    /// `prefill_gflop_s` as % of the calibrated GEMM rate.
    pub prefill_pct_roofline: Option<f64>,
    /// With a read probe: the median of decode's GB/s as % of a pure read after each step.
    #[serde(default)]
    pub decode_pct_read: Option<f64>,
    /// Prefill: core cycles.
    pub prefill_cycles: Option<f64>,
    /// Prefill: retired instructions.
    pub prefill_instructions: Option<f64>,
    /// Prefill: instructions per cycle.
    pub prefill_ipc: Option<f64>,
    /// Prefill: LLC read misses per 1000 instructions.
    pub prefill_llc_mpki: Option<f64>,
    /// Prefill: effective clock (cycles per second of CPU time), GHz.
    pub prefill_effective_ghz: Option<f64>,
    /// Prefill: CPU time / (wall x threads).
    pub prefill_cpu_utilization: Option<f64>,
    /// Prefill: CPU time of all threads, ns.
    pub prefill_task_clock_ns: Option<f64>,
    /// Prefill: page faults.
    pub prefill_page_faults: Option<f64>,
    /// Prefill: context switches.
    pub prefill_context_switches: Option<f64>,
    /// Prefill: CPU migrations.
    pub prefill_cpu_migrations: Option<f64>,
    /// Prefill: machine-wide DRAM traffic (uncore events), GB/s.
    pub prefill_dram_gb_s: Option<f64>,
    /// Prefill: cache references.
    pub prefill_cache_references: Option<f64>,
    /// Prefill: cache misses.
    pub prefill_cache_misses: Option<f64>,
    /// Prefill: LLC read misses.
    pub prefill_llc_read_misses: Option<f64>,
    /// Prefill: mispredicted branches.
    pub prefill_branch_misses: Option<f64>,
    /// Prefill: back-end stall cycles.
    pub prefill_stalled_cycles_backend: Option<f64>,
    /// Decode: core cycles.
    pub decode_cycles: Option<f64>,
    /// Decode: retired instructions.
    pub decode_instructions: Option<f64>,
    /// Decode: instructions per cycle.
    pub decode_ipc: Option<f64>,
    /// Decode: LLC read misses per 1000 instructions.
    pub decode_llc_mpki: Option<f64>,
    /// Decode: effective clock (cycles per second of CPU time), GHz.
    pub decode_effective_ghz: Option<f64>,
    /// Decode: CPU time / (wall x threads).
    pub decode_cpu_utilization: Option<f64>,
    /// Decode: CPU time of all threads, ns.
    pub decode_task_clock_ns: Option<f64>,
    /// Decode: page faults.
    pub decode_page_faults: Option<f64>,
    /// Decode: context switches.
    pub decode_context_switches: Option<f64>,
    /// Decode: CPU migrations.
    pub decode_cpu_migrations: Option<f64>,
    /// Decode: machine-wide DRAM traffic (uncore events), GB/s.
    pub decode_dram_gb_s: Option<f64>,
    /// Decode: cache references.
    pub decode_cache_references: Option<f64>,
    /// Decode: cache misses.
    pub decode_cache_misses: Option<f64>,
    /// Decode: LLC read misses.
    pub decode_llc_read_misses: Option<f64>,
    /// Decode: mispredicted branches.
    pub decode_branch_misses: Option<f64>,
    /// Decode: back-end stall cycles.
    pub decode_stalled_cycles_backend: Option<f64>,
}

fn base(
    run_id: &str,
    host: &str,
    c: &RunConfig,
    instance: Option<usize>,
    status: &str,
    reason: &str,
) -> SummaryRow {
    SummaryRow {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        host: host.to_string(),
        instance,
        status: status.to_string(),
        reason: reason.to_string(),
        model: c.model.clone(),
        dtype: c.dtype.map_or(String::new(), |d| d.to_string()),
        engine: c.engine.to_string(),
        batch: c.batch,
        prompt_tokens: c.prompt_tokens,
        gen_tokens: c.gen_tokens,
        cores: c.cores.to_string(),
        smt: c.smt.to_string(),
        placement: c.placement.to_string(),
        memory: c.memory.to_string(),
        nps: c.nps.to_string(),
        instances: c.instances,
        threads: None,
        repetitions: c.repetitions,
        ttft_ms: None,
        ttft_cv: None,
        tpot_mean_ms: None,
        tpot_p50_ms: None,
        tpot_p90_ms: None,
        tpot_p99_ms: None,
        tpot_max_ms: None,
        prefill_tok_s: None,
        prefill_cv: None,
        decode_tok_s: None,
        decode_cv: None,
        e2e_ms: None,
        output_tok_s: None,
        total_tok_s: None,
        load_s: None,
        peak_rss_mb: None,
        noisy: None,
        decode_gb_s: None,
        prefill_gflop_s: None,
        decode_pct_roofline: None,
        prefill_pct_roofline: None,
        decode_pct_read: None,
        prefill_cycles: None,
        prefill_instructions: None,
        prefill_ipc: None,
        prefill_llc_mpki: None,
        prefill_effective_ghz: None,
        prefill_cpu_utilization: None,
        prefill_task_clock_ns: None,
        prefill_page_faults: None,
        prefill_context_switches: None,
        prefill_cpu_migrations: None,
        prefill_dram_gb_s: None,
        prefill_cache_references: None,
        prefill_cache_misses: None,
        prefill_llc_read_misses: None,
        prefill_branch_misses: None,
        prefill_stalled_cycles_backend: None,
        decode_cycles: None,
        decode_instructions: None,
        decode_ipc: None,
        decode_llc_mpki: None,
        decode_effective_ghz: None,
        decode_cpu_utilization: None,
        decode_task_clock_ns: None,
        decode_page_faults: None,
        decode_context_switches: None,
        decode_cpu_migrations: None,
        decode_dram_gb_s: None,
        decode_cache_references: None,
        decode_cache_misses: None,
        decode_llc_read_misses: None,
        decode_branch_misses: None,
        decode_stalled_cycles_backend: None,
    }
}

/// The row of one `runs.jsonl` line; roofline percentages need a `calibration`; `host` names
/// the machine of a line that does not carry its own.
pub fn row_of(r: &SweepRecord, host: &str, calibration: Option<&Calibration>) -> SummaryRow {
    let host = r.host.as_deref().unwrap_or(host);
    match &r.outcome {
        Outcome::Ok { record } => {
            let s = &record.summary;
            let mut row = base(&r.run_id, host, &r.config, r.instance, "ok", "");
            let cvs = [
                s.ttft_ms.cv,
                s.prefill_tok_s.cv,
                s.decode_tok_s.and_then(|d| d.cv),
            ];
            row.threads = Some(record.threads);
            row.ttft_ms = Some(s.ttft_ms.mean);
            row.ttft_cv = s.ttft_ms.cv;
            if let Some(t) = &s.tpot_ms {
                (row.tpot_mean_ms, row.tpot_p50_ms, row.tpot_p90_ms) =
                    (Some(t.mean), Some(t.p50), Some(t.p90));
                (row.tpot_p99_ms, row.tpot_max_ms) = (Some(t.p99), Some(t.max));
            }
            row.prefill_tok_s = Some(s.prefill_tok_s.mean);
            row.prefill_cv = s.prefill_tok_s.cv;
            row.decode_tok_s = s.decode_tok_s.map(|d| d.mean);
            row.decode_cv = s.decode_tok_s.and_then(|d| d.cv);
            row.e2e_ms = Some(s.e2e_ms.mean);
            row.output_tok_s = Some(s.output_tok_s.mean);
            row.total_tok_s = Some(s.total_tok_s.mean);
            row.load_s = Some(record.load_s);
            row.peak_rss_mb = record.peak_rss_mb;
            let roofline = Roofline::of(record, calibration);
            row.decode_gb_s = roofline.decode_gb_s;
            row.prefill_gflop_s = Some(roofline.prefill_gflop_s);
            row.decode_pct_roofline = roofline.decode_pct_roofline;
            row.prefill_pct_roofline = roofline.prefill_pct_roofline;
            row.decode_pct_read = s.read_share.map(|r| r.p50_pct);
            let c = &record.counters;
            row.prefill_cycles = c.prefill.get(CounterKind::Cycles);
            row.prefill_instructions = c.prefill.get(CounterKind::Instructions);
            row.prefill_ipc = c.prefill_derived.ipc;
            row.prefill_llc_mpki = c.prefill_derived.llc_mpki;
            row.prefill_effective_ghz = c.prefill_derived.effective_ghz;
            row.prefill_cpu_utilization = c.prefill_derived.cpu_utilization;
            row.prefill_task_clock_ns = c.prefill.get(CounterKind::TaskClock);
            row.prefill_page_faults = c.prefill.get(CounterKind::PageFaults);
            row.prefill_context_switches = c.prefill.get(CounterKind::ContextSwitches);
            row.prefill_cpu_migrations = c.prefill.get(CounterKind::CpuMigrations);
            row.prefill_dram_gb_s = c.prefill_derived.dram_gb_s;
            row.prefill_cache_references = c.prefill.get(CounterKind::CacheReferences);
            row.prefill_cache_misses = c.prefill.get(CounterKind::CacheMisses);
            row.prefill_llc_read_misses = c.prefill.get(CounterKind::LlcReadMisses);
            row.prefill_branch_misses = c.prefill.get(CounterKind::BranchMisses);
            row.prefill_stalled_cycles_backend = c.prefill.get(CounterKind::StalledCyclesBackend);
            row.decode_cycles = c.decode.get(CounterKind::Cycles);
            row.decode_instructions = c.decode.get(CounterKind::Instructions);
            row.decode_ipc = c.decode_derived.ipc;
            row.decode_llc_mpki = c.decode_derived.llc_mpki;
            row.decode_effective_ghz = c.decode_derived.effective_ghz;
            row.decode_cpu_utilization = c.decode_derived.cpu_utilization;
            row.decode_task_clock_ns = c.decode.get(CounterKind::TaskClock);
            row.decode_page_faults = c.decode.get(CounterKind::PageFaults);
            row.decode_context_switches = c.decode.get(CounterKind::ContextSwitches);
            row.decode_cpu_migrations = c.decode.get(CounterKind::CpuMigrations);
            row.decode_dram_gb_s = c.decode_derived.dram_gb_s;
            row.decode_cache_references = c.decode.get(CounterKind::CacheReferences);
            row.decode_cache_misses = c.decode.get(CounterKind::CacheMisses);
            row.decode_llc_read_misses = c.decode.get(CounterKind::LlcReadMisses);
            row.decode_branch_misses = c.decode.get(CounterKind::BranchMisses);
            row.decode_stalled_cycles_backend = c.decode.get(CounterKind::StalledCyclesBackend);
            row.noisy = cvs
                .iter()
                .any(Option::is_some)
                .then(|| cvs.iter().flatten().any(|&cv| cv > NOISY_CV));
            row
        }
        Outcome::Aggregate { aggregate: a } => {
            let mut row = base(&r.run_id, host, &r.config, None, "aggregate", "");
            row.ttft_ms = Some(a.ttft_ms.mean);
            if let Some(t) = &a.tpot_ms {
                (row.tpot_mean_ms, row.tpot_p50_ms, row.tpot_p90_ms) =
                    (Some(t.mean), Some(t.p50), Some(t.p90));
                (row.tpot_p99_ms, row.tpot_max_ms) = (Some(t.p99), Some(t.max));
            }
            row.prefill_tok_s = Some(a.prefill_tok_s);
            row.decode_tok_s = a.decode_tok_s;
            row.output_tok_s = Some(a.output_tok_s);
            row.total_tok_s = Some(a.total_tok_s);
            row
        }
        Outcome::Failed { reason, .. } => {
            base(&r.run_id, host, &r.config, r.instance, "failed", reason)
        }
    }
}

/// Every row of `summary.csv` for one machine: recorded lines in plan order, skipped runs with
/// their reasons; `host` names the machine of the plan (and of lines without their own host).
pub fn rows(
    plan: &Plan,
    records: &[SweepRecord],
    host: &str,
    calibration: Option<&Calibration>,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for run in plan.selected() {
        match &run.status {
            PlanStatus::Skipped { reason } => {
                out.push(base(&run.id, host, &run.config, None, "skipped", reason))
            }
            PlanStatus::Planned { .. } => out.extend(
                records
                    .iter()
                    .filter(|r| r.run_id == run.id)
                    .map(|r| row_of(r, host, calibration)),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_written_before_hosts_were_recorded_still_reads() {
        let config = RunConfig {
            model: "tiny".into(),
            ..RunConfig::default()
        };
        let new = csv_of(&base("r", "node01", &config, None, "skipped", "why"));
        let header = new.lines().next().unwrap();
        assert!(header.starts_with("schema_version,run_id,host,instance,"));
        let old = new
            .replace("run_id,host,", "run_id,")
            .replace("r,node01,", "r,");
        let row: SummaryRow = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!((row.run_id.as_str(), row.host.as_str()), ("r", ""));
    }

    fn csv_of(row: &SummaryRow) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }
}
