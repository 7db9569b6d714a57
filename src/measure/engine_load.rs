//! Loading a run's engine: the project's own through `llamaperf-engine`, llama.cpp through
//! `llamaperf-llama-cpp` with its settings, torch in the Python worker it starts (the only
//! engine that loads a Hugging Face folder).

use crate::engine::{self, Engine, EngineError, EngineKind};
use crate::llama_cpp::{LlamaCppEngine, LlamaCppRecord, LlamaCppSettings};
use crate::model::{ModelFile, OpenedModel};
use crate::planning::spec::{RunSpec, SpecError};
use crate::torch::protocol::LoadRequest;
use crate::torch::worker::TorchWorker;
use crate::torch::{env, TorchRecord};

/// A run's engine, loaded, and what the record says of it.
pub struct LoadedEngine {
    /// The forward pass.
    pub engine: Box<dyn Engine>,
    /// The process whose threads compute: this one, or the torch worker it started.
    pub pid: u32,
    /// The threads the engine computes with (one per PU of the placement).
    pub threads: usize,
    /// How llama.cpp runs (engine `llama.cpp` only).
    pub llama_cpp: Option<LlamaCppRecord>,
    /// How torch runs (engine `torch` only).
    pub torch: Option<TorchRecord>,
    /// What the engine did to the model that a reader should know.
    pub notes: Vec<String>,
}

impl LoadedEngine {
    fn in_process(engine: Box<dyn Engine>, llama_cpp: Option<LlamaCppRecord>) -> Self {
        LoadedEngine {
            engine,
            pid: std::process::id(),
            threads: rayon::current_num_threads(),
            llama_cpp,
            torch: None,
            notes: Vec::new(),
        }
    }
}

/// The GGUF file an engine other than torch loads; a folder is refused (planning refuses it
/// first).
fn gguf(engine: EngineKind, model: &OpenedModel) -> Result<&ModelFile, EngineError> {
    match model {
        OpenedModel::Gguf(file) => Ok(file),
        OpenedModel::Folder(_) => Err(EngineError::Unsupported(
            SpecError::FolderUnsupported { engine }.to_string(),
        )),
    }
}

/// The run's engine, loaded for its batch and context.
pub fn load_engine(spec: &RunSpec, model: &OpenedModel) -> Result<LoadedEngine, EngineError> {
    let c = &spec.config;
    match c.engine {
        EngineKind::LlamaCpp => {
            gguf(c.engine, model)?;
            let settings = LlamaCppSettings {
                flash_attn: c.flash_attn,
                kv_dtype: c.kv_dtype_kept(),
                ubatch: c.ubatch_kept(),
                threads: spec.threads(),
                amx_refused: spec.amx_refused.clone(),
            };
            let engine =
                LlamaCppEngine::load(&spec.model.path, &settings, c.batch, spec.context_tokens())?;
            let record = engine.record().clone();
            Ok(LoadedEngine::in_process(Box::new(engine), Some(record)))
        }
        EngineKind::Torch => {
            let python = env::python_for(c.torch.backend)
                .map_err(|e| EngineError::External(e.to_string()))?;
            let request = LoadRequest {
                model: &spec.model.path,
                backend: c.torch.backend,
                dtype: c.torch.dtype,
                threads: spec.threads(),
                batch: c.batch,
                context: spec.context_tokens(),
            };
            let worker = TorchWorker::start(&python, &request, &spec.placement.pus)?;
            let ready = worker.ready().clone();
            let mut notes = ready.notes.clone();
            let stored = &model.summary().dtype;
            if let OpenedModel::Folder(_) = model {
                if *stored != c.torch.dtype.name() {
                    notes.push(format!(
                        "weights stored in {stored}, cast to {} on load",
                        c.torch.dtype
                    ));
                }
            }
            Ok(LoadedEngine {
                pid: worker.pid(),
                threads: ready.threads,
                llama_cpp: None,
                torch: Some(TorchRecord::of(
                    c.torch.backend,
                    c.torch.dtype,
                    python,
                    model.format(),
                    &ready,
                )),
                notes,
                engine: Box::new(worker),
            })
        }
        kind => {
            let engine = engine::load(
                kind,
                gguf(kind, model)?,
                c.batch,
                spec.context_tokens(),
                c.kv_dtype_kept(),
            )?;
            Ok(LoadedEngine::in_process(engine, None))
        }
    }
}
