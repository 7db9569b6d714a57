//! The engines of llamaperf, usable without its CLI: the project's own Llama forward pass
//! (`tuned`: kernels per instruction-set level, a thread team, a preallocated KV cache) and
//! candle-transformers' `quantized_llama` (`reference`, the oracle), behind one [`Engine`]
//! trait, and the GGUF model files both read ([`model`]).
//!
//! With `llamaperf-os`, this crate holds all of the project's unsafe code: SIMD kernels behind
//! runtime ISA checks, each `unsafe` block with the reason it is sound.

pub mod attention;
pub mod candle_error;
pub mod kernels;
pub mod kv_cache;
pub mod kv_element;
pub mod kv_format;
pub mod kv_q8;
pub mod linear;
pub mod llama;
pub mod model;
pub mod peak;
pub mod pointwise;
pub mod read;
pub mod reference;
pub mod rope;
pub mod sampling;
pub mod team;
pub mod vector;
pub mod weights;

use crate::model::{KvDtype, ModelFile, ModelFileError};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which implementation of the forward pass a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The project's own forward pass: batch >= 1, preallocated KV cache.
    Tuned,
    /// candle-transformers' `quantized_llama`: batch 1 only.
    Reference,
    /// llama.cpp through its C API (crate `llamaperf-llama-cpp`): batch >= 1 as sequences of
    /// one batch.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// An OpenAI-compatible HTTP server, measured as its clients see it (not in process: the
    /// worker launches or reaches the server and streams completions from it).
    #[serde(rename = "openai")]
    OpenAi,
    /// A Hugging Face model on PyTorch (eager, compile, IPEX or zentorch) in a Python process
    /// the worker starts and drives forward by forward: batch >= 1.
    Torch,
}

impl EngineKind {
    /// Every engine, for error messages.
    pub const ALL: [EngineKind; 5] = [
        EngineKind::Tuned,
        EngineKind::Reference,
        EngineKind::LlamaCpp,
        EngineKind::OpenAi,
        EngineKind::Torch,
    ];

    /// Lower-case name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Tuned => "tuned",
            EngineKind::Reference => "reference",
            EngineKind::LlamaCpp => "llama.cpp",
            EngineKind::OpenAi => "openai",
            EngineKind::Torch => "torch",
        }
    }

    /// Every engine's name, for error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|e| e.name()).collect()
    }

    /// KV cache types the engine keeps; the first is its default (a server's own type is
    /// unknown: `openai` assumes llama-server's f16 for memory estimates and takes none;
    /// `torch` keeps its cache in the data type it runs in, `torch_dtype`).
    pub fn kv_dtypes(self) -> &'static [KvDtype] {
        match self {
            EngineKind::Tuned => &[KvDtype::F16, KvDtype::F32, KvDtype::Bf16, KvDtype::Q8_0],
            EngineKind::Reference => &[KvDtype::F32],
            EngineKind::LlamaCpp => &[KvDtype::F16, KvDtype::F32, KvDtype::Bf16, KvDtype::Q8_0],
            EngineKind::OpenAi => &[KvDtype::F16],
            EngineKind::Torch => &[KvDtype::Bf16, KvDtype::F32],
        }
    }

    /// Largest batch the engine supports.
    pub fn max_batch(self) -> usize {
        match self {
            EngineKind::Tuned | EngineKind::LlamaCpp | EngineKind::Torch => usize::MAX,
            EngineKind::Reference | EngineKind::OpenAi => 1,
        }
    }

    /// Longest prompt + generation the engine supports, given the model's context, in tokens.
    pub fn max_context(self, model_context: usize) -> usize {
        match self {
            EngineKind::Tuned | EngineKind::LlamaCpp | EngineKind::OpenAi | EngineKind::Torch => {
                model_context
            }
            EngineKind::Reference => {
                model_context.min(candle_transformers::models::quantized_llama::MAX_SEQ_LEN)
            }
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an engine name that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown engine '{given}'; valid engines: {}", EngineKind::names().join(", "), given = .0)]
pub struct UnknownEngine(pub String);

impl FromStr for EngineKind {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| UnknownEngine(s.to_string()))
    }
}

