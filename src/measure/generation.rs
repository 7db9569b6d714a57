//! The timed generation loop: one prefill, then one decode step per further token.

use crate::engine::sampling::greedy;
use crate::engine::{Engine, EngineError};
use candle_core::{Device, Tensor};
use std::time::Instant;

/// Wall-clock timings of one repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Prefill forward + sampling of the first token, ms.
    pub ttft_ms: f64,
    /// Each decode step (forward of B tokens + sampling), ms; `gen_tokens - 1` entries.
    pub decode_steps_ms: Vec<f64>,
    /// Token ids generated for the first sequence.
    pub first_sequence: Vec<u32>,
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Prefills `prompts` (B sequences of equal length) and greedily generates `gen_tokens` tokens
/// per sequence, timing each phase. The engine's cache is reset first.
pub fn generate(
    engine: &mut dyn Engine,
    prompts: &[Vec<u32>],
    gen_tokens: usize,
) -> Result<Timing, EngineError> {
    engine.reset();
    let batch = prompts.len();
    let prompt_len = prompts[0].len();
    let flat: Vec<u32> = prompts.concat();
    let ids = Tensor::from_vec(flat, (batch, prompt_len), &Device::Cpu)?;

    let start = Instant::now();
    let logits = engine.forward(&ids, 0)?;
    let mut next = greedy(&logits)?;
    let ttft_ms = ms_since(start);

    let mut first_sequence = Vec::with_capacity(gen_tokens);
    first_sequence.push(next[0]);
    let mut decode_steps_ms = Vec::with_capacity(gen_tokens.saturating_sub(1));
    for step in 1..gen_tokens {
        let start = Instant::now();
        let ids = Tensor::from_slice(&next, (batch, 1), &Device::Cpu)?;
        let logits = engine.forward(&ids, prompt_len + step - 1)?;
        next = greedy(&logits)?;
        decode_steps_ms.push(ms_since(start));
        first_sequence.push(next[0]);
    }
    Ok(Timing {
        ttft_ms,
        decode_steps_ms,
        first_sequence,
    })
}
