//! Planning: every run of a scenario on a machine, placed, sized, or skipped with its reason.

use super::spec::{
    check_counts, check_fit, check_format, check_server, check_settings, Prompt, RunSpec, SpecError,
};
use crate::engine::EngineKind;
use crate::interrupt::{self, Interrupted};
use crate::machine::memory::{gb, MemoryBudget, Shortfall};
use crate::machine::{place, InstancePlacement, Machine, SkipReason};
use crate::model::flops::matrix_parameters;
use crate::model::memory::MemoryEstimate;
use crate::model::source::ResolvedModel;
use crate::model::{
    HfFolder, LlamaConfig, ModelCache, ModelError, ModelFile, ModelFormat, ModelRef,
};
use crate::scenario::RunConfig;
use crate::schema::PLAN_VERSION;
use crate::torch::env::{python_for, TorchUnavailable};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// What will happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlanStatus {
    /// It runs: the spec of each instance, and the memory estimate of one instance.
    Planned {
        /// What each instance's worker receives: model, prompt, placement, settings.
        specs: Vec<RunSpec>,
        /// Estimated memory of one instance.
        memory: MemoryEstimate,
    },
    /// It cannot run on this machine.
    Skipped {
        /// Why, with the numbers.
        reason: String,
    },
}

impl PlanStatus {
    /// Where each instance computes and keeps its memory; none for a skipped run.
    pub fn placements(&self) -> impl Iterator<Item = &InstancePlacement> {
        let specs: &[RunSpec] = match self {
            PlanStatus::Planned { specs, .. } => specs,
            PlanStatus::Skipped { .. } => &[],
        };
        specs.iter().map(|s| &s.placement)
    }
}

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// Position in the plan (execution order), from 0.
    pub index: usize,
    /// The run id (its axes), unique in the plan.
    pub id: String,
    /// The run's configuration.
    pub config: RunConfig,
    /// Planned or skipped.
    #[serde(flatten)]
    pub status: PlanStatus,
}

/// A deterministic part of a plan: shard `index` of `count` (1-based), for splitting a sweep
/// over machines or CI jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, 1..=count.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("shard '{s}' must be I/N with 1 <= I <= N, e.g. 1/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the run at `index` of a plan of `len` runs belongs to this shard: the plan is cut
    /// into `count` contiguous, nearly equal parts (runs of one model stay together).
    pub fn contains(&self, index: usize, len: usize) -> bool {
        let start = (self.index - 1) * len / self.count;
        let end = self.index * len / self.count;
        (start..end).contains(&index)
    }
}

/// The whole plan, as `plan.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Version of the plan's schema ([`PLAN_VERSION`]).
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// The machine planned for.
    pub machine: String,
    /// The shard this results folder executes, if any.
    pub shard: Option<Shard>,
    /// Every run, skipped ones included.
    pub runs: Vec<RunPlan>,
}

impl Plan {
    /// The runs this results folder executes (all, or the shard's).
    pub fn selected(&self) -> impl Iterator<Item = &RunPlan> {
        let len = self.runs.len();
        self.runs
            .iter()
            .filter(move |r| self.shard.is_none_or(|s| s.contains(r.index, len)))
    }

    /// The selected runs that execute (not skipped).
    pub fn planned(&self) -> impl Iterator<Item = &RunPlan> {
        self.selected()
            .filter(|r| matches!(r.status, PlanStatus::Planned { .. }))
    }
}

/// Shape, stored size and format of a run's model.
#[derive(Debug, Clone)]
pub struct ModelSize {
    /// The model's shape.
    pub config: LlamaConfig,
    /// Bytes of all its tensors as stored.
    pub weights_bytes: u64,
    /// How it is stored (which engines can load it).
    pub format: ModelFormat,
}

impl ModelSize {
    /// The size of `model`: a preset's from its shape (no file needed), a file's from its
    /// header, a Hugging Face folder's from its config and safetensors headers.
    pub fn of(model: &ModelRef) -> Result<Self, ModelError> {
        let summary = match model {
            ModelRef::Preset { preset, dtype } => {
                return Ok(ModelSize {
                    weights_bytes: preset.weight_bytes(*dtype),
                    config: preset.config.clone(),
                    format: ModelFormat::Gguf,
                })
            }
            ModelRef::File(path) => ModelFile::open(path)?.summary,
            ModelRef::Folder(path) => HfFolder::open(path)?.summary,
        };
        Ok(ModelSize {
            config: summary.config,
            weights_bytes: summary.weight_bytes,
            format: model.format(),
        })
    }
}

