//! The forward pass's operations on whole rows of activations (RMSNorm, SwiGLU, residual
//! sums), compiled for the active instruction set and split across the pool when there are
//! many rows.

use super::team::{self, SharedMut};
use super::vector::{exp, sum_of_squares};
use crate::multiversion;

/// Values per parallel task of the element-wise operations.
const VALUES_PER_TASK: usize = 1 << 15;

/// Calls `work(out, input)` over matching pieces of `out` and `input` (same length) of `piece`
/// values: on the calling thread when there is one piece (decode), else spread over the team
/// (each thread every `width`-th piece).
fn for_pieces(
    out: &mut [f32],
    input: &[f32],
    piece: usize,
    work: impl Fn(&mut [f32], &[f32]) + Sync,
) {
    let len = out.len();
    if len <= piece {
        return work(out, input);
    }
    let pieces = len.div_ceil(piece);
    let shared = SharedMut::new(out);
    team::parallel(team::width(), &|share, shares| {
        for p in (share..pieces).step_by(shares) {
            let range = p * piece..((p + 1) * piece).min(len);
            // SAFETY: pieces are disjoint.
            let out = unsafe { shared.slice(range.clone()) };
            work(out, &input[range])
        }
    });
}

/// `out = x / sqrt(mean(x²) + eps) · scale` for each row of `x` (rows of `scale.len()` values).
pub fn rms_norm(x: &[f32], scale: &[f32], eps: f32, out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "one output per input");
    let piece = (VALUES_PER_TASK / scale.len()).max(1) * scale.len();
    for_pieces(out, x, piece, |out, x| rms_norm_rows(x, scale, eps, out));
}

multiversion! {
    /// [`rms_norm`] on one thread.
    fn rms_norm_rows(x: &[f32], scale: &[f32], eps: f32, out: &mut [f32]) => rms_norm_body
}

#[inline(always)]
fn rms_norm_body(x: &[f32], scale: &[f32], eps: f32, out: &mut [f32]) {
    let n = scale.len();
    for (row, out) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        // ggml's order: the mean rounded to f32, then the root
        let mean = (sum_of_squares(row) / n as f64) as f32;
        let inverse = 1.0 / (mean + eps).sqrt();
        for ((o, v), s) in out.iter_mut().zip(row).zip(scale) {
            *o = v * inverse * s;
        }
    }
}

/// SwiGLU's product, in place: `gate = silu(gate) · up`, with `silu(g) = g / (1 + e^-g)`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gate and up have the same shape");
    for_pieces(gate, up, VALUES_PER_TASK, silu_mul_values);
}

multiversion! {
    /// [`silu_mul`] on one thread.
    fn silu_mul_values(gate: &mut [f32], up: &[f32]) => silu_mul_body
}

#[inline(always)]
fn silu_mul_body(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// The residual sum, in place: `x += y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "both sides have the same shape");
    for_pieces(x, y, VALUES_PER_TASK, |x, y| {
        x.iter_mut().zip(y).for_each(|(a, b)| *a += b)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect()
    }

    #[test]
    fn rms_norm_equals_candle_on_each_row() {
        let (rows, n) = (5, 96);
        let x = values(rows * n);
        let scale: Vec<f32> = values(n).iter().map(|v| v / 3.0).collect();
        let mut ours = vec![0f32; x.len()];
        rms_norm(&x, &scale, 1e-5, &mut ours);
        let t = Tensor::from_slice(&x, (rows, n), &Device::Cpu).unwrap();
        let s = Tensor::from_slice(&scale, n, &Device::Cpu).unwrap();
        let want: Vec<f32> = candle_nn::ops::rms_norm(&t, &s, 1e-5)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in ours.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn silu_mul_and_add_match_their_formulas() {
        let n = VALUES_PER_TASK + 77;
        let g = values(n);
        let u: Vec<f32> = g.iter().map(|v| 1.5 - v).collect();
        let mut ours = g.clone();
        silu_mul(&mut ours, &u);
        for ((o, g), u) in ours.iter().zip(&g).zip(&u) {
            let want = g / (1.0 + (-g).exp()) * u;
            assert!(
                (o - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{o} vs {want}"
            );
        }
        let mut sum = g.clone();
        add(&mut sum, &u);
        assert!(sum.iter().all(|s| (s - 1.5).abs() < 1e-5));
    }
}
