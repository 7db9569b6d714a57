//! llama.cpp, through its C API (the `llama-cpp-2` crate), as a llamaperf engine: the same
//! [`Engine`](llamaperf_engine::Engine) trait as the project's own, so the same timers, greedy
//! sampling, counters and run records measure it; and its tokenizer for text prompts.
//!
//! ggml's CPU backend is built in every x86 variant and the best one for this CPU is chosen
//! at run time ([`cpu_variant`]), AMX variants only where AMX really runs ([`amx`]).

pub mod amx;
pub mod backend;
pub mod cpu_variant;
pub mod engine;
pub mod log;
pub mod quants;
pub mod settings;
pub mod vocab;

pub use engine::LlamaCppEngine;
pub use settings::{FlashAttn, LlamaCppRecord, LlamaCppSettings};
pub use vocab::LlamaCppVocab;

/// What can go wrong in llama.cpp.
#[derive(Debug, thiserror::Error)]
pub enum LlamaCppError {
    /// The backend could not be started.
    #[error("llama.cpp backend: {0}")]
    Backend(String),
    /// The model file could not be loaded.
    #[error("llama.cpp cannot load {path}: {reason}")]
    Load {
        /// The GGUF file.
        path: String,
        /// llama.cpp's log of the failure.
        reason: String,
    },
    /// The context (KV cache, compute buffers) could not be created with these settings.
    #[error("llama.cpp cannot create a context ({settings}): {reason}")]
    Context {
        /// The settings, as `key=value` pairs.
        settings: String,
        /// llama.cpp's log of the failure.
        reason: String,
    },
    /// A forward pass failed.
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
}

impl From<LlamaCppError> for llamaperf_engine::EngineError {
    fn from(err: LlamaCppError) -> Self {
        llamaperf_engine::EngineError::External(err.to_string())
    }
}
