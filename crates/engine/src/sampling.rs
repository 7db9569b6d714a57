//! Choosing the next token from logits.

use super::EngineError;
use candle_core::{Tensor, D};

/// Greedy decoding: the highest-scoring token id of every row of `[batch, vocab]` logits.
pub fn greedy(logits: &Tensor) -> Result<Vec<u32>, EngineError> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}