/// What can go wrong while loading or running an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be used.
    #[error(transparent)]
    Model(#[from] ModelFileError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {}", candle_error::cause(.0))]
    Candle(candle_core::Error),
    /// The engine cannot do what was asked (e.g. batch > 1 on the reference engine).
    #[error("{0}")]
    Unsupported(String),
    /// An engine outside this crate (llama.cpp) failed; the message says how.
    #[error("{0}")]
    External(String),
}

/// Holds candle's error as the message's cause only, not as a source, which a chain of
/// causes would print again with its backtrace.
impl From<candle_core::Error> for EngineError {
    fn from(err: candle_core::Error) -> Self {
        EngineError::Candle(err)
    }
}

/// A Llama forward pass with its own KV cache.
pub trait Engine: Send {
    /// Runs `tokens` (`[batch, seq]` u32 ids at positions `pos..pos+seq`) through the model,
    /// appending their keys and values to the cache; returns the logits of the last position of
    /// every sequence, `[batch, vocab]` f32.
    fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError>;

    /// Runs `tokens` as [`Engine::forward`] does and answers each sequence's greedy next token
    /// ([`sampling::greedy`]): what a generation step needs. An engine in another process
    /// answers it without sending its logits across.
    fn forward_greedy(&mut self, tokens: &Tensor, pos: usize) -> Result<Vec<u32>, EngineError> {
        let logits = self.forward(tokens, pos)?;
        sampling::greedy(&logits)
    }

    /// Forgets every cached position, ready for a new sequence.
    fn reset(&mut self);
}

/// Loads `model` into the engine `kind` for `batch` sequences of up to `context` tokens, with a
/// KV cache of `kv` values (one of [`EngineKind::kv_dtypes`]).
pub fn load(
    kind: EngineKind,
    model: &ModelFile,
    batch: usize,
    context: usize,
    kv: KvDtype,
) -> Result<Box<dyn Engine>, EngineError> {
    if matches!(kind, EngineKind::Tuned | EngineKind::Reference) && !kind.kv_dtypes().contains(&kv)
    {
        let kept: Vec<&str> = kind.kv_dtypes().iter().map(|d| d.name()).collect();
        return Err(EngineError::Unsupported(format!(
            "engine '{kind}' keeps no {kv} KV cache; it keeps {}",
            kept.join(", ")
        )));
    }
    match (kind, kv) {
        (EngineKind::Tuned, KvDtype::F16) => Ok(Box::new(llama::TunedLlama::<half::f16>::load(
            model, batch, context,
        )?)),
        (EngineKind::Tuned, KvDtype::Bf16) => Ok(Box::new(llama::TunedLlama::<half::bf16>::load(
            model, batch, context,
        )?)),
        (EngineKind::Tuned, KvDtype::Q8_0) => Ok(Box::new(llama::TunedLlama::<kv_q8::Q8_0>::load(
            model, batch, context,
        )?)),
        (EngineKind::Tuned, KvDtype::F32) => Ok(Box::new(llama::TunedLlama::<f32>::load(
            model, batch, context,
        )?)),
        (EngineKind::Reference, _) => Ok(Box::new(reference::ReferenceLlama::load(model, batch)?)),
        (EngineKind::LlamaCpp, _) => Err(EngineError::Unsupported(
            "the llama.cpp engine is loaded by llamaperf_llama_cpp::LlamaCppEngine::load".into(),
        )),
        (EngineKind::OpenAi, _) => Err(EngineError::Unsupported(
            "engine 'openai' measures a server over HTTP, not a forward pass in process".into(),
        )),
        (EngineKind::Torch, _) => Err(EngineError::Unsupported(
            "engine 'torch' runs in a Python process the worker starts (llamaperf::torch)".into(),
        )),
    }
}
