//! `plan`: capacity planning for a model on a machine.
//!
//! - memory of one instance: weights, KV cache in the chosen KV dtype, activations
//!   ([`crate::model::memory::MemoryEstimate`]);
//! - how many instances fit per NUMA node, socket and machine, by memory and by cores
//!   ([`packing`]);
//! - latency and throughput of an instance at a batch size, from the calibrated roofline
//!   ([`projection`]) or from measured results interpolated over batch and cores ([`measured`]);
//! - the largest batch meeting TTFT/TPOT objectives ([`slo`]) and the machines a target load
//!   needs at that point.

pub mod measured;
pub mod packing;
pub mod projection;
pub mod request;
pub mod slo;

use crate::calibrate::Calibration;
use crate::machine::Machine;
use crate::model::memory::{MemoryEstimate, ScoreMemory};
use crate::model::source::dtype_label;
use crate::model::{KvDtype, WeightDtype};
use crate::results::ResultsDir;
use crate::schema::SCHEMA_VERSION;
use measured::Measured;
use packing::{pack, Packing};
use projection::{Point, Roofline};
pub use request::{ModelShape, PlanRequest, DEFAULT_KV_DTYPE, DEFAULT_PROMPT_TOKENS};
use serde::{Deserialize, Serialize};
use slo::Slo;

/// Largest batch the roofline SLO search tries.
pub const MAX_SEARCHED_BATCH: usize = 1024;

/// What can be wrong with a plan's input.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A value out of its range.
    #[error("--{flag} {value}: must be {allowed}")]
    BadValue {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A calibration file is unreadable.
    #[error("--calibration {path}: {reason}")]
    Calibration {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `--engine` names an engine the folder did not measure the model on.
    #[error("{dir} has no measured single-instance SMT-off run of {model} on engine '{engine}'; engines measured: {engines}")]
    EngineAbsent {
        /// The folder.
        dir: String,
        /// The model (and dtype).
        model: String,
        /// The engine asked for.
        engine: String,
        /// The engines it has, joined by ", ".
        engines: String,
    },
    /// The folder measured the model on several engines and none was chosen.
    #[error("{dir} measured {model} on several engines ({engines}): choose the one to plan from with --engine ENGINE")]
    SeveralEngines {
        /// The folder.
        dir: String,
        /// The model (and dtype).
        model: String,
        /// The engines, joined by ", ".
        engines: String,
    },
    /// The results folder has no usable run of the model.
    #[error("{dir} has no measured single-instance SMT-off run of {model} with decode steps (it has: {found})")]
    NoMeasurements {
        /// The folder.
        dir: String,
        /// The model (and dtype).
        model: String,
        /// The models it has.
        found: String,
    },
}

/// Where latency and throughput come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Projector {
    /// The roofline of a calibration.
    Roofline(Roofline),
    /// Measured results.
    Measured(Measured),
}

