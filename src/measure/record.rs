//! What a run produced: the only output of a worker process (JSON on its stdout).

use super::metrics::RepetitionMetrics;
use super::read_share::ReadShare;
use super::requests::ServingRecord;
use super::stats::{Percentiles, Spread};
use crate::counters::derived::Derived;
use crate::counters::energy::PackageEnergy;
use crate::counters::PhaseCounts;
use crate::engine::kernels::Isa;
use crate::llama_cpp::LlamaCppRecord;
use crate::machine::binding::BindingReadback;
use crate::machine::cpu_time::Contention;
use crate::machine::PlacementShape;
use crate::model::file::ModelSummary;
use crate::model::KvDtype;
use crate::torch::TorchRecord;
use serde::{Deserialize, Serialize};

/// Timings and metrics of one measured repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepetitionRecord {
    /// Derived metrics.
    pub metrics: RepetitionMetrics,
    /// Every decode step, ms.
    pub decode_steps_ms: Vec<f64>,
    /// With a read probe (`RunSpec::read_probe_bytes`): the GB/s of the pure read right after
    /// each decode step, one per step; else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_probe_gb_s: Vec<f64>,
    /// What other tasks and the hypervisor took of the run's CPUs during the repetition;
    /// `None` where `/proc` could not be read (and in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<Contention>,
}

/// Statistics over the measured repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// Time to first token, ms.
    pub ttft_ms: Spread,
    /// Per decode step over all samples of all repetitions, ms; `None` when gen_tokens is 1.
    pub tpot_ms: Option<Percentiles>,
    /// Prefill throughput, tokens/s.
    pub prefill_tok_s: Spread,
    /// Decode throughput, tokens/s; `None` when gen_tokens is 1.
    pub decode_tok_s: Option<Spread>,
    /// End-to-end latency of one repetition, ms.
    pub e2e_ms: Spread,
    /// Generated tokens per second of end-to-end time.
    pub output_tok_s: Spread,
    /// Prompt plus generated tokens per second of end-to-end time.
    pub total_tok_s: Spread,
    /// With a read probe: decode's bandwidth as a share of the read after each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_share: Option<ReadShare>,
}

impl RunSummary {
    /// Statistics of `reps`; `None` when there are none.
    pub fn of(reps: &[RepetitionRecord]) -> Option<Self> {
        let col = |f: fn(&RepetitionMetrics) -> f64| -> Vec<f64> {
            reps.iter().map(|r| f(&r.metrics)).collect()
        };
        let decode: Vec<f64> = reps.iter().filter_map(|r| r.metrics.decode_tok_s).collect();
        let steps: Vec<f64> = reps
            .iter()
            .flat_map(|r| r.decode_steps_ms.iter().copied())
            .collect();
        Some(RunSummary {
            ttft_ms: Spread::of(&col(|m| m.ttft_ms))?,
            tpot_ms: Percentiles::of(&steps),
            prefill_tok_s: Spread::of(&col(|m| m.prefill_tok_s))?,
            decode_tok_s: Spread::of(&decode),
            e2e_ms: Spread::of(&col(|m| m.e2e_ms))?,
            output_tok_s: Spread::of(&col(|m| m.output_tok_s))?,
            total_tok_s: Spread::of(&col(|m| m.total_tok_s))?,
            read_share: None,
        })
    }
}

/// Counters of both phases, summed over threads and measured repetitions, and what they imply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCounters {
    /// Prefill counts.
    pub prefill: PhaseCounts,
    /// Decode counts.
    pub decode: PhaseCounts,
    /// IPC, LLC MPKI, GHz, utilisation of the prefill.
    pub prefill_derived: Derived,
    /// The same for the decode.
    pub decode_derived: Derived,
}

/// What a worker measured of one run (or one instance of it); the spec it ran is kept beside
/// it (a `runs.jsonl` line holds both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// The model as loaded.
    pub model: ModelSummary,
    /// Threads in the worker's compute pool.
    pub threads: usize,
    /// Instruction-set level of the tuned engine's kernels (`None` for the reference engine;
    /// capped by `LLAMAPERF_ISA`).
    #[serde(default)]
    pub kernels: Option<Isa>,
    /// How the llama.cpp engine ran: its CPU variant and features, the AMX probe, its settings
    /// (absent for the other engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_cpp: Option<LlamaCppRecord>,
    /// How the torch engine ran: backend, data type, versions, what was dequantized, compile
    /// time (absent for the other engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch: Option<TorchRecord>,
    /// The KV cache type the engine kept (a server's: assumed); records written before the
    /// type could be chosen lack it, and every engine then kept f32.
    #[serde(default = "kv_before_the_choice")]
    pub kv_dtype: KvDtype,
    /// When the first measured repetition (warmup included) began, seconds since the Unix epoch.
    pub measure_start_unix_s: f64,
    /// When the last repetition ended, seconds since the Unix epoch.
    pub measure_end_unix_s: f64,
    /// Reading the weights and building the engine, s.
    pub load_s: f64,
    /// Peak resident memory of the worker (VmHWM), MB (10^6 bytes); `None` without /proc.
    pub peak_rss_mb: Option<f64>,
    /// The measured repetitions (warmup excluded).
    pub repetitions: Vec<RepetitionRecord>,
    /// Statistics over the repetitions.
    pub summary: RunSummary,
    /// Token ids generated for the first sequence in the first measured repetition.
    pub generated_ids: Vec<u32>,
    /// The text of `generated_ids`, when the prompt was a text (filled in by the parent, which
    /// holds the tokenizer).
    pub generated_text: Option<String>,
    /// Counters per phase (missing ones explained in `notes`).
    pub counters: RunCounters,
    /// RAPL energy per phase of each package the run computed on; empty where it was not
    /// measured (the reason is in `notes`) and in records written before it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub energy: Vec<PackageEnergy>,
    /// The worker's binding as read back from the OS at the end of the run.
    pub binding: BindingReadback,
    /// The cores, SMT state and L3 of the run's PUs on its machine; absent in records written
    /// before it was recorded, whose results folder's `machine.json` gives it when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<PlacementShape>,
    /// Remarks about the run a reader should know.
    pub notes: Vec<String>,
    /// An `openai` run's requests, load summary and server (its repetitions are its
    /// completed requests); absent for the in-process engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingRecord>,
}

fn kv_before_the_choice() -> KvDtype {
    KvDtype::F32
}
