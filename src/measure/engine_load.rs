//! Loading a run's engine: the project's own through `llamaperf-engine`, llama.cpp through
//! `llamaperf-llama-cpp` with its settings.

use crate::engine::{self, Engine, EngineError, EngineKind};
use crate::llama_cpp::settings::DEFAULT_UBATCH;
use crate::llama_cpp::{LlamaCppEngine, LlamaCppRecord, LlamaCppSettings};
use crate::model::ModelFile;
use crate::planning::spec::RunSpec;

/// The run's engine, loaded for its batch and context; for llama.cpp also how it runs.
pub fn load_engine(
    spec: &RunSpec,
    model: &ModelFile,
) -> Result<(Box<dyn Engine>, Option<LlamaCppRecord>), EngineError> {
    let c = &spec.config;
    if c.engine != EngineKind::LlamaCpp {
        let engine = engine::load(
            c.engine,
            model,
            c.batch,
            spec.context_tokens(),
            c.kv_dtype_kept(),
        )?;
        return Ok((engine, None));
    }
    let settings = LlamaCppSettings {
        flash_attn: c.flash_attn,
        kv_dtype: c.kv_dtype_kept(),
        ubatch: c.ubatch.unwrap_or(DEFAULT_UBATCH),
        threads: spec.threads(),
        amx_refused: spec.amx_refused.clone(),
    };
    let engine = LlamaCppEngine::load(&spec.model.path, &settings, c.batch, spec.context_tokens())?;
    let record = engine.record().clone();
    Ok((Box::new(engine), Some(record)))
}
