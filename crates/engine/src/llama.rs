//! The tuned engine: the project's own Llama forward pass, on f32 rows in buffers sized once.
//!
//! Batches of B sequences of equal length go through prefill and decode together; the KV cache
//! is preallocated for the run; attention is fused over the cache; only the last position of
//! each sequence is projected to the vocabulary. After the first (largest) forward pass, a pass
//! allocates no activation buffer: only its input ids, its logits tensor and small bookkeeping
//! (the list of matrices of each product, the team's enlistment).

use super::attention::causal_attention;
use super::kernels::ActivationScratch;
use super::kv_cache::KvCache;
use super::kv_format::KvFormat;
use super::linear::Linear;
use super::pointwise::{add, rms_norm, silu_mul};
use super::rope::Rope;
use super::team::Team;
use super::weights::LlamaWeights;
use super::{Engine, EngineError};
use crate::model::{LlamaConfig, ModelFile};
use candle_core::{Device, Tensor};

/// A loaded model with its KV cache for `batch` sequences, stored in the format `T`.
pub struct TunedLlama<T: KvFormat> {
    config: LlamaConfig,
    weights: LlamaWeights,
    rope: Rope,
    cache: KvCache<T>,
    batch: usize,
    work: Workspace,
}

/// The activations of one forward pass, `tokens` rows each; buffers only grow, so passes after
/// the largest one reuse them.
#[derive(Debug, Default)]
struct Workspace {
    /// The residual stream, `[tokens, hidden]`.
    x: Vec<f32>,
    /// The normalized residual, `[tokens, hidden]`.
    normed: Vec<f32>,
    /// Queries, keys and values, `[tokens, heads or kv_heads, head_dim]`.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Attention output, `[tokens, heads * head_dim]`.
    attended: Vec<f32>,
    /// Output of the attention or feed-forward block, `[tokens, hidden]`.
    block: Vec<f32>,
    /// SwiGLU gate (then its product with up) and up, `[tokens, ffn]`.
    gate: Vec<f32>,
    up: Vec<f32>,
    /// The last position of each sequence, raw and normalized, `[batch, hidden]`.
    last: Vec<f32>,
    last_normed: Vec<f32>,
    /// `[batch, vocab]`.
    logits: Vec<f32>,
    /// The quantized forms of the current projection input.
    quantized: ActivationScratch,
}

impl Workspace {
    /// Sizes every buffer for `tokens` rows of `batch` sequences.
    fn size(&mut self, c: &LlamaConfig, batch: usize, tokens: usize) {
        let kv = c.kv_heads * c.head_dim();
        self.x.resize(tokens * c.hidden, 0.0);
        self.normed.resize(tokens * c.hidden, 0.0);
        self.q.resize(tokens * c.heads * c.head_dim(), 0.0);
        self.k.resize(tokens * kv, 0.0);
        self.v.resize(tokens * kv, 0.0);
        self.attended.resize(tokens * c.heads * c.head_dim(), 0.0);
        self.block.resize(tokens * c.hidden, 0.0);
        self.gate.resize(tokens * c.ffn, 0.0);
        self.up.resize(tokens * c.ffn, 0.0);
        self.last.resize(batch * c.hidden, 0.0);
        self.last_normed.resize(batch * c.hidden, 0.0);
        self.logits.resize(batch * c.vocab, 0.0);
    }
}

impl<T: KvFormat> TunedLlama<T> {
    /// Reads `model`'s weights and allocates the cache for `batch` x `context` positions.
    pub fn load(model: &ModelFile, batch: usize, context: usize) -> Result<Self, EngineError> {
        let config = model.summary.config.clone();
        let weights = LlamaWeights::read(model)?;
        let head_dim = config.head_dim();
        let rope = Rope::new(
            head_dim,
            config.rope_base,
            weights.rope_factors.as_deref(),
            context,
        );
        let cache = KvCache::new(config.layers, batch, config.kv_heads, context, head_dim)?;
        Ok(TunedLlama {
            config,
            weights,
            rope,
            cache,
            batch,
            work: Workspace::default(),
        })
    }

    /// Transformer block `index` on the `batch * seq` rows of the residual stream.
    fn block(&mut self, index: usize, seq: usize, pos: usize) -> Result<(), EngineError> {
        let c = &self.config;
        let layer = &self.weights.layers[index];
        let w = &mut self.work;
        let tokens = w.x.len() / c.hidden;
        rms_norm(&w.x, &layer.attn_norm, c.rms_eps, &mut w.normed);
        Linear::products(
            &[&layer.wq, &layer.wk, &layer.wv],
            &w.normed,
            tokens,
            &mut w.quantized,
            &mut [&mut w.q, &mut w.k, &mut w.v],
        )?;
        self.rope.apply(&mut w.q, c.heads, seq, pos)?;
        self.rope.apply(&mut w.k, c.kv_heads, seq, pos)?;
        self.cache.store(index, &w.k, &w.v, seq, pos)?;
        causal_attention(
            &w.q,
            self.cache.layer(index),
            c.heads,
            seq,
            pos,
            &mut w.attended,
        );
        Linear::products(
            &[&layer.wo],
            &w.attended,
            tokens,
            &mut w.quantized,
            &mut [&mut w.block],
        )?;
        add(&mut w.x, &w.block);
        rms_norm(&w.x, &layer.ffn_norm, c.rms_eps, &mut w.normed);
        Linear::products(
            &[&layer.gate, &layer.up],
            &w.normed,
            tokens,
            &mut w.quantized,
            &mut [&mut w.gate, &mut w.up],
        )?;
        silu_mul(&mut w.gate, &w.up);
        Linear::products(
            &[&layer.down],
            &w.gate,
            tokens,
            &mut w.quantized,
            &mut [&mut w.block],
        )?;
        add(&mut w.x, &w.block);
        Ok(())
    }
}

impl<T: KvFormat> Engine for TunedLlama<T> {
    fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        // the pool's threads stay awake for the pass's parallel steps
        Team::scope(|| self.forward_pass(tokens, pos))
    }

    fn reset(&mut self) {
        // Positions are overwritten from 0 by the next prefill, and attention reads only the
        // positions up to the current one, so nothing needs clearing.
    }
}

impl<T: KvFormat> TunedLlama<T> {
    /// [`Engine::forward`] on the calling thread's team.
    fn forward_pass(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        let (batch, seq) = tokens.dims2()?;
        if batch != self.batch {
            return Err(EngineError::Unsupported(format!(
                "engine loaded for batch {}, got {batch} sequences",
                self.batch
            )));
        }
        let ids = tokens.flatten_all()?.to_vec1::<u32>()?;
        self.work.size(&self.config, batch, batch * seq);
        self.weights.embedding.embed(&ids, &mut self.work.x)?;
        for index in 0..self.weights.layers.len() {
            self.block(index, seq, pos)?;
        }
        let (hidden, w) = (self.config.hidden, &mut self.work);
        for (b, last) in w.last.chunks_exact_mut(hidden).enumerate() {
            let row = (b * seq + seq - 1) * hidden;
            last.copy_from_slice(&w.x[row..row + hidden]);
        }
        rms_norm(
            &w.last,
            &self.weights.output_norm,
            self.config.rms_eps,
            &mut w.last_normed,
        );
        Linear::products(
            &[&self.weights.output],
            &w.last_normed,
            batch,
            &mut w.quantized,
            &mut [&mut w.logits],
        )?;
        Ok(Tensor::from_slice(
            &w.logits,
            (batch, self.config.vocab),
            &Device::Cpu,
        )?)
    }
}
