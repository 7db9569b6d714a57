//! A completed request as one repetition of its run: TTFT, the inter-token times as decode
//! steps, so `tokens.csv`, `report` and `compare` read a server run as any other.

use crate::measure::metrics::RepetitionMetrics;
use crate::measure::record::RepetitionRecord;
use crate::measure::requests::RequestRecord;

/// `request` as a repetition, `prompt_tokens` long when the server did not say; `None` for a
/// failed request.
pub fn repetition_of(request: &RequestRecord, prompt_tokens: usize) -> Option<RepetitionRecord> {
    let ttft_ms = request.ttft_ms.filter(|_| request.ok())?;
    let prompt = request.prompt_tokens.unwrap_or(prompt_tokens) as f64;
    let gen = request.output_tokens as f64;
    let steps = request.output_tokens.saturating_sub(1);
    let decode_ms = request.e2e_ms - ttft_ms;
    Some(RepetitionRecord {
        metrics: RepetitionMetrics {
            ttft_ms,
            prefill_tok_s: prompt / (ttft_ms / 1e3),
            decode_tok_s: (steps > 0).then(|| steps as f64 / (decode_ms / 1e3)),
            tpot_mean_ms: request.tpot_ms,
            e2e_ms: request.e2e_ms,
            output_tok_s: gen / (request.e2e_ms / 1e3),
            total_tok_s: (prompt + gen) / (request.e2e_ms / 1e3),
        },
        decode_steps_ms: request.inter_token_ms.clone(),
        read_probe_gb_s: Vec::new(),
        contention: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::requests::tests::request;

    #[test]
    fn a_completed_request_is_a_repetition_and_a_failed_one_is_not() {
        let rep = repetition_of(&request(0, 200.0, 1100.0, 10, None), 99).unwrap();
        assert_eq!(rep.metrics.prefill_tok_s, 10.0 / 0.2);
        assert_eq!(rep.metrics.decode_tok_s, Some(9.0 / 0.9));
        assert_eq!(rep.metrics.output_tok_s, 10.0 / 1.1);
        assert_eq!(rep.decode_steps_ms.len(), 9);
        assert!(repetition_of(&request(0, 1.0, 2.0, 2, Some("stall")), 9).is_none());
    }
}
