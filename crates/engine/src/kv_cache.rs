//! A KV cache preallocated for the whole run: keys and values are written in place, never
//! concatenated, so a decode step allocates nothing for the cache.
//!
//! Keys are stored in panels of [`PANEL`] positions, transposed (`[head_dim][PANEL]`), so one
//! query's scores against a panel are `head_dim` vector multiply-adds with no horizontal sums;
//! values are stored by position (`[position][head_dim]`), so a probability-weighted sum of
//! them is vector multiply-adds too. Values are stored in a [`KvFormat`] (f32, f16, bf16, or
//! q8_0 with one scale per block of a row, kept beside them: keys' as panels
//! `[blocks][PANEL]`, values' as `[blocks][capacity]`) and widened to f32 by attention.

pub use super::kv_format::PANEL;

use super::kv_format::{scales_from, Head, KvFormat};
use super::EngineError;
use half::f16;

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
    /// Scales per row of `head_dim` values (0 for a format without scales).
    pub row_scales: usize,
}

impl CacheShape {
    /// Values of one head's keys (or values) of one sequence.
    fn head_len(&self) -> usize {
        self.capacity * self.head_dim
    }

    /// Scales of one head's keys (or values) of one sequence.
    fn head_scales(&self) -> usize {
        self.capacity * self.row_scales
    }

    /// Head `g` of sequence `b`, counted over the layer.
    fn head_index(&self, b: usize, g: usize) -> usize {
        b * self.kv_heads + g
    }
}

/// One layer's stored keys and values with their scales.
#[derive(Debug)]
struct LayerStore<S> {
    keys: Vec<S>,
    key_scales: Vec<f16>,
    values: Vec<S>,
    value_scales: Vec<f16>,
}

/// One layer's keys and values, read-only: what attention reads.
#[derive(Debug, Clone, Copy)]
pub struct LayerCache<'a, F: KvFormat> {
    /// The cache's sizes.
    pub shape: CacheShape,
    store: &'a LayerStore<F::Stored>,
}

impl<'a, F: KvFormat> LayerCache<'a, F> {
    /// Key panels of sequence `b`, head `g`: panel `p` holds positions `p*PANEL..` as
    /// `[head_dim][PANEL]`, its scales as `[row_scales][PANEL]`.
    pub fn keys(&self, b: usize, g: usize) -> Head<'a, F::Stored> {
        self.head(&self.store.keys, &self.store.key_scales, b, g)
    }

    /// Values of sequence `b`, head `g`, `[capacity][head_dim]`, their scales
    /// `[row_scales][capacity]`.
    pub fn values(&self, b: usize, g: usize) -> Head<'a, F::Stored> {
        self.head(&self.store.values, &self.store.value_scales, b, g)
    }

    fn head(
        &self,
        stored: &'a [F::Stored],
        scales: &'a [f16],
        b: usize,
        g: usize,
    ) -> Head<'a, F::Stored> {
        let (s, at) = (self.shape, self.shape.head_index(b, g));
        Head {
            stored: &stored[at * s.head_len()..][..s.head_len()],
            scales: &scales[at * s.head_scales()..][..s.head_scales()],
        }
    }
}

/// Keys and values of every layer, stored in the format `F`.
#[derive(Debug)]
pub struct KvCache<F: KvFormat> {
    shape: CacheShape,
    layers: Vec<LayerStore<F::Stored>>,
}

