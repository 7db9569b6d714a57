//! A KV cache preallocated for the whole run: keys and values are written in place, never
//! concatenated, so a decode step allocates nothing for the cache.

use super::EngineError;
use candle_core::{DType, Device, Tensor};

/// Keys and values of every layer, `[batch, kv_heads, capacity, head_dim]` f32 each.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    capacity: usize,
}

impl KvCache {
    /// Allocates the cache for `capacity` positions.
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
    ) -> Result<Self, EngineError> {
        let shape = (batch, kv_heads, capacity, head_dim);
        let layers = (0..layers)
            .map(|_| {
                Ok((
                    Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                    Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                ))
            })
            .collect::<Result<_, candle_core::Error>>()?;
        Ok(KvCache { layers, capacity })
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes `k` and `v` (`[batch, kv_heads, seq, head_dim]`, contiguous) of `layer` at
    /// positions `pos..pos+seq` and returns views of positions `0..pos+seq`.
    pub fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
        pos: usize,
    ) -> Result<(Tensor, Tensor), EngineError> {
        let seq = k.dim(2)?;
        if pos + seq > self.capacity {
            return Err(EngineError::Unsupported(format!(
                "KV cache holds {} positions, asked to write up to {}",
                self.capacity,
                pos + seq
            )));
        }
        let (kc, vc) = &self.layers[layer];
        kc.slice_set(k, 2, pos)?;
        vc.slice_set(v, 2, pos)?;
        Ok((kc.narrow(2, 0, pos + seq)?, vc.narrow(2, 0, pos + seq)?))
    }
}