/// Reads a calibration file (`calibrate --json` output or a results folder's
/// `calibration.json`).
pub fn read_calibration(path: &std::path::Path) -> Result<Calibration, PlanError> {
    let bad = |reason: String| PlanError::Calibration {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

impl Projector {
    /// The roofline from `calibration`: bandwidth of an instance's cores and of the machine,
    /// GEMM rate of the model's dtype; `Err` says what is missing.
    pub fn roofline(
        calibration: &Calibration,
        model: &ModelShape,
        request: &PlanRequest,
        machine: &Machine,
    ) -> Result<Self, String> {
        let dtype = model
            .dtype
            .ok_or("the model's data type has no calibrated GEMM figure")?;
        let (instance_gb_s, machine_gb_s, gflop_s) = projection::ceilings(
            calibration,
            dtype,
            request.cores_per_instance,
            crate::calibrate::usable_cores(machine),
        )?;
        Ok(Projector::Roofline(Roofline {
            config: model.config.clone(),
            weights: model.step_weights,
            kv: request.kv,
            prompt_tokens: request.prompt_tokens,
            context: request.context,
            instance_gb_s,
            machine_gb_s,
            gflop_s,
            calibrated_cores: calibration
                .bandwidth
                .iter()
                .map(|b| b.cores)
                .chain(calibration.compute.iter().map(|c| c.cores))
                .max()
                .unwrap_or(0),
        }))
    }

    /// The measured runs of `model` on `engine` in `dir`; without `engine`, on the one engine
    /// `dir` measured the model on (several are ambiguous: an error names them).
    pub fn measured(
        dir: &ResultsDir,
        model: &ModelShape,
        engine: Option<&str>,
    ) -> Result<Self, PlanError> {
        let engines = Measured::engines(dir, &model.name, model.dtype);
        let named = || format!("{} {}", model.name, dtype_label(model.dtype));
        let engine = match (engine, engines.as_slice()) {
            (Some(e), _) if engines.iter().any(|m| m == e) => e.to_string(),
            (Some(e), []) => e.to_string(),
            (Some(e), _) => {
                return Err(PlanError::EngineAbsent {
                    dir: dir.path().display().to_string(),
                    model: named(),
                    engine: e.to_string(),
                    engines: engines.join(", "),
                })
            }
            (None, [one]) => one.clone(),
            (None, []) => String::new(),
            (None, several) => {
                return Err(PlanError::SeveralEngines {
                    dir: dir.path().display().to_string(),
                    model: named(),
                    engines: several.join(", "),
                })
            }
        };
        let measured = Measured::from_results(dir, &model.name, model.dtype, &engine);
        if measured.points.is_empty() {
            let mut found: Vec<String> = dir
                .records()
                .iter()
                .map(|r| format!("{} {}", r.config().model, dtype_label(r.config().dtype)))
                .collect();
            found.sort();
            found.dedup();
            return Err(PlanError::NoMeasurements {
                dir: dir.path().display().to_string(),
                model: named(),
                found: if found.is_empty() {
                    "no runs".into()
                } else {
                    found.join(", ")
                },
            });
        }
        Ok(Projector::Measured(measured))
    }

    fn at(&self, cores: usize, batch: usize, instances: usize) -> Option<Point> {
        match self {
            Projector::Roofline(r) => Some(r.at(batch, instances)),
            Projector::Measured(m) => m.at(cores, batch),
        }
    }

    fn max_batch(&self, cores: usize) -> usize {
        match self {
            Projector::Roofline(_) => MAX_SEARCHED_BATCH,
            Projector::Measured(m) => m.max_batch(cores),
        }
    }
}

/// One batch size on a whole machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinePoint {
    /// Sequences per batch of each instance.
    pub batch: usize,
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Time per output token, ms.
    pub tpot_ms: f64,
    /// Decode tokens/s of one instance.
    pub tok_s_per_instance: f64,
    /// Instances per machine at this batch (memory grows with it).
    pub instances_per_machine: usize,
    /// Decode tokens/s of the machine.
    pub tok_s_per_machine: f64,
    /// Decode tokens per joule of RAPL package and DRAM energy as measured (the measured runs'
    /// energy, interpolated like their throughput); `None` without energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tok_per_j: Option<f64>,
}

/// The outcome of the SLO search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloResult {
    /// The objectives.
    pub slo: Slo,
    /// Batches searched: 1 up to this.
    pub searched_up_to: usize,
    /// The largest batch meeting them; `None` when even batch 1 misses them.
    pub best: Option<MachinePoint>,
}

/// Machines a target load needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetLoad {
    /// The load, decode tokens/s.
    pub tok_s: f64,
    /// The batch each instance runs at (the SLO batch, or --batch without objectives).
    pub batch: usize,
    /// Machines: ceil(load / tokens/s per machine).
    pub machines: u64,
}

