//! Planning: run configurations on a machine become run plans, each a complete [`RunSpec`]
//! per instance (model resolved, placed, fit checked) or skipped with its reason. `run` and
//! `sweep` both go through it; execution only executes what it planned.

pub mod plan;
pub mod plan_v1;
pub mod spec;

pub use plan::{plan, plan_config, ModelSize, Plan, PlanStatus, RunPlan, Shard, Unplannable};
pub use spec::{Prompt, RunSpec, SpecError};
