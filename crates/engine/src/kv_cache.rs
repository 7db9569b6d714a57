//! A KV cache preallocated for the whole run: keys and values are written in place, never
//! concatenated, so a decode step allocates nothing for the cache.
//!
//! Keys are stored in panels of [`PANEL`] positions, transposed (`[head_dim][PANEL]`), so one
//! query's scores against a panel are `head_dim` vector multiply-adds with no horizontal sums;
//! values are stored by position (`[position][head_dim]`), so a probability-weighted sum of
//! them is vector multiply-adds too. Values are stored as a [`KvElement`] (f32, f16 or bf16)
//! and widened to f32 by attention.

use super::kv_element::KvElement;
use super::vector::LANES;
use super::EngineError;

/// Positions per key panel: one vector of scores.
pub const PANEL: usize = LANES;

/// The sizes of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheShape {
    /// Sequences.
    pub batch: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Positions each sequence can hold (a multiple of [`PANEL`]).
    pub capacity: usize,
}

impl CacheShape {
    /// Values of one head's keys (or values) of one sequence.
    fn head_len(&self) -> usize {
        self.capacity * self.head_dim
    }

    /// Start of sequence `b`'s head `g` in a layer's keys or values.
    fn head_start(&self, b: usize, g: usize) -> usize {
        (b * self.kv_heads + g) * self.head_len()
    }
}

/// One layer's keys and values, read-only: what attention reads.
#[derive(Debug, Clone, Copy)]
pub struct LayerCache<'a, T> {
    /// The cache's sizes.
    pub shape: CacheShape,
    keys: &'a [T],
    values: &'a [T],
}

impl<'a, T> LayerCache<'a, T> {
    /// Key panels of sequence `b`, head `g`: panel `p` holds positions `p*PANEL..` as
    /// `[head_dim][PANEL]`.
    pub fn keys(&self, b: usize, g: usize) -> &'a [T] {
        let start = self.shape.head_start(b, g);
        &self.keys[start..start + self.shape.head_len()]
    }

    /// Values of sequence `b`, head `g`, `[capacity][head_dim]`.
    pub fn values(&self, b: usize, g: usize) -> &'a [T] {
        let start = self.shape.head_start(b, g);
        &self.values[start..start + self.shape.head_len()]
    }
}

/// Keys and values of every layer, stored as `T`.
#[derive(Debug)]
pub struct KvCache<T> {
    shape: CacheShape,
    layers: Vec<(Vec<T>, Vec<T>)>,
}

impl<T: KvElement> KvCache<T> {
    /// Allocates the cache of `layers` layers for at least `positions` positions.
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        positions: usize,
        head_dim: usize,
    ) -> Self {
        let shape = CacheShape {
            batch,
            kv_heads,
            head_dim,
            capacity: positions.div_ceil(PANEL) * PANEL,
        };
        let len = batch * kv_heads * shape.head_len();
        let layers = (0..layers)
            .map(|_| (vec![T::default(); len], vec![T::default(); len]))
            .collect();
        KvCache { shape, layers }
    }

    /// The cache's sizes.
    pub fn shape(&self) -> CacheShape {
        self.shape
    }

    /// Writes the keys and values of `seq` new positions `pos..pos+seq` of every sequence into
    /// `layer`, rounded to `T`: `k` and `v` are `[batch, seq, kv_heads, head_dim]` f32.
    pub fn store(
        &mut self,
        layer: usize,
        k: &[f32],
        v: &[f32],
        seq: usize,
        pos: usize,
    ) -> Result<(), EngineError> {
        let s = self.shape;
        if pos + seq > s.capacity {
            return Err(EngineError::Unsupported(format!(
                "KV cache holds {} positions, asked to write up to {}",
                s.capacity,
                pos + seq
            )));
        }
        let d = s.head_dim;
        assert_eq!(
            k.len(),
            s.batch * seq * s.kv_heads * d,
            "keys are not whole rows"
        );
        assert_eq!(v.len(), k.len(), "values are not whole rows");
        let (keys, values) = &mut self.layers[layer];
        for b in 0..s.batch {
            for i in 0..seq {
                let p = pos + i;
                for g in 0..s.kv_heads {
                    let row = ((b * seq + i) * s.kv_heads + g) * d;
                    let head = s.head_start(b, g);
                    let panel = head + (p / PANEL) * d * PANEL + p % PANEL;
                    for (j, key) in k[row..row + d].iter().enumerate() {
                        keys[panel + j * PANEL] = T::narrow(*key);
                    }
                    let at = head + p * d;
                    for (stored, value) in values[at..at + d].iter_mut().zip(&v[row..row + d]) {
                        *stored = T::narrow(*value);
                    }
                }
            }
        }
        Ok(())
    }

    /// Layer `layer`, for reading.
    pub fn layer(&self, layer: usize) -> LayerCache<'_, T> {
        let (keys, values) = &self.layers[layer];
        LayerCache {
            shape: self.shape,
            keys,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_land_transposed_in_their_panel_and_values_by_position() {
        let (batch, kv_heads, d) = (2, 3, 4);
        let mut cache = KvCache::<f32>::new(1, batch, kv_heads, 20, d);
        assert_eq!(cache.shape().capacity, 2 * PANEL);
        let seq = 2;
        let pos = PANEL - 1;
        let n = batch * seq * kv_heads * d;
        let k: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let v: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
        cache.store(0, &k, &v, seq, pos).unwrap();
        let layer = cache.layer(0);
        for b in 0..batch {
            for i in 0..seq {
                for g in 0..kv_heads {
                    let p = pos + i;
                    let row = ((b * seq + i) * kv_heads + g) * d;
                    for j in 0..d {
                        let key = layer.keys(b, g)[(p / PANEL) * d * PANEL + j * PANEL + p % PANEL];
                        assert_eq!(key, k[row + j]);
                        assert_eq!(layer.values(b, g)[p * d + j], v[row + j]);
                    }
                }
            }
        }
        assert!(cache.store(0, &k, &v, seq, 2 * PANEL - 1).is_err());
    }
}
