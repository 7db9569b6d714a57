//! Causal grouped-query attention over the cached keys and values.
//!
//! The query heads that share one KV head are folded into that head's rows
//! (`[batch, kv_heads, rep * seq, head_dim]`), so keys and values are never copied per head.

use super::EngineError;
use candle_core::{Device, Tensor};

/// Additive causal mask for `seq` queries at positions `pos..pos+seq` against `pos+seq` keys,
/// repeated for the `rep` query heads of a KV head: `[rep * seq, pos + seq]`, 0 or -inf.
pub fn causal_mask(seq: usize, pos: usize, rep: usize) -> Result<Tensor, EngineError> {
    let keys = pos + seq;
    let row = |i: usize| (0..keys).map(move |j| if j <= pos + i { 0.0 } else { f32::NEG_INFINITY });
    let values: Vec<f32> = (0..rep).flat_map(|_| (0..seq).flat_map(row)).collect();
    Ok(Tensor::from_vec(values, (rep * seq, keys), &Device::Cpu)?)
}

/// Attention of `q` (`[batch, heads, seq, head_dim]`, contiguous) over `k`, `v`
/// (`[batch, kv_heads, keys, head_dim]`), with an optional additive `mask` from [`causal_mask`].
/// Returns `[batch, seq, heads * head_dim]`.
pub fn grouped_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor, EngineError> {
    let (batch, heads, seq, head_dim) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    let rep = heads / kv_heads;
    let q = q.reshape((batch, kv_heads, rep * seq, head_dim))?;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = probs.matmul(v)?;
    Ok(out
        .reshape((batch, heads, seq, head_dim))?
        .transpose(1, 2)?
        .reshape((batch, seq, heads * head_dim))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, D};

    /// Plain attention with keys and values repeated per head, the textbook way.
    fn textbook(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize) -> Tensor {
        let (b, h, s, d) = q.dims4().unwrap();
        let kvh = k.dim(1).unwrap();
        let rep = h / kvh;
        let keys = k.dim(2).unwrap();
        let k = Tensor::cat(&vec![k.unsqueeze(2).unwrap(); rep], 2)
            .unwrap()
            .reshape((b, h, keys, d))
            .unwrap();
        let v = Tensor::cat(&vec![v.unsqueeze(2).unwrap(); rep], 2)
            .unwrap()
            .reshape((b, h, keys, d))
            .unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let mask = causal_mask(s, pos, 1).unwrap();
        let scores = scores.broadcast_add(&mask).unwrap();
        let p = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        p.matmul(&v.contiguous().unwrap())
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, s, h * d))
            .unwrap()
    }

    #[test]
    fn grouped_attention_equals_repeated_kv_attention() {
        let dev = Device::Cpu;
        let (b, h, kvh, s, d, pos) = (2, 6, 2, 3, 8, 4);
        let q = Tensor::randn(0f32, 1.0, (b, h, s, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (b, kvh, pos + s, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (b, kvh, pos + s, d), &dev).unwrap();
        let mask = causal_mask(s, pos, h / kvh).unwrap();
        let ours = grouped_attention(&q, &k, &v, Some(&mask)).unwrap();
        let want = textbook(&q, &k, &v, pos);
        let diff = (ours - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "max difference {diff}");
    }

    #[test]
    fn mask_lets_each_query_see_itself_and_the_past_only() {
        let m: Vec<Vec<f32>> = causal_mask(2, 1, 2).unwrap().to_vec2().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(m[0], vec![0.0, 0.0, inf]);
        assert_eq!(m[1], vec![0.0, 0.0, 0.0]);
        assert_eq!(m[2], m[0]);
        assert_eq!(m[3], m[1]);
    }
}