/// Why a run cannot execute on a machine.
#[derive(Debug, thiserror::Error)]
pub enum Unplannable {
    /// The model cannot be named or read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The engine cannot run these counts or this context.
    #[error(transparent)]
    Fit(#[from] SpecError),
    /// The machine has no such placement.
    #[error(transparent)]
    Place(#[from] SkipReason),
    /// The torch backend's Python environment is not installed here.
    #[error(transparent)]
    Torch(#[from] TorchUnavailable),
    /// The instances need more memory than the machine can give them now.
    #[error("needs {} for {instances} instance{} (weights {} + KV cache {} + activations {} each), {shortfall}",
        gb(*.needed_bytes), if *.instances == 1 { "" } else { "s" }, gb(.memory.weights_bytes),
        gb(.memory.kv_cache_bytes), gb(.memory.activation_bytes))]
    Memory {
        /// Bytes all instances need.
        needed_bytes: u64,
        /// Instances of the run.
        instances: usize,
        /// One instance's estimate.
        memory: MemoryEstimate,
        /// The tightest bound on memory and what of it is usable.
        shortfall: Shortfall,
    },
}

impl Unplannable {
    /// Whether the user's input is at fault (rather than a file that could not be read).
    pub fn is_input_error(&self) -> bool {
        match self {
            Unplannable::Model(e) => e.is_input_error(),
            _ => true,
        }
    }
}

/// Plans `config` on `machine`: the spec of each instance (its model at `model`, of `size`,
/// with `prompt`), placed, its fit checked and its memory within `budget` (the machine's,
/// [`MemoryBudget::of`]); or why it cannot run.
pub fn plan_config(
    config: &RunConfig,
    model: &ResolvedModel,
    size: &ModelSize,
    prompt: &Prompt,
    machine: &Machine,
    budget: &MemoryBudget,
) -> Result<(Vec<RunSpec>, MemoryEstimate), Unplannable> {
    check_counts(config, prompt.tokens())?;
    check_settings(config)?;
    check_server(config)?;
    check_format(config.engine, size.format)?;
    check_fit(
        config.engine,
        config.batch,
        (config.depth, prompt.tokens(), config.gen_tokens),
        size.config.context,
    )?;
    if config.engine == EngineKind::Torch {
        python_for(config.torch.backend)?;
    }
    let instances = place(machine, &config.placement_request())?;
    let weights_bytes = match config.engine {
        // dequantized (or cast) on load: every matrix in torch_dtype
        EngineKind::Torch => matrix_parameters(&size.config) * config.torch.dtype.bytes(),
        _ => size.weights_bytes,
    };
    let scores = config.score_memory(instances.iter().map(|i| i.pus.len()).max().unwrap_or(1));
    let memory = MemoryEstimate::new(
        &size.config,
        weights_bytes,
        (
            config.batch,
            config.most_tokens_per_pass(prompt.tokens()),
            config.depth + prompt.tokens() + config.gen_tokens,
        ),
        config.kv_dtype_kept(),
        scores,
    );
    let mut nodes: Vec<usize> = instances
        .iter()
        .flat_map(|i| i.memory.nodes.clone())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let needed_bytes = memory.total_bytes() * instances.len() as u64;
    if let Err(shortfall) = budget.fit(&nodes, needed_bytes) {
        return Err(Unplannable::Memory {
            needed_bytes,
            instances: instances.len(),
            memory,
            shortfall,
        });
    }
    let specs = instances
        .into_iter()
        .map(|placement| RunSpec::of(config, model.clone(), prompt.clone(), placement))
        .collect();
    Ok((specs, memory))
}

/// Plans `runs` on `machine`, with synthetic models in `cache`: orders them so each model is
/// loaded (and synthesized) once in a row, then gives each its specs or its skip reason.
/// SIGINT or SIGTERM stops it between two runs ([`crate::interrupt`]).
pub fn plan(
    scenario: &str,
    runs: Vec<RunConfig>,
    machine: &Machine,
    cache: &ModelCache,
    shard: Option<Shard>,
) -> Result<Plan, Interrupted> {
    let mut first_seen: HashMap<(String, Option<crate::model::WeightDtype>), usize> =
        HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        first_seen.entry((r.model.clone(), r.dtype)).or_insert(i);
    }
    let budget = MemoryBudget::of(machine);
    let mut ordered = runs;
    ordered.sort_by_key(|r| first_seen[&(r.model.clone(), r.dtype)]);
    let mut models: HashMap<String, Result<(ResolvedModel, ModelSize), String>> = HashMap::new();
    let mut status = |config: &RunConfig| {
        let model = models
            .entry(format!("{} {:?}", config.model, config.dtype))
            .or_insert_with(|| {
                let found = ModelRef::parse(&config.model, config.dtype)
                    .and_then(|model| Ok((model.locate(cache), ModelSize::of(&model)?)));
                found.map_err(|e| e.to_string())
            });
        let (model, size) = match model {
            Ok(found) => found,
            Err(reason) => {
                return PlanStatus::Skipped {
                    reason: reason.clone(),
                }
            }
        };
        let prompt = Prompt::Synthetic {
            tokens: config.prompt_tokens,
        };
        match plan_config(config, model, size, &prompt, machine, &budget) {
            Ok((specs, memory)) => PlanStatus::Planned { specs, memory },
            Err(e) => PlanStatus::Skipped {
                reason: e.to_string(),
            },
        }
    };
    let runs = ordered
        .into_iter()
        .enumerate()
        .map(|(index, config)| {
            interrupt::check()?;
            Ok(RunPlan {
                index,
                id: config.id(),
                status: status(&config),
                config,
            })
        })
        .collect::<Result<_, Interrupted>>()?;
    Ok(Plan {
        schema_version: PLAN_VERSION,
        scenario: scenario.to_string(),
        machine: machine.source.clone(),
        shard,
        runs,
    })
}
