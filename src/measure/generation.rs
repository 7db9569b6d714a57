//! The timed generation loop: the untimed fill of the cache to its depth, one prefill, then
//! one decode step per further token.

use crate::engine::{Engine, EngineError};
use crate::scenario::config::DEPTH_FILL_CHUNK;
use candle_core::{Device, Tensor};
use std::time::Instant;

/// The two phases of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The prompt's forward pass and the first token.
    Prefill,
    /// Every later token.
    Decode,
}

/// Called around each phase, outside its timed region (e.g. to switch counters on and off).
pub trait PhaseObserver {
    /// The phase is about to start.
    fn begin(&mut self, phase: Phase);
    /// The phase just ended.
    fn end(&mut self, phase: Phase);
    /// A decode step just ended: called after its time was taken and before the next one's
    /// starts, so what it does is in no step's time (a read probe, say).
    fn between_steps(&mut self) {}
}

/// An observer that does nothing (warmup repetitions, tests).
pub struct NoObserver;

impl PhaseObserver for NoObserver {
    fn begin(&mut self, _: Phase) {}
    fn end(&mut self, _: Phase) {}
}

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

/// Puts `fill` (B sequences of equal length, the depth) into the engine's cache, untimed, in
/// pieces of [`DEPTH_FILL_CHUNK`] tokens.
fn fill_cache(engine: &mut dyn Engine, fill: &[Vec<u32>]) -> Result<(), EngineError> {
    let depth = fill.first().map_or(0, Vec::len);
    for start in (0..depth).step_by(DEPTH_FILL_CHUNK) {
        let end = (start + DEPTH_FILL_CHUNK).min(depth);
        let piece: Vec<u32> = fill.iter().flat_map(|s| &s[start..end]).copied().collect();
        let ids = Tensor::from_vec(piece, (fill.len(), end - start), &Device::Cpu)?;
        engine.forward_greedy(&ids, start)?;
    }
    Ok(())
}

/// After `fill` (the depth: B sequences of equal length, or none), prefills `prompts` (B
/// sequences of equal length) and greedily generates `gen_tokens` tokens per sequence, timing
/// each phase; `observer` hears of each phase just outside its timing. The engine's cache is
/// reset first.
pub fn generate(
    engine: &mut dyn Engine,
    fill: &[Vec<u32>],
    prompts: &[Vec<u32>],
    gen_tokens: usize,
    observer: &mut dyn PhaseObserver,
) -> Result<Timing, EngineError> {
    engine.reset();
    fill_cache(engine, fill)?;
    let depth = fill.first().map_or(0, Vec::len);
    let batch = prompts.len();
    let prompt_len = prompts[0].len();
    let flat: Vec<u32> = prompts.concat();
    let ids = Tensor::from_vec(flat, (batch, prompt_len), &Device::Cpu)?;

    observer.begin(Phase::Prefill);
    let start = Instant::now();
    let mut next = engine.forward_greedy(&ids, depth)?;
    let ttft_ms = ms_since(start);
    observer.end(Phase::Prefill);

    let mut first_sequence = Vec::with_capacity(gen_tokens);
    first_sequence.push(next[0]);
    let mut decode_steps_ms = Vec::with_capacity(gen_tokens.saturating_sub(1));
    observer.begin(Phase::Decode);
    for step in 1..gen_tokens {
        let start = Instant::now();
        let ids = Tensor::from_slice(&next, (batch, 1), &Device::Cpu)?;
        next = engine.forward_greedy(&ids, depth + prompt_len + step - 1)?;
        decode_steps_ms.push(ms_since(start));
        observer.between_steps();
        first_sequence.push(next[0]);
    }
    observer.end(Phase::Decode);
    Ok(Timing {
        ttft_ms,
        decode_steps_ms,
        first_sequence,
    })
}