/// A capacity plan, as `plan --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityPlan {
    /// Results schema version.
    pub schema_version: u32,
    /// The model.
    pub model: String,
    /// Its weights' data type (empty for a GGUF file of another type).
    pub dtype: Option<WeightDtype>,
    /// The KV cache data type.
    pub kv_dtype: KvDtype,
    /// Sequences per batch of an instance.
    pub batch: usize,
    /// Prompt tokens per sequence.
    pub prompt_tokens: usize,
    /// Context per sequence, tokens.
    pub context: usize,
    /// The machine planned for.
    pub machine: String,
    /// KV cache bytes per token of one sequence.
    pub kv_bytes_per_token: u64,
    /// Memory of one instance at `batch`.
    pub memory: MemoryEstimate,
    /// Its total, bytes.
    pub memory_total_bytes: u64,
    /// Instances per NUMA node, socket and machine at `batch`.
    pub packing: Packing,
    /// Where latency and throughput come from (`roofline` or `measured`), if anywhere.
    pub projection: Option<String>,
    /// The engine of the measured runs a `measured` projection comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Latency and throughput at `batch`, when projected (and it fits).
    pub at_batch: Option<MachinePoint>,
    /// The SLO search, when objectives were given and a projection exists.
    pub slo: Option<SloResult>,
    /// Machines for `--target-tok-s`, when given and projected.
    pub target: Option<TargetLoad>,
    /// What the reader should know: assumptions, what is missing and how to get it.
    pub notes: Vec<String>,
}

/// The memory of one instance at `batch`, its prefill holding every prompt position's attention
/// scores at once (the engine that would serve is not known: the largest of them).
fn memory(model: &ModelShape, request: &PlanRequest, batch: usize) -> MemoryEstimate {
    MemoryEstimate::new(
        &model.config,
        model.weights_bytes,
        (batch, request.prompt_tokens, request.context),
        request.kv,
        ScoreMemory::Whole,
    )
}

/// The machine-wide figures at `batch`; `None` when no instance fits or nothing is projected.
fn machine_point(
    model: &ModelShape,
    request: &PlanRequest,
    machine: &Machine,
    projector: &Projector,
    batch: usize,
) -> Option<MachinePoint> {
    let packing = pack(
        machine,
        memory(model, request, batch).total_bytes(),
        request.cores_per_instance,
    );
    let instances = packing.instances_per_machine;
    if instances == 0 {
        return None;
    }
    let p = projector.at(request.cores_per_instance, batch, instances)?;
    Some(MachinePoint {
        batch,
        ttft_ms: p.ttft_ms,
        tpot_ms: p.tpot_ms,
        tok_s_per_instance: p.tok_s,
        instances_per_machine: instances,
        tok_s_per_machine: p.tok_s * instances as f64,
        tok_per_j: p.tok_per_j,
    })
}

