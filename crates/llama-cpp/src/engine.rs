//! llama.cpp's forward pass behind the [`Engine`] trait: a batch is B sequences (ids
//! `0..B`) in one `llama_decode`, logits taken only at each sequence's last position.

use crate::backend::{self, Backend};
use crate::settings::{LlamaCppRecord, LlamaCppSettings};
use crate::{log, LlamaCppError};
use candle_core::{Device, Tensor};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llamaperf_engine::model::KvDtype;
use llamaperf_engine::{Engine, EngineError};
use std::num::NonZeroU32;
use std::path::Path;

/// A model loaded into llama.cpp with a context for `batch` sequences.
pub struct LlamaCppEngine {
    context: LlamaContext<'static>,
    tokens: LlamaBatch<'static>,
    vocab: usize,
    record: LlamaCppRecord,
}

// SAFETY: the context is only used through `&mut self`, one thread at a time; llama.cpp's
// contexts are not tied to the thread that created them.
unsafe impl Send for LlamaCppEngine {}

fn kv_type(kv: KvDtype) -> KvCacheType {
    match kv {
        KvDtype::F32 => KvCacheType::F32,
        KvDtype::F16 => KvCacheType::F16,
        KvDtype::Bf16 => KvCacheType::BF16,
        KvDtype::Q8_0 => KvCacheType::Q8_0,
    }
}

fn to_u32(n: usize, what: &str) -> Result<u32, LlamaCppError> {
    u32::try_from(n).map_err(|_| LlamaCppError::Backend(format!("{what} {n} is too large")))
}

impl LlamaCppEngine {
    /// Loads the GGUF file at `path` (read into memory, not mapped, so the weights land where
    /// the calling thread's memory policy says) for `batch` sequences of up to `context`
    /// tokens each, with `settings`. The model lives as long as the process: a worker loads
    /// one.
    pub fn load(
        path: &Path,
        settings: &LlamaCppSettings,
        batch: usize,
        context: usize,
    ) -> Result<Self, LlamaCppError> {
        let Backend {
            llama,
            variant,
            amx,
        } = backend::backend(settings.amx_refused.as_deref())?;
        let params = LlamaModelParams::default().with_use_mmap(false);
        let model =
            LlamaModel::load_from_file(llama, path, &params).map_err(|e| LlamaCppError::Load {
                path: path.display().to_string(),
                reason: format!("{e}; {}", log::take()),
            })?;
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let tokens = batch * context;
        let threads = i32::try_from(settings.threads)
            .map_err(|_| LlamaCppError::Backend("too many threads".into()))?;
        let mut record = LlamaCppRecord {
            cpu_variant: variant.name.clone(),
            features: backend::features(),
            amx: amx.clone(),
            flash_attn: settings.flash_attn,
            n_batch: tokens,
            n_ubatch: settings.ubatch.min(tokens),
            threads: settings.threads,
        };
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(to_u32(tokens, "context")?))
            .with_n_batch(to_u32(tokens, "n_batch")?)
            .with_n_ubatch(to_u32(record.n_ubatch, "ubatch")?)
            .with_n_seq_max(to_u32(batch, "batch")?)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(settings.flash_attn.raw())
            .with_type_k(kv_type(settings.kv_dtype))
            .with_type_v(kv_type(settings.kv_dtype));
        let context = model
            .new_context(llama, params)
            .map_err(|e| LlamaCppError::Context {
                settings: format!(
                    "flash_attn={} kv_dtype={} ubatch={}",
                    settings.flash_attn, settings.kv_dtype, record.n_ubatch
                ),
                reason: format!("{e}; {}", log::take()),
            })?;
        // what the context made of the batch sizes
        record.n_batch = context.n_batch() as usize;
        record.n_ubatch = context.n_ubatch() as usize;
        Ok(LlamaCppEngine {
            context,
            tokens: LlamaBatch::new(tokens, 1),
            vocab: usize::try_from(model.n_vocab()).unwrap_or(0),
            record,
        })
    }

    /// How llama.cpp runs: variant, features and settings.
    pub fn record(&self) -> &LlamaCppRecord {
        &self.record
    }
}

fn decode_error(e: impl std::fmt::Display) -> EngineError {
    LlamaCppError::Decode(format!("{e}; {}", log::take())).into()
}

impl Engine for LlamaCppEngine {
    fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        let rows: Vec<Vec<u32>> = tokens.to_vec2()?;
        let seq_len = rows.first().map_or(0, Vec::len);
        self.tokens.clear();
        for (seq, row) in rows.iter().enumerate() {
            for (i, &id) in row.iter().enumerate() {
                let id = i32::try_from(id).map_err(decode_error)?;
                let at = i32::try_from(pos + i).map_err(decode_error)?;
                let seq = i32::try_from(seq).map_err(decode_error)?;
                self.tokens
                    .add(LlamaToken(id), at, &[seq], i + 1 == seq_len)
                    .map_err(decode_error)?;
            }
        }
        self.context
            .decode(&mut self.tokens)
            .map_err(decode_error)?;
        let mut logits = Vec::with_capacity(rows.len() * self.vocab);
        for seq in 0..rows.len() {
            let last = i32::try_from((seq + 1) * seq_len - 1).map_err(decode_error)?;
            logits.extend_from_slice(self.context.get_logits_ith(last));
        }
        Ok(Tensor::from_vec(
            logits,
            (rows.len(), self.vocab),
            &Device::Cpu,
        )?)
    }

    fn reset(&mut self) {
        self.context.clear_kv_cache();
    }
}
