//! The tuned engine: the project's own Llama forward pass on candle-core.
//!
//! Batches of B sequences of equal length go through prefill and decode together; the KV cache
//! is preallocated for the run; grouped-query attention never copies keys or values per head;
//! only the last position of each sequence is projected to the vocabulary.

use super::attention::{causal_mask, grouped_attention};
use super::kv_cache::KvCache;
use super::linear::Linear;
use super::rope::Rope;
use super::weights::{LayerWeights, LlamaWeights};
use super::{Engine, EngineError};
use crate::model::{LlamaConfig, ModelFile};
use candle_core::Tensor;

/// A loaded model with its KV cache for `batch` sequences.
pub struct TunedLlama {
    config: LlamaConfig,
    weights: LlamaWeights,
    rope: Rope,
    cache: KvCache,
    batch: usize,
}

impl TunedLlama {
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
        )?;
        let cache = KvCache::new(config.layers, batch, config.kv_heads, context, head_dim)?;
        Ok(TunedLlama {
            config,
            weights,
            rope,
            cache,
            batch,
        })
    }

    fn rms_norm(&self, x: &Tensor, scale: &Tensor) -> Result<Tensor, EngineError> {
        Ok(candle_nn::ops::rms_norm(x, scale, self.config.rms_eps)?)
    }

    fn attention(
        &mut self,
        index: usize,
        x: &Tensor,
        pos: usize,
        mask: Option<&Tensor>,
    ) -> Result<Tensor, EngineError> {
        let layer: &LayerWeights = &self.weights.layers[index];
        let (b, seq, _) = x.dims3()?;
        let (heads, kv_heads, d) = (
            self.config.heads,
            self.config.kv_heads,
            self.config.head_dim(),
        );
        let split = |t: Tensor, n: usize| -> Result<Tensor, candle_core::Error> {
            t.reshape((b, seq, n, d))?.transpose(1, 2)?.contiguous()
        };
        let [q, k, v]: [Tensor; 3] = Linear::forward_shared(&[&layer.wq, &layer.wk, &layer.wv], x)?
            .try_into()
            .expect("three projections");
        let q = split(q, heads)?;
        let k = split(k, kv_heads)?;
        let v = split(v, kv_heads)?;
        let q = self.rope.apply(&q, pos)?;
        let k = self.rope.apply(&k, pos)?;
        let (k_all, v_all) = self.cache.append(index, &k, &v, pos)?;
        let y = grouped_attention(&q, &k_all, &v_all, mask)?;
        self.weights.layers[index].wo.forward(&y)
    }

    fn feed_forward(&self, layer: &LayerWeights, x: &Tensor) -> Result<Tensor, EngineError> {
        let [gate, up]: [Tensor; 2] = Linear::forward_shared(&[&layer.gate, &layer.up], x)?
            .try_into()
            .expect("two projections");
        layer.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)
    }
}

impl Engine for TunedLlama {
    fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        let (batch, seq) = tokens.dims2()?;
        if batch != self.batch {
            return Err(EngineError::Unsupported(format!(
                "engine loaded for batch {}, got {batch} sequences",
                self.batch
            )));
        }
        let rep = self.config.heads / self.config.kv_heads;
        let mask = if seq > 1 {
            Some(causal_mask(seq, pos, rep)?)
        } else {
            None
        };
        let mut x = self.weights.embedding.rows(tokens)?;
        for index in 0..self.weights.layers.len() {
            let h = self.rms_norm(&x, &self.weights.layers[index].attn_norm)?;
            x = (x + self.attention(index, &h, pos, mask.as_ref())?)?;
            let layer = &self.weights.layers[index];
            let h = self.rms_norm(&x, &layer.ffn_norm)?;
            x = (&x + self.feed_forward(layer, &h)?)?;
        }
        let last = x.narrow(1, seq - 1, 1)?.squeeze(1)?.contiguous()?;
        let last = self.rms_norm(&last, &self.weights.output_norm)?;
        self.weights.output.forward(&last)
    }

    fn reset(&mut self) {
        // Positions are overwritten from 0 by the next prefill; the views handed out cover
        // only written positions, so nothing needs clearing.
    }
}