/// Plans `model` on `machine` for `request`, projecting with `projector` (or noting why there is
/// none: `Err(reason)`).
pub fn plan_capacity(
    model: &ModelShape,
    request: &PlanRequest,
    machine: &Machine,
    projector: Result<Projector, String>,
) -> CapacityPlan {
    let estimate = memory(model, request, request.batch);
    let packing = pack(machine, estimate.total_bytes(), request.cores_per_instance);
    let mut notes = Vec::new();
    if packing.instances_per_machine == 0 {
        notes.push(format!(
            "one instance needs {:.1} GB and {} cores: it does not fit this machine",
            estimate.total_bytes() as f64 / 1e9,
            request.cores_per_instance
        ));
    }
    let (projection, at_batch, slo, target) = match &projector {
        Err(reason) => {
            notes.push(format!("no throughput projection: {reason}"));
            (None, None, None, None)
        }
        Ok(p) => {
            notes.extend(projection_notes(p, request));
            let at = |b| machine_point(model, request, machine, p, b);
            let at_batch = at(request.batch);
            if at_batch.is_none() && packing.instances_per_machine > 0 {
                notes.push(format!(
                    "batch {} at {} cores per instance is outside the measured runs",
                    request.batch, request.cores_per_instance
                ));
            }
            let max_batch = p.max_batch(request.cores_per_instance);
            let slo = request.slo.is_set().then(|| SloResult {
                slo: request.slo,
                searched_up_to: max_batch,
                best: slo::largest_batch(&request.slo, max_batch, at),
            });
            let basis = match &slo {
                Some(s) => s.best,
                None => at_batch,
            };
            let target = request.target_tok_s.and_then(|tok_s| {
                basis.map(|m| TargetLoad {
                    tok_s,
                    batch: m.batch,
                    machines: (tok_s / m.tok_s_per_machine).ceil() as u64,
                })
            });
            if request.target_tok_s.is_some() && target.is_none() {
                notes.push(
                    if slo.is_some() {
                        "no machine count: no batch meets the objectives"
                    } else {
                        "no machine count: batch --batch has no projection"
                    }
                    .into(),
                );
            }
            let source = match p {
                Projector::Roofline(_) => "roofline",
                Projector::Measured(_) => "measured",
            };
            (Some(source.to_string()), at_batch, slo, target)
        }
    };
    CapacityPlan {
        schema_version: SCHEMA_VERSION,
        model: model.name.clone(),
        dtype: model.dtype,
        kv_dtype: request.kv,
        batch: request.batch,
        prompt_tokens: request.prompt_tokens,
        context: request.context,
        machine: machine.source.clone(),
        kv_bytes_per_token: model.config.kv_bytes_per_token(request.kv),
        memory_total_bytes: estimate.total_bytes(),
        memory: estimate,
        packing,
        engine: match &projector {
            Ok(Projector::Measured(m)) => Some(m.engine.clone()),
            _ => None,
        },
        projection,
        at_batch,
        slo,
        target,
        notes,
    }
}

/// The assumptions behind a projection.
fn projection_notes(p: &Projector, request: &PlanRequest) -> Vec<String> {
    match p {
        Projector::Roofline(r) => {
            let mut notes = vec![format!(
                "roofline: {:.1} GB/s read bandwidth per instance ({:.1} GB/s for the machine, shared by its instances), {:.1} GFLOP/s GEMM; TPOT at a full context of {} tokens (the slowest step), TTFT for a {}-token prompt",
                r.instance_gb_s, r.machine_gb_s, r.gflop_s, r.context, r.prompt_tokens
            )];
            if r.calibrated_cores < request.cores_per_instance {
                notes.push(format!(
                    "the calibration measured at most {} cores, an instance has {}: its ceilings are those of {} cores, so the projection is low (calibrate the machine planned for)",
                    r.calibrated_cores, request.cores_per_instance, r.calibrated_cores
                ));
            }
            notes
        }
        Projector::Measured(m) => {
            let list = |v: &[usize]| {
                v.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut notes = vec![format!(
                "measured: single instances of engine {} at {} cores, interpolated over batch and cores, never extrapolated; instances side by side share memory bandwidth, which single-instance runs do not show",
                m.engine,
                list(&m.cores())
            )];
            if m.points.iter().any(|p| p.tok_per_j.is_some()) {
                notes.push(
                    "tokens per joule as measured: RAPL counts whole packages, so a single \
                     instance was charged its packages' idle cores too; instances side by side \
                     share that energy, and a full machine does better per joule"
                        .into(),
                );
            } else {
                notes.push(
                    "no tokens per joule: the measured runs have no RAPL energy (see their notes)"
                        .into(),
                );
            }
            if m.prompt_tokens != [request.prompt_tokens] || m.context != [request.context] {
                notes.push(format!(
                    "the runs were measured with prompts of {} and contexts of {} tokens; the plan asks {} and {}: their figures are used as measured",
                    list(&m.prompt_tokens),
                    list(&m.context),
                    request.prompt_tokens,
                    request.context
                ));
            }
            notes
        }
    }
}
