//! The metrics of one repetition, exactly as docs/metrics.md defines them.

use super::generation::Timing;
use serde::{Deserialize, Serialize};

/// Derived metrics of one measured repetition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RepetitionMetrics {
    /// Prefill start (prompt ids ready) to the first generated token id known, ms.
    pub ttft_ms: f64,
    /// `B * prompt_tokens / ttft`, tokens/s.
    pub prefill_tok_s: f64,
    /// `B * (gen_tokens - 1) / sum(decode steps)`, tokens/s; `None` when gen_tokens is 1.
    pub decode_tok_s: Option<f64>,
    /// Mean decode step, ms; `None` when gen_tokens is 1.
    pub tpot_mean_ms: Option<f64>,
    /// `ttft + sum(decode steps)`, ms.
    pub e2e_ms: f64,
    /// `B * gen_tokens / e2e`, tokens/s.
    pub output_tok_s: f64,
    /// `B * (prompt_tokens + gen_tokens) / e2e`, tokens/s.
    pub total_tok_s: f64,
}

impl RepetitionMetrics {
    /// Metrics of `timing` for `batch` sequences of `prompt_tokens` prompt tokens.
    pub fn from_timing(batch: usize, prompt_tokens: usize, timing: &Timing) -> Self {
        let b = batch as f64;
        let gen = (timing.decode_steps_ms.len() + 1) as f64;
        let decode_ms: f64 = timing.decode_steps_ms.iter().sum();
        let steps = timing.decode_steps_ms.len();
        let e2e_ms = timing.ttft_ms + decode_ms;
        RepetitionMetrics {
            ttft_ms: timing.ttft_ms,
            prefill_tok_s: b * prompt_tokens as f64 / (timing.ttft_ms / 1e3),
            decode_tok_s: (steps > 0).then(|| b * steps as f64 / (decode_ms / 1e3)),
            tpot_mean_ms: (steps > 0).then(|| decode_ms / steps as f64),
            e2e_ms,
            output_tok_s: b * gen / (e2e_ms / 1e3),
            total_tok_s: b * (prompt_tokens as f64 + gen) / (e2e_ms / 1e3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_from_design() {
        let timing = Timing {
            ttft_ms: 200.0,
            decode_steps_ms: vec![10.0, 30.0, 20.0],
            first_sequence: vec![],
        };
        let m = RepetitionMetrics::from_timing(4, 100, &timing);
        assert_eq!(m.prefill_tok_s, 4.0 * 100.0 / 0.2);
        assert_eq!(m.decode_tok_s, Some(4.0 * 3.0 / 0.06));
        assert_eq!(m.tpot_mean_ms, Some(20.0));
        assert_eq!(m.e2e_ms, 260.0);
        assert_eq!(m.output_tok_s, 4.0 * 4.0 / 0.26);
        assert_eq!(m.total_tok_s, 4.0 * 104.0 / 0.26);
    }

    #[test]
    fn one_generated_token_has_no_decode_rate() {
        let timing = Timing {
            ttft_ms: 50.0,
            decode_steps_ms: vec![],
            first_sequence: vec![],
        };
        let m = RepetitionMetrics::from_timing(1, 10, &timing);
        assert_eq!(m.decode_tok_s, None);
        assert_eq!(m.output_tok_s, 20.0);
    }
}
