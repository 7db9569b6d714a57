//! Planning: every run of a scenario on a machine, placed, sized, or skipped with its reason.

use crate::machine::{place, InstancePlacement, Machine};
use crate::model::memory::MemoryEstimate;
use crate::model::{find_preset, KvDtype, LlamaConfig, ModelFile};
use crate::planning::spec::check_fit;
use crate::scenario::RunConfig;
use crate::schema::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// What will happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlanStatus {
    /// It runs: one placement per instance, and its memory estimate per instance.
    Planned {
        /// Where each instance computes and keeps its memory.
        instances: Vec<InstancePlacement>,
        /// Estimated memory of one instance.
        memory: MemoryEstimate,
    },
    /// It cannot run on this machine.
    Skipped {
        /// Why, with the numbers.
        reason: String,
    },
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
    /// Version of the results schema.
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

/// Shape and stored size of a run's model.
struct ModelSize {
    config: LlamaConfig,
    weights_bytes: u64,
}

fn model_size(config: &RunConfig) -> Result<ModelSize, String> {
    if let Some(preset) = find_preset(&config.model) {
        let dtype = config.dtype.expect("preset runs carry a dtype");
        return Ok(ModelSize {
            weights_bytes: preset.weight_bytes(dtype),
            config: preset.config,
        });
    }
    let file = ModelFile::open(Path::new(&config.model)).map_err(|e| e.to_string())?;
    Ok(ModelSize {
        config: file.summary.config,
        weights_bytes: file.summary.weight_bytes,
    })
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

fn plan_one(
    config: &RunConfig,
    machine: &Machine,
    sizes: &mut HashMap<String, Result<ModelSize, String>>,
) -> PlanStatus {
    let skip = |reason: String| PlanStatus::Skipped { reason };
    let size = match sizes
        .entry(config.model.clone())
        .or_insert_with(|| model_size(config))
    {
        Ok(size) => size,
        Err(e) => return skip(e.clone()),
    };
    if let Err(e) = check_fit(
        config.engine,
        config.batch,
        config.prompt_tokens,
        config.gen_tokens,
        size.config.context,
    ) {
        return skip(e.to_string());
    }
    let instances = match place(machine, &config.placement_request()) {
        Ok(p) => p,
        Err(reason) => return skip(reason.to_string()),
    };
    let memory = MemoryEstimate::new(
        &size.config,
        size.weights_bytes,
        config.batch,
        config.prompt_tokens,
        config.prompt_tokens + config.gen_tokens,
        KvDtype::ENGINE,
    );
    let mut nodes: Vec<usize> = instances
        .iter()
        .flat_map(|i| i.memory.nodes.clone())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let available: u64 = machine
        .numa_nodes
        .iter()
        .filter(|n| nodes.contains(&n.os_index))
        .map(|n| n.memory_bytes)
        .sum();
    let needed = memory.total_bytes() * instances.len() as u64;
    if needed > available {
        return skip(format!(
            "needs {} for {} instance{} (weights {} + KV cache {} + activations {} each), NUMA node{} {} ha{} {}",
            gb(needed),
            instances.len(),
            if instances.len() == 1 { "" } else { "s" },
            gb(memory.weights_bytes),
            gb(memory.kv_cache_bytes),
            gb(memory.activation_bytes),
            if nodes.len() == 1 { "" } else { "s" },
            crate::machine::cpulist::format_list(&nodes),
            if nodes.len() == 1 { "s" } else { "ve" },
            gb(available)
        ));
    }
    PlanStatus::Planned { instances, memory }
}

/// Plans `runs` on `machine`: orders them so each model is loaded (and synthesized) once in a
/// row, then places and sizes each, or gives its skip reason.
pub fn plan(scenario: &str, runs: Vec<RunConfig>, machine: &Machine, shard: Option<Shard>) -> Plan {
    let mut first_seen: HashMap<(String, Option<crate::model::WeightDtype>), usize> =
        HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        first_seen.entry((r.model.clone(), r.dtype)).or_insert(i);
    }
    let mut ordered = runs;
    ordered.sort_by_key(|r| first_seen[&(r.model.clone(), r.dtype)]);
    let mut sizes = HashMap::new();
    Plan {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.to_string(),
        machine: machine.source.clone(),
        shard,
        runs: ordered
            .into_iter()
            .enumerate()
            .map(|(index, config)| RunPlan {
                index,
                id: config.id(),
                status: plan_one(&config, machine, &mut sizes),
                config,
            })
            .collect(),
    }
}