impl<F: KvFormat> KvCache<F> {
    /// Allocates the cache of `layers` layers for at least `positions` positions; refuses a
    /// `head_dim` that is not whole blocks of the format or exceeds its
    /// [`KvFormat::MOST_HEAD_DIM`].
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        positions: usize,
        head_dim: usize,
    ) -> Result<Self, EngineError> {
        if head_dim > F::MOST_HEAD_DIM {
            return Err(EngineError::Unsupported(format!(
                "a {} KV cache takes heads of at most {} values, but this model's have \
                 {head_dim}; use kv_dtype f16, f32 or bf16",
                F::DTYPE,
                F::MOST_HEAD_DIM
            )));
        }
        let row_scales = match F::BLOCK {
            Some(block) if !head_dim.is_multiple_of(block) => {
                return Err(EngineError::Unsupported(format!(
                    "a {} KV cache stores blocks of {block} values, but this model's heads have \
                     {head_dim} (head_dim must be a multiple of {block}); use kv_dtype f16, \
                     f32 or bf16",
                    F::DTYPE
                )))
            }
            Some(block) => head_dim / block,
            None => 0,
        };
        let shape = CacheShape {
            batch,
            kv_heads,
            head_dim,
            capacity: positions.div_ceil(PANEL) * PANEL,
            row_scales,
        };
        let heads = batch * kv_heads;
        let layers = (0..layers)
            .map(|_| LayerStore {
                keys: vec![F::Stored::default(); heads * shape.head_len()],
                key_scales: vec![f16::ZERO; heads * shape.head_scales()],
                values: vec![F::Stored::default(); heads * shape.head_len()],
                value_scales: vec![f16::ZERO; heads * shape.head_scales()],
            })
            .collect();
        Ok(KvCache { shape, layers })
    }

    /// The cache's sizes.
    pub fn shape(&self) -> CacheShape {
        self.shape
    }

    /// Writes the keys and values of `seq` new positions `pos..pos+seq` of every sequence into
    /// `layer`, stored as `F`: `k` and `v` are `[batch, seq, kv_heads, head_dim]` f32.
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
        let store = &mut self.layers[layer];
        for b in 0..s.batch {
            for i in 0..seq {
                let p = pos + i;
                for g in 0..s.kv_heads {
                    let row = ((b * seq + i) * s.kv_heads + g) * d;
                    let head = s.head_index(b, g);
                    let (values, scales) = (head * s.head_len(), head * s.head_scales());
                    let (panel, lane) = (p / PANEL, p % PANEL);
                    let panel_scales = s.row_scales * PANEL;
                    F::store_key(
                        &k[row..row + d],
                        &mut store.keys[values + panel * d * PANEL..][..d * PANEL],
                        lane,
                        &mut store.key_scales[scales + panel * panel_scales..][..panel_scales],
                    );
                    F::store(
                        &v[row..row + d],
                        &mut store.values[values + p * d..],
                        1,
                        scales_from(&mut store.value_scales, scales + p),
                        s.capacity,
                    );
                }
            }
        }
        Ok(())
    }

    /// Layer `layer`, for reading.
    pub fn layer(&self, layer: usize) -> LayerCache<'_, F> {
        LayerCache {
            shape: self.shape,
            store: &self.layers[layer],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kv_q8::Q8_0;
    use super::*;

    #[test]
    fn stored_keys_land_transposed_in_their_panel_and_values_by_position() {
        let (batch, kv_heads, d) = (2, 3, 4);
        let mut cache = KvCache::<f32>::new(1, batch, kv_heads, 20, d).unwrap();
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
                        let key = layer.keys(b, g).stored
                            [(p / PANEL) * d * PANEL + j * PANEL + p % PANEL];
                        assert_eq!(key, k[row + j]);
                        assert_eq!(layer.values(b, g).stored[p * d + j], v[row + j]);
                    }
                }
            }
        }
        assert!(cache.store(0, &k, &v, seq, 2 * PANEL - 1).is_err());
    }

    #[test]
    fn q8_0_scales_land_beside_their_blocks_and_other_head_sizes_are_refused() {
        let (batch, kv_heads, d) = (2, 2, 64);
        let mut cache = KvCache::<Q8_0>::new(1, batch, kv_heads, 40, d).unwrap();
        let shape = cache.shape();
        assert_eq!((shape.capacity, shape.row_scales), (3 * PANEL, 2));
        let (seq, pos) = (3, PANEL - 1);
        let n = batch * seq * kv_heads * d;
        // every block's largest value is its first: 1 + the block's index over the call
        let k: Vec<f32> = (0..n)
            .map(|i| {
                if i % 32 == 0 {
                    (i / 32 + 1) as f32
                } else {
                    0.5
                }
            })
            .collect();
        let v: Vec<f32> = k.iter().map(|x| -x).collect();
        cache.store(0, &k, &v, seq, pos).unwrap();
        let layer = cache.layer(0);
        for b in 0..batch {
            for i in 0..seq {
                for g in 0..kv_heads {
                    let p = pos + i;
                    let row = ((b * seq + i) * kv_heads + g) * d;
                    let (keys, values) = (layer.keys(b, g), layer.values(b, g));
                    for block in 0..2 {
                        let scale = half::f16::from_f32(k[row + 32 * block] / 127.0);
                        let at = (p / PANEL) * 2 * PANEL + block * PANEL + p % PANEL;
                        assert_eq!(keys.scales[at], scale);
                        assert_eq!(values.scales[block * shape.capacity + p], scale);
                        let first = (p / PANEL) * d * PANEL + 32 * block * PANEL + 4 * (p % PANEL);
                        assert_eq!(keys.stored[first], 127);
                        assert_eq!(values.stored[p * d + 32 * block], -127);
                    }
                }
            }
        }
        let err = KvCache::<Q8_0>::new(1, 1, 1, 16, 48)
            .unwrap_err()
            .to_string();
        assert!(err.contains("head_dim must be a multiple of 32"), "{err}");
        assert!(err.contains("48"), "{err}");
        let err = KvCache::<Q8_0>::new(1, 1, 1, 16, 288)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 256 values"), "{err}");
        assert!(err.contains("288"), "{err}");
    }
}
