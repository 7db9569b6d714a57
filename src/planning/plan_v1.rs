//! `plan.json` of schema version 1, which held each planned instance's placement and not its
//! spec: still read, its specs rebuilt from each run's configuration as planning builds them.

use super::plan::{Plan, PlanStatus, RunPlan, Shard};
use super::spec::{Prompt, RunSpec};
use crate::machine::InstancePlacement;
use crate::model::memory::MemoryEstimate;
use crate::model::{ModelCache, ModelError, ModelRef};
use crate::scenario::RunConfig;
use crate::schema::PLAN_VERSION;
use serde::Deserialize;

/// The plan as version 1 wrote it.
#[derive(Deserialize)]
struct PlanV1 {
    scenario: String,
    machine: String,
    shard: Option<Shard>,
    runs: Vec<RunPlanV1>,
}

/// One run as version 1 wrote it.
#[derive(Deserialize)]
struct RunPlanV1 {
    index: usize,
    id: String,
    config: RunConfig,
    #[serde(flatten)]
    status: StatusV1,
}

/// A run's status as version 1 wrote it: placements instead of specs.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum StatusV1 {
    Planned {
        instances: Vec<InstancePlacement>,
        memory: MemoryEstimate,
    },
    Skipped {
        reason: String,
    },
}

/// What can be wrong with a version 1 plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanV1Error {
    /// The text is not a version 1 plan.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A planned run's model no longer parses.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Reads a version 1 `plan.json`, with the specs of every planned instance rebuilt; synthetic
/// models are located in `cache`. The result is a plan of the current version.
pub fn read_plan_v1(text: &str, cache: &ModelCache) -> Result<Plan, PlanV1Error> {
    let v1: PlanV1 = serde_json::from_str(text)?;
    let runs = v1
        .runs
        .into_iter()
        .map(|run| {
            let status = match run.status {
                StatusV1::Planned { instances, memory } => {
                    let model = ModelRef::parse(&run.config.model, run.config.dtype)?.locate(cache);
                    let prompt = Prompt::Synthetic {
                        tokens: run.config.prompt_tokens,
                    };
                    let specs = instances
                        .into_iter()
                        .map(|p| RunSpec::of(&run.config, model.clone(), prompt.clone(), p))
                        .collect();
                    PlanStatus::Planned { specs, memory }
                }
                StatusV1::Skipped { reason } => PlanStatus::Skipped { reason },
            };
            Ok(RunPlan {
                index: run.index,
                id: run.id,
                config: run.config,
                status,
            })
        })
        .collect::<Result<_, PlanV1Error>>()?;
    Ok(Plan {
        schema_version: PLAN_VERSION,
        scenario: v1.scenario,
        machine: v1.machine,
        shard: v1.shard,
        runs,
    })
}
