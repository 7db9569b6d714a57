//! Rotary position embeddings (interleaved pairs, as GGUF Llama weights expect), with the
//! optional per-frequency divisors of Llama-3 scaling.

use super::EngineError;
use candle_core::{Device, Tensor};

/// Precomputed cosines and sines for positions `0..context`.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

/// Angular frequency of each dimension pair: `base^(-2i/dim) / factor[i]`.
pub fn frequencies(head_dim: usize, base: f32, factors: Option<&[f32]>) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let f = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
            f / factors.map_or(1.0, |s| s[i])
        })
        .collect()
}

impl Rope {
    /// Tables for `context` positions of heads of `head_dim` dimensions.
    pub fn new(
        head_dim: usize,
        base: f32,
        factors: Option<&[f32]>,
        context: usize,
    ) -> Result<Self, EngineError> {
        let freqs = frequencies(head_dim, base, factors);
        let angles: Vec<f32> = (0..context)
            .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
            .collect();
        let angles = Tensor::from_vec(angles, (context, head_dim / 2), &Device::Cpu)?;
        Ok(Rope {
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`, contiguous) for positions `pos..pos+seq`.
    pub fn apply(&self, x: &Tensor, pos: usize) -> Result<Tensor, EngineError> {
        let seq = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        Ok(candle_nn::rotary_emb::rope_i(x, &cos, &sin)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matches_the_formula_on_interleaved_pairs() {
        let head_dim = 8;
        let rope = Rope::new(head_dim, 10_000.0, Some(&[1.0, 2.0, 4.0, 8.0]), 16).unwrap();
        let x: Vec<f32> = (0..head_dim).map(|i| 0.5 + i as f32).collect();
        let t = Tensor::from_vec(x.clone(), (1, 1, 1, head_dim), &Device::Cpu).unwrap();
        let pos = 5;
        let y: Vec<f32> = rope
            .apply(&t, pos)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let freqs = frequencies(head_dim, 10_000.0, Some(&[1.0, 2.0, 4.0, 8.0]));
        for i in 0..head_dim / 2 {
            let a = pos as f32 * freqs[i];
            let (x0, x1) = (x[2 * i], x[2 * i + 1]);
            assert!((y[2 * i] - (x0 * a.cos() - x1 * a.sin())).abs() < 1e-5);
            assert!((y[2 * i + 1] - (x0 * a.sin() + x1 * a.cos())).abs() < 1e-5);
        }
    }
}
