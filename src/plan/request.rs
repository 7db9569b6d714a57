//! A plan's validated input: the shape of the model and the numbers of the request.

use super::slo::Slo;
use super::{packing, PlanError};
use crate::machine::Machine;
use crate::model::{
    HfFolder, KvDtype, LlamaConfig, ModelError, ModelFile, ModelRef, StepWeights, WeightDtype,
};

/// The KV cache data type a plan assumes unless told otherwise: f16, what llama.cpp and most
/// inference servers keep (and the tuned engine's default).
pub const DEFAULT_KV_DTYPE: KvDtype = KvDtype::F16;

/// The prompt length a plan assumes unless told otherwise (or the context, when shorter),
/// tokens.
pub const DEFAULT_PROMPT_TOKENS: usize = 512;

/// A validated plan request.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// Sequences per batch of one instance.
    pub batch: usize,
    /// Prompt tokens per sequence.
    pub prompt_tokens: usize,
    /// Context (KV cache length) per sequence, tokens.
    pub context: usize,
    /// KV cache data type.
    pub kv: KvDtype,
    /// Cores of one instance.
    pub cores_per_instance: usize,
    /// Latency objectives.
    pub slo: Slo,
    /// Load to serve, decode tokens/s over all machines.
    pub target_tok_s: Option<f64>,
}

fn positive(flag: &'static str, v: f64) -> Result<f64, PlanError> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(PlanError::BadValue {
            flag,
            value: v.to_string(),
            allowed: "a number > 0".into(),
        })
    }
}

fn at_least_one(flag: &'static str, v: usize) -> Result<usize, PlanError> {
    if v >= 1 {
        Ok(v)
    } else {
        Err(PlanError::BadValue {
            flag,
            value: v.to_string(),
            allowed: "an integer >= 1".into(),
        })
    }
}

impl PlanRequest {
    /// Checks every value: counts >= 1, the prompt within the context, the model's context and
    /// the machine's cores not exceeded, objectives and target > 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &ModelShape,
        machine: &Machine,
        batch: usize,
        prompt_tokens: Option<usize>,
        context: usize,
        kv: KvDtype,
        cores_per_instance: Option<usize>,
        slo: Slo,
        target_tok_s: Option<f64>,
    ) -> Result<Self, PlanError> {
        let context = at_least_one("context", context)?;
        if context > model.config.context {
            return Err(PlanError::BadValue {
                flag: "context",
                value: context.to_string(),
                allowed: format!(
                    "at most {}, the context length of {}",
                    model.config.context, model.name
                ),
            });
        }
        let prompt_tokens = at_least_one(
            "prompt-tokens",
            prompt_tokens.unwrap_or(DEFAULT_PROMPT_TOKENS.min(context)),
        )?;
        if prompt_tokens > context {
            return Err(PlanError::BadValue {
                flag: "prompt-tokens",
                value: prompt_tokens.to_string(),
                allowed: format!("at most the context ({context})"),
            });
        }
        let cores = crate::calibrate::usable_cores(machine);
        let cores_per_instance = at_least_one(
            "cores-per-instance",
            cores_per_instance.unwrap_or_else(|| packing::node_cores(machine)),
        )?;
        if cores_per_instance > cores {
            return Err(PlanError::BadValue {
                flag: "cores-per-instance",
                value: cores_per_instance.to_string(),
                allowed: format!("at most the machine's {cores} usable cores"),
            });
        }
        Ok(PlanRequest {
            batch: at_least_one("batch", batch)?,
            prompt_tokens,
            context,
            kv,
            cores_per_instance,
            slo: Slo {
                ttft_ms: slo
                    .ttft_ms
                    .map(|v| positive("slo-ttft-ms", v))
                    .transpose()?,
                tpot_ms: slo
                    .tpot_ms
                    .map(|v| positive("slo-tpot-ms", v))
                    .transpose()?,
            },
            target_tok_s: target_tok_s
                .map(|v| positive("target-tok-s", v))
                .transpose()?,
        })
    }
}

/// The shape and stored size of the model planned for.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// Preset name or file path.
    pub name: String,
    /// Its hyper-parameters.
    pub config: LlamaConfig,
    /// Bytes of its weights as stored.
    pub weights_bytes: u64,
    /// What a forward pass reads of them.
    pub step_weights: StepWeights,
    /// Data type of its matrices, when it is one of ours.
    pub dtype: Option<WeightDtype>,
}

impl ModelShape {
    /// The shape of a preset in its dtype, of a GGUF file (its header only), or of a Hugging
    /// Face folder (its config and safetensors headers).
    pub fn of(model: &ModelRef) -> Result<Self, ModelError> {
        let summary = match model {
            ModelRef::Preset { preset, dtype } => {
                return Ok(ModelShape {
                    name: preset.name.to_string(),
                    config: preset.config.clone(),
                    weights_bytes: preset.weight_bytes(*dtype),
                    step_weights: preset.step_weights(*dtype),
                    dtype: Some(*dtype),
                })
            }
            ModelRef::File(path) => ModelFile::open(path)?.summary,
            ModelRef::Folder(path) => HfFolder::open(path)?.summary,
        };
        Ok(ModelShape {
            name: model.name(),
            dtype: summary.dtype.parse().ok(),
            weights_bytes: summary.weight_bytes,
            step_weights: summary.step_weights(),
            config: summary.config,
        })
    }
}
