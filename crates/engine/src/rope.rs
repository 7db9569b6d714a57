//! Rotary position embeddings (interleaved pairs, as GGUF Llama weights expect), with the
//! optional per-frequency divisors of Llama-3 scaling.

use super::EngineError;

/// Precomputed cosines and sines for positions `0..context`, `[context][head_dim / 2]`.
#[derive(Debug, Clone)]
pub struct Rope {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
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
    pub fn new(head_dim: usize, base: f32, factors: Option<&[f32]>, context: usize) -> Self {
        let freqs = frequencies(head_dim, base, factors);
        let angles: Vec<f32> = (0..context)
            .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
            .collect();
        Rope {
            half: head_dim / 2,
            cos: angles.iter().map(|a| a.cos()).collect(),
            sin: angles.iter().map(|a| a.sin()).collect(),
        }
    }

    /// Rotates, in place, every head of `x` (`[batch, seq, heads, head_dim]`): the rows of
    /// sequence position `i` are at position `pos + i`.
    pub fn apply(
        &self,
        x: &mut [f32],
        heads: usize,
        seq: usize,
        pos: usize,
    ) -> Result<(), EngineError> {
        let d = 2 * self.half;
        let context = self.cos.len() / self.half.max(1);
        if pos + seq > context {
            return Err(EngineError::Unsupported(format!(
                "rotary tables cover {context} positions, asked for up to {}",
                pos + seq
            )));
        }
        for (t, token) in x.chunks_exact_mut(heads * d).enumerate() {
            let p = pos + t % seq;
            let cos = &self.cos[p * self.half..(p + 1) * self.half];
            let sin = &self.sin[p * self.half..(p + 1) * self.half];
            for head in token.chunks_exact_mut(d) {
                for ((pair, c), s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0 * c - x1 * s;
                    pair[1] = x0 * s + x1 * c;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matches_the_formula_on_interleaved_pairs_at_each_tokens_position() {
        let (head_dim, heads, batch, seq, pos) = (8, 2, 2, 3, 5);
        let factors = [1.0, 2.0, 4.0, 8.0];
        let rope = Rope::new(head_dim, 10_000.0, Some(&factors), 16);
        let x: Vec<f32> = (0..batch * seq * heads * head_dim)
            .map(|i| 0.5 + (i % 13) as f32)
            .collect();
        let mut y = x.clone();
        rope.apply(&mut y, heads, seq, pos).unwrap();
        let freqs = frequencies(head_dim, 10_000.0, Some(&factors));
        for (row, (x, y)) in x.chunks(head_dim).zip(y.chunks(head_dim)).enumerate() {
            let p = pos + row / heads % seq;
            for i in 0..head_dim / 2 {
                let a = p as f32 * freqs[i];
                let (x0, x1) = (x[2 * i], x[2 * i + 1]);
                assert!((y[2 * i] - (x0 * a.cos() - x1 * a.sin())).abs() < 1e-4);
                assert!((y[2 * i + 1] - (x0 * a.sin() + x1 * a.cos())).abs() < 1e-4);
            }
        }
        assert!(rope.apply(&mut y, heads, seq, 14).is_err());
    }
}
